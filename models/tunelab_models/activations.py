"""Activation functions by name, including maxout (which owns its own linear map)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

# builtin.ELEMENTWISE_ACTIVATION_NAMES declares these names (light); maxout replaces the Linear +
# activation pair (see `dense_unit`).
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "gelu": nn.GELU,
}


class Maxout(nn.Module):
    """out_features units, each the max of `pieces` affine functions of the input."""

    def __init__(self, in_features: int, out_features: int, pieces: int, batch_norm: bool = False) -> None:
        super().__init__()
        self.out_features = out_features
        self.pieces = pieces
        self.linear = nn.Linear(in_features, out_features * pieces)
        self.norm = nn.BatchNorm1d(out_features * pieces) if batch_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pieces = self.norm(self.linear(x))
        return pieces.view(*x.shape[:-1], self.out_features, self.pieces).amax(dim=-1)


def dense_unit(
    in_features: int, out_features: int, activation: str, maxout_pieces: int, batch_norm: bool
) -> list[nn.Module]:
    """Linear map, optional batch norm on the pre-activation, then the nonlinearity."""
    if activation == "maxout":
        return [Maxout(in_features, out_features, maxout_pieces, batch_norm)]
    norm = [nn.BatchNorm1d(out_features)] if batch_norm else []
    return [nn.Linear(in_features, out_features), *norm, ACTIVATIONS[activation]()]
