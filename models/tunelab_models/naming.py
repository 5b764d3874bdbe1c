"""A registry of classes by name, with "did you mean" for a mistyped name."""

from __future__ import annotations

import difflib
from typing import Generic, TypeVar

T = TypeVar("T")


class NameRegistry(Generic[T]):
    """Classes found by their `name` attribute (models, data sets)."""

    def __init__(self, kind: str, error: type[Exception] = ValueError, alternatives: str = "") -> None:
        self.kind = kind
        self.error = error
        self.alternatives = alternatives  # e.g. " or an import path 'package.module:Class'"
        self._entries: dict[str, T] = {}

    def register(self, cls: T) -> T:
        name = cls.name  # type: ignore[attr-defined]
        if name in self._entries and self._entries[name] is not cls:
            raise ValueError(f"{self.kind} name {name!r} is already registered")
        self._entries[name] = cls
        return cls

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> T:
        if name in self._entries:
            return self._entries[name]
        close = difflib.get_close_matches(str(name), self._entries, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise self.error(f"unknown {self.kind} {name!r}{hint}; expected one of {', '.join(self.names())}{self.alternatives}")
