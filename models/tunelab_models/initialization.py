"""Weight initialisation schemes, applied to every Linear/Conv layer of a model."""

from __future__ import annotations

from torch import nn

INIT_SCHEMES: tuple[str, ...] = ("default", "zeros", "normal", "xavier", "he")

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)


def initialize_weights(model: nn.Module, scheme: str, normal_std: float = 0.01) -> None:
    """Re-initialise weights in place. Biases start at zero for every scheme but `default`.

    `zeros` is included on purpose: it shows the symmetry problem (all units learn the same
    thing), one of the classic questions users tune to see.
    """
    if scheme == "default":
        return
    for module in model.modules():
        if not isinstance(module, _WEIGHTED):
            continue
        weight = module.weight
        if scheme == "zeros":
            nn.init.zeros_(weight)
        elif scheme == "normal":
            nn.init.normal_(weight, mean=0.0, std=normal_std)
        elif scheme == "xavier":
            nn.init.xavier_uniform_(weight)
        elif scheme == "he":
            nn.init.kaiming_normal_(weight, nonlinearity="relu")
        else:
            raise ValueError(f"unknown init scheme {scheme!r}; expected one of {', '.join(INIT_SCHEMES)}")
        if module.bias is not None:
            nn.init.zeros_(module.bias)
