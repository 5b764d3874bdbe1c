"""The base class of every network: a torch module that declares what it is."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from tunelab_models.declaration import ALL_TASKS, ModelDeclaration
from tunelab_models.params import Param
from tunelab_models.signature import Task


class TunableModel(nn.Module):
    """A model declares its hyperparameters and builds itself from a signature.

    A built-in sets `declaration` (see builtin.py) and inherits the rest from it; a user's
    model may declare `name`, `hyperparameters` (and `tasks`, `learns_inputs`,
    `unsupported_reason`) on the class itself.
    """

    name: ClassVar[str]
    hyperparameters: ClassVar[tuple[Param, ...]]
    tasks: ClassVar[frozenset[Task]] = ALL_TASKS
    learns_inputs: ClassVar[bool] = False
    declaration: ClassVar[ModelDeclaration | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__.get("declaration")
        if declared is not None:
            cls.name, cls.hyperparameters = declared.name, declared.hyperparameters
            cls.tasks, cls.learns_inputs = declared.tasks, declared.learns_inputs

    @classmethod
    def unsupported_reason(cls, input_shape: tuple[int, ...]) -> str | None:
        """Why this model cannot take inputs of this per-sample shape, or None if it can."""
        declared = cls.__dict__.get("declaration")
        return None if declared is None else declared.unsupported_reason(input_shape)
