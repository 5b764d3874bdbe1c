"""Dropout whose rate is a buffer, so every member of a fused cohort drops at its own rate.

`nn.Dropout` holds its rate as a Python float: one value for the whole stacked model. Here the
rate is a tensor that `functional_call` fills in per member, and under `vmap(randomness=
"different")` each member draws its own mask. A member's masks are not the ones its trial alone
would draw (they come from the host's generator, not the trial's), so with dropout a fused
member equals its trial alone in distribution, not bit for bit.

torch's recurrent layers (nn.RNN, nn.LSTM, nn.GRU) drop between their stacked layers at a float
rate of their own: `replace_dropout` gives such a layer a rate buffer of the same name, which
its stacked kind (`stacked_recurrent`) reads.
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
        return dropped(x, getattr(self, RATE)) if self.training else x


def dropped(x: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """`x` with each element dropped at `rate` (broadcast against x), the survivors scaled by
    1 / (1 - rate), as nn.Dropout does. A rate of 0 keeps `x` exactly."""
    keep = (torch.rand_like(x) >= rate).to(x.dtype)
    return x * keep / (1 - rate)


def replace_dropout(model: nn.Module) -> list[str]:
    """Swap every `nn.Dropout` in `model` for a MemberDropout, and give every recurrent layer that
    drops between its layers a rate buffer; return the rate buffers' names."""
    names = []
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Dropout):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, MemberDropout())
            names.append(_rate_name(name))
        elif _drops_between_layers(module):
            module.register_buffer(RATE, torch.zeros(()), persistent=False)
            names.append(_rate_name(name))
    return names


def dropout_rates(model: nn.Module) -> dict[str, float]:
    """A member's own rates, by the names `replace_dropout` gives their buffers."""
    rates = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Dropout):
            rates[_rate_name(name)] = float(module.p)
        elif _drops_between_layers(module):
            rates[_rate_name(name)] = float(module.dropout)
    return rates


def _rate_name(module: str) -> str:
    return f"{module}.{RATE}" if module else RATE  # a model that is itself a recurrent layer


def _drops_between_layers(module: nn.Module) -> bool:
    # torch drops only between stacked layers: at one layer its rate is moot (and our RNN model sets it 0).
    return isinstance(module, nn.RNNBase) and module.dropout > 0 and module.num_layers > 1
