"""Per-epoch curves: every trial's metric over epochs, where each stopped, one trial's train/val."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from tunelab.analysis.overview import finite_numbers
from tunelab.store import StudyTables, schema

KINDS = ("loss", "acc", "r2")
CURVE_COLUMNS = ["trial_id", "trial_number", "status", "epoch", "value"]
STOP_COLUMNS = ["trial_id", "trial_number", "status", "stop_epoch", "value"]
TRAIN_VAL_COLUMNS = ["epoch", "split", "value"]


def epoch_curves(tables: StudyTables, metric: str) -> pd.DataFrame:
    """Long form, one row per (trial, epoch) where `metric` is a finite number.

    Non-finite values (a diverged trial's +inf loss) are left out: a chart cannot draw them,
    and the trial's status already says it diverged.
    """
    if metric not in tables.epochs or tables.trials.empty:
        return _empty(CURVE_COLUMNS)
    values = tables.epochs[["trial_id", "epoch"]].assign(value=finite_numbers(tables.epochs[metric]))
    curves = values.dropna(subset=["value"]).merge(_trial_labels(tables), on="trial_id")
    curves = curves.sort_values(["trial_number", "epoch"], kind="stable")
    return curves[CURVE_COLUMNS].reset_index(drop=True)


def stop_points(tables: StudyTables, metric: str) -> pd.DataFrame:
    """One row per ended trial: the epoch it stopped at and `metric` there (NaN if unknown)."""
    trials = tables.trials
    if "stop_epoch" not in trials or "status" not in trials:
        return _empty(STOP_COLUMNS)
    ended = trials[(trials["status"] != schema.RUNNING) & trials["stop_epoch"].notna()]
    points = ended[["trial_id", "trial_number", "status", "stop_epoch"]].astype({"stop_epoch": int})
    if metric in tables.epochs:
        at_epoch = tables.epochs[["trial_id", "epoch"]].assign(value=finite_numbers(tables.epochs[metric]))
        points = points.merge(at_epoch, left_on=["trial_id", "stop_epoch"], right_on=["trial_id", "epoch"], how="left")
    else:
        points = points.assign(value=math.nan)
    return points.sort_values("trial_number", kind="stable")[STOP_COLUMNS].reset_index(drop=True)


def rung_epochs(tables: StudyTables) -> list[int]:
    """The epochs at which the scheduler may stop a trial (empty without a scheduler)."""
    rungs: Any = tables.study.get("rung_epochs")
    if rungs is None or isinstance(rungs, float):
        return []
    return [int(epoch) for epoch in rungs]


def train_val_curves(tables: StudyTables, trial_id: str, kind: str) -> tuple[pd.DataFrame, int]:
    """One trial's train and validation `kind` per epoch, and its best epoch (0: none yet)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    trial = tables.trials[tables.trials["trial_id"] == trial_id]
    if trial.empty:
        raise KeyError(f"no trial {trial_id!r} in study {tables.study.get('name')!r}")
    best_epoch = trial["best_epoch"].iloc[0] if "best_epoch" in trial else math.nan
    epochs = tables.epochs[tables.epochs["trial_id"] == trial_id]
    splits = [
        pd.DataFrame({"epoch": epochs["epoch"], "split": split, "value": finite_numbers(epochs[f"{split}_{kind}"])})
        for split in ("train", "val")
        if f"{split}_{kind}" in epochs
    ]
    curves = pd.concat(splits, ignore_index=True).dropna(subset=["value"]) if splits else _empty(TRAIN_VAL_COLUMNS)
    curves = curves.sort_values(["split", "epoch"], kind="stable").reset_index(drop=True)
    return curves, 0 if pd.isna(best_epoch) else int(best_epoch)


def available_kinds(tables: StudyTables) -> list[str]:
    """The metric kinds this study's task reports (classification: loss and acc; regression:
    loss and r2; reconstruction: loss), judged from the epochs recorded so far."""
    epochs = tables.epochs
    return [
        kind
        for kind in KINDS
        if any(column in epochs and epochs[column].notna().any() for column in (f"train_{kind}", f"val_{kind}"))
    ]


def _trial_labels(tables: StudyTables) -> pd.DataFrame:
    return tables.trials[["trial_id", "trial_number", "status"]]


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
