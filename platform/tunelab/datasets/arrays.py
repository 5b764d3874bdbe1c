"""`arrays`: a user's NumPy arrays, `x` of any per-example shape and `y` beside it.

`x` may be feature vectors (n, features), sequences (n, channels, steps) or images
(n, channels, height, width). A `.npz` holds `x` and `y`, and optionally fixed parts
`x_val`/`y_val` and `x_test`/`y_test`; a `.npy` file of `x` takes its targets from `targets`.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tunelab.datasets.base import TEST, TRAIN, VALIDATION, DataSet, GeneratedData
from tunelab.datasets.files import existing_file, shown
from tunelab.datasets.registry import register
from tunelab.datasets.targets import TASK_OPTIONS, encode_targets
from tunelab.errors import DataError
from tunelab_models.params import Param

PARTS = {"": TRAIN, "_val": VALIDATION, "_test": TEST}
KNOWN_KEYS = tuple(f"{axis}{part}" for part in PARTS for axis in ("x", "y"))


@register
class Arrays(DataSet):
    """x and y from a .npz file (or a .npy pair), with optional fixed validation/test parts."""

    name = "arrays"
    path_params = ("path", "targets")
    params = (
        Param("path", str, None, "a .npz file with x and y (or a .npy file of x), relative to the experiment file"),
        Param("targets", str, None, "the .npy file of y, when path is a .npy file of x"),
        Param("task", str, "auto", "classification or regression (auto: from y's values)", choices=TASK_OPTIONS),
        Param("missing", str, "error", "examples with NaN or infinite inputs: error, or drop them", choices=("error", "drop")),
    )

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        if not params["path"]:
            raise DataError("path", "data set 'arrays' needs `path`; expected a .npz file with x and y, or a .npy file of x")

    @classmethod
    def generate(cls, params: dict[str, Any]) -> GeneratedData:
        parts = _read_parts(params)
        xs, ys, folds = [], [], []
        for suffix, fold in PARTS.items():
            if f"x{suffix}" not in parts:
                continue
            x, y = parts[f"x{suffix}"], parts[f"y{suffix}"]
            xs.append(x if x.ndim > 1 else x.reshape(-1, 1))
            ys.append(y)
            folds.append(np.full(len(x), fold, dtype=np.int8))
        x = np.concatenate(xs) if len(xs) > 1 else xs[0]
        y = np.concatenate(ys) if len(ys) > 1 else ys[0]
        fold = np.concatenate(folds) if len(folds) > 1 else None
        where = shown(Path(params["path"]))
        x, y, fold = _handle_missing(where, x, y, fold, params["missing"])
        targets = encode_targets(pa.array(y), params["task"], f"y of {where}")
        return GeneratedData(
            x=x,
            y=targets.y,
            num_outputs=targets.num_outputs,
            class_names=targets.class_names,
            fold=fold,
            task=targets.task,
            standardize_targets=True,
            notes=(f"{where}: {len(x)} examples of shape {x.shape[1:]}" + (", fixed parts: " + ", ".join(
                name for name, part in (("validation", VALIDATION), ("test", TEST)) if (fold == part).any()) if fold is not None else ""),
                targets.note),
        )


def _read_parts(params: dict[str, Any]) -> dict[str, np.ndarray]:
    path = existing_file(params["path"], "path", (".npz", ".npy"))
    if path.suffix.lower() == ".npy":
        if not params["targets"]:
            raise DataError("targets", f"{shown(path)} holds x only; expected `targets:` naming the .npy file of y")
        targets = existing_file(params["targets"], "targets", (".npy",))
        parts = {"x": _load(path, "path"), "y": _load(targets, "targets")}
    else:
        if params["targets"]:
            raise DataError("targets", f"{shown(path)} is a .npz file with its own y; expected no `targets`")
        parts = _load_npz(path)
    where = shown(path)
    for suffix in PARTS:
        x_key, y_key = f"x{suffix}", f"y{suffix}"
        if (x_key in parts) != (y_key in parts):
            have, lack = (x_key, y_key) if x_key in parts else (y_key, x_key)
            raise DataError("path", f"{where} has {have} but no {lack}; expected both")
        if x_key not in parts:
            if suffix == "":
                raise DataError("path", f"{where} has no x and y; expected arrays named x and y")
            continue
        x, y = parts[x_key], parts[y_key]
        if x.dtype.kind not in "biuf":
            raise DataError("path", f"{x_key} of {where} holds {x.dtype} values; expected numbers")
        if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1):
            raise DataError("path", f"{y_key} of {where} has shape {y.shape}; expected one target per example ({len(y)},)")
        if len(x) != len(y):
            raise DataError("path", f"{where}: {x_key} has {len(x)} examples but {y_key} has {len(y)}; expected the same number")
        if len(x) == 0:
            raise DataError("path", f"{x_key} of {where} has no examples")
        parts[y_key] = y.reshape(-1)
        if x.shape[1:] != parts["x"].shape[1:]:
            raise DataError("path", f"{where}: {x_key} has examples of shape {x.shape[1:]}, x of {parts['x'].shape[1:]}; expected the same")
    return parts


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as stored:
            unknown = [key for key in stored.files if key not in KNOWN_KEYS]
            if unknown:
                raise DataError("path", f"{shown(path)} has an array named {unknown[0]!r}; expected only {', '.join(KNOWN_KEYS)}")
            return {key: stored[key] for key in stored.files}
    except DataError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError("path", f"{shown(path)} holds Python objects; expected plain numeric or text arrays") from None
        raise DataError("path", f"cannot read {shown(path)}: {exc}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError("path", f"cannot read {shown(path)}: not a NumPy .npz file ({exc})") from None


def _load(path: Path, option: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError(option, f"{shown(path)} holds Python objects; expected a plain numeric or text array") from None
        raise DataError(option, f"cannot read {shown(path)}: {exc}") from None
    except (OSError, EOFError) as exc:
        raise DataError(option, f"cannot read {shown(path)}: not a NumPy .npy file ({exc})") from None


def _handle_missing(
    where: str, x: np.ndarray, y: np.ndarray, fold: np.ndarray | None, missing: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    if x.dtype.kind != "f":
        return x, y, fold
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    if not bad.any():
        return x, y, fold
    if missing == "error":
        raise DataError(
            "missing",
            f"x of {where} has NaN or infinite values in {int(bad.sum())} examples; expected none, or `missing: drop`",
        )
    keep = ~bad
    if not keep.any():
        raise DataError("missing", f"every example of {where} has a NaN or infinite value; expected some complete ones")
    return x[keep], y[keep], None if fold is None else fold[keep]
