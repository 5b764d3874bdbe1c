"""Read a study's tables. Never imports Ray. A damaged table raises StoreError naming it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from tunelab.errors import StoreError
from tunelab.store.layout import StudyPaths

EPOCH_KEY = ["trial_id", "epoch"]


@dataclass(frozen=True)
class StudyTables:
    study: dict[str, Any]
    trials: pd.DataFrame
    epochs: pd.DataFrame


def read_study(paths: StudyPaths) -> dict[str, Any]:
    frame = read_table(paths.study)
    if len(frame) != 1:
        raise StoreError(f"{paths.study}: expected one study row, found {len(frame)}")
    return frame.iloc[0].to_dict()


def read_trials(paths: StudyPaths) -> pd.DataFrame:
    if not paths.trials.exists():
        return pd.DataFrame({"trial_id": pd.Series(dtype=str)})
    return read_table(paths.trials)


def read_epochs(paths: StudyPaths) -> pd.DataFrame:
    """All epoch rows, one per (trial, epoch): a trial resumed from a checkpoint may report
    an epoch twice, and the later report wins."""
    for _ in range(3):
        parts = paths.epoch_parts()
        try:
            frames = [read_table(part) for part in parts]
            break
        except FileNotFoundError:
            continue  # the writer compacted the parts while we read: list them again
    else:
        raise StoreError(f"{paths.epochs}: part files kept changing while reading")
    frames = [frame for frame in frames if not frame.empty]
    if not frames:
        return pd.DataFrame({"trial_id": pd.Series(dtype=str), "epoch": pd.Series(dtype="int64")})
    epochs = pd.concat(frames, ignore_index=True)
    epochs = epochs.drop_duplicates(subset=EPOCH_KEY, keep="last")
    return epochs.sort_values(EPOCH_KEY, kind="stable").reset_index(drop=True)


def read_study_tables(paths: StudyPaths) -> StudyTables:
    return StudyTables(study=read_study(paths), trials=read_trials(paths), epochs=read_epochs(paths))


def read_table(path: Path) -> pd.DataFrame:
    try:
        # Read through one open handle: given a path, pyarrow opens the file more than once,
        # and a writer's atomic rename in between mixes two versions ("Page was smaller...").
        with open(path, "rb") as handle:
            return pd.read_parquet(handle)
    except FileNotFoundError:
        if path.parent.name == "epochs":
            raise
        raise StoreError(f"{path}: table is missing") from None
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise StoreError(f"{path}: cannot read table ({exc})") from None
