"""What a data set is, and how its rows become standardised train / validation / test splits.

A data set only generates arrays (`GeneratedData`); splitting and scaling live here, once,
so every data set gets the same guarantees: a seeded, disjoint, stratified split, and
input scaling fitted on the training rows alone.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tunelab.errors import BadInputError
from tunelab_models.params import Param
from tunelab_models.signature import DataSignature, Task

# Below this a feature is treated as constant (digits has pixels that are always 0);
# dividing by its tiny standard deviation would blow rounding noise up to unit scale.
MIN_FEATURE_STD = 1e-8
# Validation plus test may take at most this share, so some rows are left to train on.
MAX_HELD_OUT_FRACTION = 0.9


@dataclass(frozen=True)
class Splits:
    """Train / validation / test arrays of one data set, ready for a model.

    x is float32 with shape (n, *input_shape); y is int64 (n,) for classification and
    float32 (n, num_outputs) for regression.
    """

    name: str
    task: Task
    num_outputs: int
    input_shape: tuple[int, ...]
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    # Known irreducible noise (synthetic regression), for the bias-variance decomposition.
    noise_variance: float | None = None
    # Noise-free test targets, in the same units as test_y, where the generator knows them.
    test_y_clean: np.ndarray | None = None
    class_names: tuple[str, ...] | None = None

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train_y), "validation": len(self.val_y), "test": len(self.test_y)}

    @property
    def signature(self) -> DataSignature:
        """What a model needs to build itself for this data."""
        return DataSignature(input_shape=self.input_shape, task=self.task, num_outputs=self.num_outputs)


@dataclass(frozen=True)
class GeneratedData:
    """All rows of a data set before splitting, as its generator produced them."""

    x: np.ndarray  # (n, *input_shape)
    y: np.ndarray  # (n,) class labels, or (n, num_outputs) regression targets
    num_outputs: int
    y_clean: np.ndarray | None = None  # noise-free targets, same shape as y
    noise_variance: float | None = None
    class_names: tuple[str, ...] | None = None


class DataSet:
    """Base class: a data set declares its parameters and generates its rows.

    The class attributes are readable without generating anything, so an experiment
    file's `dataset.params` can be checked before any trial runs.
    """

    name: ClassVar[str]
    task: ClassVar[Task]
    params: ClassVar[tuple[Param, ...]] = ()
    # A data set whose inputs are already on a sensible scale can opt out of standardising.
    standardize_inputs: ClassVar[bool] = True

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        """Reject combinations of individually valid parameters; raise BadInputError."""

    @classmethod
    def input_shape(cls, params: dict[str, Any]) -> tuple[int, ...]:
        """Per-sample input shape for resolved parameters, known without generating data
        (so a model that cannot take it is refused when the file is validated)."""
        raise NotImplementedError

    @classmethod
    def generate(cls, params: dict[str, Any]) -> GeneratedData:
        """All rows for resolved (defaulted and checked) parameters."""
        raise NotImplementedError


def check_fractions(validation_fraction: Any, test_fraction: Any) -> tuple[float, float]:
    for field, value in (("validation_fraction", validation_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
            raise BadInputError(f"{field}: expected a number in (0, 1), got {value!r}")
    if validation_fraction + test_fraction >= MAX_HELD_OUT_FRACTION:
        raise BadInputError(
            f"validation_fraction + test_fraction: expected less than {MAX_HELD_OUT_FRACTION:g} "
            f"so rows are left to train on, got {validation_fraction:g} + {test_fraction:g}"
        )
    return float(validation_fraction), float(test_fraction)


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
        raise BadInputError(f"seed: expected an integer in [0, 2**32), got {seed!r}")
    return int(seed)


def split_indices(
    name: str, task: Task, y: np.ndarray, validation_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of train, validation and test: seeded, disjoint, stratified for classes.

    The split depends only on the number of rows, the labels and the seed, never on x.
    """
    rows = len(y)
    test_rows = max(1, round(test_fraction * rows))
    validation_rows = max(1, round(validation_fraction * rows))
    if test_rows + validation_rows >= rows:
        raise BadInputError(
            f"data set {name!r} has only {rows} rows, too few for a train/validation/test split; "
            "use more samples"
        )
    # Imported here: trial processes receive split arrays and never need scikit-learn.
    from sklearn.model_selection import train_test_split

    # One generator drives both cuts, so the whole split follows from the seed.
    random_state = np.random.RandomState(seed)
    stratify = y if task == "classification" else None
    all_rows = np.arange(rows)
    try:
        rest, test = train_test_split(
            all_rows, test_size=test_rows, random_state=random_state, stratify=stratify
        )
        rest_stratify = y[rest] if stratify is not None else None
        train, validation = train_test_split(
            rest, test_size=validation_rows, random_state=random_state, stratify=rest_stratify
        )
    except ValueError as exc:
        # sklearn refuses a stratified split when a part is smaller than the class count.
        raise BadInputError(
            f"data set {name!r} ({rows} rows) cannot be split with every class in each part "
            f"({exc}); use more samples or larger fractions"
        ) from None
    return np.sort(train), np.sort(validation), np.sort(test)


def fit_standardizer(train_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and scale from training rows; constant features get scale 1."""
    mean = train_x.mean(axis=0, dtype=np.float64)
    std = train_x.std(axis=0, dtype=np.float64)
    scale = np.where(std < MIN_FEATURE_STD, 1.0, std)
    return mean, scale


def make_splits(
    name: str,
    task: Task,
    data: GeneratedData,
    validation_fraction: float,
    test_fraction: float,
    seed: int,
    standardize_inputs: bool = True,
    max_train_samples: int | None = None,
) -> Splits:
    """Split `data` and, unless told not to, standardise x with training statistics only.

    `max_train_samples` keeps a seeded random subset of the training rows (validation and
    test stay as they are), for studies of small training sets.
    """
    train, validation, test = split_indices(name, task, data.y, validation_fraction, test_fraction, seed)
    if max_train_samples is not None and max_train_samples < len(train):
        keep = np.random.RandomState(seed).choice(len(train), size=max_train_samples, replace=False)
        train = np.sort(train[keep])
    x = np.asarray(data.x)
    if standardize_inputs:
        mean, scale = fit_standardizer(x[train])
        x = (x - mean) / scale
    x = x.astype(np.float32, copy=False)
    y = _targets(task, data.y)
    y_clean = None if data.y_clean is None else _targets(task, data.y_clean)
    noise_variance = None if data.noise_variance is None else float(data.noise_variance)
    if noise_variance is not None and not math.isfinite(noise_variance):
        raise ValueError(f"data set {name!r} reported a non-finite noise variance")
    return Splits(
        name=name,
        task=task,
        num_outputs=data.num_outputs,
        input_shape=tuple(int(d) for d in x.shape[1:]),
        train_x=x[train],
        train_y=y[train],
        val_x=x[validation],
        val_y=y[validation],
        test_x=x[test],
        test_y=y[test],
        noise_variance=noise_variance,
        test_y_clean=None if y_clean is None else y_clean[test],
        class_names=data.class_names,
    )


def _targets(task: Task, y: np.ndarray) -> np.ndarray:
    if task == "classification":
        return np.asarray(y).astype(np.int64, copy=False).reshape(-1)
    y = np.asarray(y, dtype=np.float32)
    return y.reshape(len(y), -1)
