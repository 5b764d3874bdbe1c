"""Learning-rate schedules by name. Each knows whether it steps per batch or per epoch."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, OneCycleLR, StepLR


class Schedule:
    name: ClassVar[str]
    per_batch: ClassVar[bool] = False

    def build(
        self, optimizer: torch.optim.Optimizer, knobs: Mapping[str, Any], max_epochs: int, steps_per_epoch: int
    ) -> LRScheduler | None:
        raise NotImplementedError


class Constant(Schedule):
    name = "none"

    def build(self, optimizer, knobs, max_epochs, steps_per_epoch):  # type: ignore[no-untyped-def]
        return None


class Step(Schedule):
    """Multiply the rate by lr_gamma every lr_step_size epochs."""

    name = "step"

    def build(self, optimizer, knobs, max_epochs, steps_per_epoch):  # type: ignore[no-untyped-def]
        return StepLR(optimizer, step_size=knobs["lr_step_size"], gamma=knobs["lr_gamma"])


class Cosine(Schedule):
    """Cosine decay from learning_rate towards 0 over max_epochs."""

    name = "cosine"

    def build(self, optimizer, knobs, max_epochs, steps_per_epoch):  # type: ignore[no-untyped-def]
        return CosineAnnealingLR(optimizer, T_max=max_epochs)


class OneCycle(Schedule):
    """Warm up to learning_rate, then anneal, over the whole run (stepped every batch)."""

    name = "onecycle"
    per_batch = True

    def build(self, optimizer, knobs, max_epochs, steps_per_epoch):  # type: ignore[no-untyped-def]
        return OneCycleLR(optimizer, max_lr=knobs["learning_rate"], total_steps=max_epochs * steps_per_epoch)


SCHEDULES: dict[str, Schedule] = {s.name: s for s in (Constant(), Step(), Cosine(), OneCycle())}
