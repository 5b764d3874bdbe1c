"""Tables shaped for reading: column names a person understands, values formatted once.

Presentation only; what the numbers mean is computed in `tunelab.analysis`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from tunelab.store import schema
from tunelab.summary import format_value

# How each trial ended, in words (the store's status names are terse).
STATUS_LABELS = {
    schema.COMPLETED: "completed",
    schema.STOPPED_EARLY: "stopped by scheduler",
    schema.EARLY_STOPPED_PATIENCE: "stopped by patience",
    schema.DIVERGED: "diverged",
    schema.ERRORED: "errored",
    schema.REACHED_GOAL: "reached the goal",
    schema.INTERRUPTED: "interrupted",
    schema.RUNNING: "running",
}
# Trial-table columns that are not parameters.
RESULT_COLUMNS = {"trial", "status", "objective", "best_epoch", "stop_epoch", "test_acc", "test_r2", "test_loss", "trial_id"}


def status_label(status: Any) -> str:
    return STATUS_LABELS.get(str(status), str(status))


def duration_text(seconds: Any) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "—"
    minutes, secs = divmod(int(round(float(seconds))), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def studies_view(summaries: pd.DataFrame) -> pd.DataFrame:
    """One row per study: how far it got and how its trials ended."""
    seen = summaries["trials_seen"].fillna(0).astype(int)
    running = summaries["trials_running"].fillna(0).astype(int)
    planned = summaries["trials_planned"]
    return pd.DataFrame(
        {
            "study": summaries["name"],
            "status": [
                "unreadable" if isinstance(error, str) else str(status)
                for status, error in zip(summaries["status"], summaries["error"])
            ],
            "done": [
                f"{s - r} / {int(p)}" if not pd.isna(p) else str(s - r) for s, r, p in zip(seen, running, planned)
            ],
            "running": running,
            "stopped by scheduler": summaries["trials_stopped_early"].fillna(0).astype(int),
            "stopped by patience": summaries["trials_patience"].fillna(0).astype(int),
            "diverged": summaries["trials_diverged"].fillna(0).astype(int),
            "errored": summaries["trials_errored"].fillna(0).astype(int),
            "reached goal": summaries["trials_reached_goal"].fillna(0).astype(int),
            "best objective": [
                f"{format_value(best)} ({metric})" if isinstance(metric, str) else "—"
                for best, metric in zip(summaries["best_objective"], summaries["objective_metric"])
            ],
            "duration": summaries["duration_s"].map(duration_text),
            "started": pd.to_datetime(summaries["started_at"], utc=True, errors="coerce").dt.strftime("%Y-%m-%d %H:%M"),
        }
    )


def param_columns(table: pd.DataFrame) -> list[str]:
    return [column for column in table.columns if column not in RESULT_COLUMNS]


def numeric_ranges(table: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """The span of each numeric parameter that takes more than one value: slider bounds."""
    ranges: dict[str, tuple[float, float]] = {}
    for name in param_columns(table):
        values = pd.to_numeric(table[name], errors="coerce").dropna()
        if pd.api.types.is_bool_dtype(table[name]) or values.nunique() < 2 or len(values) < len(table[name].dropna()):
            continue
        ranges[name] = (float(values.min()), float(values.max()))
    return ranges


def key_value_table(row: pd.Series, prefix: str, heading: str) -> pd.DataFrame:
    """The row's fields named `prefix…` that have a value, as (name without prefix, value)."""
    names = [name for name in row.index if name.startswith(prefix) and format_value(row[name]) != "—"]
    return pd.DataFrame(
        {heading: [name.removeprefix(prefix) for name in names], "value": [format_value(row[name]) for name in names]}
    )


def trial_choice_label(trial: Mapping[str, Any]) -> str:
    return f"trial {int(trial['trial_number'])} — {status_label(trial['status'])}"


def displayable(table: pd.DataFrame) -> pd.DataFrame:
    """Mixed-type columns (a param that is 32 or "full", a comparison's status and numbers) as
    text, which Arrow can show; numeric columns stay numbers so they sort as numbers."""
    shown = table.copy()
    for column in shown.columns:
        if shown[column].dtype == object:
            shown[column] = shown[column].map(lambda v: None if format_value(v) == "—" else format_value(v))
    return shown


def regions_table(diagnosis: pd.DataFrame, remedies: Mapping[str, str]) -> pd.DataFrame:
    """Every region, how many trials fall in it, and its remedy."""
    counts = diagnosis.groupby("region").size()
    return pd.DataFrame(
        {
            "region": list(remedies),
            "trials": [int(counts.get(region, 0)) for region in remedies],
            "remedy": list(remedies.values()),
        }
    )


def not_judged_table(diagnosis: pd.DataFrame) -> pd.DataFrame:
    """The trials whose fit is not judged: their group, where they stopped, and their errors
    there (for reading, not for a verdict)."""
    rows = diagnosis[~diagnosis["judged"].astype(bool)]
    return pd.DataFrame(
        {
            "trial": rows["trial_number"].astype(int),
            "group": rows["region"],
            "stopped at epoch": rows["stop_epoch"].astype("Int64"),
            "training error": rows["train_error"],
            "validation error": rows["val_error"],
        }
    )


# The decomposition's columns a person reads, by loss (the rest stay in the Parquet file).
DECOMPOSITION_COLUMNS = {
    "zero_one": ["trial_number", "method", "rounds", "failed_rounds", "expected_loss", "bias", "variance",
                 "variance_unbiased", "variance_biased", "net_variance", "cross_entropy"],
    "squared_error": ["trial_number", "method", "rounds", "failed_rounds", "expected_loss", "bias", "bias_clean",
                      "variance", "noise"],
}


def decomposition_table(table: pd.DataFrame) -> pd.DataFrame:
    loss = str(table["loss"].iloc[0]) if "loss" in table and len(table) else ""
    columns = [c for c in DECOMPOSITION_COLUMNS.get(loss, list(table.columns)) if c in table]
    return table[columns].sort_values("trial_number").rename(columns={"trial_number": "trial"})
