"""A fused member's learning-rate schedule, stepped as its trial alone steps it.

Each member keeps its schedule's own torch scheduler, on an optimiser of its own kind over one
placeholder parameter: torch computes every step's rate (and a one-cycle schedule's momentum,
or Adam's beta1) exactly as for the trial alone, and the cohort's optimiser reads them into the
member's columns (`flat_optimizer.StepHyperparameters`).
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import torch

from tunelab.fusion.flat_optimizer import ADAM_BETAS, StepHyperparameters
from tunelab.training.optimizers import build_optimizer
from tunelab.training.plan import TrialPlan
from tunelab.training.schedules import SCHEDULES


class MemberSchedule:
    def __init__(self, plan: TrialPlan, steps_per_epoch: int, resume: Mapping[str, Any] | None = None) -> None:
        placeholder = torch.nn.Parameter(torch.zeros(1))
        self.optimizer = build_optimizer([placeholder], plan.knobs)
        schedule = SCHEDULES[plan.knobs["lr_schedule"]]
        self.per_batch = schedule.per_batch  # stepped after every batch, else after every epoch
        self.scheduler = schedule.build(
            optimizer=self.optimizer, knobs=plan.knobs, max_epochs=plan.rules.max_epochs, steps_per_epoch=steps_per_epoch)
        self.momentum = float(plan.knobs["momentum"])  # where the optimiser has none of its own
        if resume is not None:
            self.optimizer.load_state_dict(resume["optimizer"])
            self.scheduler.load_state_dict(resume["scheduler"])

    @classmethod
    def of(cls, plan: TrialPlan, steps_per_epoch: int, resume: Mapping[str, Any] | None = None) -> MemberSchedule | None:
        """The plan's schedule, or None for a constant rate."""
        if plan.knobs["lr_schedule"] == "none":
            return None
        return cls(plan, steps_per_epoch, resume)

    def epoch(self, steps: int) -> list[StepHyperparameters]:
        """The hyperparameters of each of the epoch's `steps` optimiser steps, the schedule
        stepped as `train_trial` steps it: after every batch, or after the epoch."""
        values = []
        for _ in range(steps):
            values.append(self._now())
            if self.per_batch:
                self._step()
        if not self.per_batch:
            self._step()
        return values

    def _now(self) -> StepHyperparameters:
        group = self.optimizer.param_groups[0]
        return StepHyperparameters(lr=float(group["lr"]), momentum=float(group.get("momentum", self.momentum)),
                                   beta1=float(group["betas"][0]) if "betas" in group else ADAM_BETAS[0])

    def _step(self) -> None:
        with warnings.catch_warnings():
            # torch warns of a scheduler stepped before its optimiser: this one's never steps.
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)`")
            self.scheduler.step()

    def state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}
