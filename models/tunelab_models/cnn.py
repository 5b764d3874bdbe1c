"""Convolutional network for sequences (Conv1d) and images (Conv2d): conv blocks, then global pooling."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tunelab_models.activations import ACTIVATIONS, ELEMENTWISE_ACTIVATION_NAMES
from tunelab_models.initialization import INIT_PARAMS, initialize_weights
from tunelab_models.params import Param
from tunelab_models.registry import TunableModel, register_model
from tunelab_models.signature import DataSignature

_INPUT_KINDS = {1: "a feature vector", 2: "a sequence", 3: "an image"}


def describe_input(input_shape: tuple[int, ...]) -> str:
    """A per-sample shape in words, for messages: 'a feature vector of shape (2,)'."""
    kind = _INPUT_KINDS.get(len(input_shape), f"a rank-{len(input_shape)} input")
    return f"{kind} of shape {tuple(input_shape)}"


@dataclass(frozen=True)
class SpatialLayers:
    """The layer types for one input rank: 1d for sequences, 2d for images."""

    conv: type[nn.Module]
    batch_norm: type[nn.Module]
    max_pool: type[nn.Module]
    avg_pool: type[nn.Module]
    global_pool: type[nn.Module]


SPATIAL_LAYERS: dict[int, SpatialLayers] = {
    2: SpatialLayers(nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d, nn.AvgPool1d, nn.AdaptiveAvgPool1d),
    3: SpatialLayers(nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d),
}


def same_padding_conv(layers: SpatialLayers, in_channels: int, out_channels: int, kernel_size: int) -> nn.Module:
    """A stride-1 convolution that keeps the spatial size (odd kernel, padding kernel_size // 2)."""
    return layers.conv(in_channels, out_channels, kernel_size, padding=kernel_size // 2)


def spatial_unsupported_reason(name: str, input_shape: tuple[int, ...]) -> str | None:
    if len(input_shape) in SPATIAL_LAYERS:
        return None
    return (
        f"{name} needs sequence (channels, steps) or image (channels, height, width) inputs; "
        f"got {describe_input(input_shape)}"
    )


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
