"""What a study fitted on its training rows, kept so the same steps apply to new data.

Everything here is plain data that survives a round trip through JSON (never a pickle):
the table encoding (which columns, one-hot categories, imputed means), the input and target
scaling, the class names, the input shape and the task.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tunelab_models.signature import Task

# Below this a feature is treated as constant (digits has pixels that are always 0);
# dividing by its tiny standard deviation would blow rounding noise up to unit scale.
MIN_FEATURE_STD = 1e-8
# Rows per step when statistics are gathered over an index: bounded extra memory at any size.
STATISTICS_CHUNK_ROWS = 65_536
PREPROCESSING_FORMAT = 1


@dataclass(frozen=True)
class Standardizer:
    """Per-feature (per element, for sequences and images) mean and scale, float32."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, rows: np.ndarray) -> Standardizer:
        """Mean and scale of `x[rows]`, gathered in chunks so no copy of those rows is made."""
        count, mean, m2 = 0, np.zeros(x.shape[1:]), np.zeros(x.shape[1:])
        for start in range(0, len(rows), STATISTICS_CHUNK_ROWS):
            chunk = x[rows[start : start + STATISTICS_CHUNK_ROWS]].astype(np.float64, copy=False)
            chunk_count = len(chunk)
            chunk_mean = chunk.mean(axis=0)
            chunk_m2 = ((chunk - chunk_mean) ** 2).sum(axis=0)
            # Chan et al.'s pairwise update: stable where sum-of-squares would cancel.
            total = count + chunk_count
            delta = chunk_mean - mean
            mean = mean + delta * (chunk_count / total)
            m2 = m2 + chunk_m2 + delta**2 * (count * chunk_count / total)
            count = total
        std = np.sqrt(m2 / max(count, 1))
        scale = np.where(std < MIN_FEATURE_STD, 1.0, std)
        return cls(mean.astype(np.float32), scale.astype(np.float32))

    def apply_in_place(self, x: np.ndarray) -> np.ndarray:
        """Scale a float32 array the caller owns, without a temporary of its size."""
        x -= self.mean
        x /= self.scale
        return x

    def invert(self, x: np.ndarray) -> np.ndarray:
        return x * self.scale + self.mean

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.mean.shape), "mean": self.mean.ravel().tolist(), "scale": self.scale.ravel().tolist()}

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> Standardizer:
        shape = tuple(stored["shape"])
        return cls(
            np.asarray(stored["mean"], dtype=np.float32).reshape(shape),
            np.asarray(stored["scale"], dtype=np.float32).reshape(shape),
        )


@dataclass(frozen=True)
class Preprocessing:
    """Raw inputs → what the model saw, and model outputs → answers in the data's terms."""

    dataset: str
    task: Task
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...] | None = None
    # The table encoding as `TableEncoding.to_dict()` wrote it (columns, categories, means).
    table: dict[str, Any] | None = None
    inputs: Standardizer | None = None
    targets: Standardizer | None = None  # regression targets scaled with training statistics
    details: dict[str, Any] = field(default_factory=dict)  # e.g. an image folder's size and colour

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": PREPROCESSING_FORMAT,
                "dataset": self.dataset,
                "task": self.task,
                "input_shape": list(self.input_shape),
                "class_names": None if self.class_names is None else list(self.class_names),
                "table": self.table,
                "inputs": None if self.inputs is None else self.inputs.to_dict(),
                "targets": None if self.targets is None else self.targets.to_dict(),
                "details": self.details,
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> Preprocessing:
        stored = json.loads(text)
        return cls(
            dataset=stored["dataset"],
            task=stored["task"],
            input_shape=tuple(stored["input_shape"]),
            class_names=None if stored["class_names"] is None else tuple(stored["class_names"]),
            table=stored["table"],
            inputs=None if stored["inputs"] is None else Standardizer.from_dict(stored["inputs"]),
            targets=None if stored["targets"] is None else Standardizer.from_dict(stored["targets"]),
            details=stored.get("details", {}),
        )
