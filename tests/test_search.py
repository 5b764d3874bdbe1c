"""Searchers (Optuna samplers over the Spec's space), schedulers, and StudySearch."""

from __future__ import annotations

import itertools
import math
import warnings
from types import SimpleNamespace
from typing import Any, Callable, Mapping

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule
from ray.tune.schedulers.async_hyperband import _Bracket

from tunelab.tune.optuna_search import DefineByRun, StudySearch
from tunelab.search.schedulers import ASHA, SCHEDULERS, MedianStopping, NoScheduler
from tunelab.search.searchers import SEARCHERS, GridSearcher
from tunelab.search.space import Choice, IntRange, LogUniform, Uniform, _Distribution, evaluation_order
from tunelab_models import resolve_params

optuna.logging.set_verbosity(optuna.logging.WARNING)

Space = dict[str, _Distribution]


def mixed_space() -> Space:
    """Every distribution type; momentum is listed before the optimizer it depends on."""
    return {
        "momentum": Uniform(type="uniform", low=0, high=0.9, when={"optimizer": "sgd"}),
        "learning_rate": LogUniform(type="loguniform", low=1e-4, high=1e-1),
        "optimizer": Choice(type="choice", values=["sgd", "adam"]),
        "depth": IntRange(type="int", low=1, high=4),
        "dropout": Uniform(type="uniform", low=0.1, high=0.7, step=0.2),
        "width": IntRange(type="int", low=8, high=256, log=True),
    }


def objective_value(params: Mapping[str, Any]) -> float:
    """A deterministic loss with a known optimum (lr 1e-2, depth 2, adam)."""
    value = (math.log10(params["learning_rate"]) + 2) ** 2 + (params["depth"] - 2) ** 2
    value += params.get("momentum", 0.0) + (0.5 if params["optimizer"] == "sgd" else 0.0)
    return value + params["dropout"] + math.log2(params["width"]) / 10


def run_study(
    space: Space, sampler: optuna.samplers.BaseSampler, trials: int, objective: Callable[[Mapping[str, Any]], float]
) -> optuna.Study:
    """Real Optuna: DefineByRun samples each trial's config, `objective` scores it."""
    sample = DefineByRun(space)

    def evaluate(trial: optuna.Trial) -> float:
        sample(trial)
        return objective(trial.params)

    study = optuna.create_study(direction="minimize", sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. CMA-ES/QMC falling back to independent sampling
        study.optimize(evaluate, n_trials=trials)
    return study


def default_options(searcher_name: str, **given: Any) -> dict[str, Any]:
    return resolve_params(SEARCHERS[searcher_name].options, given)


def build_sampler(
    searcher_name: str, space: Space, seed: int | None, budgets: tuple[int, ...] = (40,), **options: Any
) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # QMCSampler
        return SEARCHERS[searcher_name].build(space=space, seed=seed, options=default_options(searcher_name, **options),
                                             budgets=budgets)


def on_step_lattice(value: float, low: float, step: float) -> bool:
    return abs((value - low) / step - round((value - low) / step)) < 1e-9


def assert_respects_mixed_space(trial: FrozenTrial) -> None:
    params = trial.params
    assert 1e-4 <= params["learning_rate"] <= 1e-1
    assert trial.distributions["learning_rate"].log
    assert params["optimizer"] in ("sgd", "adam")
    assert type(params["depth"]) is int and 1 <= params["depth"] <= 4
    assert 0.1 <= params["dropout"] <= 0.7 and on_step_lattice(params["dropout"], 0.1, 0.2)
    assert type(params["width"]) is int and 8 <= params["width"] <= 256
    assert trial.distributions["width"].log
    if params["optimizer"] == "sgd":
        assert 0 <= params["momentum"] <= 0.9
    else:
        assert "momentum" not in params


# --- every searcher over a conditional space ----------------------------------------------


@pytest.mark.parametrize("searcher_name", sorted(SEARCHERS))
def test_every_searcher_samples_within_the_space(searcher_name: str) -> None:
    space = mixed_space()
    sampler = build_sampler(searcher_name, space, seed=0)
    study = run_study(space, sampler, trials=12, objective=objective_value)
    assert len(study.trials) == 12
    assert all(trial.state == TrialState.COMPLETE for trial in study.trials)
    for trial in study.trials:
        assert_respects_mixed_space(trial)
    assert len({tuple(sorted(trial.params.items())) for trial in study.trials}) > 1


def test_loguniform_is_sampled_on_a_log_scale() -> None:
    space = {"learning_rate": LogUniform(type="loguniform", low=1e-4, high=1e-1)}
    study = run_study(space, build_sampler("random", space, seed=1), trials=400, objective=lambda p: 0.0)
    rates = [trial.params["learning_rate"] for trial in study.trials]
    # Half the draws below the geometric midpoint (10^-2.5); a linear scale would put ~3% there.
    below_midpoint = sum(rate < 10**-2.5 for rate in rates) / len(rates)
    assert 0.4 < below_midpoint < 0.6
    assert sum(rate < 1e-3 for rate in rates) / len(rates) == pytest.approx(1 / 3, abs=0.08)


# --- conditions ---------------------------------------------------------------------------


def conditional_chain() -> Space:
    """nesterov only with sgd; dampening only when nesterov is off (so only with sgd too)."""
    return {
        "dampening": Uniform(type="uniform", low=0.0, high=0.5, when={"nesterov": False}),
        "nesterov": Choice(type="choice", values=[True, False], when={"optimizer": "sgd"}),
        "optimizer": Choice(type="choice", values=["sgd", "adam", "rmsprop"]),
        "beta": Uniform(type="uniform", low=0.8, high=0.99, when={"optimizer": ["adam", "rmsprop"]}),
    }


def test_a_conditional_parameter_is_present_exactly_when_its_condition_holds() -> None:
    space = conditional_chain()
    study = run_study(space, build_sampler("random", space, seed=3), trials=300, objective=lambda p: 0.0)
    optimizers = [trial.params["optimizer"] for trial in study.trials]
    assert min(optimizers.count(name) for name in ("sgd", "adam", "rmsprop")) >= 50
    for trial in study.trials:
        params = trial.params
        sgd = params["optimizer"] == "sgd"
        assert ("nesterov" in params) == sgd
        assert ("beta" in params) == (not sgd)
        assert ("dampening" in params) == (sgd and params["nesterov"] is False)
    assert any("dampening" in trial.params for trial in study.trials)


def test_evaluation_order_puts_parents_before_children() -> None:
    order = evaluation_order(conditional_chain())
    assert sorted(order) == sorted(conditional_chain())
    assert order.index("optimizer") < order.index("nesterov") < order.index("dampening")
    assert order.index("optimizer") < order.index("beta")
    assert evaluation_order(mixed_space()).index("optimizer") < evaluation_order(mixed_space()).index("momentum")


def test_evaluation_order_keeps_file_order_for_independent_parameters() -> None:
    space = {name: Uniform(type="uniform", low=0, high=1) for name in ("c", "a", "b")}
    assert evaluation_order(space) == ["c", "a", "b"]


def test_conditions_that_form_a_cycle_are_refused() -> None:
    space: Space = {
        "a": Choice(type="choice", values=["x", "y"], when={"b": "x"}),
        "b": Choice(type="choice", values=["x", "y"], when={"a": "x"}),
    }
    with pytest.raises(ValueError, match="cycle"):
        evaluation_order(space)
    with pytest.raises(ValueError, match="cycle"):
        DefineByRun(space)


# --- grid ---------------------------------------------------------------------------------


def grid_space() -> Space:
    return {
        "optimizer": Choice(type="choice", values=["sgd", "adam", "rmsprop"]),
        "depth": IntRange(type="int", low=1, high=3),
        "learning_rate": LogUniform(type="loguniform", low=1e-4, high=1e-1),
        "momentum": Uniform(type="uniform", low=0.0, high=0.9, step=0.3),
    }


def test_grid_planned_trials_without_conditions_is_the_product_of_grid_sizes() -> None:
    searcher = GridSearcher()
    # 3 choices x 3 integers x 4 resolution points x 4 steps (0, 0.3, 0.6, 0.9).
    assert searcher.planned_trials(grid_space(), {"resolution": 4}) == 3 * 3 * 4 * 4
    assert searcher.planned_trials(grid_space(), {"resolution": 2}) == 3 * 3 * 2 * 4


def test_grid_visits_every_combination_exactly_once() -> None:
    space = grid_space()
    options = default_options("grid", resolution=4)
    planned = GridSearcher().planned_trials(space, options)
    study = run_study(space, build_sampler("grid", space, seed=0, resolution=4), trials=planned, objective=lambda p: 0.0)

    visited = [tuple(trial.params[name] for name in space) for trial in study.trials]
    assert len(visited) == planned
    assert len(set(visited)) == planned
    grid = GridSearcher().grid(space, options)
    assert set(visited) == set(itertools.product(*(grid[name] for name in space)))
    assert grid["learning_rate"][0] == pytest.approx(1e-4) and grid["learning_rate"][-1] == pytest.approx(1e-1)
    assert [round(value, 12) for value in grid["momentum"]] == [0.0, 0.3, 0.6, 0.9]


def test_a_space_without_conditions_keeps_optunas_grid_order_for_a_seed() -> None:
    """Studies that ran before conditional grids existed get the same trials in the same order."""
    space = grid_space()
    grid = GridSearcher().grid(space, default_options("grid", resolution=3))
    ours = run_study(space, build_sampler("grid", space, seed=7, resolution=3), trials=20, objective=lambda p: 0.0)
    optunas = run_study(space, optuna.samplers.GridSampler(grid, seed=7), trials=20, objective=lambda p: 0.0)
    assert [trial.params for trial in ours.trials] == [trial.params for trial in optunas.trials]


def test_a_grid_crosses_a_conditional_parameter_only_with_the_values_it_exists_under() -> None:
    space = conditional_chain()
    options = default_options("grid", resolution=4)
    grid = GridSearcher().grid(space, options)
    expected = {("adam", beta) for beta in grid["beta"]} | {("rmsprop", beta) for beta in grid["beta"]}
    expected |= {("sgd", True)} | {("sgd", False, dampening) for dampening in grid["dampening"]}
    planned = GridSearcher().planned_trials(space, options)
    assert planned == len(expected) == 1 + 3 * 4  # Optuna's product would be 3 x 2 x 4 x 4 = 96

    # More trials allowed than the grid has: the sampler stops the study once every point ran.
    study = run_study(space, build_sampler("grid", space, seed=0, resolution=4), trials=planned + 10, objective=lambda p: 0.0)
    visited = [tuple(trial.params[name] for name in ("optimizer", "nesterov", "dampening", "beta") if name in trial.params)
               for trial in study.trials]
    assert len(visited) == planned
    assert set(visited) == expected


def test_a_grid_too_large_to_list_is_counted_without_listing_it() -> None:
    space: Space = {name: Uniform(type="uniform", low=0.0, high=1.0) for name in ("a", "b", "c", "d")}
    space["kind"] = Choice(type="choice", values=["x", "y"])
    space["e"] = Uniform(type="uniform", low=0.0, high=1.0, when={"kind": "x"})
    assert GridSearcher().planned_trials(space, {"resolution": 1000}) == 1000**4 * (1000 + 1)


def test_grid_points_of_a_stepped_range_stay_within_its_bounds() -> None:
    stepped = Uniform(type="uniform", low=0.1, high=0.7, step=0.2)
    values = stepped.grid_values(resolution=5)
    assert len(values) == 4
    assert all(0.1 <= value <= 0.7 for value in values)


# --- seeds --------------------------------------------------------------------------------


def sampled_configs(searcher_name: str, seed: int, **options: Any) -> list[dict[str, Any]]:
    space = mixed_space()
    study = run_study(space, build_sampler(searcher_name, space, seed, **options), trials=12, objective=objective_value)
    return [trial.params for trial in study.trials]


@pytest.mark.parametrize(
    ("searcher_name", "options"), [("random", {}), ("tpe", {"n_startup_trials": 4}), ("bohb", {"n_startup_trials": 4})]
)
def test_a_seed_makes_the_search_reproducible(searcher_name: str, options: dict[str, Any]) -> None:
    first = sampled_configs(searcher_name, seed=7, **options)
    assert sampled_configs(searcher_name, seed=7, **options) == first
    assert sampled_configs(searcher_name, seed=8, **options) != first


def test_tpe_moves_towards_good_regions_after_its_startup_trials() -> None:
    space = mixed_space()
    sampler = build_sampler("tpe", space, seed=0, n_startup_trials=8)
    study = run_study(space, sampler, trials=40, objective=objective_value)
    values = [trial.value for trial in study.trials]
    startup, modelled = values[:8], values[8:]
    assert sorted(modelled)[len(modelled) // 2] < sorted(startup)[len(startup) // 2]


# --- schedulers ---------------------------------------------------------------------------


def ray_rung_epochs(scheduler: ASHAScheduler, max_epochs: int) -> list[int]:
    """Epochs at which Ray's ASHA bracket judges a trial that reports every epoch."""
    (bracket,) = scheduler._brackets
    assert isinstance(bracket, _Bracket)
    trial = SimpleNamespace(trial_id="t")
    decided, judged = [], 0
    for epoch in range(1, max_epochs):
        bracket.on_result(trial, epoch, 1.0)
        recorded = sum("t" in rung for _, rung in bracket._rungs)
        if recorded > judged:
            decided.append(epoch)
            judged = recorded
    return decided


def test_asha_rungs_for_a_classic_setting() -> None:
    assert ASHA().rung_epochs(27, {"grace_period": 3, "reduction_factor": 3}) == [3, 9]


@pytest.mark.parametrize(
    ("max_epochs", "grace_period", "reduction_factor"),
    [(27, 3, 3.0), (27, 1, 3.0), (20, 2, 2.0), (100, 1, 4.0), (20, 1, 1.5), (30, 2, 2.5), (12, 1, 1.3), (10, 1, 1.01), (50, 3, 1.7)],
)
def test_asha_rungs_are_the_epochs_at_which_ray_judges_a_trial(
    max_epochs: int, grace_period: int, reduction_factor: float
) -> None:
    options = {"grace_period": grace_period, "reduction_factor": reduction_factor}
    scheduler = ASHA().build(max_epochs=max_epochs, options=options)
    rungs = ASHA().rung_epochs(max_epochs, options)
    assert rungs == sorted(set(rungs)), "rungs must be distinct and increasing"
    assert rungs == ray_rung_epochs(scheduler, max_epochs)


@pytest.mark.parametrize(("max_epochs", "grace_period", "rungs"), [(40, 5, [5, 10, 20]), (100, 13, [13, 26, 52]),
                                                                  (8, 1, [1, 2, 4]), (3, 1, [1, 2]), (1, 1, [])])
def test_asha_by_default_judges_after_an_eighth_of_the_epochs_and_keeps_the_better_half(
    max_epochs: int, grace_period: int, rungs: list[int]
) -> None:
    options = resolve_params(ASHA.options, {})
    scheduler = ASHA().build(max_epochs=max_epochs, options=options)
    assert ASHA.grace_period(max_epochs, options) == grace_period and options["reduction_factor"] == 2
    assert ASHA().rung_epochs(max_epochs, options) == rungs == ray_rung_epochs(scheduler, max_epochs)
    assert ASHA().problems(max_epochs, options) == {}, "the default grace period always fits"


def test_asha_counts_epochs_not_reports() -> None:
    scheduler = ASHA().build(max_epochs=27, options={"grace_period": 3, "reduction_factor": 3.0})
    assert isinstance(scheduler, ASHAScheduler)
    assert scheduler._time_attr == "epoch"
    assert scheduler._max_t == 27


@pytest.mark.parametrize("scheduler", [ASHA(), MedianStopping()], ids=lambda s: s.name)
def test_a_grace_period_of_max_epochs_or_more_is_a_problem(scheduler: ASHA | MedianStopping) -> None:
    options = resolve_params(scheduler.options, {})
    for grace_period in (10, 11):
        problems = scheduler.problems(10, {**options, "grace_period": grace_period})
        assert list(problems) == ["grace_period"]
        assert "fewer than train.max_epochs (10)" in problems["grace_period"]
        assert str(grace_period) in problems["grace_period"]
    assert scheduler.problems(10, {**options, "grace_period": 9}) == {}


def test_median_stopping_counts_epochs_not_seconds() -> None:
    scheduler = MedianStopping().build(max_epochs=10, options={"grace_period": 2, "min_samples_required": 4})
    assert isinstance(scheduler, MedianStoppingRule)
    assert scheduler._time_attr == "epoch"
    assert scheduler._grace_period == 2
    assert scheduler._min_samples_required == 4
    assert MedianStopping().rung_epochs(6, {"grace_period": 2, "min_samples_required": 4}) == [2, 3, 4, 5]


def test_no_scheduler_never_stops_a_trial() -> None:
    assert isinstance(NoScheduler().build(max_epochs=10, options={}), FIFOScheduler)
    assert NoScheduler().rung_epochs(10, {}) == []
    assert set(SCHEDULERS) == {"asha", "median", "none"}


# --- StudySearch: what Optuna learns from each way a trial ends ---------------------------


def study_search(space: Space | None = None) -> StudySearch:
    return StudySearch(
        space=DefineByRun(space or mixed_space()),
        metric="val_loss",
        mode="min",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )


def optuna_trial(search: StudySearch, number: int = 0) -> FrozenTrial:
    return search._ot_study.trials[number]


def test_study_search_suggests_a_config_from_the_define_by_run_space() -> None:
    search = study_search()
    configs = [search.suggest(f"t{index}") for index in range(20)]
    for index, config in enumerate(configs):
        assert config == optuna_trial(search, index).params
        assert ("momentum" in config) == (config["optimizer"] == "sgd")


def test_a_trial_stopped_by_the_scheduler_is_pruned_with_its_reports_kept() -> None:
    search = study_search()
    search.suggest("t1")
    search.on_trial_result("t1", {"val_loss": 0.7, "epoch": 1})
    search.on_trial_result("t1", {"val_loss": 0.5, "epoch": 2})
    search.on_trial_complete("t1", result={"val_loss": 0.5, "epoch": 2})

    trial = optuna_trial(search)
    assert trial.state == TrialState.PRUNED
    assert trial.intermediate_values == {1: 0.7, 2: 0.5}


def test_the_report_on_which_the_scheduler_stops_a_trial_still_reaches_optuna() -> None:
    # Ray passes the searcher no on_trial_result for a result its scheduler answers with STOP
    # (tune_controller: "Only updating search alg if the trial is not to be stopped"): the
    # rung epoch arrives only with on_trial_complete.
    search = study_search()
    search.suggest("t1")
    search.on_trial_result("t1", {"val_loss": 0.9, "epoch": 3})
    rows = [{"epoch": 4, "val_loss": 0.8}, {"epoch": 5, "val_loss": 0.7}]
    search.on_trial_complete("t1", result={"val_loss": 0.7, "epoch": 5, "epoch_rows": rows})

    trial = optuna_trial(search)
    assert trial.state == TrialState.PRUNED
    assert trial.intermediate_values == {3: 0.9, 4: 0.8, 5: 0.7}, "stopped at epoch 5, and Optuna knows it"


def test_a_trial_that_ran_to_the_end_gives_optuna_its_last_epoch_once() -> None:
    search = study_search()
    search.suggest("t1")
    search.on_trial_result("t1", {"val_loss": 0.5, "epoch": 1})
    search.on_trial_result("t1", {"val_loss": 0.4, "epoch": 2})
    search.on_trial_complete("t1", result={"val_loss": 0.3, "epoch": 3, "trial_end": "completed"})
    assert optuna_trial(search).intermediate_values == {1: 0.5, 2: 0.4, 3: 0.3}


def test_a_report_carrying_several_epochs_gives_optuna_each_of_them() -> None:
    search = study_search()
    search.suggest("t1")
    rows = [{"epoch": 1, "val_loss": 0.9}, {"epoch": 2, "val_loss": 0.6}, {"epoch": 3, "val_loss": 0.4}]
    search.on_trial_result("t1", {"val_loss": 0.4, "epoch": 3, "epoch_rows": rows})
    assert optuna_trial(search).intermediate_values == {1: 0.9, 2: 0.6, 3: 0.4}


def test_a_trial_that_ended_on_its_own_is_complete_with_its_value() -> None:
    search = study_search()
    search.suggest("t1")
    search.on_trial_result("t1", {"val_loss": 0.5, "epoch": 1})
    search.on_trial_complete("t1", result={"val_loss": 0.25, "epoch": 2, "trial_end": "completed"})

    trial = optuna_trial(search)
    assert trial.state == TrialState.COMPLETE
    assert trial.value == 0.25


@pytest.mark.parametrize("trial_end", ["early_stopped_patience", "diverged"])
def test_patience_and_divergence_count_as_ended_on_their_own(trial_end: str) -> None:
    search = study_search()
    search.suggest("t1")
    search.on_trial_complete("t1", result={"val_loss": 0.9, "epoch": 3, "trial_end": trial_end})
    assert optuna_trial(search).state == TrialState.COMPLETE
    assert optuna_trial(search).value == 0.9


def test_an_errored_trial_is_failed() -> None:
    search = study_search()
    search.suggest("t1")
    search.on_trial_result("t1", {"val_loss": 0.5, "epoch": 1})
    search.on_trial_complete("t1", error=True)

    trial = optuna_trial(search)
    assert trial.state == TrialState.FAIL
    assert trial.value is None


def test_optuna_ranks_a_pruned_trial_below_completed_ones() -> None:
    search = study_search()
    for trial_id, value, ended in (("t1", 0.1, False), ("t2", 0.4, True), ("t3", 0.3, True)):
        search.suggest(trial_id)
        search.on_trial_result(trial_id, {"val_loss": value, "epoch": 1})
        result = {"val_loss": value, "epoch": 1, **({"trial_end": "completed"} if ended else {})}
        search.on_trial_complete(trial_id, result=result)
    # The pruned trial's early 0.1 does not become the study's best.
    assert search._ot_study.best_trial.number == 2
    assert search._ot_study.best_value == 0.3
