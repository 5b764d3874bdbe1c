"""What a model needs to know about its data to build itself."""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Literal

# reconstruction: the model learns to reproduce its input (autoencoders); targets are the inputs.
Task = Literal["classification", "regression", "reconstruction"]


@dataclass(frozen=True)
class DataSignature:
    """Per-sample input shape (channel-first) and what the model must predict.

    `num_outputs` is the number of classes for classification, the number of target
    dimensions for regression, and the number of input features for reconstruction, so one
    experiment file works across data sets.
    """

    input_shape: tuple[int, ...]
    task: Task
    num_outputs: int

    @property
    def num_features(self) -> int:
        return prod(self.input_shape)

    @property
    def rank(self) -> int:
        """1: feature vectors; 2: sequences (channels, steps); 3: images (channels, height, width)."""
        return len(self.input_shape)
