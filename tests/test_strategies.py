"""The contract of every strategy family, checked for every registered entry (issue 20).

A family is an ABC with a keyword-only `build(...)` and one `NameRegistry`; a new strategy is a
new class, and these tests cover it the moment it is registered. Names and options are light
(checked without Ray, Optuna or PyTorch: tests/test_light_commands.py); `build` gives the real
library object, used here for one small step.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import replace
from typing import Any

import numpy as np
import optuna
import pytest
import torch
from ray.tune.schedulers import TrialScheduler

from tunelab.training.replicates import BIASVAR_METHODS, BiasVarMethod
from tunelab.datasets import load_splits
from tunelab.search.schedulers import SCHEDULERS, Scheduler
from tunelab.search.searchers import SEARCHERS, Searcher
from tunelab.search.space import Choice, LogUniform
from tunelab.strategy import NameRegistry, Strategy
from tunelab.training.knobs import TRAINING_KNOBS
from tunelab.training.optimizers import OPTIMIZERS, Optimizer
from tunelab.training.plan import TrainingRules, TrialPlan
from tunelab.training.schedules import SCHEDULES, Schedule
from tunelab.training.tasks import TASKS, TrainingTask
from tunelab_models import resolve_params

FAMILIES: dict[str, tuple[NameRegistry[Any], type[Strategy]]] = {
    "scheduler": (SCHEDULERS, Scheduler),
    "searcher": (SEARCHERS, Searcher),
    "optimizer": (OPTIMIZERS, Optimizer),
    "learning-rate schedule": (SCHEDULES, Schedule),
    "task": (TASKS, TrainingTask),
    "bias-variance method": (BIASVAR_METHODS, BiasVarMethod),
}
EVERY_ENTRY = [(family, name) for family, (registry, _) in FAMILIES.items() for name in registry]


@pytest.mark.parametrize(("family", "name"), EVERY_ENTRY, ids=[f"{f}:{n}" for f, n in EVERY_ENTRY])
def test_every_entry_is_its_familys_strategy_found_by_its_name(family: str, name: str) -> None:
    registry, base = FAMILIES[family]
    entry = registry[name]
    assert isinstance(entry, base) and entry.name == name
    assert re.fullmatch(r"[a-z][a-z0-9_]*", name), "names are what users type: lower case, no spaces"
    # Its declared options resolve to their defaults, each accepted by its own declaration.
    defaults = resolve_params(entry.options, {})
    assert set(defaults) == {option.name for option in entry.options}


@pytest.mark.parametrize("family", FAMILIES)
def test_a_mistyped_name_says_what_exists(family: str) -> None:
    registry, _ = FAMILIES[family]
    first = next(iter(registry))
    with pytest.raises(Exception, match=rf"unknown {family} '{first}x' \(did you mean '{first}'\?\); expected one of"):
        registry[first + "x"]


# Tasks and bias-variance methods wrap no library: they are used as they are (contracts below).
@pytest.mark.parametrize("family", ["scheduler", "searcher", "optimizer", "learning-rate schedule"])
def test_build_takes_keywords_only(family: str) -> None:
    _, base = FAMILIES[family]
    parameters = list(inspect.signature(base.build).parameters.values())[1:]
    assert parameters and all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters)


def test_a_family_without_its_abstract_method_cannot_be_made() -> None:
    class Unfinished(Scheduler):
        name = "unfinished"

    with pytest.raises(TypeError, match="abstract"):
        Unfinished()


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_a_scheduler_builds_a_ray_scheduler_and_its_rungs_lie_inside_the_run(name: str) -> None:
    scheduler = SCHEDULERS[name]
    options = resolve_params(scheduler.options, {})
    assert isinstance(scheduler.build(max_epochs=16, options=options), TrialScheduler)
    rungs = scheduler.rung_epochs(16, options)
    assert rungs == sorted(set(rungs)) and all(0 < epoch < 16 for epoch in rungs)
    assert scheduler.problems(16, options) == {}


@pytest.mark.parametrize("name", list(SEARCHERS))
def test_a_searcher_builds_an_optuna_sampler_that_proposes_inside_the_space(name: str) -> None:
    searcher = SEARCHERS[name]
    space = {"learning_rate": LogUniform(type="loguniform", low=1e-4, high=1e-1),
             "optimizer": Choice(type="choice", values=["sgd", "adam"])}
    sampler = searcher.build(space=space, seed=0, options=resolve_params(searcher.options, {}), budgets=[2, 4])
    assert isinstance(sampler, optuna.samplers.BaseSampler)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for _ in range(3):
        trial = study.ask()
        chosen = {key: dist.suggest(trial, key) for key, dist in space.items()}
        assert 1e-4 <= chosen["learning_rate"] <= 1e-1 and chosen["optimizer"] in ("sgd", "adam")
        study.tell(trial, chosen["learning_rate"])


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_an_optimizer_builds_a_torch_optimizer_whose_step_lowers_the_loss(name: str) -> None:
    model = tiny_model()
    knobs = resolve_params(TRAINING_KNOBS, {"optimizer": name, "learning_rate": 0.05, "momentum": 0.5})
    optimizer = OPTIMIZERS[name].build(params=model.parameters(), knobs=knobs)
    assert isinstance(optimizer, torch.optim.Optimizer)
    x, y = torch.randn(32, 3, generator=torch.Generator().manual_seed(1)), torch.zeros(32, 2)
    losses = []
    for _ in range(5):
        loss = torch.nn.functional.mse_loss(model(x), y)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_a_schedule_builds_a_torch_scheduler_that_moves_the_rate_as_declared(name: str) -> None:
    schedule = SCHEDULES[name]
    knobs = resolve_params(TRAINING_KNOBS, {"lr_schedule": name, "learning_rate": 0.1, "lr_step_size": 1})
    optimizer = torch.optim.SGD(tiny_model().parameters(), lr=0.1)
    built = schedule.build(optimizer=optimizer, knobs=knobs, max_epochs=4, steps_per_epoch=3)
    steps = 3 if schedule.per_batch else 1
    rates = []
    for _ in range(4 * steps):
        optimizer.step()
        if built is not None:
            built.step()
        rates.append(optimizer.param_groups[0]["lr"])
    if name == "none":
        assert built is None and set(rates) == {0.1}
    else:
        assert isinstance(built, torch.optim.lr_scheduler.LRScheduler) and len(set(rates)) > 1


@pytest.mark.parametrize("name", list(TASKS))
def test_a_task_gives_a_finite_loss_and_reports_it_among_its_metrics(name: str) -> None:
    task = TASKS[name]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(16, 4, generator=generator)
    outputs = torch.randn(16, 4, generator=generator)
    raw_targets = torch.randint(0, 4, (16,), generator=generator) if name == "classification" else torch.randn(16, 4)
    targets = task.targets(x, raw_targets.to(task.target_dtype()))
    loss = task.loss(outputs, targets)
    assert loss.dim() == 0 and torch.isfinite(loss)
    metrics = task.metrics(outputs, targets)
    assert metrics["loss"] == pytest.approx(loss.item())
    assert set(metrics) == {"loss", *task.extra_metrics}


@pytest.mark.parametrize("name", list(BIASVAR_METHODS))
def test_a_biasvar_method_gives_rounds_that_differ_and_keep_the_splits_shapes(name: str) -> None:
    method = BIASVAR_METHODS[name]
    data = load_splits("digits", {}, validation_fraction=0.2, test_fraction=0.2, seed=0, max_train_samples=200)
    rules = TrainingRules(max_epochs=1, objective="val_acc", objective_mode="max", patience=None, min_delta=0.0,
                          monitor="val_acc", monitor_mode="max", seed=0)
    plan = TrialPlan("mlp", {}, resolve_params(TRAINING_KNOBS, {}), rules)
    rounds = [(method.round_data(data, index), method.round_plan(plan, index)) for index in range(2)]
    for round_data, round_plan in rounds:
        assert round_data.train_x.shape == data.train_x.shape and round_data.test_x is data.test_x
        assert replace(round_plan, rules=plan.rules) == plan  # only the rules' seed may change
    (data_0, plan_0), (data_1, plan_1) = rounds
    assert not np.array_equal(data_0.train_x, data_1.train_x) or plan_0.rules.seed != plan_1.rules.seed
