"""Layer helpers shared by the models: conv layers by input rank (builtin.SPATIAL_RANKS)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


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
