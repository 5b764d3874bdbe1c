"""Data a Python caller already holds (arrays, DataFrames) as a data set of a study.

`tunelab.run(..., data=(x, y))` writes the data once to a file named after its content under
the storage folder (`.tunelab-data/`), and the study reads it as the `arrays` or `table` data
set: validated like any file, and there again when the study is resumed, decomposed by
`tunelab biasvar` or its models are loaded.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunelab.errors import BadInputError

INLINE_DATA_FOLDER = ".tunelab-data"
SPLIT_COLUMN = "__tunelab_split__"
DEFAULT_TARGET = "target"
# Data set options that say how to read or split the data rather than where it is: kept from
# the experiment's dataset section.
KEPT_OPTIONS = ("task", "missing", "categorical", "features", "validation_fraction", "test_fraction", "seed",
                "max_train_samples")

XY = tuple[Any, Any]


@dataclass(frozen=True)
class Data:
    """Data in memory with parts fixed by the caller: `train` (required), `validation` and
    `test` (each drawn from `train` when absent), each an `(x, y)` pair."""

    train: XY
    validation: XY | None = None
    test: XY | None = None

    def parts(self) -> dict[str, XY]:
        named = {"train": self.train, "validation": self.validation, "test": self.test}
        return {name: part for name, part in named.items() if part is not None}


def as_data(data: Any) -> Data:
    if isinstance(data, Data):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        return Data(train=data)
    raise BadInputError(f"data: expected (x, y) or tunelab.Data(train=(x, y), ...), got {type(data).__name__}")


def dataset_section(data: Any, storage: Path, declared: dict[str, Any] | None) -> tuple[dict[str, Any], Path | None]:
    """The experiment's `dataset` section for in-memory `data`, and the file written for it
    (None when a file of the same content was there already)."""
    declared = dict(declared or {})
    named = declared.pop("name", None)
    if named not in (None, "table", "arrays"):
        raise BadInputError(f"dataset.name: the experiment names the data set {named!r} and data= was given; expected one of them")
    for option in ("path", "targets", "split", "target"):
        declared.pop(option, None)
    parts = as_data(data).parts()
    tabular = _is_frame(parts["train"][0])
    if tabular:
        payload, suffix, section = _table_payload(parts), ".parquet", {"name": "table", "target": _target_name(parts)}
    else:
        payload, suffix, section = _arrays_payload(parts), ".npz", {"name": "arrays"}
    path, created = _write_once(payload, storage / INLINE_DATA_FOLDER, suffix)
    section["path"] = str(path)
    if tabular and len(parts) > 1:
        section["split"] = {"column": SPLIT_COLUMN}
    section.update({key: value for key, value in declared.items() if key in KEPT_OPTIONS})
    return section, path if created else None


def _is_frame(x: Any) -> bool:
    import pandas as pd

    return isinstance(x, pd.DataFrame)


def _target_name(parts: dict[str, XY]) -> str:
    y = parts["train"][1]
    return str(getattr(y, "name", None) or DEFAULT_TARGET)


def _table_payload(parts: dict[str, XY]) -> Any:
    import pandas as pd

    target = _target_name(parts)
    frames = []
    for name, (x, y) in parts.items():
        if not _is_frame(x):
            raise BadInputError(f"data: the {name} part's x is {type(x).__name__}; expected a DataFrame like the train part's")
        if target in x.columns:
            raise BadInputError(f"data: x has a column {target!r}, the target's name; expected it only in y")
        values = pd.Series(y).reset_index(drop=True) if not isinstance(y, pd.Series) else y.reset_index(drop=True)
        if len(values) != len(x):
            raise BadInputError(f"data: the {name} part has {len(x)} rows of x but {len(values)} targets; expected the same number")
        frame = x.reset_index(drop=True).copy()
        frame[target] = values.to_numpy() if not isinstance(values.dtype, pd.CategoricalDtype) else values.astype(str).to_numpy()
        if len(parts) > 1:
            frame[SPLIT_COLUMN] = name
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _arrays_payload(parts: dict[str, XY]) -> dict[str, np.ndarray]:
    suffix = {"train": "", "validation": "_val", "test": "_test"}
    arrays = {}
    for name, (x, y) in parts.items():
        x_array, y_array = np.asarray(x), np.asarray(y)
        if x_array.dtype == object or y_array.dtype == object and not all(isinstance(v, str) for v in y_array.ravel()):
            raise BadInputError(f"data: the {name} part holds Python objects; expected numeric arrays (or text labels)")
        if y_array.dtype == object:
            y_array = y_array.astype(str)
        arrays[f"x{suffix[name]}"], arrays[f"y{suffix[name]}"] = x_array, y_array
    return arrays


def _write_once(payload: Any, folder: Path, suffix: str) -> tuple[Path, bool]:
    """Write `payload` to a file named after its content, atomically, unless it is there;
    return the file and whether it was written now."""
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".incoming.", suffix=suffix)
    os.close(handle)
    try:
        if suffix == ".npz":
            np.savez(temporary, **payload)
        else:
            payload.to_parquet(temporary, index=False)
        digest = hashlib.sha256()
        with open(temporary, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        path = folder / f"data-{digest.hexdigest()[:20]}{suffix}"
        if path.exists():
            os.unlink(temporary)
            return path, False
        os.replace(temporary, path)
        return path, True
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
