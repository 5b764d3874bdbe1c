"""Chosen trials side by side: their params, their results, one trial's confusion matrix."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from tunelab.analysis.overview import PARAM_PREFIX
from tunelab.store import StudyTables

OUTCOME_ROWS = ["status", "objective", "best_epoch", "stop_epoch"]
FINAL_PREFIX = "final_"


def compare_params(tables: StudyTables, trial_ids: list[str]) -> pd.DataFrame:
    """Rows = params (without the prefix), columns = "trial N" in the order given."""
    chosen = _chosen(tables, trial_ids)
    columns = [c for c in tables.trials.columns if c.startswith(PARAM_PREFIX)]
    return _side_by_side(chosen, columns).rename(index=lambda c: c.removeprefix(PARAM_PREFIX))


def compare_metrics(tables: StudyTables, trial_ids: list[str]) -> pd.DataFrame:
    """Rows = status, objective, best_epoch, stop_epoch and the final_* metrics that any of
    the chosen trials has (a classifier has no R²); columns = "trial N"."""
    chosen = _chosen(tables, trial_ids)
    finals = [c for c in tables.trials.columns if c.startswith(FINAL_PREFIX) and chosen[c].notna().any()]
    outcomes = [c for c in OUTCOME_ROWS if c in tables.trials]
    return _side_by_side(chosen, outcomes + finals)


def confusion_matrix(tables: StudyTables, trial_id: str) -> np.ndarray | None:
    """Test-split confusion matrix (rows = true class, columns = predicted), or None when the
    trial has none (not a classifier, or stopped by the scheduler before its test evaluation)."""
    trials = tables.trials
    if "test_confusion" not in trials:
        return None
    text: Any = trials.loc[trials["trial_id"] == trial_id, "test_confusion"]
    if text.empty or not isinstance(text.iloc[0], str):
        return None
    return np.array(json.loads(text.iloc[0]), dtype=np.int64)


def class_names(tables: StudyTables) -> list[str] | None:
    """The study's class names in class-index order (a user's labels: 'heron', 'ibis'), or
    None for a study stored before they were kept, or without classes."""
    text = tables.study.get("class_names")
    return json.loads(text) if isinstance(text, str) else None


def _chosen(tables: StudyTables, trial_ids: list[str]) -> pd.DataFrame:
    by_id = tables.trials.set_index("trial_id", drop=False)
    unknown = [trial_id for trial_id in trial_ids if trial_id not in by_id.index]
    if unknown:
        raise KeyError(f"no trial {', '.join(map(repr, unknown))} in study {tables.study.get('name')!r}")
    return by_id.loc[list(trial_ids)]


def _side_by_side(chosen: pd.DataFrame, rows: list[str]) -> pd.DataFrame:
    labels = [f"trial {int(number)}" for number in chosen["trial_number"]] if not chosen.empty else []
    # object dtype: one column mixes text (status) and numbers
    table = chosen[rows].astype(object).T
    table.columns = labels
    return table
