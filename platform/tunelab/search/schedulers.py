"""Schedulers: when a trial is stopped before max_epochs. Each builds one Ray Tune scheduler."""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

from tunelab_models.params import Param

from tunelab.strategy import NameRegistry, Strategy

if TYPE_CHECKING:
    from ray.tune.schedulers import TrialScheduler


class Scheduler(Strategy):
    # Whether it can run a multi-objective study by judging trials on the primary objective
    # alone. A scheduler that needs every objective (or none) to compare trials says False.
    judges_a_primary_objective: ClassVar[bool] = False

    @abstractmethod
    def build(self, *, max_epochs: int, options: Mapping[str, Any]) -> TrialScheduler:
        """The Ray Tune scheduler (Ray is imported here, not when the name is checked)."""

    def rung_epochs(self, max_epochs: int, options: Mapping[str, Any]) -> list[int]:
        """Epochs at which this scheduler may stop a trial: trials report them at once, and
        the curves mark them."""
        return []

    def problems(self, max_epochs: int, options: Mapping[str, Any]) -> dict[str, str]:
        """Option name -> what is wrong with it, given the study's max_epochs."""
        return {}


def grace_period_problems(max_epochs: int, grace_period: int) -> dict[str, str]:
    """A grace period of max_epochs or more means the scheduler can never stop a trial."""
    if grace_period >= max_epochs:
        return {"grace_period": f"expected fewer than train.max_epochs ({max_epochs}), got {grace_period}"}
    return {}


class ASHA(Scheduler):
    """Asynchronous successive halving: at each rung keep the best 1/reduction_factor.

    The defaults judge a trial first after an eighth of its epochs, then keep the better half
    at each rung. Judged earlier, curves have barely begun: configurations that learn slowly
    but end best are stopped (bench/asha_replay.py on MNIST-1D; the runs that chose these
    defaults are in bench/RESULTS.md).
    """

    name = "asha"
    judges_a_primary_objective = True
    options = (
        Param("grace_period", int, "auto", "epochs every trial gets before it can be stopped; auto: an eighth of "
              "max_epochs", low=1, high=1_000_000, also=("auto",)),
        Param("reduction_factor", float, 2.0, "keep the best 1/reduction_factor at each rung", low=1.01, high=100),
    )

    @staticmethod
    def grace_period(max_epochs: int, options: Mapping[str, Any]) -> int:
        given = options["grace_period"]
        return max(1, math.ceil(max_epochs / 8)) if given == "auto" else int(given)

    def build(self, *, max_epochs, options):  # type: ignore[no-untyped-def]
        from ray.tune.schedulers import ASHAScheduler

        # metric/mode deliberately not set here: with OptunaSearch they go on the searcher
        # and TuneConfig only (Ray refuses them in both places).
        # Epochs, not reports: a report may carry several short epochs.
        return ASHAScheduler(
            time_attr="epoch",
            max_t=max_epochs,
            grace_period=self.grace_period(max_epochs, options),
            reduction_factor=options["reduction_factor"],
        )

    def rung_epochs(self, max_epochs, options):  # type: ignore[no-untyped-def]
        # Ray's milestones are grace_period * reduction_factor**k, floats for a non-integer
        # factor. A trial is judged at its first epoch >= a milestone, at most once per epoch:
        # two milestones between the same two epochs are judged at consecutive epochs.
        grace_period = self.grace_period(max_epochs, options)
        rungs: list[int] = []
        k = 0
        while (milestone := grace_period * options["reduction_factor"] ** k) < max_epochs:
            epoch = max(math.ceil(milestone), rungs[-1] + 1 if rungs else 1)
            if epoch >= max_epochs:
                break
            rungs.append(epoch)
            k += 1
        return rungs

    def problems(self, max_epochs, options):  # type: ignore[no-untyped-def]
        if options["grace_period"] == "auto":
            return {}  # an eighth of max_epochs is always fewer (with one epoch, no rung at all)
        return grace_period_problems(max_epochs, options["grace_period"])


class MedianStopping(Scheduler):
    """Stop a trial whose best result is worse than the median of others at the same epoch."""

    name = "median"
    judges_a_primary_objective = True
    options = (
        Param("grace_period", int, 1, "epochs before a trial can be stopped", low=1, high=1_000_000),
        Param("min_samples_required", int, 3, "trials needed to compute a median", low=1, high=1_000_000),
    )

    def build(self, *, max_epochs, options):  # type: ignore[no-untyped-def]
        from ray.tune.schedulers import MedianStoppingRule

        # Ray's default time_attr counts wall-clock seconds (60 s grace): count epochs instead.
        return MedianStoppingRule(
            time_attr="epoch",
            grace_period=options["grace_period"],
            min_samples_required=options["min_samples_required"],
        )

    def rung_epochs(self, max_epochs, options):  # type: ignore[no-untyped-def]
        return list(range(options["grace_period"], max_epochs))

    def problems(self, max_epochs, options):  # type: ignore[no-untyped-def]
        return grace_period_problems(max_epochs, options["grace_period"])


class NoScheduler(Scheduler):
    name = "none"
    judges_a_primary_objective = True  # judges nothing: every trial runs to its own end

    def build(self, *, max_epochs, options):  # type: ignore[no-untyped-def]
        from ray.tune.schedulers import FIFOScheduler

        return FIFOScheduler()


SCHEDULERS: NameRegistry[Scheduler] = NameRegistry("scheduler")
for _scheduler in (ASHA(), MedianStopping(), NoScheduler()):
    SCHEDULERS.register(_scheduler)
