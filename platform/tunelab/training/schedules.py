"""Learning-rate schedules by name. Each knows whether it steps per batch or per epoch."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from tunelab.strategy import NameRegistry, Strategy

if TYPE_CHECKING:
    import torch
    from torch.optim.lr_scheduler import LRScheduler


class Schedule(Strategy):
    per_batch: ClassVar[bool] = False  # stepped after every batch, else after every epoch
    cycles_momentum: ClassVar[bool] = False  # needs an optimiser with a momentum (or Adam's beta1)

    @abstractmethod
    def build(
        self, *, optimizer: torch.optim.Optimizer, knobs: Mapping[str, Any], max_epochs: int, steps_per_epoch: int
    ) -> LRScheduler | None:
        """The torch scheduler, or None for a constant rate (torch is imported here)."""


class Constant(Schedule):
    name = "none"

    def build(self, *, optimizer, knobs, max_epochs, steps_per_epoch):  # type: ignore[no-untyped-def]
        return None


class Step(Schedule):
    """Multiply the rate by lr_gamma every lr_step_size epochs."""

    name = "step"

    def build(self, *, optimizer, knobs, max_epochs, steps_per_epoch):  # type: ignore[no-untyped-def]
        from torch.optim.lr_scheduler import StepLR

        return StepLR(optimizer, step_size=knobs["lr_step_size"], gamma=knobs["lr_gamma"])


class Cosine(Schedule):
    """Cosine decay from learning_rate towards 0 over max_epochs."""

    name = "cosine"

    def build(self, *, optimizer, knobs, max_epochs, steps_per_epoch):  # type: ignore[no-untyped-def]
        from torch.optim.lr_scheduler import CosineAnnealingLR

        return CosineAnnealingLR(optimizer, T_max=max_epochs)


class OneCycle(Schedule):
    """Warm up to learning_rate, then anneal, over the whole run (stepped every batch)."""

    name = "onecycle"
    per_batch = True
    cycles_momentum = True

    def build(self, *, optimizer, knobs, max_epochs, steps_per_epoch):  # type: ignore[no-untyped-def]
        from torch.optim.lr_scheduler import OneCycleLR

        return OneCycleLR(optimizer, max_lr=knobs["learning_rate"], total_steps=max_epochs * steps_per_epoch)


SCHEDULES: NameRegistry[Schedule] = NameRegistry("learning-rate schedule")
for _schedule in (Constant(), Step(), Cosine(), OneCycle()):
    SCHEDULES.register(_schedule)
