"""Dense autoencoder for any input shape: flatten, encode to a code, decode back to the input's shape."""

from __future__ import annotations

import torch
from torch import nn

from tunelab_models import builtin
from tunelab_models.activations import dense_unit
from tunelab_models.initialization import initialize_weights
from tunelab_models.network import TunableModel
from tunelab_models.signature import DataSignature


class Autoencoder(TunableModel):
    """Encoder: `depth` hidden layers of `width`, then a linear map to the `bottleneck` code.

    The decoder mirrors it: `depth` hidden layers of `width`, then a linear map to every input
    feature, reshaped to the input's shape. Code and output are linear (no activation), so
    depth 0 is a linear autoencoder (it learns the principal subspace) and inputs of any scale
    can be reproduced.
    """

    declaration = builtin.AUTOENCODER

    def __init__(
        self,
        signature: DataSignature,
        depth: int,
        width: int,
        bottleneck: int,
        activation: str,
        maxout_pieces: int,
        batch_norm: bool,
        init: str,
        init_std: float,
    ) -> None:
        super().__init__()
        self.input_shape = tuple(signature.input_shape)
        features = signature.num_features
        self.encoder = nn.Sequential(
            nn.Flatten(), *self._hidden(features, depth, width, activation, maxout_pieces, batch_norm),
            nn.Linear(width if depth else features, bottleneck),
        )
        self.decoder = nn.Sequential(
            *self._hidden(bottleneck, depth, width, activation, maxout_pieces, batch_norm),
            nn.Linear(width if depth else bottleneck, features),
        )
        initialize_weights(self, init, init_std)

    @staticmethod
    def _hidden(
        in_features: int, depth: int, width: int, activation: str, maxout_pieces: int, batch_norm: bool
    ) -> list[nn.Module]:
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers.extend(dense_unit(in_features, width, activation, maxout_pieces, batch_norm))
            in_features = width
        return layers

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code, (N, bottleneck)."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x)).view(x.shape[0], *self.input_shape)
