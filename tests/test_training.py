"""One trial's training, without Ray: learning, patience, divergence, checkpoints."""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tunelab_models import resolve_params

from tunelab.datasets import Splits, load_splits
from tunelab.training.knobs import TRAINING_KNOBS
from tunelab.training import loop
from tunelab.training.loop import train_trial
from tunelab.training.plan import TrainingRules, TrialPlan
from tunelab.training.tasks import one_vs_rest_auc


@pytest.fixture(scope="module")
def digits() -> Splits:
    return load_splits("digits", {}, validation_fraction=0.2, test_fraction=0.2, seed=0)


def plan(**changes: Any) -> TrialPlan:
    given = {"optimizer": "sgd", "learning_rate": 0.05, "batch_size": 32, "momentum": 0.9}
    knobs = resolve_params(TRAINING_KNOBS, {**given, **changes.pop("knobs", {})})
    rules = TrainingRules(
        max_epochs=5, objective="val_loss", objective_mode="min", patience=None, min_delta=0.0,
        monitor="val_loss", monitor_mode="min", seed=0,
    )
    rule_changes = {k: changes.pop(k) for k in list(changes) if k in TrainingRules.__dataclass_fields__}
    model_params = {"depth": 2, "width": 32, "dropout": 0.1}
    return TrialPlan("mlp", changes.pop("model_params", model_params), knobs, replace(rules, **rule_changes), **changes)


def run(trial_plan: TrialPlan, data: Splits, resume: dict[str, Any] | None = None) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    reports: list[tuple[dict[str, Any], dict[str, Any] | None]] = []
    # Snapshot the state at report time, as the trainable does by saving it at once.
    train_trial(trial_plan, data, lambda metrics, state: reports.append((metrics, copy.deepcopy(state))), resume=resume)
    return reports


def test_validation_loss_falls_on_digits(digits: Splits) -> None:
    torch.set_num_threads(1)
    metrics = [m for m, _ in run(plan(), digits)]
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4, 5]
    assert metrics[-1]["val_loss"] < 0.6 * metrics[0]["val_loss"]
    assert metrics[-1]["val_acc"] > 0.85
    for m in metrics:
        assert set(m) >= {"train_loss", "val_loss", "train_acc", "val_acc", "lr", "epoch_seconds"}
        assert m["lr"] == 0.05 and m["epoch_seconds"] > 0


def test_last_report_says_how_it_ended_and_carries_test_metrics(digits: Splits) -> None:
    metrics = [m for m, _ in run(plan(max_epochs=3), digits)]
    assert metrics[-1]["trial_end"] == "completed"
    assert all("trial_end" not in m and "test_acc" not in m for m in metrics[:-1])
    assert 0.5 < metrics[-1]["test_acc"] <= 1.0


@pytest.mark.parametrize("objective,mode", [("val_acc", "max"), ("val_loss", "min")])
def test_a_goal_ends_the_trial_at_the_first_epoch_that_reaches_it_with_its_test_evaluation(
    digits: Splits, objective: str, mode: str
) -> None:
    rules = {"max_epochs": 8, "objective": objective, "objective_mode": mode}
    free = [m for m, _ in run(plan(**rules), digits)]
    assert free[-1]["trial_end"] == "completed"
    values = [m[objective] for m in free]
    goal = values[4]  # the run without a goal gets there at epoch 5 or before
    better = (lambda value: value >= goal) if mode == "max" else (lambda value: value <= goal)
    first = next(epoch for epoch, value in enumerate(values, start=1) if better(value))

    metrics = [m for m, _ in run(plan(**rules, goal=goal), digits)]
    assert [m["epoch"] for m in metrics] == list(range(1, first + 1))
    assert metrics[-1]["trial_end"] == "reached_goal"
    assert metrics[-1]["best_epoch"] == first and metrics[-1]["best_objective"] == values[first - 1]
    assert all("trial_end" not in m for m in metrics[:-1])
    assert 0.5 < metrics[-1]["test_acc"] <= 1.0


def test_patience_stops_after_epochs_without_improvement(digits: Splits) -> None:
    # min_delta larger than any possible gain: only epoch 1 counts as an improvement for
    # patience, while the best epoch (by the objective, no min_delta) still moves on.
    metrics = [m for m, _ in run(plan(max_epochs=20, patience=2, min_delta=100.0), digits)]
    assert len(metrics) == 3
    assert metrics[-1]["trial_end"] == "early_stopped_patience"
    assert metrics[-1]["best_epoch"] == min(range(1, 4), key=lambda e: metrics[e - 1]["val_loss"])


def test_exploding_learning_rate_ends_as_diverged_without_nan(digits: Splits) -> None:
    metrics = [m for m, _ in run(plan(max_epochs=10, knobs={"learning_rate": 900.0}), digits)]
    last = metrics[-1]
    assert last["trial_end"] == "diverged"
    assert len(metrics) < 10
    assert last["val_loss"] == math.inf and last["train_loss"] == math.inf
    assert not any(isinstance(v, float) and math.isnan(v) for v in last.values() if v is not last["best_objective"])
    assert "test_loss" not in last


def test_diverged_accuracy_objective_reports_a_finite_measured_accuracy(digits: Splits) -> None:
    metrics = [m for m, _ in run(plan(objective="val_acc", objective_mode="max", knobs={"learning_rate": 900.0}), digits)]
    assert metrics[-1]["trial_end"] == "diverged"
    assert 0.0 <= metrics[-1]["val_acc"] <= 0.3  # chance level, never -inf in the store


def test_resuming_from_a_checkpoint_continues_exactly(digits: Splits, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    uninterrupted = run(plan(max_epochs=4), digits)
    state = uninterrupted[1][1]  # checkpoint written after epoch 2
    assert state is not None and state["epoch"] == 2

    # A checkpoint is plain data: it loads with weights_only=True.
    torch.save(state, tmp_path / "state.pt")
    loaded = torch.load(tmp_path / "state.pt", weights_only=True)
    resumed = run(plan(max_epochs=4), digits, resume=loaded)

    assert [m["epoch"] for m, _ in resumed] == [3, 4]
    for (expected, _), (got, _) in zip(uninterrupted[2:], resumed):
        assert got["val_loss"] == pytest.approx(expected["val_loss"], rel=1e-6)
        assert got["train_loss"] == pytest.approx(expected["train_loss"], rel=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CI has none; bench/gpu.py's machine does)")
def test_resuming_on_a_gpu_continues_exactly_with_its_dropout_masks(digits: Splits, tmp_path: Path) -> None:
    trial = plan(max_epochs=4, device="cuda", model_params={"depth": 2, "width": 32, "dropout": 0.5})
    uninterrupted = run(trial, digits)
    state = uninterrupted[1][1]
    assert state is not None and "cuda_rng" in state
    torch.save(state, tmp_path / "state.pt")
    torch.cuda.manual_seed(12345)  # a resumed trial starts in a process whose GPU generator is elsewhere
    resumed = run(trial, digits, resume=torch.load(tmp_path / "state.pt", weights_only=True))
    for (expected, _), (got, _) in zip(uninterrupted[2:], resumed):
        assert got["train_loss"] == pytest.approx(expected["train_loss"], rel=1e-5)


def test_checkpoints_fall_due_by_training_time_and_always_at_the_end(
    digits: Splits, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticks = iter(range(1000))  # a clock that advances one second each time it is read
    monkeypatch.setattr(loop, "checkpoint_clock", lambda: float(next(ticks)))
    reports = run(plan(max_epochs=5, checkpoint_interval_s=2.5), digits)
    assert [state is not None for _, state in reports] == [False, False, True, False, True]


def test_a_zero_checkpoint_interval_checkpoints_every_epoch(digits: Splits) -> None:
    reports = run(plan(max_epochs=3, checkpoint_interval_s=0), digits)
    assert [state is not None for _, state in reports] == [True, True, True]


def test_full_batch_and_stochastic_extremes_train(digits: Splits) -> None:
    full = [m for m, _ in run(plan(max_epochs=2, knobs={"batch_size": 100_000, "learning_rate": 0.5}), digits)]
    assert full[-1]["val_loss"] < full[0]["val_loss"] * 1.01 and math.isfinite(full[-1]["val_loss"])
    small = Splits(**{**digits.__dict__, "train_x": digits.train_x[:64], "train_y": digits.train_y[:64]})
    single = [m for m, _ in run(plan(max_epochs=1, knobs={"batch_size": 1, "learning_rate": 0.01, "momentum": 0.0}), small)]
    assert math.isfinite(single[-1]["val_loss"])


# ---- training knobs -------------------------------------------------------------------

def lrs(reports: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> list[float]:
    return [m["lr"] for m, _ in reports]


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop", "adagrad"])
def test_every_optimizer_learns_digits(optimizer: str, digits: Splits) -> None:
    rates = {"sgd": 0.05, "adam": 0.003, "adamw": 0.003, "rmsprop": 0.001, "adagrad": 0.05}
    metrics = [m for m, _ in run(plan(max_epochs=3, knobs={"optimizer": optimizer, "learning_rate": rates[optimizer]}), digits)]
    assert metrics[-1]["val_loss"] < 0.7 * metrics[0]["val_loss"] or metrics[-1]["val_acc"] > 0.9


def test_step_schedule_decays_every_step_size_epochs(digits: Splits) -> None:
    reports = run(plan(max_epochs=5, knobs={"lr_schedule": "step", "lr_step_size": 2, "lr_gamma": 0.5}), digits)
    assert lrs(reports) == pytest.approx([0.05, 0.05, 0.025, 0.025, 0.0125])


def test_cosine_schedule_decays_towards_zero(digits: Splits) -> None:
    rates = lrs(run(plan(max_epochs=6, knobs={"lr_schedule": "cosine"}), digits))
    assert rates[0] == pytest.approx(0.05)
    assert all(later < earlier for earlier, later in zip(rates, rates[1:]))
    assert rates[-1] < 0.1 * rates[0]


def test_onecycle_warms_up_then_anneals(digits: Splits) -> None:
    rates = lrs(run(plan(max_epochs=8, knobs={"lr_schedule": "onecycle"}), digits))
    peak = rates.index(max(rates))
    assert 0 < peak < 7 and rates[0] < rates[peak] and rates[-1] < rates[peak]
    assert max(rates) <= 0.05 + 1e-9


def test_resume_restores_the_learning_rate_schedule(digits: Splits, tmp_path: Path) -> None:
    trial = plan(max_epochs=5, knobs={"lr_schedule": "onecycle"})
    uninterrupted = run(trial, digits)
    torch.save(uninterrupted[2][1], tmp_path / "state.pt")
    resumed = run(trial, digits, resume=torch.load(tmp_path / "state.pt", weights_only=True))
    assert lrs(resumed) == pytest.approx(lrs(uninterrupted)[3:])


def weight_l1(reports: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> float:
    state = reports[-1][1]
    assert state is not None
    return sum(t.abs().sum().item() for name, t in state["model"].items() if name.endswith("weight") and t.dim() > 1)


def near_zero_share(reports: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> float:
    state = reports[-1][1]
    assert state is not None
    weights = torch.cat([t.flatten() for name, t in state["model"].items() if t.dim() > 1])
    return (weights.abs() < 1e-2).float().mean().item()


def test_l1_penalty_shrinks_the_weights_and_makes_them_sparse(digits: Splits) -> None:
    plain = run(plan(max_epochs=3), digits)
    penalised = run(plan(max_epochs=3, knobs={"l1": 5e-3}), digits)
    assert weight_l1(penalised) < 0.7 * weight_l1(plain)
    assert near_zero_share(penalised) > 1.5 * near_zero_share(plain)


def test_weight_decay_shrinks_the_weights(digits: Splits) -> None:
    plain = weight_l1(run(plan(max_epochs=3), digits))
    decayed = weight_l1(run(plan(max_epochs=3, knobs={"weight_decay": 0.05}), digits))
    assert decayed < 0.9 * plain


def test_gradient_clipping_bounds_each_step(digits: Splits) -> None:
    # With plain SGD and no momentum, a clipped step moves the weights by at most lr * clip.
    knobs = {"momentum": 0.0, "learning_rate": 1.0, "batch_size": "full", "grad_clip_norm": 0.01}
    reports = run(plan(max_epochs=2, model_params={"depth": 1, "width": 16}, knobs=knobs), digits)
    first, second = reports[0][1], reports[1][1]
    assert first is not None and second is not None
    moved = sum(((second["model"][k] - first["model"][k]) ** 2).sum().item() for k in first["model"]) ** 0.5
    assert moved <= 1.0 * 0.01 + 1e-6


def test_full_batch_is_one_step_per_epoch(digits: Splits) -> None:
    reports = run(plan(max_epochs=2, knobs={"batch_size": "full", "optimizer": "adam", "learning_rate": 0.01}), digits)
    state = reports[-1][1]
    assert state is not None
    steps = {int(s["step"]) for s in state["optimizer"]["state"].values()}
    assert steps == {2}


# ---- task-aware metrics ---------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_matches_scikit_learn_with_ties_and_many_classes(seed: int) -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=300)
    # Rounded scores: many ties, which the rank statistic must count as half.
    probabilities = np.round(rng.dirichlet(np.ones(4), size=300) + 0.3 * np.eye(4)[labels], 1)
    expected = np.mean([roc_auc_score(labels == c, probabilities[:, c]) for c in range(4)])
    assert one_vs_rest_auc(probabilities, labels) == pytest.approx(expected, abs=1e-12)


def test_classification_final_evaluation_has_auc_and_a_confusion_matrix(digits: Splits) -> None:
    import json

    last = [m for m, _ in run(plan(max_epochs=3), digits)][-1]
    confusion = json.loads(last["test_confusion"])
    assert len(confusion) == 10 and all(len(row) == 10 for row in confusion)
    assert sum(map(sum, confusion)) == len(digits.test_y)
    assert [sum(row) for row in confusion] == [int((digits.test_y == c).sum()) for c in range(10)]
    diagonal = sum(confusion[c][c] for c in range(10))
    assert diagonal / len(digits.test_y) == pytest.approx(last["test_acc"])
    assert 0.9 < last["test_auc"] <= 1.0 and 0.9 < last["val_auc"] <= 1.0


def test_regression_reports_mse_and_r2() -> None:
    data = load_splits("regression", {"n_samples": 600, "noise": 0.1}, 0.2, 0.2, seed=0)
    trial = plan(max_epochs=40, model_params={"depth": 2, "width": 32}, knobs={"optimizer": "adam", "learning_rate": 0.01})
    metrics = [m for m, _ in run(trial, data)]
    last = metrics[-1]
    assert "val_acc" not in last
    assert last["val_r2"] > 0.9 > metrics[0]["val_r2"]
    # R² = 1 - MSE / Var(y) on the same split.
    assert last["test_r2"] == pytest.approx(1 - last["test_loss"] / data.test_y.var(), abs=1e-4)


def test_trials_share_the_data_in_memory_instead_of_copying_it(digits: Splits) -> None:
    """A trial's tensors are views of the (read-only, shared) arrays Ray hands every trial, so
    a large data set is in memory once per node, not once per trial; training leaves it as it was."""
    from tunelab.training.tasks import TASKS

    shared_x, shared_y = digits.train_x.copy(), digits.train_y.copy()
    shared_x.flags.writeable = shared_y.flags.writeable = False  # as Ray's object store hands them out
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "not writable" warning reaches the user
        inputs, targets = loop.to_device(shared_x, shared_y, TASKS["classification"], torch.device("cpu"))
    assert inputs.data_ptr() == shared_x.ctypes.data and targets.data_ptr() == shared_y.ctypes.data

    before = shared_x.copy()
    shared = replace(digits, train_x=shared_x, train_y=shared_y)
    train_trial(plan(max_epochs=2), shared, lambda metrics, state: None)
    np.testing.assert_array_equal(shared_x, before)
