"""Dropout whose rate is a buffer, so every member of a fused cohort drops at its own rate.

`nn.Dropout` holds its rate as a Python float: one value for the whole stacked model. Here the
rate is a tensor that `functional_call` fills in per member, and under `vmap(randomness=
"different")` each member draws its own mask. A member's masks are not the ones its trial alone
would draw (they come from the host's generator, not the trial's), so with dropout a fused
member equals its trial alone in distribution, not bit for bit.
"""

from __future__ import annotations

import torch
from torch import nn

RATE = "rate"  # the buffer's name, under each replaced module


class MemberDropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        # Not persistent: a member's saved weights stay those of its model alone.
        self.register_buffer(RATE, torch.zeros(()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        rate = getattr(self, RATE)
        keep = (torch.rand_like(x) >= rate).to(x.dtype)
        return x * keep / (1 - rate)


def replace_dropout(model: nn.Module) -> list[str]:
    """Swap every `nn.Dropout` in `model` for a MemberDropout; return the rate buffers' names."""
    names = []
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Dropout):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, MemberDropout())
            names.append(f"{name}.{RATE}")
    return names


def dropout_rates(model: nn.Module) -> dict[str, float]:
    """A member's own rates, by the names `replace_dropout` gives their buffers."""
    return {f"{name}.{RATE}": float(module.p) for name, module in model.named_modules() if isinstance(module, nn.Dropout)}
