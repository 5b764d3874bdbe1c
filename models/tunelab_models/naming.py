"""The one registry type: strategies found by their `name`, with "did you mean" for a typo.

Every family uses it: models and data sets (classes), searchers, schedulers, optimisers,
learning-rate schedules, training tasks and bias-variance methods (instances).
"""

from __future__ import annotations

import difflib
from typing import Generic, Iterator, TypeVar

T = TypeVar("T")


class NameRegistry(Generic[T]):
    """Entries by name, in registration order; `registry[name]` raises `error` for an unknown one."""

    def __init__(self, kind: str, error: type[Exception] = ValueError, alternatives: str = "") -> None:
        self.kind = kind
        self.error = error
        self.alternatives = alternatives  # e.g. " or an import path 'package.module:Class'"
        self._entries: dict[str, T] = {}

    def register(self, entry: T) -> T:
        name = entry.name  # type: ignore[attr-defined]
        if name in self._entries and self._entries[name] is not entry:
            raise ValueError(f"{self.kind} name {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def names(self) -> list[str]:
        return sorted(self._entries)

    def values(self) -> list[T]:
        return list(self._entries.values())

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())

    def __getitem__(self, name: str) -> T:
        if name in self._entries:
            return self._entries[name]
        close = difflib.get_close_matches(str(name), self._entries, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise self.error(f"unknown {self.kind} {name!r}{hint}; expected one of {', '.join(self.names())}{self.alternatives}")

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
