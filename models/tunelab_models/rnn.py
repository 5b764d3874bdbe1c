"""Recurrent network (Elman RNN, LSTM or GRU) over sequences; predicts from the last hidden state."""

from __future__ import annotations

import torch
from torch import nn

from tunelab_models.layers import describe_input
from tunelab_models.initialization import INIT_PARAMS, initialize_weights
from tunelab_models.params import Param
from tunelab_models.registry import TunableModel, register_model
from tunelab_models.signature import DataSignature

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@register_model
class RNN(TunableModel):
    """A (channels, steps) sample is read as `steps` time steps of `channels` features.

    The head sees the top layer's final hidden state h_n: the forward direction after the last
    step and, when bidirectional, the backward direction after reading back to the first step,
    concatenated.
    """

    name = "rnn"
    hyperparameters = (
        Param("cell", str, "lstm", "recurrent cell: rnn (Elman, tanh), lstm or gru", choices=tuple(CELLS)),
        Param("hidden_size", int, 64, "hidden units per layer and direction", low=1, high=4096),
        Param("num_layers", int, 1, "stacked recurrent layers", low=1, high=8),
        Param("dropout", float, 0.0, "drop probability between stacked layers (none when num_layers is 1)",
              low=0.0, high=1.0, high_exclusive=True),
        Param("bidirectional", bool, False, "also read each sequence backwards; the head sees both directions"),
        *INIT_PARAMS,
    )

    @classmethod
    def unsupported_reason(cls, input_shape: tuple[int, ...]) -> str | None:
        if len(input_shape) == 2:
            return None
        return f"rnn needs sequence (channels, steps) inputs; got {describe_input(input_shape)}"

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
        _, state = self.recurrent(x.transpose(1, 2))  # (N, channels, steps) -> (N, steps, channels)
        h_n = state[0] if isinstance(state, tuple) else state  # an LSTM also returns its cell state
        # h_n: (num_layers * directions, N, hidden); the top layer's directions come last.
        last = torch.cat([h_n[-2], h_n[-1]], dim=1) if self.bidirectional else h_n[-1]
        return self.head(last)
