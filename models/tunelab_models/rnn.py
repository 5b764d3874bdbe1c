"""Recurrent network (Elman RNN, LSTM or GRU) over sequences; predicts from the last hidden state."""

from __future__ import annotations

import torch
from torch import nn

from tunelab_models import builtin
from tunelab_models.initialization import initialize_weights
from tunelab_models.network import TunableModel
from tunelab_models.signature import DataSignature

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}  # builtin.RECURRENT_CELLS


class RNN(TunableModel):
    """A (channels, steps) sample is read as `steps` time steps of `channels` features.

    The head sees the top layer's final hidden state h_n: the forward direction after the last
    step and, when bidirectional, the backward direction after reading back to the first step,
    concatenated.
    """

    declaration = builtin.RNN

    def __init__(
        self,
        signature: DataSignature,
        cell: str,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        bidirectional: bool,
        init: str,
        init_std: float,
    ) -> None:
        super().__init__()
        channels = signature.input_shape[0]
        # torch applies dropout only between layers and warns when there is none to apply.
        between_layers = dropout if num_layers > 1 else 0.0
        self.recurrent = CELLS[cell](
            channels, hidden_size, num_layers=num_layers, dropout=between_layers,
            bidirectional=bidirectional, batch_first=True,
        )
        self.bidirectional = bidirectional
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), signature.num_outputs)
        initialize_weights(self, init, init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Dimensions counted from the right: a fused cohort runs this forward on inputs and states
        # with the members first (`tunelab.fusion.stacked_recurrent`).
        _, state = self.recurrent(x.transpose(-1, -2))  # (N, channels, steps) -> (N, steps, channels)
        h_n = state[0] if isinstance(state, tuple) else state  # an LSTM also returns its cell state
        # h_n: (num_layers * directions, N, hidden); the top layer's directions come last.
        top = h_n[..., -1, :, :]
        last = torch.cat([h_n[..., -2, :, :], top], dim=-1) if self.bidirectional else top
        return self.head(last)
