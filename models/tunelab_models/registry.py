"""Models by name (`mlp`) or by import path (`package.module:Class`) for a user's own model."""

from __future__ import annotations

import importlib
from typing import Any, ClassVar, Mapping

from torch import nn

from tunelab_models.naming import NameRegistry
from tunelab_models.params import Param, resolve_params
from tunelab_models.signature import DataSignature, Task


class TunableModel(nn.Module):
    """Base class: a model declares its hyperparameters and builds itself from a signature."""

    name: ClassVar[str]
    hyperparameters: ClassVar[tuple[Param, ...]]
    tasks: ClassVar[frozenset[Task]] = frozenset({"classification", "regression"})
    # True for models that learn to reproduce their input (autoencoders): the trainer then
    # uses the inputs as targets, whatever labels the data set has.
    learns_inputs: ClassVar[bool] = False

    @classmethod
    def unsupported_reason(cls, input_shape: tuple[int, ...]) -> str | None:
        """Why this model cannot take inputs of this per-sample shape, or None if it can."""
        return None


class UnknownModelError(ValueError):
    pass


_MODELS: NameRegistry[type[TunableModel]] = NameRegistry(
    "model", UnknownModelError, alternatives=" or an import path 'package.module:Class'"
)


def register_model(cls: type[TunableModel]) -> type[TunableModel]:
    return _MODELS.register(cls)


def model_names() -> list[str]:
    return _MODELS.names()


def get_model(name: str) -> type[TunableModel]:
    """The model class for a registered name or a `package.module:Class` path."""
    if ":" in name:
        return _import_model(name)
    return _MODELS.get(name)


def _import_model(path: str) -> type[TunableModel]:
    module_name, _, attribute = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise UnknownModelError(f"cannot import model {path!r}: {exc}") from None
    # TunableModel, not just nn.Module: the spec checks and build_model read `tasks` and
    # `unsupported_reason`, which only the base class provides.
    if not (isinstance(cls, type) and issubclass(cls, TunableModel) and hasattr(cls, "hyperparameters")):
        raise UnknownModelError(
            f"{path!r} is not a model: expected a subclass of tunelab_models.TunableModel with a "
            "`hyperparameters` tuple of tunelab_models.Param"
        )
    return cls


def resolve_model_params(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with `params`, each checked against the model's declaration."""
    return resolve_params(get_model(name).hyperparameters, params)


def model_signature(name: str, input_shape: tuple[int, ...], task: Task, num_outputs: int) -> DataSignature:
    """The signature a model is built with: an autoencoder predicts its inputs."""
    cls = get_model(name)
    if cls.learns_inputs:
        return DataSignature(input_shape, "reconstruction", DataSignature(input_shape, task, num_outputs).num_features)
    return DataSignature(input_shape, task, num_outputs)


def build_model(name: str, params: Mapping[str, Any], signature: DataSignature) -> nn.Module:
    cls = get_model(name)
    if signature.task not in cls.tasks:
        raise UnknownModelError(f"model {name!r} does not support {signature.task} data")
    reason = cls.unsupported_reason(signature.input_shape)
    if reason:
        raise UnknownModelError(f"model {name!r} cannot take inputs of shape {signature.input_shape}: {reason}")
    return cls(signature, **resolve_params(cls.hyperparameters, params))
