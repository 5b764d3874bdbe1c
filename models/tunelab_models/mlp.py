"""Multi-layer perceptron with the classic knobs: depth, width, activation, dropout, batch norm, init."""

from __future__ import annotations

import torch
from torch import nn

from tunelab_models.activations import ACTIVATION_NAMES, dense_unit
from tunelab_models.initialization import INIT_PARAMS, initialize_weights
from tunelab_models.params import Param
from tunelab_models.registry import TunableModel, register_model
from tunelab_models.signature import DataSignature


@register_model
class MLP(TunableModel):
    """`depth` hidden layers of `width` units; depth 0 is logistic (or linear) regression."""

    name = "mlp"
    hyperparameters = (
        Param("depth", int, 2, "number of hidden layers", low=0, high=64),
        Param("width", int, 128, "units per hidden layer", low=1, high=65536),
        Param("activation", str, "relu", "hidden-layer nonlinearity", choices=ACTIVATION_NAMES),
        Param("maxout_pieces", int, 2, "linear pieces per maxout unit", low=2, high=16),
        Param("dropout", float, 0.0, "drop probability after each hidden layer", low=0.0, high=1.0, high_exclusive=True),
        Param("batch_norm", bool, False, "batch normalisation before each activation"),
        *INIT_PARAMS,
    )

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

