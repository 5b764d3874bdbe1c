"""The shared model package: every tunable network, found by name through one registry.

Importing it loads no PyTorch: the registry holds declarations (builtin.py), and a network
module is imported when a model is built. `TunableModel`, the base class of a user's own
model, is the one name here that imports torch, when it is first used.
"""

from __future__ import annotations

from typing import Any

from tunelab_models.declaration import ModelDeclaration
from tunelab_models.params import Param, ParamError, resolve_params
from tunelab_models.registry import (
    UnknownModelError,
    build_model,
    get_model,
    model_names,
    model_signature,
    register_model,
    resolve_model_params,
)
from tunelab_models.signature import DataSignature, Task

__all__ = [
    "DataSignature",
    "ModelDeclaration",
    "Param",
    "ParamError",
    "Task",
    "TunableModel",
    "UnknownModelError",
    "build_model",
    "get_model",
    "model_names",
    "model_signature",
    "register_model",
    "resolve_model_params",
    "resolve_params",
]


def __getattr__(name: str) -> Any:
    if name == "TunableModel":
        from tunelab_models.network import TunableModel

        return TunableModel
    raise AttributeError(f"module 'tunelab_models' has no attribute {name!r}")
