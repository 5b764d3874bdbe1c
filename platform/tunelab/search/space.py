"""Search-space entries of an experiment file: one class per distribution.

Each entry knows how to ask an Optuna trial for a value and how to lay itself out on a
grid, so the sampler code never switches on the distribution type.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Mapping, Union

import numpy as np
from pydantic import BeforeValidator, Field, model_validator

from tunelab.strict import StrictModel

if TYPE_CHECKING:
    import optuna

SCALAR_TYPES = (bool, int, float, str, type(None))
# What YAML wrote for a value that is not a scalar, in its own words.
_KINDS = {"dict": "a mapping", "list": "a list", "set": "a set", "bytes": "binary data", "date": "a date", "datetime": "a date and time"}


def _scalar(value: Any) -> Any:
    # Checked before pydantic tries each member of the union: one error at the value's own
    # place, instead of one per member at `values.0.bool`, `values.0.int`, ...
    if not isinstance(value, SCALAR_TYPES):
        raise ValueError(f"expected a number, text, true/false or null, got {_KINDS.get(type(value).__name__, type(value).__name__)}")
    return value


def _scalar_or_scalars(value: Any) -> Any:
    for item in value if isinstance(value, list) else [value]:
        _scalar(item)
    return value


Scalar = Annotated[Union[bool, int, float, str, None], BeforeValidator(_scalar)]


class _Distribution(StrictModel):
    # Sample this parameter only when every named parameter has one of the listed values,
    # e.g. `when: {optimizer: sgd}` for momentum.
    when: dict[str, Annotated[Union[Scalar, list[Scalar]], BeforeValidator(_scalar_or_scalars)]] | None = None

    def condition_values(self) -> dict[str, list[Scalar]]:
        return {name: value if isinstance(value, list) else [value] for name, value in (self.when or {}).items()}

    def applies(self, chosen: Mapping[str, Any]) -> bool:
        """Whether a trial whose earlier parameters took `chosen` has this parameter."""
        return all(parent in chosen and chosen[parent] in allowed for parent, allowed in self.condition_values().items())

    def suggest(self, trial: optuna.Trial, name: str) -> Any:
        raise NotImplementedError

    def grid_values(self, resolution: int) -> list[Any]:
        raise NotImplementedError

    def bounds(self) -> list[Any]:
        """The values a declared parameter must accept for this entry to be valid."""
        raise NotImplementedError


class _Range(_Distribution):
    @model_validator(mode="after")
    def _low_below_high(self) -> _Range:
        if not self.low < self.high:  # type: ignore[attr-defined]
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")  # type: ignore[attr-defined]
        return self

    def bounds(self) -> list[Any]:
        return [self.low, self.high]  # type: ignore[attr-defined]


class LogUniform(_Range):
    type: Literal["loguniform"]
    low: float = Field(gt=0, allow_inf_nan=False)
    high: float = Field(gt=0, allow_inf_nan=False)

    def suggest(self, trial: optuna.Trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=True)

    def grid_values(self, resolution: int) -> list[float]:
        return [float(v) for v in np.geomspace(self.low, self.high, resolution)]


class Uniform(_Range):
    type: Literal["uniform"]
    low: float = Field(allow_inf_nan=False)
    high: float = Field(allow_inf_nan=False)
    step: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    def suggest(self, trial: optuna.Trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, step=self.step)

    def grid_values(self, resolution: int) -> list[float]:
        if self.step is not None:
            # Clipped: low + k * step can overshoot high by a rounding error (0.7000000000000001).
            points = np.arange(self.low, self.high + self.step / 2, self.step)
            return [float(v) for v in np.clip(points, self.low, self.high)]
        return [float(v) for v in np.linspace(self.low, self.high, resolution)]


class IntRange(_Range):
    type: Literal["int"]
    low: int
    high: int
    step: int = Field(default=1, ge=1)
    log: bool = False

    @model_validator(mode="after")
    def _log_needs_positive_unit_steps(self) -> IntRange:
        if self.log and (self.low < 1 or self.step != 1):
            raise ValueError("log: true needs low >= 1 and step 1")
        return self

    def suggest(self, trial: optuna.Trial, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, step=self.step, log=self.log)

    def grid_values(self, resolution: int) -> list[int]:
        # Integers are discrete already: a grid visits every allowed value.
        return list(range(self.low, self.high + 1, self.step))


class Choice(_Distribution):
    type: Literal["choice"]
    values: list[Scalar] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> Choice:
        if len({repr(v) for v in self.values}) != len(self.values):
            raise ValueError("values must be distinct")
        return self

    def suggest(self, trial: optuna.Trial, name: str) -> Scalar:
        return trial.suggest_categorical(name, self.values)

    def grid_values(self, resolution: int) -> list[Scalar]:
        return list(self.values)

    def bounds(self) -> list[Any]:
        return list(self.values)


Distribution = Annotated[Union[LogUniform, Uniform, IntRange, Choice], Field(discriminator="type")]
DISTRIBUTIONS_BY_TYPE: dict[str, type[_Distribution]] = {"loguniform": LogUniform, "uniform": Uniform, "int": IntRange, "choice": Choice}
DISTRIBUTION_TYPES: tuple[str, ...] = tuple(DISTRIBUTIONS_BY_TYPE)


def evaluation_order(space: Mapping[str, _Distribution]) -> list[str]:
    """Parameters in file order, each after the parameters its condition refers to."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise ValueError(f"conditions form a cycle through {name!r}")
        visiting.add(name)
        for parent in space[name].condition_values():
            visit(parent)
        visiting.discard(name)
        order.append(name)

    for name in space:
        visit(name)
    return order
