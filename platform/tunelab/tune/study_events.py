"""Ray Tune's order of calls for a study's events, for the drivers that are not Ray Tune's own
loop: the simulator (replayed curves) and a fused study (members of fused cohorts).

For a result the scheduler decides first; a trial that goes on tells the searcher; then the
callbacks see the result. A trial that ends, on its own or stopped by the scheduler, completes
with the searcher, the scheduler and the callbacks, in that order. What reads a trial reads its
`trial_id`, `config`, `last_result` and `error_file` (see `StudyTrial`).
"""

from __future__ import annotations

from typing import Any, Protocol

from tunelab.metrics import TRIAL_END
from tunelab.store.schema import REACHED_GOAL
from tunelab.tune.tuner import StudyParts


class StudyTrial(Protocol):
    trial_id: str
    config: dict[str, Any]
    last_result: dict[str, Any]
    error_file: str | None


class StudyEvents:
    """The study's searcher, scheduler and callbacks, called as Ray Tune calls them."""

    def __init__(self, parts: StudyParts, trials: list[Any]) -> None:
        self.parts = parts
        self.trials = trials  # every trial of the study, in the order they started: what callbacks are shown

    def begin(self) -> None:
        self.parts.scheduler.set_search_properties(self.parts.metric, self.parts.mode)
        for callback in self.parts.callbacks:
            callback.setup()
        for callback in self.parts.callbacks:
            callback.on_step_begin(0, self.trials)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        """The searcher's next configuration, or None when it has no more (or none yet)."""
        from ray.tune.search import Searcher

        config = self.parts.search.suggest(trial_id)
        return None if config is None or config == Searcher.FINISHED else dict(config)

    def started(self, trial: StudyTrial, *, new: bool = True) -> None:
        """`new`: False for a trial that continues (after a resume), which the scheduler knows."""
        if new:
            self.parts.scheduler.on_trial_add(None, trial)
        for callback in self.parts.callbacks:
            callback.on_trial_start(0, self.trials, trial)

    def result(self, trial: StudyTrial, result: dict[str, Any]) -> bool:
        """Tell the study one result of the trial; True when the trial ends with it."""
        from ray.tune.schedulers import TrialScheduler

        trial.last_result = result
        decision = self.parts.scheduler.on_trial_result(None, trial, result)
        ended = TRIAL_END in result or decision == TrialScheduler.STOP
        if not ended:
            self.parts.search.on_trial_result(trial.trial_id, result)
        for callback in self.parts.callbacks:
            callback.on_trial_result(0, self.trials, trial, result)
        return ended

    def completed(self, trial: StudyTrial) -> bool:
        """The trial ended with its last result; True when it reached the study's goal, which
        ends the study (as `GoalStopper` ends a Ray Tune study)."""
        result = trial.last_result
        self.parts.search.on_trial_complete(trial.trial_id, result)
        self.parts.scheduler.on_trial_complete(None, trial, result)
        for callback in self.parts.callbacks:
            callback.on_trial_complete(0, self.trials, trial)
        return result.get(TRIAL_END) == REACHED_GOAL

    def recovered(self, trial: StudyTrial) -> None:
        """The trial failed and starts again from its saved state (its `error_file` says why)."""
        for callback in self.parts.callbacks:
            callback.on_trial_recover(0, self.trials, trial)

    def errored(self, trial: StudyTrial) -> None:
        """The trial failed for good (its `error_file` says why)."""
        self.parts.search.on_trial_complete(trial.trial_id, None, error=True)
        self.parts.scheduler.on_trial_error(None, trial)
        for callback in self.parts.callbacks:
            callback.on_trial_error(0, self.trials, trial)

    def step_ended(self) -> None:
        for callback in self.parts.callbacks:
            callback.on_step_end(0, self.trials)

    def end(self) -> None:
        for callback in self.parts.callbacks:
            callback.on_experiment_end(self.trials)
