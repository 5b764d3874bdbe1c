"""Convolutional network for sequences (Conv1d) and images (Conv2d): conv blocks, then global pooling."""

from __future__ import annotations

import torch
from torch import nn

from tunelab_models.activations import ACTIVATIONS, ELEMENTWISE_ACTIVATION_NAMES
from tunelab_models.initialization import INIT_PARAMS, initialize_weights
from tunelab_models.layers import SPATIAL_LAYERS, same_padding_conv, spatial_unsupported_reason
from tunelab_models.params import Param
from tunelab_models.registry import TunableModel, register_model
from tunelab_models.signature import DataSignature

@register_model
class CNN(TunableModel):
    """`blocks` × [conv → batch norm → activation → pool by 2 → dropout], global average pool, linear.

    Every block has `channels` channels, so `blocks` and `pooling` each change one thing. A
    block pools only while every spatial size stays >= 2 after halving (8×8 digits pool twice,
    to 2×2; later blocks keep 2×2), so any number of blocks works on small inputs.
    """

    name = "cnn"
    hyperparameters = (
        Param("blocks", int, 2, "number of conv blocks", low=1, high=8),
        Param("channels", int, 32, "channels of every conv block (constant across blocks)", low=1, high=1024),
        Param("kernel_size", int, 3, "odd kernel size; 'same' padding keeps the size", choices=tuple(range(1, 16, 2))),
        Param(
            "pooling", str, "max", "downsampling by 2 after each block while the size stays >= 2",
            choices=("max", "avg", "none"),
        ),
        Param("batch_norm", bool, False, "batch normalisation between each conv and its activation"),
        Param("dropout", float, 0.0, "drop probability (elementwise) after each block", low=0.0, high=1.0,
              high_exclusive=True),
        Param("activation", str, "relu", "nonlinearity after each conv", choices=ELEMENTWISE_ACTIVATION_NAMES),
        *INIT_PARAMS,
    )

    @classmethod
    def unsupported_reason(cls, input_shape: tuple[int, ...]) -> str | None:
        return spatial_unsupported_reason(cls.name, input_shape)

    def __init__(
        self,
        signature: DataSignature,
        blocks: int,
        channels: int,
        kernel_size: int,
        pooling: str,
        batch_norm: bool,
        dropout: float,
        activation: str,
        init: str,
        init_std: float,
    ) -> None:
        super().__init__()
        layers = SPATIAL_LAYERS[signature.rank]
        in_channels, *size = signature.input_shape
        body: list[nn.Module] = []
        for _ in range(blocks):
            body.append(same_padding_conv(layers, in_channels, channels, kernel_size))
            if batch_norm:
                body.append(layers.batch_norm(channels))
            body.append(ACTIVATIONS[activation]())
            if pooling != "none" and min(size) // 2 >= 2:
                body.append(layers.max_pool(2) if pooling == "max" else layers.avg_pool(2))
                size = [s // 2 for s in size]
            if dropout > 0:
                body.append(nn.Dropout(dropout))
            in_channels = channels
        self.features = nn.Sequential(*body)
        self.head = nn.Sequential(layers.global_pool(1), nn.Flatten(), nn.Linear(channels, signature.num_outputs))
        initialize_weights(self, init, init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
