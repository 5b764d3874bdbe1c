"""Metric names every trial reports, and which direction is better."""

from __future__ import annotations

import math
from typing import Any, Literal

Mode = Literal["min", "max"]

# Metrics a study may optimise or monitor, per task, with the direction that is better.
# Test metrics are deliberately absent: the test split never chooses a configuration.
OBJECTIVE_METRICS: dict[str, dict[str, Mode]] = {
    "classification": {"val_loss": "min", "val_acc": "max", "train_loss": "min", "train_acc": "max"},
    "regression": {"val_loss": "min", "val_r2": "max", "train_loss": "min", "train_r2": "max"},
    "reconstruction": {"val_loss": "min", "train_loss": "min"},
}

# What a trial costs, which a multi-objective study may trade against a task metric (never
# its primary objective: they say nothing about which epoch's weights are best). Every task.
#   num_parameters  the model's parameter count (every epoch)
#   train_seconds   training passes so far, evaluation excluded (every epoch)
#   inference_ms    median latency of one training batch through the best weights, measured
#                   once when the trial ends on its own
TRADE_OFF_METRICS: dict[str, Mode] = {"num_parameters": "min", "inference_ms": "min", "train_seconds": "min"}
# A multi-objective study's trials report, when they end, each objective's value at the
# primary's best epoch under this prefix (objective_val_acc, ...); the trials table keeps them.
OBJECTIVE_VALUE_PREFIX = "objective_"

# Columns of one epoch row, in the order the store keeps them (NaN where a task lacks one).
EPOCH_METRICS: tuple[str, ...] = (
    "train_loss", "val_loss", "train_acc", "val_acc", "train_r2", "val_r2", "lr", "epoch_seconds",
    "num_parameters", "train_seconds",
)
# Figures of a trial's final evaluation (best epoch's weights), kept in the trials table.
FINAL_METRICS: tuple[str, ...] = (
    "train_loss", "val_loss", "train_acc", "val_acc", "train_r2", "val_r2",
    "test_loss", "test_acc", "test_r2", "val_auc", "test_auc", "inference_ms",
)

# A report may carry several epochs (short epochs are sent together): their rows, oldest
# first, each with `epoch` and the EPOCH_METRICS the task has. The report's own metrics are
# those of its last epoch.
EPOCH_ROWS = "epoch_rows"

# The key in a trial's final report that says how it ended on its own. A trial whose last
# report lacks it was stopped from outside (by the scheduler or the time budget).
TRIAL_END = "trial_end"


def epoch_row(metrics: dict[str, Any]) -> dict[str, Any]:
    """One epoch's row as a report carries it: its number and the EPOCH_METRICS it has."""
    return {"epoch": metrics["epoch"], **{name: metrics[name] for name in EPOCH_METRICS if name in metrics}}


def epoch_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The epochs one report carries, oldest first. A report without the field is one epoch;
    one with an empty list repeats a trial's end and carries none."""
    rows = result.get(EPOCH_ROWS)
    return [result] if rows is None else rows


def metric_mode(metric: str) -> Mode:
    """Whether lower or higher is better for a metric name, whatever the task."""
    for metrics in (*OBJECTIVE_METRICS.values(), TRADE_OFF_METRICS):
        if metric in metrics:
            return metrics[metric]
    raise KeyError(metric)


def goal_problem(metric: str, goal: float) -> str | None:
    """What is wrong with a goal no trial could ever reach (accuracy above 1, a negative
    loss, R² above 1); None when it is reachable."""
    kind = metric.split("_", 1)[-1]
    if kind == "acc" and not 0 <= goal <= 1:
        return f"{metric} lies between 0 and 1; expected a goal in that range, got {goal}"
    if kind == "r2" and goal > 1:
        return f"{metric} is at most 1; expected a goal of at most 1, got {goal}"
    if kind == "loss" and goal < 0:
        return f"{metric} is never negative; expected a goal of at least 0, got {goal}"
    return None


def goal_reached(value: float, goal: float | None, mode: Mode) -> bool:
    if goal is None or not math.isfinite(value):
        return False
    return value <= goal if mode == "min" else value >= goal


def worst_value(mode: Mode) -> float:
    """The objective a diverged trial reports: ASHA stops it and Optuna learns to avoid it."""
    return float("inf") if mode == "min" else float("-inf")

def ended_status(last_result: dict[str, object]) -> str:
    """Status of a trial that finished without an error, from its last report."""
    from tunelab.store.schema import STOPPED_EARLY

    return str(last_result.get(TRIAL_END) or STOPPED_EARLY)
