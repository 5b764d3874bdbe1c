"""TPE that compares trials at the same epoch: BOHB's model rule on Optuna's TPE.

With ASHA, most trials stop at a rung. Plain TPE ranks every trial that ran to the end above
every stopped one, counts only finished trials, and models nothing until ten have finished.
This sampler instead fits TPE on the trials' results at one budget — the largest epoch count
(a rung or max_epochs) that enough trials have reached, running ones included — each trial
judged by its best value up to that epoch (Falkner et al., 2018, "BOHB: Robust and
Efficient Hyperparameter Optimization at Scale"). It starts modelling as soon as enough trials
have reached the first rung, which with ASHA comes long before they have finished.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Iterable, Sequence

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, RandomSampler, TPESampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState, create_trial


class RungTPESampler(BaseSampler):
    """TPE over the trials' values at the deepest budget that `n_startup_trials` reached.

    `budgets` are the epochs at which trials are compared: the scheduler's rungs and
    max_epochs. Before `n_startup_trials` trials have reached the first budget, configurations
    are drawn at random — the very draws of `RandomSampler(seed)`, so a study pairs with a
    random search of the same seed. After that, TPE sees a copy of the study in which:
    a trial that reached the chosen budget is COMPLETE with its best value up to it; a trial
    that ended on its own before it (patience, divergence) is COMPLETE with its final value,
    which more epochs would not have changed; a trial stopped before it is PRUNED, ranked by
    how far it got; a running trial that has not reached it is PRUNED with no values, so TPE
    counts it among the bad ones, as Optuna's constant liar does.
    """

    def __init__(self, budgets: Iterable[int], n_startup_trials: int, seed: int | None = None) -> None:
        self.budgets = sorted(set(budgets))
        if not self.budgets:
            raise ValueError("RungTPESampler needs at least one budget (max_epochs)")
        self.n_startup_trials = max(1, n_startup_trials)
        self._random = RandomSampler(seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # group=True
            # The copy of the study carries the liar (see above); TPE itself must not write
            # its shared parameters into the copy's storage.
            self._tpe = TPESampler(seed=seed, n_startup_trials=0, multivariate=True, group=True, constant_liar=False)
        self._view_for: tuple[int, Study | None] | None = None  # (trial number, its model study)

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles the searcher to resume a study; the cached copy holds a storage lock.
        state = self.__dict__.copy()
        state["_view_for"] = None
        return state

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        view = self._model_view(study, trial)
        if view is None or not search_space:
            return {}
        return self._tpe.sample_relative(view, trial, search_space)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        view = self._model_view(study, trial)
        if view is None:
            return self._random.sample_independent(study, trial, param_name, param_distribution)
        return self._tpe.sample_independent(view, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._view_for = None
        self._random.before_trial(study, trial)

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self._random.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._random.reseed_rng()
        self._tpe.reseed_rng()

    # -----------------------------------------------------------------------------------

    def model_budget(self, study: Study, exclude: int | None = None) -> int | None:
        """The budget TPE models now: the largest that `n_startup_trials` trials reached."""
        trials = self._candidates(study, exclude)
        chosen = None
        for budget in self.budgets:
            if sum(reached(t, budget) for t in trials) >= self.n_startup_trials:
                chosen = budget
        return chosen

    def _model_view(self, study: Study, current: FrozenTrial) -> Study | None:
        if self._view_for is not None and self._view_for[0] == current.number:
            return self._view_for[1]
        budget = self.model_budget(study, exclude=current.number)
        view = None if budget is None else self.study_at(study, budget, exclude=current.number)
        self._view_for = (current.number, view)
        return view

    @staticmethod
    def _candidates(study: Study, exclude: int | None) -> list[FrozenTrial]:
        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        return [t for t in study.get_trials(deepcopy=False, states=states) if t.number != exclude and t.params]

    def study_at(self, study: Study, budget: int, exclude: int | None = None) -> Study:
        """The copy of `study` TPE models at `budget` epochs (see the class docstring)."""
        maximize = study.direction == StudyDirection.MAXIMIZE
        copies = []
        for trial in self._candidates(study, exclude):
            common = {"params": trial.params, "distributions": trial.distributions}
            if trial.state == TrialState.COMPLETE and depth(trial) < budget:
                copies.append(create_trial(state=TrialState.COMPLETE, value=trial.value, **common))
            elif reached(trial, budget):
                value = best_up_to(trial, budget, maximize)
                copies.append(create_trial(state=TrialState.COMPLETE, value=value, **common))
            elif trial.state == TrialState.PRUNED:
                copies.append(create_trial(state=TrialState.PRUNED, intermediate_values=trial.intermediate_values, **common))
            else:  # running, below the budget: a bad trial until it says otherwise
                copies.append(create_trial(state=TrialState.PRUNED, **common))
        view = optuna.create_study(direction=study.direction, sampler=RandomSampler(seed=0))  # never samples
        view.add_trials(copies)
        return view


def depth(trial: FrozenTrial) -> int:
    """The last epoch a trial reported."""
    return max(trial.intermediate_values, default=0)


def reached(trial: FrozenTrial, budget: int) -> bool:
    """Whether a trial has a result at `budget` epochs: it trained that far, or it ended on
    its own with a final value (more epochs would not have changed it)."""
    if trial.state == TrialState.COMPLETE:
        return trial.value is not None
    return depth(trial) >= budget


def best_up_to(trial: FrozenTrial, budget: int, maximize: bool) -> float:
    """The trial's best value over its first `budget` epochs (its final value if it reported
    none): the study's objective is the best epoch's."""
    values = [v for step, v in trial.intermediate_values.items() if step <= budget and not math.isnan(v)]
    if not values:
        return float(trial.value) if trial.value is not None else (-math.inf if maximize else math.inf)
    return max(values) if maximize else min(values)
