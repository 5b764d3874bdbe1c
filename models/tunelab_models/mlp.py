"""Multi-layer perceptron with the classic knobs: depth, width, activation, dropout, batch norm, init."""

from __future__ import annotations

import torch
from torch import nn

from tunelab_models import builtin
from tunelab_models.activations import dense_unit
from tunelab_models.initialization import initialize_weights
from tunelab_models.network import TunableModel
from tunelab_models.signature import DataSignature


class MLP(TunableModel):
    """`depth` hidden layers of `width` units; depth 0 is logistic (or linear) regression."""

    declaration = builtin.MLP

    def __init__(
        self,
        signature: DataSignature,
        depth: int,
        width: int,
        activation: str,
        maxout_pieces: int,
        dropout: float,
        batch_norm: bool,
        init: str,
        init_std: float,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        in_features = signature.num_features
        for _ in range(depth):
            layers.extend(dense_unit(in_features, width, activation, maxout_pieces, batch_norm))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            in_features = width
        layers.append(nn.Linear(in_features, signature.num_outputs))
        self.layers = nn.Sequential(*layers)
        initialize_weights(self, init, init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

