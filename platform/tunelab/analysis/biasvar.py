"""Bias and variance per trial (train error vs. the train/validation gap) and per param value."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from tunelab.analysis.curves import available_kinds
from tunelab.analysis.overview import PARAM_PREFIX, finite_numbers
from tunelab.store import StudyTables, schema
from tunelab.store.layout import BIASVAR_TABLE, LEARNING_CURVES_TABLE
from tunelab.store.reader import read_table

REMEDIES: dict[str, str] = {
    "high bias": "Underfits: add capacity (depth, width), train longer, or regularise less.",
    "high variance": "Overfits: regularise (dropout, weight decay), get more data, or stop earlier.",
    "high bias and variance": "Fits neither set well: first reduce bias (capacity, longer training), then regularise.",
    "good fit": "Train and validation errors are both low and close: keep this configuration.",
}
# Fit says something about a configuration only once its training has run its course. A trial
# the scheduler stopped at a rung was still learning: its training error is high because it was
# cut there, and calling it "high bias" would send a user to widen networks for nothing. So fit
# is judged only for trials that ended on their own; every other trial is shown in a group of
# its own, never in a region. (Comparing every trial at one common epoch instead would judge
# all trials at the first rung, before most of them had learnt much.)
JUDGED_STATUSES = schema.WITH_A_FINAL_RESULT
FIT_RULE = (
    "Fit is judged only for trials that ran to their own end (completed, stopped by patience, or reached the "
    "goal), at their best epoch. Trials stopped before converging are never placed in a region: their training "
    "error says where they were cut, not what their configuration can fit."
)
# Trials whose fit is not judged, by how they ended: the group they are shown in, and why.
NOT_JUDGED: dict[str, tuple[str, str]] = {
    schema.STOPPED_EARLY: (
        "stopped before converging",
        "The scheduler stopped it at a rung while it was still learning: its errors there say where it was cut.",
    ),
    schema.INTERRUPTED: (
        "interrupted before converging",
        "Still training when the study ended (its time budget, another trial reaching the goal, a killed driver).",
    ),
    schema.RUNNING: ("still running", "Judged once it ends on its own."),
    schema.DIVERGED: ("diverged", "Its loss became NaN or infinite: a training failure (often too high a learning rate), not a fit."),
    schema.ERRORED: ("errored", "It raised an exception: its error is in the trial table."),
}
# Classification error is a rate: below one percentage point a threshold is within the noise
# of a validation split of a few hundred examples.
MIN_ERROR_RATE_THRESHOLD = 0.01
# More distinct numeric values than this are binned for a validation curve.
MAX_EXACT_VALUES = 6
ERROR_COLUMNS = ["trial_id", "trial_number", "status", "train_error", "val_error", "gap"]
DIAGNOSIS_COLUMNS = [
    "trial_id", "trial_number", "status", "stop_epoch", "train_error", "val_error", "gap", "judged", "region", "remedy",
]
GROUP_COLUMNS = ["group", "trials", "stopped at", "why not judged"]
CURVE_COLUMNS = ["value", "train_error", "val_error", "n_trials"]


def fit_diagnosis(
    tables: StudyTables, bias_threshold: float | None = None, variance_threshold: float | None = None
) -> pd.DataFrame:
    """Each trial's train and validation error at its best epoch, and what that says: the one
    place a trial's fit is classified (the dashboard, `tunelab results` and the sentences about
    fit all read it).

    Fit is judged (`judged` True, `region` one of REMEDIES) only for trials that ran to their
    own end (JUDGED_STATUSES): see FIT_RULE. Every other trial gets the name of its group
    instead (NOT_JUDGED: "stopped before converging" for a trial the scheduler stopped, with
    the rung in `stop_epoch`), its errors where it has any, and why it is not judged in
    `remedy`. Trials that ended on their own but have no finite error (none to judge) are left
    out.

    Error is 1 − accuracy for classification and the loss otherwise. A judged trial has high
    bias when its train error exceeds `bias_threshold`, high variance when its gap (val − train)
    exceeds `variance_threshold`.

    Default for both: the lowest validation error a judged trial reached (at least one
    percentage point for classification). Without a known Bayes error, what the best
    configuration achieves on unseen data is the best estimate of what is achievable: a trial
    that fits even its *training* data worse than that underfits, and a trial that loses more
    to its gap alone than the winner's whole error overfits. Both scale with the problem, so
    one rule serves a 2 %-error digit classifier and an MSE regression. The diagnosis is
    therefore relative to the study (the best judged trial is a good fit by construction); pass
    explicit thresholds, e.g. a target error, for an absolute one.
    """
    if tables.trials.empty or "status" not in tables.trials:
        return _empty(DIAGNOSIS_COLUMNS)
    trials = tables.trials.reindex(columns=["trial_id", "trial_number", "status", "stop_epoch"])
    errors = _errors_at_best_epoch(tables)[["trial_id", "train_error", "val_error", "gap"]]
    rows = trials.merge(errors, on="trial_id", how="left")
    ended_on_their_own = rows["status"].isin(JUDGED_STATUSES)
    has_errors = rows["train_error"].notna() & rows["val_error"].notna()
    rows = rows[has_errors | ~ended_on_their_own].assign(judged=(ended_on_their_own & has_errors))
    judged = rows["judged"]
    default = _default_threshold(rows.loc[judged, "val_error"], error_is_rate=_is_classification(tables))
    bias_threshold = default if bias_threshold is None else bias_threshold
    variance_threshold = default if variance_threshold is None else variance_threshold
    high_bias = rows["train_error"] > bias_threshold
    high_variance = rows["gap"] > variance_threshold
    region = pd.Series(
        np.select(
            [high_bias & high_variance, high_bias, high_variance],
            ["high bias and variance", "high bias", "high variance"],
            default="good fit",
        ),
        index=rows.index,
    )
    group, why = zip(*rows["status"].map(_not_judged)) if len(rows) else ((), ())
    diagnosis = rows.assign(
        region=region.where(judged, pd.Series(group, index=rows.index, dtype=object)),
        remedy=region.map(REMEDIES).where(judged, pd.Series(why, index=rows.index, dtype=object)),
    )
    return diagnosis.sort_values("trial_number", kind="stable")[DIAGNOSIS_COLUMNS].reset_index(drop=True)


def fit_groups(diagnosis: pd.DataFrame) -> pd.DataFrame:
    """The trials whose fit is not judged, one row per group: how many, at which epochs they
    stopped (a scheduler's rungs), and why they are not judged."""
    rows = []
    for group, members in diagnosis[~diagnosis["judged"].astype(bool)].groupby("region", sort=False):
        stops = members["stop_epoch"].dropna().astype(int).value_counts().sort_index()
        where = ", ".join(f"epoch {epoch} × {count}" for epoch, count in stops.items()) or "—"
        rows.append({"group": group, "trials": len(members), "stopped at": where, "why not judged": members["remedy"].iloc[0]})
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def fit_summary(diagnosis: pd.DataFrame) -> str:
    """The diagnosis in a sentence: how many trials are judged and where they fall, and how
    many are not, by group."""
    judged = diagnosis[diagnosis["judged"].astype(bool)]
    regions = judged["region"].value_counts()
    placed = ", ".join(f"{regions[region]} {region}" for region in REMEDIES if region in regions)
    ran = "ran to its own end and is" if len(judged) == 1 else "ran to their own end and are"
    sentence = f"{len(judged)} of {len(diagnosis)} trials {ran} judged{': ' + placed if placed else ''}."
    groups = fit_groups(diagnosis)
    if groups.empty:
        return sentence
    not_judged = "; ".join(
        f"{row['trials']} {row['group']}" + (f" ({row['stopped at']})" if row["stopped at"] != "—" else "")
        for row in groups.to_dict("records")
    )
    return f"{sentence} Not judged: {not_judged}."


def validation_curve(tables: StudyTables, param: str, bins: int = 5) -> pd.DataFrame:
    """Mean train and validation error (at best epochs) per value of one param, over the
    trials whose fit is judged.

    Only trials whose fit is judged (`fit_diagnosis`, FIT_RULE) count: a trial stopped at
    an early rung would pull its value's errors up for having been cut, not for its value.
    Categorical params and numeric ones with at most MAX_EXACT_VALUES distinct values are
    grouped by value; others fall into `bins` quantile bins, each shown at its centre
    (geometric for a positive param spanning more than a decade, e.g. a learning rate).
    Trials without the param (a condition did not hold) are left out.
    """
    column = PARAM_PREFIX + param
    diagnosis = fit_diagnosis(tables)
    errors = diagnosis[diagnosis["judged"].astype(bool)]
    if column not in tables.trials or errors.empty:
        return _empty(CURVE_COLUMNS)
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
        return _empty(ERROR_COLUMNS)
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


def _not_judged(status: object) -> tuple[str, str]:
    """The group a trial whose fit is not judged is shown in, and why it is not judged."""
    return NOT_JUDGED.get(str(status), (str(status), "Not judged: it did not end on its own."))


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})


def _is_classification(tables: StudyTables) -> bool:
    return "acc" in available_kinds(tables)


def _default_threshold(val_errors: pd.Series, error_is_rate: bool) -> float:
    lowest = float(val_errors.min()) if not val_errors.empty else math.nan
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
