"""Whether a trial's epoch ends it, and how: one rule for a trial trained alone and for a
member of a fused cohort (`tunelab.fusion`), so both end at the same epoch for the same reason."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from tunelab.metrics import Mode, goal_reached, worst_value
from tunelab.training.plan import TrainingRules


@dataclass
class BestTracker:
    """Best value of one metric so far, and how many epochs since it improved."""

    mode: Mode
    min_delta: float = 0.0
    best_value: float = math.nan
    best_epoch: int = 0
    epochs_without_improvement: int = 0

    def update(self, value: float, epoch: int) -> bool:
        if math.isnan(self.best_value):
            improved = True
        elif self.mode == "min":
            improved = value < self.best_value - self.min_delta
        else:
            improved = value > self.best_value + self.min_delta
        if improved:
            self.best_value, self.best_epoch, self.epochs_without_improvement = value, epoch, 0
        else:
            self.epochs_without_improvement += 1
        return improved

    def state(self) -> dict[str, Any]:
        return {"best_value": self.best_value, "best_epoch": self.best_epoch,
                "epochs_without_improvement": self.epochs_without_improvement}

    def restore(self, state: dict[str, Any]) -> None:
        self.best_value = float(state["best_value"])
        self.best_epoch = int(state["best_epoch"])
        self.epochs_without_improvement = int(state["epochs_without_improvement"])


@dataclass(frozen=True)
class EpochVerdict:
    end: str  # "" while the trial goes on; else how it ended (a TRIAL_STATUSES name)
    improved: bool  # the objective improved: this epoch's weights are the best so far


def judge_epoch(metrics: dict[str, Any], epoch: int, rules: TrainingRules,
                objective: BestTracker, patience: BestTracker) -> EpochVerdict:
    """Update the trackers with one epoch's metrics and decide whether the trial ends.

    `metrics` is changed in place: an exploded loss becomes +inf, and the best epoch and
    objective so far are added, as the trial reports them."""
    diverged = not (math.isfinite(metrics["train_loss"]) and math.isfinite(metrics["val_loss"]))
    improved = False
    if diverged:
        # A NaN never loses at an ASHA rung and Optuna refuses it: an exploded loss is
        # reported as +inf, and an objective that is not finite as its worst value.
        metrics.update(train_loss=math.inf, val_loss=math.inf)
        if not math.isfinite(metrics[rules.objective]):
            metrics[rules.objective] = worst_value(rules.objective_mode)
        end = "diverged"
    else:
        improved = objective.update(metrics[rules.objective], epoch)
        patience.update(metrics[rules.monitor], epoch)
        if goal_reached(objective.best_value, rules.goal, rules.objective_mode):
            end = "reached_goal"
        elif rules.patience is not None and patience.epochs_without_improvement >= rules.patience:
            end = "early_stopped_patience"
        elif epoch == rules.max_epochs:
            end = "completed"
        else:
            end = ""
    metrics.update(best_epoch=objective.best_epoch, best_objective=objective.best_value)
    return EpochVerdict(end, improved)
