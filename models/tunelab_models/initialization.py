"""Weight initialisation schemes, applied to every Linear/Conv/recurrent layer of a model."""

from __future__ import annotations

import torch
from torch import nn

from tunelab_models.builtin import INIT_SCHEMES

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)


def initialize_weights(model: nn.Module, scheme: str, normal_std: float = 0.01) -> None:
    """Re-initialise weights in place. Biases start at zero for every scheme but `default`.

    `zeros` is included on purpose: it shows the symmetry problem (all units learn the same
    thing), one of the classic questions users tune to see.

    Recurrent layers (nn.RNN, nn.LSTM, nn.GRU) get the scheme on each input-to-hidden and
    hidden-to-hidden matrix as a whole (all gates of a layer in one matrix), biases zero.
    """
    if scheme == "default":
        return
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; expected one of {', '.join(INIT_SCHEMES)}")
    for module in model.modules():
        if isinstance(module, _WEIGHTED):
            _initialize(module.weight, scheme, normal_std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.RNNBase):
            for name, parameter in module.named_parameters(recurse=False):
                if name.startswith("weight_"):
                    _initialize(parameter, scheme, normal_std)
                elif name.startswith("bias_"):
                    nn.init.zeros_(parameter)


def _initialize(weight: torch.Tensor, scheme: str, normal_std: float) -> None:
    if scheme == "zeros":
        nn.init.zeros_(weight)
    elif scheme == "normal":
        nn.init.normal_(weight, mean=0.0, std=normal_std)
    elif scheme == "xavier":
        nn.init.xavier_uniform_(weight)
    elif scheme == "he":
        nn.init.kaiming_normal_(weight, nonlinearity="relu")
