"""A model's declaration: its name, hyperparameters, tasks and the inputs it takes, apart from
the network itself. Reading a declaration (validating an experiment file) loads no PyTorch;
building the network imports it."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from tunelab_models.params import Param
from tunelab_models.signature import Task

if TYPE_CHECKING:
    from tunelab_models.network import TunableModel

InputProblem = Callable[[tuple[int, ...]], "str | None"]
ALL_TASKS: frozenset[Task] = frozenset({"classification", "regression"})


def any_input(input_shape: tuple[int, ...]) -> str | None:
    return None


@dataclass(frozen=True)
class ModelDeclaration:
    """`network`: the nn.Module class, or its import path ('package.module:Class') for a
    built-in, imported only when a model is built."""

    name: str
    hyperparameters: tuple[Param, ...]
    network: str | type[TunableModel]
    tasks: frozenset[Task] = ALL_TASKS
    # True for models that learn to reproduce their input (autoencoders): the trainer then
    # uses the inputs as targets, whatever labels the data set has.
    learns_inputs: bool = False
    input_problem: InputProblem = any_input

    def unsupported_reason(self, input_shape: tuple[int, ...]) -> str | None:
        """Why this model cannot take inputs of this per-sample shape, or None if it can."""
        return self.input_problem(tuple(input_shape))

    def network_class(self) -> type[TunableModel]:
        if isinstance(self.network, str):
            module_name, _, attribute = self.network.partition(":")
            return getattr(importlib.import_module(module_name), attribute)
        return self.network

    @classmethod
    def of_class(cls, network: Any) -> ModelDeclaration:
        """The declaration a TunableModel subclass makes with its class attributes (a user's model)."""
        return cls(
            name=network.name,
            hyperparameters=tuple(network.hyperparameters),
            network=network,
            tasks=frozenset(network.tasks),
            learns_inputs=bool(network.learns_inputs),
            input_problem=network.unsupported_reason,
        )
