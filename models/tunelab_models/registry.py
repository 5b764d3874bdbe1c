"""Models by name (`mlp`) or by import path (`package.module:Class`) for a user's own model.

The registry holds declarations: finding a model and checking its hyperparameters loads no
PyTorch; `build_model` imports the network.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Mapping

from tunelab_models.builtin import BUILT_IN_MODELS
from tunelab_models.declaration import ModelDeclaration
from tunelab_models.naming import NameRegistry
from tunelab_models.params import resolve_params
from tunelab_models.signature import DataSignature, Task

if TYPE_CHECKING:
    from torch import nn

    from tunelab_models.network import TunableModel


class UnknownModelError(ValueError):
    pass


_MODELS: NameRegistry[ModelDeclaration] = NameRegistry(
    "model", UnknownModelError, alternatives=" or an import path 'package.module:Class'"
)
for _declared in BUILT_IN_MODELS:
    _MODELS.register(_declared)


def register_model(cls: type[TunableModel]) -> type[TunableModel]:
    """Class decorator: a user's TunableModel found by its name, like a built-in."""
    _MODELS.register(ModelDeclaration.of_class(cls))
    return cls


def model_names() -> list[str]:
    return _MODELS.names()


def get_model(name: str) -> ModelDeclaration:
    """The declaration of a registered name or of a `package.module:Class` path."""
    if ":" in name:
        return ModelDeclaration.of_class(_import_model(name))
    return _MODELS[name]


def _import_model(path: str) -> type[TunableModel]:
    from tunelab_models.network import TunableModel

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
    declared = get_model(name)
    if declared.learns_inputs:
        return DataSignature(input_shape, "reconstruction", DataSignature(input_shape, task, num_outputs).num_features)
    return DataSignature(input_shape, task, num_outputs)


def build_model(name: str, params: Mapping[str, Any], signature: DataSignature) -> nn.Module:
    declared = get_model(name)
    if signature.task not in declared.tasks:
        raise UnknownModelError(f"model {name!r} does not support {signature.task} data")
    reason = declared.unsupported_reason(signature.input_shape)
    if reason:
        raise UnknownModelError(f"model {name!r} cannot take inputs of shape {signature.input_shape}: {reason}")
    return declared.network_class()(signature, **resolve_params(declared.hyperparameters, params))
