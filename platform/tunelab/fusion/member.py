"""A member of a fused cohort on its way to its own end, judged epoch by epoch as `train_trial`
judges a trial alone: the same end (`judge_epoch`), the same best weights, the same final
evaluation, the same costs and objective values, the same state to save and resume from.

A fusion host's members (`host`) and `tunelab confirm`'s replicates (`rounds`) are all this.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from tunelab.datasets import Splits
from tunelab.fusion.engine import FusedArchitecture, MemberTraining
from tunelab.metrics import EPOCH_METRICS, TRIAL_END
from tunelab.training import loop
from tunelab.training.costs import objective_values
from tunelab.training.epoch_end import BestTracker, judge_epoch
from tunelab.training.plan import TrialPlan


@dataclass
class FusedMember:
    training: MemberTraining
    objective: BestTracker
    patience: BestTracker
    best_weights: dict[str, torch.Tensor]
    epoch: int = 0  # epochs trained
    train_seconds: float = 0.0  # its cohort's fused training passes, every epoch it was in them
    at_best_epoch: dict[str, Any] = field(default_factory=dict)  # the best epoch's row: its objectives' values
    last_checkpoint: float = field(default_factory=loop.checkpoint_clock)

    @classmethod
    def start(cls, architecture: FusedArchitecture, plan: TrialPlan, resume: Mapping[str, Any] | None = None
              ) -> FusedMember:
        """A member as its trial alone starts, or as a saved `state` left it."""
        rules = plan.rules
        training = architecture.new_member(plan, resume["fused"] if resume is not None else None)
        member = cls(training, BestTracker(rules.objective_mode), BestTracker(rules.monitor_mode, rules.min_delta),
                     training.weights())
        if resume is not None:
            member.objective.restore(resume["objective"])
            member.patience.restore(resume["patience"])
            member.best_weights = resume["best_model"]
            member.epoch = int(resume["epoch"])
            member.train_seconds = float(resume["train_seconds"])
            member.at_best_epoch = dict(resume["at_best_epoch"])
        return member

    @property
    def plan(self) -> TrialPlan:
        return self.training.plan

    def judged(self, architecture: FusedArchitecture, data: Splits, measured: Mapping[str, float],
               training_seconds: float) -> dict[str, Any]:
        """The report of the epoch the cohort just trained (`measured`: this member's figures),
        with `trial_end` when the epoch ends the member."""
        self.epoch += 1
        self.train_seconds += training_seconds
        rules = self.plan.rules
        report: dict[str, Any] = {"epoch": self.epoch, "lr": self.training.epoch_lr,
                                  "num_parameters": architecture.num_parameters,
                                  "train_seconds": self.train_seconds, **measured}
        verdict = judge_epoch(report, self.epoch, rules, self.objective, self.patience)
        if verdict.improved:
            self.best_weights = self.training.weights()
            self.at_best_epoch = {name: report[name] for name in EPOCH_METRICS if name in report}
        end = verdict.end
        if end and end != "diverged":
            report.update(loop.final_evaluation(architecture.template, self.best_weights, data, architecture.task,
                                                architecture.device,
                                                # inference_ms: one training batch through the best weights
                                                architecture.train_x[: architecture.batch_size]))
        if rules.objectives:
            report.update(objective_values(rules.objectives, self.at_best_epoch, report if end else None,
                                           end == "diverged"))
        if end:
            report[TRIAL_END] = end
        return report

    def checkpoint_due(self, report: Mapping[str, Any]) -> bool:
        """Whether this epoch's state is to be saved: the member's last, or its interval passed."""
        if TRIAL_END not in report and loop.checkpoint_clock() - self.last_checkpoint < self.plan.rules.checkpoint_interval_s:
            return False
        self.last_checkpoint = loop.checkpoint_clock()
        return True

    def state(self, report: Mapping[str, Any]) -> dict[str, Any]:
        """What `start` resumes from, after the epoch of `report`."""
        return {
            "epoch": self.epoch,
            "fused": self.training.state(),
            "best_model": self.best_weights,
            "objective": self.objective.state(),
            "patience": self.patience.state(),
            "train_seconds": self.train_seconds,
            "at_best_epoch": self.at_best_epoch,
            "trial_end": report.get(TRIAL_END),
            "last_metrics": dict(report),  # to report the end again if the trial is started again
        }

    def best_model(self) -> dict[str, Any]:
        """The best epoch's weights, as a trial alone leaves them (`BEST_MODEL_FILE`)."""
        return {"best_model": self.best_weights, "best_epoch": self.objective.best_epoch}


def timed_epoch(architecture: FusedArchitecture, members: list[FusedMember]) -> tuple[list[dict[str, float]], float]:
    """Train the members' next epoch as one; each one's figures, and the training passes' seconds."""
    started = time.perf_counter()
    architecture.train_epoch([member.training for member in members])
    training_seconds = time.perf_counter() - started
    return architecture.measure([member.training for member in members]), training_seconds
