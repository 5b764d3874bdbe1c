"""The shared model package: every tunable network, found by name through one registry."""

from tunelab_models.params import Param, ParamError, resolve_params
from tunelab_models.registry import (
    TunableModel,
    UnknownModelError,
    build_model,
    get_model,
    model_names,
    model_signature,
    register_model,
    resolve_model_params,
)
from tunelab_models.signature import DataSignature, Task

# Importing a model module registers it.
from tunelab_models import mlp as _mlp  # noqa: E402,F401
from tunelab_models import autoencoder as _autoencoder  # noqa: E402,F401
from tunelab_models import cnn as _cnn  # noqa: E402,F401
from tunelab_models import resnet as _resnet  # noqa: E402,F401
from tunelab_models import rnn as _rnn  # noqa: E402,F401

__all__ = [
    "DataSignature",
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
