"""The shape every strategy family shares (searchers, schedulers, optimisers, learning-rate
schedules, training tasks, bias-variance methods), after Optuna's samplers and pruners.

A strategy is a small object: it declares its `name` and `options` in plain Python, cheap to
import, so an experiment file is checked without Ray, Optuna or PyTorch; its family's
keyword-only `build(...)` imports the library it wraps. A new strategy is a new class,
registered in its family's `NameRegistry`; tests/test_strategies.py holds each family's contract
and checks every registered entry.
"""

from __future__ import annotations

from abc import ABC
from typing import ClassVar

from tunelab_models.naming import NameRegistry
from tunelab_models.params import Param

__all__ = ["NameRegistry", "Strategy"]


class Strategy(ABC):
    name: ClassVar[str]  # what experiment files and the CLI call it
    options: ClassVar[tuple[Param, ...]] = ()  # what it accepts, each declared with its default
