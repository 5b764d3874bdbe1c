"""A user's own models, named by import path in tests (`user_models:TinyNet`)."""

from __future__ import annotations

import torch
from torch import nn

from tunelab_models import DataSignature, Param, TunableModel


class TinyNet(TunableModel):
    """One linear layer with a declared, bounded `scale` applied to its output."""

    name = "tiny_net"
    hyperparameters = (
        Param("scale", float, 1.0, "output multiplier", low=0.0, high=10.0),
        Param("bias", bool, True, "whether the linear layer has a bias"),
    )

    def __init__(self, signature: DataSignature, scale: float, bias: bool) -> None:
        super().__init__()
        self.scale = scale
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(signature.num_features, signature.num_outputs, bias=bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.layers(x)


class PlainModule(nn.Module):
    """Declares hyperparameters but is not a TunableModel: no `tasks`, no `unsupported_reason`."""

    hyperparameters = (Param("width", int, 4, "units", low=1, high=64),)

    def __init__(self, signature: DataSignature, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(signature.num_features, signature.num_outputs)


def not_a_model() -> None:
    """A function, not a model class."""


NOT_A_CLASS = 42
