"""What a data set is, and how its rows become standardised train / validation / test splits.

A data set only produces rows (`GeneratedData`); splitting, encoding and scaling live here,
once, so every data set gets the same guarantees: a seeded, disjoint, stratified split (or
the one the data fixes), and encodings and scaling fitted on the training rows alone.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from tunelab.datasets.preprocessing import Preprocessing, Standardizer
from tunelab.errors import BadInputError
from tunelab_models.params import Param
from tunelab_models.signature import DataSignature, Task

# Validation plus test may take at most this share, so some rows are left to train on.
MAX_HELD_OUT_FRACTION = 0.9

# Where a row goes when the data fixes its split (`GeneratedData.fold`). Rows in TRAIN are
# the pool that a part the data does not fix is drawn from.
TRAIN, VALIDATION, TEST = 0, 1, 2
FOLD_NAMES = ("train", "validation", "test")


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
    # What was fitted on the training rows, to apply the same steps to new inputs.
    preprocessing: Preprocessing | None = None
    # What the data set found in its source (an inferred task, one-hot columns), for `validate`.
    notes: tuple[str, ...] = ()

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train_y), "validation": len(self.val_y), "test": len(self.test_y)}

    @property
    def signature(self) -> DataSignature:
        """What a model needs to build itself for this data."""
        return DataSignature(input_shape=self.input_shape, task=self.task, num_outputs=self.num_outputs)


class FeatureEncoder(Protocol):
    """Turns raw rows that are not numbers yet (a table's columns) into float32 features,
    with whatever it learns (categories, means) taken from the training rows only."""

    def fit_transform(self, rows: Any, train: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """The rows at `order` as a float32 (len(order), features) array, fitted on the rows at
        `train`, and the fitted encoding as plain data. It may release `rows` as it goes."""
        ...


@dataclass(frozen=True)
class GeneratedData:
    """All rows of a data set before splitting, as its generator produced them."""

    x: Any  # (n, *input_shape) array, or raw rows that `encoder` turns into one
    y: np.ndarray  # (n,) class labels, or (n, num_outputs) regression targets
    num_outputs: int
    y_clean: np.ndarray | None = None  # noise-free targets, same shape as y
    noise_variance: float | None = None
    class_names: tuple[str, ...] | None = None
    # Per row TRAIN / VALIDATION / TEST where the data fixes the split; None: all drawn.
    fold: np.ndarray | None = None
    # The task when the data decides it (a table's target column); None: the class's `task`.
    task: Task | None = None
    encoder: FeatureEncoder | None = None
    # Regression targets in arbitrary units (a price) train badly; scale them like inputs.
    standardize_targets: bool = False
    notes: tuple[str, ...] = ()
    # How raw inputs became `x`, kept for new inputs (see Preprocessing.details).
    input_details: dict[str, Any] = field(default_factory=dict)


class DataSet:
    """Base class: a data set declares its parameters and generates its rows.

    The class attributes are readable without generating anything, so an experiment
    file's `dataset.params` can be checked before any trial runs. A data set whose shape or
    task only its rows can tell (a user's table) leaves `input_shape` returning None and
    `task` None: validating the experiment file then reads the data.
    """

    name: ClassVar[str]
    task: ClassVar[Task | None] = None
    params: ClassVar[tuple[Param, ...]] = ()
    # A data set whose inputs are already on a sensible scale can opt out of standardising.
    standardize_inputs: ClassVar[bool] = True
    # Parameters that name files or folders: resolved against the experiment file's folder,
    # and shipped with a cluster job when they are small.
    path_params: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        """Reject combinations of individually valid parameters; raise BadInputError."""

    @classmethod
    def input_shape(cls, params: dict[str, Any]) -> tuple[int, ...] | None:
        """Per-sample input shape for resolved parameters, known without generating data
        (so a model that cannot take it is refused when the file is validated); None when
        only the data can tell."""
        return None

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
            f"so rows are left to train on, got {validation_fraction:g} + {test_fraction:g} "
            f"(lower either to bring the sum below {MAX_HELD_OUT_FRACTION:g})"
        )
    return float(validation_fraction), float(test_fraction)


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**32:
        raise BadInputError(f"seed: expected an integer in [0, 2**32), got {seed!r}")
    return int(seed)


def split_indices(
    name: str,
    task: Task,
    y: np.ndarray,
    validation_fraction: float,
    test_fraction: float,
    seed: int,
    fold: np.ndarray | None = None,
    class_names: tuple[str, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of train, validation and test: seeded, disjoint, stratified for classes.

    Rows `fold` puts in VALIDATION or TEST stay there; a part the data does not fix is drawn
    from the TRAIN rows, its fraction of them. Without `fold` that is a fraction of all rows.
    The split depends only on the labels, the folds and the seed, never on x.
    """
    fold = np.zeros(len(y), dtype=np.int8) if fold is None else fold
    pool = np.flatnonzero(fold == TRAIN)
    fixed_validation, fixed_test = np.flatnonzero(fold == VALIDATION), np.flatnonzero(fold == TEST)
    draw_test, draw_validation = len(fixed_test) == 0, len(fixed_validation) == 0
    test_rows = max(1, round(test_fraction * len(pool))) if draw_test else 0
    validation_rows = max(1, round(validation_fraction * len(pool))) if draw_validation else 0
    if test_rows + validation_rows >= len(pool):
        raise BadInputError(
            f"data set {name!r} has only {len(pool)} training rows, too few for a train/validation/test split; "
            "use more samples"
        )
    stratify = y if task == "classification" else None
    if stratify is not None:
        _check_class_counts(name, y, pool, 1 + draw_test + draw_validation, class_names)
    # Imported here: trial processes receive split arrays and never need scikit-learn.
    from sklearn.model_selection import train_test_split

    # One generator drives both cuts, so the whole split follows from the seed.
    random_state = np.random.RandomState(seed)
    try:
        train, test = pool, fixed_test
        if draw_test:
            train, test = train_test_split(
                pool, test_size=test_rows, random_state=random_state, stratify=None if stratify is None else y[pool]
            )
        validation = fixed_validation
        if draw_validation:
            train, validation = train_test_split(
                train, test_size=validation_rows, random_state=random_state,
                stratify=None if stratify is None else y[train],
            )
    except ValueError as exc:
        # sklearn refuses a stratified split when a part is smaller than the class count.
        raise BadInputError(
            f"data set {name!r} ({len(pool)} rows to split) cannot be split with every class in each part "
            f"({exc}); use more samples or larger fractions"
        ) from None
    return np.sort(train), np.sort(validation), np.sort(test)


def _check_class_counts(
    name: str, y: np.ndarray, pool: np.ndarray, parts: int, class_names: tuple[str, ...] | None
) -> None:
    counts = np.bincount(y[pool].astype(np.int64), minlength=int(y.max()) + 1 if len(y) else 0)
    for label, count in enumerate(counts):
        if count < parts:
            shown = class_names[label] if class_names is not None and label < len(class_names) else label
            rows = f"{count} training row{'s' if count != 1 else ''}"
            if parts == 1:
                raise BadInputError(f"data set {name!r}: class {str(shown)!r} has no training rows; expected at least 1")
            raise BadInputError(
                f"data set {name!r} cannot be split with every class in each part: class {str(shown)!r} has {rows}; "
                f"expected at least {parts}"
            )


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
    """Split `data`, encode it if it is raw rows, and (unless told not to) standardise x,
    each fitted on the training rows only.

    `max_train_samples` keeps a seeded random subset of the training rows (validation and
    test stay as they are), for studies of small training sets.
    """
    task = data.task or task
    y = _targets(task, data.y)
    train, validation, test = split_indices(
        name, task, y, validation_fraction, test_fraction, seed, data.fold, data.class_names
    )
    if max_train_samples is not None and max_train_samples < len(train):
        keep = np.random.RandomState(seed).choice(len(train), size=max_train_samples, replace=False)
        train = np.sort(train[keep])
    # Rows in split order, so each split is a view of one array: no copy per split.
    order = np.concatenate([train, validation, test])
    ends = np.cumsum([len(train), len(validation), len(test)])
    in_train = np.arange(len(train))
    table = None
    if data.encoder is not None:
        x, table = data.encoder.fit_transform(data.x, train, order)
    else:
        x = np.asarray(data.x)[order].astype(np.float32, copy=False)  # the fancy index made a copy to scale
    inputs = Standardizer.fit(x, in_train) if standardize_inputs else None
    if inputs is not None:
        inputs.apply_in_place(x)
    y = y[order]
    targets = None
    if task == "regression" and data.standardize_targets:
        targets = Standardizer.fit(y, in_train)
        targets.apply_in_place(y)
    y_clean = None if data.y_clean is None else _targets(task, data.y_clean)
    noise_variance = None if data.noise_variance is None else float(data.noise_variance)
    if noise_variance is not None and not math.isfinite(noise_variance):
        raise ValueError(f"data set {name!r} reported a non-finite noise variance")
    input_shape = tuple(int(d) for d in x.shape[1:])
    parts = (slice(0, ends[0]), slice(ends[0], ends[1]), slice(ends[1], ends[2]))
    return Splits(
        name=name,
        task=task,
        num_outputs=data.num_outputs,
        input_shape=input_shape,
        train_x=x[parts[0]],
        train_y=y[parts[0]],
        val_x=x[parts[1]],
        val_y=y[parts[1]],
        test_x=x[parts[2]],
        test_y=y[parts[2]],
        noise_variance=noise_variance,
        test_y_clean=None if y_clean is None else y_clean[test],
        class_names=data.class_names,
        preprocessing=Preprocessing(
            dataset=name, task=task, input_shape=input_shape, num_outputs=data.num_outputs,
            class_names=data.class_names, table=table, inputs=inputs, targets=targets, details=data.input_details,
        ),
        notes=data.notes,
    )


def _targets(task: Task, y: np.ndarray) -> np.ndarray:
    if task == "classification":
        return np.asarray(y).astype(np.int64, copy=False).reshape(-1)
    y = np.asarray(y, dtype=np.float32)
    return y.reshape(len(y), -1)
