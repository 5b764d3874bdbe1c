"""A user's target values → the task, integer class labels with their names, or regression
targets. Shared by tables, arrays and image folders, so every kind infers alike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tunelab.errors import DataError
from tunelab_models.signature import Task

# Integer targets with at most this many distinct values are classes (labels 0-9, ratings);
# more are counts or amounts: regression.
MAX_INTEGER_CLASSES = 20
TASK_OPTIONS = ("auto", "classification", "regression")


@dataclass(frozen=True)
class Targets:
    task: Task
    y: np.ndarray  # int64 class indices, or float32 (n, 1) values
    num_outputs: int
    class_names: tuple[str, ...] | None
    note: str  # how the task was decided, for `tunelab validate`


def encode_targets(values: pa.Array | pa.ChunkedArray, task: str, what: str) -> Targets:
    """`what` names the target in messages ("column 'species' of patients.csv")."""
    kind = values.type
    if pa.types.is_dictionary(kind):
        values, kind = pc.cast(values, kind.value_type), kind.value_type
    text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
    numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind)
    if not (text or numeric or pa.types.is_boolean(kind)):
        raise DataError("target", f"{what} holds {kind} values; expected numbers, text or true/false")
    if task == "auto":
        task, reason = _inferred_task(values, kind)
        note = f"{task} ({reason}; set dataset.task to override)"
    else:
        note = f"{task} (dataset.task)"
    if task == "regression":
        if not numeric:
            raise DataError("task", f"{what} holds {'text' if text else 'true/false'} values; expected numbers for regression")
        y = pc.cast(values, pa.float32()).to_numpy(zero_copy_only=False).reshape(-1, 1)
        return Targets("regression", y, 1, None, f"target {what}: {note}")
    classes = pc.unique(values).sort()
    if len(classes) < 2:
        only = f" ({classes[0].as_py()!r})" if len(classes) else ""
        raise DataError("target", f"{what} has {len(classes)} class{only}; expected at least 2 for classification")
    names = tuple(_class_name(value) for value in classes.to_pylist())
    y = pc.index_in(values, value_set=classes).to_numpy(zero_copy_only=False).astype(np.int64)
    return Targets("classification", y, len(names), names, f"target {what}: {note}, {len(names)} classes")


def _inferred_task(values: Any, kind: pa.DataType) -> tuple[Task, str]:
    if pa.types.is_boolean(kind):
        return "classification", "true/false values"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "classification", "text values"
    if pa.types.is_floating(kind):
        return "regression", "decimal numbers"
    distinct = pc.count_distinct(values).as_py()
    if distinct <= MAX_INTEGER_CLASSES:
        return "classification", f"{distinct} distinct integers"
    return "regression", f"{distinct} distinct integers, more than {MAX_INTEGER_CLASSES}"


def _class_name(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def count_missing(values: pa.Array | pa.ChunkedArray) -> int:
    """Null, NaN or infinite entries."""
    missing = values.null_count
    if pa.types.is_floating(values.type):
        missing += int(pc.sum(pc.invert(pc.is_finite(values))).as_py() or 0)  # nulls count as null, not here
    return missing
