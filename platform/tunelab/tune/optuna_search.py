"""OptunaSearch over the Spec's space, telling Optuna the truth about early-stopped trials."""

from __future__ import annotations

from typing import Any, Mapping

import optuna
from ray.tune.result import TRAINING_ITERATION
from ray.tune.search.optuna import OptunaSearch

from tunelab.metrics import TRIAL_END, epoch_rows
from tunelab.search.space import _Distribution, evaluation_order


class DefineByRun:
    """The Spec's space as an Optuna define-by-run function.

    A conditional parameter is only sampled when its condition holds, so it is absent
    from the config (and from Optuna's view of the trial) otherwise. A class, not a
    closure: Ray pickles the searcher, and this with it, to resume a study.
    """

    def __init__(self, space: Mapping[str, _Distribution]) -> None:
        self.space = dict(space)
        self.order = evaluation_order(space)

    def __call__(self, trial: optuna.Trial) -> None:
        chosen: dict[str, Any] = {}
        for name in self.order:
            dist = self.space[name]
            if dist.applies(chosen):
                chosen[name] = dist.suggest(trial, name)


class StudySearch(OptunaSearch):
    """Ray's OptunaSearch, except for trials the scheduler stopped, and with every epoch.

    Ray tells Optuna a stopped trial is COMPLETE with its last, early value: an unconverged
    loss that TPE would treat like a finished result. We tell Optuna it was PRUNED instead,
    with its per-epoch values as intermediate values, so TPE ranks it below every finished
    trial and by how far it got, which is how Optuna treats trials its own pruners stop.
    A trial that ended on its own (completed, patience, diverged) says so in `trial_end`.

    With several objectives Optuna gets, when a trial ends on its own, each objective's value
    (the trial's `objective_<metric>` figures), and no intermediate values: Optuna's
    multi-objective studies keep none. A stopped trial is PRUNED there too.

    Ray hands the searcher no result for the report on which a trial ends (its own end, or
    the scheduler's stop at a rung): those epochs reach Optuna when the trial completes.
    Without them a trial stopped at epoch 5 would tell Optuna it got to epoch 4 or 3.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last_epoch: dict[str, int] = {}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if self.is_multi_objective:
            return  # Optuna keeps no intermediate values in a multi-objective study (Trial.report refuses)
        # Optuna's intermediate values are per epoch; one report may carry several epochs.
        for row in epoch_rows(result):
            if self.metric not in row or row.get("epoch", 0) <= self._last_epoch.get(trial_id, 0):
                continue
            super().on_trial_result(trial_id, {self.metric: row[self.metric], TRAINING_ITERATION: row["epoch"]})
            self._last_epoch[trial_id] = row["epoch"]

    @property
    def is_multi_objective(self) -> bool:
        """Several objectives: `metric` is the list of the trial's final `objective_<metric>` values."""
        return isinstance(self.metric, list)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        if result is not None and not error and trial_id in self._ot_trials:
            self.on_trial_result(trial_id, result)
        self._last_epoch.pop(trial_id, None)
        stopped_by_scheduler = not error and result is not None and TRIAL_END not in result
        if stopped_by_scheduler:
            # With no result and no error, OptunaSearch records the trial as PRUNED.
            super().on_trial_complete(trial_id, result=None, error=False)
        elif self.is_multi_objective and result is not None and any(result.get(name) is None for name in self.metric):
            # A list with a gap would be refused by Optuna and leave the trial RUNNING there forever.
            super().on_trial_complete(trial_id, result=None, error=True)
        else:
            super().on_trial_complete(trial_id, result=result, error=error)
