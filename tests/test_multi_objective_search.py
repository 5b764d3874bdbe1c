"""The searchers that take several objectives, on Optuna multi-objective studies driven by hand as
tunelab drives them (no Ray): trials told with value lists, stopped ones PRUNED without
intermediate values, and the sampler pickled and restored as Ray does to resume a study."""

from __future__ import annotations

import pickle
import warnings

import optuna
import pytest
from optuna.trial import TrialState

from test_search import assert_respects_mixed_space, build_sampler, mixed_space
from tunelab.tune.optuna_search import DefineByRun
from tunelab.search.searchers import SEARCHERS

MULTI = sorted(name for name, searcher in SEARCHERS.items() if searcher.multi_objective)


def test_the_searchers_that_take_several_objectives_are_tpe_nsga2_and_random() -> None:
    assert MULTI == ["nsga2", "random", "tpe"]


@pytest.mark.parametrize("searcher_name", MULTI)
def test_a_multi_objective_searcher_learns_from_value_lists_beside_pruned_trials(searcher_name: str) -> None:
    space = mixed_space()
    sampler = build_sampler(searcher_name, space, seed=0, **({"population_size": 4} if searcher_name == "nsga2" else {}))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    suggest = DefineByRun(space)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # samplers' experimental and independent-sampling notes
        for number in range(24):
            trial = study.ask()
            suggest(trial)
            if number % 3 == 2:  # what tunelab tells Optuna about a trial the scheduler stopped
                study.tell(trial, state=TrialState.PRUNED)
            else:
                width, rate = trial.params["width"], trial.params["learning_rate"]
                study.tell(trial, [1.0 - abs(rate - 0.01) - 1.0 / width, float(width)])
            if number == 11:  # Ray pickles the searcher, its sampler with it, to resume a study
                study.sampler = pickle.loads(pickle.dumps(study.sampler))
    assert [t.state for t in study.trials].count(TrialState.COMPLETE) == 16
    for trial in study.trials:
        assert_respects_mixed_space(trial)
    assert study.best_trials, "Optuna finds the front among the value lists"
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) > 12
