"""Read a study's tables. Never imports Ray. A damaged table raises StoreError naming it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

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
    """The trials table, with the rows its writer logged since it last wrote it (a trial just
    started or finished; or all that a killed driver logged before a resume takes them in)."""
    # The log first: a flush between the two reads moves its rows into the table read next.
    logged = read_log(paths.trials_log, object_hook=decode_timestamps)
    table = read_table(paths.trials) if paths.trials.exists() else pd.DataFrame({"trial_id": pd.Series(dtype=str)})
    if not logged:
        return table
    rows = {row["trial_id"]: row for row in table.to_dict("records")}
    for row in logged:  # later lines win
        rows.setdefault(row["trial_id"], {}).update(row)
    return pd.DataFrame(list(rows.values()))


def read_epochs(paths: StudyPaths) -> pd.DataFrame:
    """All epoch rows, one per (trial, epoch): a trial resumed from a checkpoint may report
    an epoch twice, and the later report wins."""
    # Rows not in a part yet, so newer than every part. Read before the parts: a flush in
    # between puts them in a part that the listing below then finds too.
    logged = read_log(paths.epochs_log)
    for _ in range(3):
        parts = paths.epoch_parts()
        try:
            frames = [read_table(part) for part in parts]
            break
        except FileNotFoundError:
            continue  # the writer compacted the parts while we read: list them again
    else:
        raise StoreError(f"{paths.epochs}: part files kept changing while reading")
    frames = [frame for frame in (*frames, pd.DataFrame(logged)) if not frame.empty]
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


def read_log(path: Path, object_hook: Callable[[dict[str, Any]], Any] | None = None) -> list[dict[str, Any]]:
    """The rows of a write-ahead log; a line torn by a killed writer is skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    rows = []
    for line in text.splitlines():
        try:
            rows.append(json.loads(line, object_hook=object_hook))
        except json.JSONDecodeError:
            continue
    return rows


def decode_timestamps(record: dict[str, Any]) -> Any:
    """A logged row's timestamps, which the writer logs as {"__datetime__": iso}."""
    if record.keys() == {"__datetime__"}:
        return pd.Timestamp(record["__datetime__"])
    return record
