"""What a model needs to know about its data to build itself."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Literal

Task = Literal["classification", "regression"]


@dataclass(frozen=True)
class DataSignature:
    """Per-sample input shape (channel-first) and what the model must predict.

    `num_outputs` is the number of classes for classification and the number of target
    dimensions for regression, so one experiment file works across data sets.
    """

    input_shape: tuple[int, ...]
    task: Task
    num_outputs: int

    @property
    def num_features(self) -> int:
        return prod(self.input_shape)
