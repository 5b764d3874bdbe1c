"""Residual network for every input rank: dense blocks for vectors, Conv1d for sequences, Conv2d for images."""

from __future__ import annotations

import torch
from torch import nn

from tunelab_models import builtin
from tunelab_models.activations import ACTIVATIONS
from tunelab_models.initialization import initialize_weights
from tunelab_models.layers import SPATIAL_LAYERS, same_padding_conv
from tunelab_models.network import TunableModel
from tunelab_models.signature import DataSignature

_KERNEL_SIZE = 3


class ResidualBlock(nn.Module):
    """Post-activation block (He et al. 2016, v1): act(branch(x) + x), branch = layer, norm, act, layer, norm.

    With `skip` off the block is act(branch(x)): the same modules and parameters, only the
    identity path is gone, so a plain network and a residual one differ in that alone.
    """

    def __init__(self, branch: nn.Sequential, activation: nn.Module, skip: bool) -> None:
        super().__init__()
        self.branch = branch
        self.activation = activation
        self.skip = skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch(x)
        if self.skip:
            out = out + x
        return self.activation(out)


class ResNet(TunableModel):
    """Stem (a layer from the input to `width`, norm, act), `depth` residual blocks at `width`, head.

    The width and (for sequences and images) the spatial size stay the same through every
    block, so each identity path is a plain addition. Rank 1: Linear layers; rank 2: Conv1d;
    rank 3: Conv2d (3-wide kernels, 'same' padding). Head: global average pooling (sequences
    and images) then a linear layer to the outputs.
    """

    declaration = builtin.RESNET

    def __init__(
        self,
        signature: DataSignature,
        depth: int,
        width: int,
        skip: bool,
        batch_norm: bool,
        activation: str,
        init: str,
        init_std: float,
    ) -> None:
        super().__init__()
        if signature.rank == 1:
            def layer(in_width: int) -> nn.Module:
                return nn.Linear(in_width, width)

            def norm() -> nn.Module:
                return nn.BatchNorm1d(width) if batch_norm else nn.Identity()

            pool: list[nn.Module] = []
        else:
            spatial = SPATIAL_LAYERS[signature.rank]

            def layer(in_width: int) -> nn.Module:
                return same_padding_conv(spatial, in_width, width, _KERNEL_SIZE)

            def norm() -> nn.Module:
                return spatial.batch_norm(width) if batch_norm else nn.Identity()

            pool = [spatial.global_pool(1), nn.Flatten()]
        act = ACTIVATIONS[activation]
        self.stem = nn.Sequential(layer(signature.input_shape[0]), norm(), act())
        self.blocks = nn.Sequential(*(
            ResidualBlock(nn.Sequential(layer(width), norm(), act(), layer(width), norm()), act(), skip)
            for _ in range(depth)
        ))
        self.head = nn.Sequential(*pool, nn.Linear(width, signature.num_outputs))
        initialize_weights(self, init, init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))
