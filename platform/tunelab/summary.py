"""Ranking and tabulating a study's trials. Plain pandas: used by the CLI and the dashboard."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from tunelab.fusion.messages import FUSED
from tunelab.store.layout import PARAM_PREFIX

SUMMARY_COLUMNS = ["trial_number", "status", "objective", "best_epoch", "stop_epoch"]
# Test figures of the best epoch; a task shows the ones it has (accuracy or R², and loss).
TEST_COLUMNS = {"final_test_acc": "test_acc", "final_test_r2": "test_r2", "final_test_loss": "test_loss"}


def rank_trials(trials: pd.DataFrame, mode: str) -> pd.DataFrame:
    """Trials best first by their best objective value; trials without one go last."""
    if trials.empty or "objective" not in trials:
        return trials
    finite = trials["objective"].map(lambda v: isinstance(v, (int, float)) and math.isfinite(v))
    ranked = trials[finite].sort_values("objective", ascending=(mode == "min"), kind="stable")
    return pd.concat([ranked, trials[~finite]], ignore_index=True)


def param_columns(trials: pd.DataFrame) -> list[str]:
    return [column for column in trials.columns if column.startswith(PARAM_PREFIX)]


def summary_table(
    trials: pd.DataFrame,
    mode: str,
    top: int | None = None,
    with_trial_id: bool = False,
    fit: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """The columns a person reads: rank order, how each trial ended (and, given each trial's
    `fit` by trial id, what its fit says), its parameters (and, for tables a program selects
    rows from, the trial id last)."""
    ranked = rank_trials(trials, mode)
    if top is not None:
        ranked = ranked.head(top)
    summary = SUMMARY_COLUMNS
    if fit is not None and "trial_id" in ranked:
        ranked = ranked.assign(fit=ranked["trial_id"].map(dict(fit)))
        summary = [*SUMMARY_COLUMNS[:2], "fit", *SUMMARY_COLUMNS[2:]]
    test_columns = [c for c in TEST_COLUMNS if c in ranked and ranked[c].notna().any()]
    columns = summary + test_columns + param_columns(ranked) + (["trial_id"] if with_trial_id else [])
    table = ranked.reindex(columns=columns).rename(columns=lambda c: c.removeprefix(PARAM_PREFIX))
    return table.rename(columns={"trial_number": "trial", **TEST_COLUMNS})


def status_counts(trials: pd.DataFrame) -> dict[str, int]:
    if trials.empty or "status" not in trials:
        return {}
    return {str(k): int(v) for k, v in trials["status"].value_counts().items()}


def fusion_summary(trials: pd.DataFrame) -> str | None:
    """How a fused study's trials trained, in one line; None for a study that did not fuse.

    e.g. "fused: 64 of 64 trials, 3 cohort shapes (most trials: mlp depth=2 width=128, batch
    32: 40)", then why any trained alone ("; alone: <reason> (count)")."""
    if "fusion" not in trials or trials["fusion"].isna().all():
        return None
    fused = trials[trials["fusion"] == FUSED]
    line = f"fused: {len(fused)} of {len(trials)} trials"
    shapes = fused["cohort"].value_counts()
    if len(shapes) and shapes.iloc[0] == 1 and len(fused) > 1:
        line += ", each of a shape of its own (cohorts of one: its search space changes shapes)"
    elif len(shapes):
        line += (f", {len(shapes)} cohort shape{'s' if len(shapes) > 1 else ''} "
                 f"(most trials: {shapes.index[0]}: {shapes.iloc[0]})")
    alone = trials.loc[trials["fusion"].notna() & (trials["fusion"] != FUSED), "fusion"].value_counts()
    if len(alone):
        line += "; alone: " + "; ".join(f"{reason} ({count})" for reason, count in alone.items())
    return line


def format_value(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
