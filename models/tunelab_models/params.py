"""Declared hyperparameters: what a model (or data set, or training knob) accepts.

Every tunable thing declares its parameters with a type, a default and the values it
accepts, so an experiment file can be checked before any trial runs, and the same
declaration documents the parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

PARAM_KINDS: dict[type, str] = {
    int: "an integer",
    float: "a number",
    str: "a string",
    bool: "true or false",
    list: "a list",
    dict: "a mapping",
}


class ParamError(ValueError):
    """A value a declared parameter does not accept. The message says what it expects."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


@dataclass(frozen=True)
class Param:
    """One declared hyperparameter.

    `low`/`high` bound numbers (inclusive unless `high_exclusive`); `choices` lists the
    accepted values of a string (or other) parameter.
    """

    name: str
    kind: type
    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    high_exclusive: bool = False
    # Literal values accepted besides the kind's range, e.g. batch_size: "full".
    also: tuple[Any, ...] = ()

    def expectation(self) -> str:
        """What this parameter accepts, in words, for error messages."""
        extra = "".join(f" or {value!r}" for value in self.also)
        return self._range_words() + extra

    def _range_words(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        words = PARAM_KINDS.get(self.kind, self.kind.__name__)
        if self.low is not None and self.high is not None:
            closing = ")" if self.high_exclusive else "]"
            return f"{words} in [{_fmt(self.low)}, {_fmt(self.high)}{closing}"
        if self.low is not None:
            return f"{words} >= {_fmt(self.low)}"
        if self.high is not None:
            return f"{words} <= {_fmt(self.high)}"
        return words

    def check(self, value: Any) -> Any:
        """Return `value` converted to this parameter's kind, or raise ParamError."""
        if any(value == extra and type(value) is type(extra) for extra in self.also):
            return value
        converted = self._convert(value)
        if self.choices is not None and converted not in self.choices:
            raise ParamError(self.name, f"expected {self.expectation()}, got {value!r}")
        if self.kind in (int, float):
            too_low = self.low is not None and converted < self.low
            too_high = self.high is not None and (
                converted >= self.high if self.high_exclusive else converted > self.high
            )
            if too_low or too_high or (self.kind is float and not math.isfinite(converted)):
                raise ParamError(self.name, f"expected {self.expectation()}, got {value!r}")
        return converted

    def _convert(self, value: Any) -> Any:
        bad = ParamError(self.name, f"expected {self.expectation()}, got {value!r}")
        if isinstance(value, bool) and self.kind is not bool:
            raise bad
        if self.kind is bool:
            if not isinstance(value, bool):
                raise bad
            return value
        if self.kind is int:
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise bad
        if self.kind is float:
            if isinstance(value, (int, float)):
                try:
                    return float(value)
                except OverflowError:  # an integer too large for a float, e.g. 10**400
                    raise bad from None
            raise bad
        if self.kind in (str, list, dict):
            if isinstance(value, self.kind):
                return value
            raise bad
        return value


def _fmt(number: float) -> str:
    return f"{number:g}"


def resolve_params(declared: Iterable[Param], given: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with `given`, each value checked. Unknown names raise ParamError."""
    table = {p.name: p for p in declared}
    unknown = [name for name in given if name not in table]
    if unknown:
        known = ", ".join(sorted(table)) or "none"
        raise ParamError(unknown[0], f"unknown parameter {unknown[0]!r}; accepted: {known}")
    resolved = {p.name: p.default for p in table.values()}
    for name, value in given.items():
        resolved[name] = table[name].check(value)
    return resolved
