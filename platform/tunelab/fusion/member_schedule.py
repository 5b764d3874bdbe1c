"""A fused member's learning-rate schedule, stepped as its trial alone steps it.

Each member keeps its schedule's own torch scheduler, on an optimiser of its own kind over one
placeholder parameter: torch computes every epoch's rate, exactly as for the trial alone, and
the cohort's step reads it into the member's learning-rate column. Only schedules stepped once
per epoch (`step`, `cosine`): a schedule stepped every batch (`onecycle`) also cycles momentum
or Adam's beta1 per batch, which the flat optimiser keeps fixed (`fusion_refusal` says so).
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import torch

from tunelab.training.optimizers import build_optimizer
from tunelab.training.plan import TrialPlan
from tunelab.training.schedules import SCHEDULES


def schedule_refusal(plan: TrialPlan) -> str | None:
    """Why the plan's schedule cannot be fused, or None."""
    schedule = SCHEDULES[plan.knobs["lr_schedule"]]
    if schedule.per_batch:
        return (f"learning-rate schedule {schedule.name!r} is not fused: it steps every batch and cycles "
                f"momentum with the rate")
    return None


class MemberSchedule:
    def __init__(self, plan: TrialPlan, steps_per_epoch: int, resume: Mapping[str, Any] | None = None) -> None:
        placeholder = torch.nn.Parameter(torch.zeros(1))
        self.optimizer = build_optimizer([placeholder], plan.knobs)
        self.scheduler = SCHEDULES[plan.knobs["lr_schedule"]].build(
            optimizer=self.optimizer, knobs=plan.knobs, max_epochs=plan.rules.max_epochs, steps_per_epoch=steps_per_epoch)
        if resume is not None:
            self.optimizer.load_state_dict(resume["optimizer"])
            self.scheduler.load_state_dict(resume["scheduler"])

    @classmethod
    def of(cls, plan: TrialPlan, steps_per_epoch: int, resume: Mapping[str, Any] | None = None) -> MemberSchedule | None:
        """The plan's schedule, or None for a constant rate."""
        if plan.knobs["lr_schedule"] == "none":
            return None
        return cls(plan, steps_per_epoch, resume)

    @property
    def lr(self) -> float:
        """The rate of the member's next epoch."""
        return float(self.optimizer.param_groups[0]["lr"])

    def epoch_ended(self) -> None:
        with warnings.catch_warnings():
            # torch warns of a scheduler stepped before its optimiser: this one's never steps.
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)`")
            self.scheduler.step()

    def state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}
