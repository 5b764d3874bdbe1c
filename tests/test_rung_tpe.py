"""The `bohb` searcher: TPE fitted on the trials' results at the deepest rung enough reached.

Real Optuna throughout; trials are driven by hand (ask, report epochs, tell) so the tests can
hold trials running, stop them at rungs, and end them on their own, as a Ray study does.
"""

from __future__ import annotations

import math
import pickle
import warnings
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from tunelab.tune.optuna_search import DefineByRun
from tunelab.search.rung_tpe import RungTPESampler
from tunelab.search.searchers import SEARCHERS
from tunelab.search.space import Choice, IntRange, LogUniform, _Distribution
from tunelab_models import resolve_params

optuna.logging.set_verbosity(optuna.logging.WARNING)

BUDGETS = (5, 10, 20, 40)


def space() -> dict[str, _Distribution]:
    return {
        "learning_rate": LogUniform(type="loguniform", low=1e-4, high=1e-1),
        "optimizer": Choice(type="choice", values=["sgd", "adam"]),
        "depth": IntRange(type="int", low=1, high=4),
    }


def new_study(sampler: optuna.samplers.BaseSampler) -> optuna.Study:
    return optuna.create_study(direction="maximize", sampler=sampler)


def start(study: optuna.Study) -> optuna.Trial:
    trial = study.ask()
    DefineByRun(space())(trial)
    return trial


def train(trial: optuna.Trial, values: list[float], first_epoch: int = 1) -> None:
    for epoch, value in enumerate(values, start=first_epoch):
        trial.report(value, epoch)


def test_bohb_searcher_builds_the_sampler_with_the_study_budgets() -> None:
    searcher = SEARCHERS["bohb"]
    options = resolve_params(searcher.options, {})
    sampler = searcher.build(space=space(), seed=0, options=options, budgets=[5, 10, 20, 40])
    assert isinstance(sampler, RungTPESampler)
    assert sampler.budgets == [5, 10, 20, 40]
    assert sampler.n_startup_trials == len(space()) + 1, "auto: one more than the searched parameters"
    given = searcher.build(space=space(), seed=0, options=resolve_params(searcher.options, {"n_startup_trials": 3}),
                           budgets=[40])
    assert given.n_startup_trials == 3


def test_until_enough_trials_reach_the_first_rung_it_draws_what_random_search_draws() -> None:
    sampler, random = RungTPESampler(BUDGETS, n_startup_trials=4, seed=11), optuna.samplers.RandomSampler(seed=11)
    study, random_study = new_study(sampler), new_study(random)
    # Six trials running, none past epoch 4: not one has a result at the first rung.
    running = []
    for _ in range(6):
        running.append(start(study))
        train(running[-1], [0.1, 0.2, 0.3, 0.4])
        train(start(random_study), [0.1, 0.2, 0.3, 0.4])
    assert sampler.model_budget(study) is None
    assert [t.params for t in study.trials] == [t.params for t in random_study.trials]

    # Four of them (still running) reach epoch 5: the model takes over for the next trial.
    for index, trial in enumerate(running[:4]):
        trial.report(0.5 + index / 10, 5)
    assert sampler.model_budget(study) == 5
    modelled, drawn = start(study), start(random_study)
    assert modelled.params != drawn.params


def test_the_budget_is_the_deepest_one_enough_trials_reached_and_a_finished_trial_reaches_all() -> None:
    sampler = RungTPESampler(BUDGETS, n_startup_trials=3, seed=0)
    study = new_study(sampler)
    pruned_at_5 = start(study)
    train(pruned_at_5, [0.1] * 5)
    study.tell(pruned_at_5, state=TrialState.PRUNED)
    for _ in range(2):
        pruned_at_10 = start(study)
        train(pruned_at_10, [0.2] * 10)
        study.tell(pruned_at_10, state=TrialState.PRUNED)
    running = start(study)
    train(running, [0.3] * 12)
    assert sampler.model_budget(study) == 10, "three trials reached epoch 10, none reached 20"

    patience = start(study)  # ended on its own at epoch 7: more epochs would not change its result
    train(patience, [0.4] * 7)
    study.tell(patience, 0.4)
    assert sampler.model_budget(study) == 10
    for _ in range(2):
        done = start(study)
        train(done, [0.5] * 40)
        study.tell(done, 0.5)
    assert sampler.model_budget(study) == 40, "two ran to the end and one ended on its own"


def test_tpe_sees_each_trial_by_its_best_value_up_to_the_budget() -> None:
    sampler = RungTPESampler(BUDGETS, n_startup_trials=2, seed=0)
    study = new_study(sampler)
    peaked_early = start(study)  # best at epoch 3, then worse; ran to the end
    train(peaked_early, [0.2, 0.4, 0.9, 0.5, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6] + [0.7] * 30)
    study.tell(peaked_early, 0.9)
    stopped = start(study)
    train(stopped, [0.1, 0.2, 0.3, 0.3, 0.35])
    study.tell(stopped, state=TrialState.PRUNED)
    slow = start(study)  # still running at epoch 12
    train(slow, [0.1] * 9 + [0.55, 0.6, 0.8])
    just_started = start(study)
    train(just_started, [0.3, 0.3])
    patience = start(study)
    train(patience, [0.6, 0.65, 0.62])
    study.tell(patience, 0.65)

    view = sampler.study_at(study, 10)
    states = [(t.state, t.value) for t in view.trials]
    assert states[0] == (TrialState.COMPLETE, 0.9), "its best over the first 10 epochs"
    assert states[1][0] == TrialState.PRUNED and view.trials[1].intermediate_values == stopped_values(study, 1)
    assert states[2] == (TrialState.COMPLETE, 0.55), "a running trial past the budget counts with its value there"
    assert states[3][0] == TrialState.PRUNED and view.trials[3].intermediate_values == {}, "a running one below: bad"
    assert states[4] == (TrialState.COMPLETE, 0.65), "ended on its own: its final value"
    assert [t.params for t in view.trials] == [t.params for t in study.trials]


def stopped_values(study: optuna.Study, number: int) -> dict[int, float]:
    return dict(study.trials[number].intermediate_values)


def curve(params: dict[str, Any], epoch: int) -> float:
    """A learning curve whose level peaks at learning rate 1e-2, Adam, depth 2."""
    level = math.exp(-((math.log10(params["learning_rate"]) + 2) ** 2) - (params["depth"] - 2) ** 2 / 4)
    level *= 1.0 if params["optimizer"] == "adam" else 0.7
    return level * (1 - math.exp(-epoch / 8))


def successive_halving_study(sampler: optuna.samplers.BaseSampler, trials: int) -> optuna.Study:
    study = optuna.create_study(
        direction="maximize", sampler=sampler,
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=5, reduction_factor=2),
    )

    def objective(trial: optuna.Trial) -> float:
        DefineByRun(space())(trial)
        for epoch in range(1, 41):
            trial.report(curve(trial.params, epoch), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return curve(trial.params, 40)

    study.optimize(objective, n_trials=trials)
    return study


def test_after_its_startup_it_proposes_better_configurations_than_its_random_ones() -> None:
    startup = 6
    study = successive_halving_study(RungTPESampler(BUDGETS, n_startup_trials=startup, seed=0), trials=40)
    level = [curve(t.params, 40) for t in study.trials]
    drawn, modelled = level[:startup], level[startup + 4:]
    assert sorted(modelled)[len(modelled) // 2] > sorted(drawn)[len(drawn) // 2]


def test_it_pickles_mid_study_and_the_copy_proposes_what_the_original_would() -> None:
    # Ray pickles the searcher, sampler included, to resume a study.
    sampler = RungTPESampler(BUDGETS, n_startup_trials=3, seed=5)
    study = successive_halving_study(sampler, trials=10)
    copy = pickle.loads(pickle.dumps(sampler))
    copy_study = optuna.create_study(direction="maximize", sampler=copy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        copy_study.add_trials(study.trials)
    study.sampler, copy_study.sampler = sampler, copy
    assert start(study).params == start(copy_study).params


def test_it_needs_a_budget() -> None:
    with pytest.raises(ValueError, match="budget"):
        RungTPESampler([], n_startup_trials=3)
