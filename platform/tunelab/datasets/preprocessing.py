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

from tunelab.errors import BadInputError
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
    num_outputs: int = 1  # classes, or regression target dimensions
    class_names: tuple[str, ...] | None = None
    # The table encoding as `TableEncoding.to_dict()` wrote it (columns, categories, means).
    table: dict[str, Any] | None = None
    inputs: Standardizer | None = None
    targets: Standardizer | None = None  # regression targets scaled with training statistics
    # How raw inputs become the generator's arrays before scaling: `pixel_scale` (images are
    # divided by it), an image folder's `size` and `color`.
    details: dict[str, Any] = field(default_factory=dict)

    def model_inputs(self, raw: Any) -> np.ndarray:
        """Raw inputs (a DataFrame or table of the study's feature columns; an array of the
        study's input shape) → the float32 array the study's models take."""
        if self.table is not None:
            from tunelab.datasets.table import encode_table, to_arrow

            x = encode_table(to_arrow(raw), self.table)
        else:
            x = np.array(raw, dtype=np.float32)
            if x.ndim == len(self.input_shape):  # one example
                x = x[np.newaxis]
            if tuple(x.shape[1:]) != self.input_shape:
                if x.ndim >= 2 and int(np.prod(x.shape[1:])) == int(np.prod(self.input_shape)):
                    x = x.reshape(len(x), *self.input_shape)
                else:
                    raise BadInputError(
                        f"inputs of shape {tuple(x.shape[1:])} per example; expected {self.input_shape} "
                        f"(the {self.dataset} study's inputs)"
                    )
            if self.details.get("pixel_scale"):
                x /= float(self.details["pixel_scale"])
        if self.inputs is not None:
            self.inputs.apply_in_place(x)
        return x

    def answers(self, outputs: np.ndarray) -> np.ndarray:
        """Model outputs → predictions in the data's own terms: class names (or indices) for
        classification, values in the target's units for regression."""
        if self.task == "classification":
            labels = outputs.argmax(axis=1)
            return np.asarray(self.class_names, dtype=object)[labels] if self.class_names else labels
        values = outputs if self.targets is None else self.targets.invert(outputs)
        return values[:, 0] if values.ndim == 2 and values.shape[1] == 1 else values

    def class_labels(self) -> list[str]:
        return list(self.class_names) if self.class_names else [str(i) for i in range(self.num_outputs)]

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": PREPROCESSING_FORMAT,
                "dataset": self.dataset,
                "task": self.task,
                "input_shape": list(self.input_shape),
                "num_outputs": self.num_outputs,
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
            num_outputs=int(stored.get("num_outputs", 1)),
            class_names=None if stored["class_names"] is None else tuple(stored["class_names"]),
            table=stored["table"],
            inputs=None if stored["inputs"] is None else Standardizer.from_dict(stored["inputs"]),
            targets=None if stored["targets"] is None else Standardizer.from_dict(stored["targets"]),
            details=stored.get("details", {}),
        )
