"""Convolutional network for sequences (Conv1d) and images (Conv2d): conv blocks, then global pooling."""

from __future__ import annotations

import torch
from torch import nn

from tunelab_models import builtin
from tunelab_models.activations import ACTIVATIONS
from tunelab_models.initialization import initialize_weights
from tunelab_models.layers import SPATIAL_LAYERS, same_padding_conv
from tunelab_models.network import TunableModel
from tunelab_models.signature import DataSignature

class CNN(TunableModel):
    """`blocks` × [conv → batch norm → activation → pool by 2 → dropout], global average pool, linear.

    Every block has `channels` channels, so `blocks` and `pooling` each change one thing. A
    block pools only while every spatial size stays >= 2 after halving (8×8 digits pool twice,
    to 2×2; later blocks keep 2×2), so any number of blocks works on small inputs.
    """

    declaration = builtin.CNN

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
