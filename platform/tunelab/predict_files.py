"""`tunelab predict`: a tuned model over a file of new inputs, predictions written beside them.

Inputs are the kinds tunelab reads: a CSV/TSV/Parquet table (the study's feature columns; other
columns are carried through), a `.npz` (its `x`) or `.npy` array, or a folder of images (every
PNG/JPEG below it, decoded to the study's size and colour). The output (CSV or Parquet, by its
suffix) has one row per input: what identifies it, the prediction, and for classification
one probability column per class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab.datasets.files import shown
from tunelab.errors import BadInputError
from tunelab.store.atomic import write_parquet_atomic, write_text_atomic
from tunelab.tuned_model import TunedModel

OUTPUT_SUFFIXES = (".csv", ".parquet")


def predict_file(model: TunedModel, source: Path, output: Path) -> int:
    """Write the predictions for every input in `source` to `output`; return how many."""
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise BadInputError(f"-o {output}: expected a .csv or .parquet file")
    inputs, carried = read_inputs(source, model)
    frame = carried.reset_index(drop=True).copy()
    frame["prediction"] = model.predict(inputs)
    if model.preprocessing.task == "classification":
        probabilities = model.predict_proba(inputs)
        for label in probabilities.columns:
            frame[f"probability_{label}"] = probabilities[label].to_numpy()
    if output.suffix.lower() == ".csv":
        write_text_atomic(frame.to_csv(index=False), output)
    else:
        write_parquet_atomic(frame, output)
    return len(frame)


def read_inputs(source: Path, model: TunedModel) -> tuple[Any, pd.DataFrame]:
    """The inputs in the form the model's preprocessing takes, and the columns to carry into
    the output (a table's own columns, an image's file, an array row's index)."""
    if not source.exists():
        raise BadInputError(f"no such file or folder {shown(source)}")
    preprocessing = model.preprocessing
    if source.is_dir():
        return _images(source, preprocessing.details)
    suffix = source.suffix.lower()
    if suffix in (".csv", ".tsv", ".parquet", ".pq"):
        if preprocessing.table is None:
            raise BadInputError(f"{shown(source)} is a table; the model was tuned on {preprocessing.dataset}, expected "
                                f"an array (.npz, .npy) or an image folder")
        frame = pd.read_parquet(source) if suffix in (".parquet", ".pq") else pd.read_csv(source, sep="\t" if suffix == ".tsv" else ",")
        return frame, frame
    if suffix in (".npz", ".npy"):
        x = _array(source)
        return x, pd.DataFrame({"row": np.arange(len(x))})
    raise BadInputError(f"{shown(source)}: expected a .csv, .tsv, .parquet, .npz or .npy file, or a folder of images")


def _array(source: Path) -> np.ndarray:
    try:
        if source.suffix.lower() == ".npy":
            return np.load(source, allow_pickle=False)
        with np.load(source, allow_pickle=False) as stored:
            if "x" not in stored.files:
                raise BadInputError(f"{shown(source)} has no array named x; expected the inputs as x")
            return stored["x"]
    except (OSError, ValueError, EOFError) as exc:
        raise BadInputError(f"cannot read {shown(source)}: {exc}") from None


def _images(folder: Path, details: dict[str, Any]) -> tuple[np.ndarray, pd.DataFrame]:
    from PIL import Image

    from tunelab.datasets.images import IMAGE_SUFFIXES, decode_image

    if "size" not in details:
        raise BadInputError(f"{shown(folder)} is a folder of images; the model was not tuned on images")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise BadInputError(f"{shown(folder)} has no PNG or JPEG images")
    height, width = details["size"]
    pixels = np.stack([decode_image(Image, path, details["color"], (height, width)) for path in files])
    pixels = pixels[:, np.newaxis] if pixels.ndim == 3 else pixels.transpose(0, 3, 1, 2)
    return pixels.astype(np.float32), pd.DataFrame({"file": [str(path.relative_to(folder)) for path in files]})
