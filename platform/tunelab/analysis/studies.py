"""Which studies a storage root holds, each summarised in one row, and loading one of them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tunelab.analysis.overview import finite_numbers
from tunelab.errors import StoreError
from tunelab.store import schema
from tunelab.store import StudyPaths, StudyTables, list_study_names, read_study, read_study_tables, read_trials

SUMMARY_COLUMNS = [
    "name", "status", "objective_metric", "objective_mode", "trials_planned", "trials_seen",
    "trials_running", "trials_completed", "trials_stopped_early", "trials_patience",
    "trials_diverged", "trials_errored", "trials_reached_goal", "trials_interrupted", "best_objective", "started_at",
    "duration_s", "error",
]
# Count column → the trial status it counts.
STATUS_COUNTS = {
    "trials_running": schema.RUNNING,
    "trials_completed": schema.COMPLETED,
    "trials_stopped_early": schema.STOPPED_EARLY,
    "trials_patience": schema.EARLY_STOPPED_PATIENCE,
    "trials_diverged": schema.DIVERGED,
    "trials_errored": schema.ERRORED,
    "trials_reached_goal": schema.REACHED_GOAL,
    "trials_interrupted": schema.INTERRUPTED,
}


def load_study(storage: str | Path, name: str) -> StudyTables:
    """All three tables of one study; StoreError when it is missing or a table is damaged."""
    paths = StudyPaths.of(storage, name)
    if not paths.exists():
        raise StoreError(f"{paths.study}: no study {name!r} in {paths.root.parent}")
    return read_study_tables(paths)


def study_summaries(storage: str | Path) -> pd.DataFrame:
    """One row per study; a damaged study gets its error message instead of hiding the rest.

    best_objective is NaN until a trial has a finite objective; duration_s runs up to now
    while a study has no finish time. Epoch part files are checked by their footers only,
    so listing a large storage stays cheap.
    """
    rows = [_summarise(StudyPaths.of(storage, name)) for name in list_study_names(storage)]
    summaries = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    # object, not text: a good study's error stays None rather than becoming NaN
    summaries["error"] = pd.Series([row["error"] for row in rows], dtype=object)
    return summaries


def _summarise(paths: StudyPaths) -> dict[str, Any]:
    row: dict[str, Any] = {"name": paths.name, "error": None}
    try:
        study = read_study(paths)
        row.update(_study_fields(study))
        trials = read_trials(paths)
        _check_epoch_parts(paths)
    except StoreError as exc:
        row["error"] = str(exc)
        return row
    row.update(_trial_counts(trials, study.get("objective_mode", "min")))
    return row


def _study_fields(study: dict[str, Any]) -> dict[str, Any]:
    started = _timestamp(study.get("started_at"))
    finished = _timestamp(study.get("finished_at"))
    # A live study has no finish time yet: its duration so far is what a reader wants.
    end = finished if finished is not None else pd.Timestamp.now(tz="UTC")
    return {
        "status": study.get("status"),
        "objective_metric": study.get("objective_metric"),
        "objective_mode": study.get("objective_mode"),
        "trials_planned": study.get("num_samples"),
        "started_at": started,
        "duration_s": (end - started).total_seconds() if started is not None else math.nan,
    }


def _trial_counts(trials: pd.DataFrame, mode: str) -> dict[str, Any]:
    statuses = trials["status"] if "status" in trials else pd.Series(dtype=str)
    counts: dict[str, Any] = {column: int((statuses == status).sum()) for column, status in STATUS_COUNTS.items()}
    counts["trials_seen"] = len(trials)
    objectives = finite_numbers(trials["objective"]).dropna() if "objective" in trials else pd.Series(dtype=float)
    best = objectives.min() if mode == "min" else objectives.max()
    counts["best_objective"] = float(best) if not objectives.empty else math.nan
    return counts


def _check_epoch_parts(paths: StudyPaths) -> None:
    """Read each part's footer only: catches a truncated file without loading the rows."""
    for part in paths.epoch_parts():
        try:
            with open(part, "rb") as handle:
                pq.read_metadata(handle)
        except FileNotFoundError:
            continue  # merged away by the writer while we looked
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise StoreError(f"{part}: cannot read table ({exc})") from None


def _timestamp(value: Any) -> pd.Timestamp | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp

