"""torch's recurrent layers (nn.RNN, nn.LSTM, nn.GRU) as stacked layers: every member at once.

torch's recurrent ops have no batching rule for vmap, so the recurrences are written out here,
with torch's gate formulas and order (nn.LSTM: gates i, f, g, o; nn.GRU: r, z, n with
n = tanh(W_in x + b_in + r ∘ (W_hn h + b_hn))). Each time step is one `baddbmm` for every
member: the step's input beside the hidden state, times both weights side by side (a GRU: two,
its reset gate scales the hidden state's product alone). Projecting the whole sequence's
inputs first, as torch's CPU kernels do, was slower here (16 members of a 64-unit LSTM over 40
steps: forward and backward 1.4 times as long): that (members, steps, batch, gates) tensor
leaves the cache, and its gradient is gathered from every step's. Parameters keep torch's names (weight_ih_l0, ..., bias_hh_l1_reverse): a
member's state is its model's own.

Input (members, batch, steps, features) as the layer's batch_first input; it returns what the
layer returns, each with the members first: the output (members, batch, steps, directions ×
hidden) and h_n (members, layers × directions, batch, hidden), with c_n for an LSTM.
Between layers, in training, each member drops at its own rate (`member_dropout`'s buffer).
"""

from __future__ import annotations

from typing import Callable, ClassVar

import torch
from torch import nn

from tunelab.fusion.member_dropout import RATE, dropped
from tunelab.fusion.stacked import StackedLayer

State = tuple[torch.Tensor, ...]  # the hidden state h first; an LSTM's cell state c second
Weights = tuple[torch.Tensor, ...]


class Cell:
    """One time step of torch's cell of one mode, for every member: (members, batch, ...) tensors."""

    states: ClassVar[int] = 1

    def weights(self, weight_ih: torch.Tensor, weight_hh: torch.Tensor, bias_ih: torch.Tensor,
                bias_hh: torch.Tensor) -> Weights:
        """The layer's parameters as its steps use them, once per forward pass: the input beside
        the hidden state in one product (x·W_ihᵀ + h·W_hhᵀ + both biases), where the cell only
        ever sums the two."""
        return torch.cat([weight_ih, weight_hh], dim=2).transpose(1, 2), (bias_ih + bias_hh).unsqueeze(1)

    def step(self, x: torch.Tensor, state: State, weights: Weights) -> State:
        raise NotImplementedError

    @staticmethod
    def gates(x: torch.Tensor, h: torch.Tensor, weights: Weights) -> torch.Tensor:
        """Every gate's pre-activation, in the weights' order of gates."""
        weight, bias = weights
        return torch.baddbmm(bias, torch.cat([x, h], dim=-1), weight)


class ElmanCell(Cell):
    activation: ClassVar[Callable[[torch.Tensor], torch.Tensor]] = staticmethod(torch.tanh)

    def step(self, x: torch.Tensor, state: State, weights: Weights) -> State:
        return (self.activation(self.gates(x, state[0], weights)),)


class ReluElmanCell(ElmanCell):
    activation = staticmethod(torch.relu)


class LSTMCell(Cell):
    states = 2

    def step(self, x: torch.Tensor, state: State, weights: Weights) -> State:
        h, c = state
        i, f, g, o = self.gates(x, h, weights).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class GRUCell(Cell):
    def weights(self, weight_ih: torch.Tensor, weight_hh: torch.Tensor, bias_ih: torch.Tensor,
                bias_hh: torch.Tensor) -> Weights:
        # Two products: the reset gate scales the hidden state's (b_hn included), not the input's.
        return weight_ih.transpose(1, 2), bias_ih.unsqueeze(1), weight_hh.transpose(1, 2), bias_hh.unsqueeze(1)

    def step(self, x: torch.Tensor, state: State, weights: Weights) -> State:
        (h,) = state
        weight_ih_t, bias_ih, weight_hh_t, bias_hh = weights
        projected, hidden = torch.baddbmm(bias_ih, x, weight_ih_t), torch.baddbmm(bias_hh, h, weight_hh_t)
        both = 2 * h.shape[-1]
        r, z = torch.sigmoid(projected[..., :both] + hidden[..., :both]).chunk(2, dim=-1)
        n = torch.tanh(projected[..., both:] + r * hidden[..., both:])
        return ((h - n) * z + n,)  # (1 - z) ∘ n + z ∘ h, written as torch's CPU cell writes it


CELLS: dict[str, type[Cell]] = {"RNN_TANH": ElmanCell, "RNN_RELU": ReluElmanCell, "LSTM": LSTMCell, "GRU": GRUCell}


class StackedRecurrent(StackedLayer):
    def __init__(self, layer: nn.Module) -> None:
        super().__init__(layer)
        self.cell = CELLS[layer.mode]()
        self.num_layers, self.hidden = layer.num_layers, layer.hidden_size
        self.suffixes = ("", "_reverse") if layer.bidirectional else ("",)
        # torch's names, per layer and direction; the rate is there only where it drops (`replace_dropout`).
        self.tensor_names = (*(name for name, _ in layer.named_parameters()), RATE)

    @classmethod
    def accepts(cls, layer: nn.Module) -> bool:
        # Not written out: time-major inputs, layers without biases, an LSTM's projections.
        return layer.mode in CELLS and layer.batch_first and layer.bias and not getattr(layer, "proj_size", 0)

    def transposed_names(self) -> tuple[str, ...]:
        return tuple(name for name in self.tensor_names if name.startswith("weight_"))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, State | torch.Tensor]:
        rate = self.tensors[RATE]
        layer_input = x.transpose(1, 2)  # time-major: each step's (members, batch, features) one block
        finals: list[State] = []
        for layer in range(self.num_layers):
            if layer > 0 and self.training and rate is not None:
                layer_input = dropped(layer_input, rate.view(-1, 1, 1, 1))
            outputs = []
            for direction, suffix in enumerate(self.suffixes):
                output, final = self._direction(layer_input, f"_l{layer}{suffix}", reverse=direction == 1)
                outputs.append(output)
                finals.append(final)
            layer_input = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)
        state = tuple(torch.stack(parts, dim=1) for parts in zip(*finals))  # each (members, layers × directions, ...)
        return layer_input.transpose(1, 2), state if len(state) > 1 else state[0]

    def _direction(self, x: torch.Tensor, suffix: str, reverse: bool) -> tuple[torch.Tensor, State]:
        """One layer in one direction over time-major `x` (members, steps, batch, features): its
        outputs (members, steps, batch, hidden) and its final state."""
        weights = self.cell.weights(*(self.tensors[f"{name}{suffix}"]
                                      for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
        members, steps, batch, _ = x.shape
        each_step = x.unbind(1)
        state: State = tuple(x.new_zeros(members, batch, self.hidden) for _ in range(self.cell.states))
        outputs = []
        for step in (reversed(range(steps)) if reverse else range(steps)):
            state = self.cell.step(each_step[step], state, weights)
            outputs.append(state[0])
        if reverse:
            outputs.reverse()  # the output at each step, in the input's order
        return torch.stack(outputs, dim=1), state


RECURRENT_LAYERS: dict[type[nn.Module], type[StackedLayer]] = {nn.RNN: StackedRecurrent, nn.LSTM: StackedRecurrent,
                                                               nn.GRU: StackedRecurrent}
