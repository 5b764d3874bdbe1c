"""Bias and variance per trial (train error vs. the train/validation gap) and per param value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tunelab.analysis.curves import available_kinds
from tunelab.analysis.overview import PARAM_PREFIX, finite_numbers
from tunelab.store import StudyTables
from tunelab.store.layout import BIASVAR_TABLE, LEARNING_CURVES_TABLE
from tunelab.store.reader import read_table

REMEDIES: dict[str, str] = {
    "high bias": "Underfits: add capacity (depth, width), train longer, or regularise less.",
    "high variance": "Overfits: regularise (dropout, weight decay), get more data, or stop earlier.",
    "high bias and variance": "Fits neither set well: first reduce bias (capacity, longer training), then regularise.",
    "good fit": "Train and validation errors are both low and close: keep this configuration.",
}
# Classification error is a rate: below one percentage point a threshold is within the noise
# of a validation split of a few hundred examples.
MIN_ERROR_RATE_THRESHOLD = 0.01
# More distinct numeric values than this are binned for a validation curve.
MAX_EXACT_VALUES = 6
DIAGNOSIS_COLUMNS = ["trial_id", "trial_number", "status", "train_error", "val_error", "gap", "region", "remedy"]
CURVE_COLUMNS = ["value", "train_error", "val_error", "n_trials"]


def fit_diagnosis(
    tables: StudyTables, bias_threshold: float | None = None, variance_threshold: float | None = None
) -> pd.DataFrame:
    """Each trial's train and validation error at its best epoch, and what that says.

    Error is 1 − accuracy for classification and the loss otherwise. A trial has high bias
    when its train error exceeds `bias_threshold`, high variance when its gap (val − train)
    exceeds `variance_threshold`.

    Default for both: the lowest validation error any trial of the study reached (at least
    one percentage point for classification). Without a known Bayes error, what the best
    configuration achieves on unseen data is the best estimate of what is achievable: a trial
    that fits even its *training* data worse than that underfits, and a trial that loses more
    to its gap alone than the winner's whole error overfits. Both scale with the problem, so
    one rule serves a 2 %-error digit classifier and an MSE regression. The diagnosis is
    therefore relative to the study (the best trial is a good fit by construction); pass
    explicit thresholds, e.g. a target error, for an absolute one.

    Trials without a finite error at their best epoch (diverged at once) are left out.
    """
    errors = _errors_at_best_epoch(tables)
    if errors.empty:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in DIAGNOSIS_COLUMNS})
    default = _default_threshold(errors["val_error"], error_is_rate=_is_classification(tables))
    bias_threshold = default if bias_threshold is None else bias_threshold
    variance_threshold = default if variance_threshold is None else variance_threshold
    high_bias = errors["train_error"] > bias_threshold
    high_variance = errors["gap"] > variance_threshold
    region = np.select(
        [high_bias & high_variance, high_bias, high_variance],
        ["high bias and variance", "high bias", "high variance"],
        default="good fit",
    )
    diagnosis = errors.assign(region=region)
    diagnosis["remedy"] = diagnosis["region"].map(REMEDIES)
    return diagnosis[DIAGNOSIS_COLUMNS]


def validation_curve(tables: StudyTables, param: str, bins: int = 5) -> pd.DataFrame:
    """Mean train and validation error (at best epochs) per value of one param.

    Categorical params and numeric ones with at most MAX_EXACT_VALUES distinct values are
    grouped by value; others fall into `bins` quantile bins, each shown at its centre
    (geometric for a positive param spanning more than a decade, e.g. a learning rate).
    Trials without the param (a condition did not hold) are left out.
    """
    column = PARAM_PREFIX + param
    errors = _errors_at_best_epoch(tables)
    if column not in tables.trials or errors.empty:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in CURVE_COLUMNS})
    values = tables.trials.set_index("trial_id")[column]
    points = errors.assign(value=errors["trial_id"].map(values)).dropna(subset=["value"])
    points = points.assign(value=_grouping_values(points["value"], bins))
    curve = points.groupby("value", sort=True, observed=True).agg(
        train_error=("train_error", "mean"), val_error=("val_error", "mean"), n_trials=("trial_id", "count")
    )
    return curve.reset_index()[CURVE_COLUMNS]


def decomposition(study_dir: Path) -> pd.DataFrame | None:
    """The study's bias/variance decomposition table, or None until one has been written."""
    return _optional_table(Path(study_dir) / BIASVAR_TABLE)


def learning_curves(study_dir: Path) -> pd.DataFrame | None:
    """Training and validation error against training-set size, where `tunelab biasvar` wrote them."""
    return _optional_table(Path(study_dir) / LEARNING_CURVES_TABLE)


def _optional_table(path: Path) -> pd.DataFrame | None:
    return read_table(path) if path.exists() else None


def _errors_at_best_epoch(tables: StudyTables) -> pd.DataFrame:
    """trial_id, trial_number, status, train_error, val_error, gap for trials with epochs."""
    kind = "acc" if _is_classification(tables) else "loss"
    needed = {"trial_id", "epoch", f"train_{kind}", f"val_{kind}"}
    if not needed <= set(tables.epochs.columns) or "best_epoch" not in tables.trials:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in DIAGNOSIS_COLUMNS[:6]})
    epochs = tables.epochs.sort_values(["trial_id", "epoch"], kind="stable")
    trials = tables.trials[["trial_id", "trial_number", "status", "best_epoch"]]
    rows = epochs.merge(trials, on="trial_id")
    # The best epoch, or the latest one while a trial has not reported a best epoch yet.
    at_best = rows[rows["epoch"] == rows["best_epoch"]]
    latest = rows[~rows["trial_id"].isin(at_best["trial_id"])].groupby("trial_id").tail(1)
    chosen = pd.concat([at_best, latest]).sort_values("trial_number", kind="stable")
    train, val = finite_numbers(chosen[f"train_{kind}"]), finite_numbers(chosen[f"val_{kind}"])
    if kind == "acc":
        train, val = 1 - train, 1 - val
    errors = chosen[["trial_id", "trial_number", "status"]].assign(train_error=train, val_error=val, gap=val - train)
    return errors.dropna(subset=["train_error", "val_error"]).reset_index(drop=True)


def _is_classification(tables: StudyTables) -> bool:
    return "acc" in available_kinds(tables)


def _default_threshold(val_errors: pd.Series, error_is_rate: bool) -> float:
    lowest = float(val_errors.min())
    return max(lowest, MIN_ERROR_RATE_THRESHOLD) if error_is_rate else lowest


def _grouping_values(values: pd.Series, bins: int) -> pd.Series:
    """Each value itself, or the centre of its quantile bin when there are many values."""
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.isna().any() or values.dtype == bool or numbers.nunique() <= MAX_EXACT_VALUES:
        return values.astype(str) if numbers.isna().any() else values
    edges = np.unique(np.quantile(numbers, np.linspace(0, 1, bins + 1)))
    bin_index = np.clip(np.searchsorted(edges, numbers, side="right") - 1, 0, len(edges) - 2)
    geometric = bool(numbers.min() > 0 and numbers.max() / numbers.min() > 10)
    low, high = edges[bin_index], edges[bin_index + 1]
    centres = np.sqrt(low * high) if geometric else (low + high) / 2
    return pd.Series(centres, index=values.index)
