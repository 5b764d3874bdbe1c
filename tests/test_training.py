"""One trial's training, without Ray: learning, patience, divergence, checkpoints."""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

from tunelab.datasets import Splits, load_splits
from tunelab.training.loop import train_trial
from tunelab.training.plan import TrialPlan


@pytest.fixture(scope="module")
def digits() -> Splits:
    return load_splits("digits", {}, validation_fraction=0.2, test_fraction=0.2, seed=0)


def plan(**changes: Any) -> TrialPlan:
    knobs = {"optimizer": "sgd", "learning_rate": 0.05, "batch_size": 32, "momentum": 0.9, "weight_decay": 0.0}
    knobs.update(changes.pop("knobs", {}))
    base = TrialPlan(
        model_name="mlp",
        model_params={"depth": 2, "width": 32, "dropout": 0.1},
        knobs=knobs,
        max_epochs=5,
        objective="val_loss",
        objective_mode="min",
        patience=None,
        min_delta=0.0,
        monitor="val_loss",
        monitor_mode="min",
        seed=0,
    )
    return replace(base, **changes)


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


def test_checkpoints_follow_checkpoint_every_and_always_the_last_epoch(digits: Splits) -> None:
    reports = run(plan(max_epochs=5, checkpoint_every=2), digits)
    assert [state is not None for _, state in reports] == [False, True, False, True, True]


def test_full_batch_and_stochastic_extremes_train(digits: Splits) -> None:
    full = [m for m, _ in run(plan(max_epochs=2, knobs={"batch_size": 100_000, "learning_rate": 0.5}), digits)]
    assert full[-1]["val_loss"] < full[0]["val_loss"] * 1.01 and math.isfinite(full[-1]["val_loss"])
    small = Splits(**{**digits.__dict__, "train_x": digits.train_x[:64], "train_y": digits.train_y[:64]})
    single = [m for m, _ in run(plan(max_epochs=1, knobs={"batch_size": 1, "learning_rate": 0.01, "momentum": 0.0}), small)]
    assert math.isfinite(single[-1]["val_loss"])
