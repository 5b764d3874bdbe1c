"""What a trial costs, measured by the training loop (no Ray): num_parameters and train_seconds at
every epoch, inference_ms when it ends, and a multi-objective trial's values at its best epoch."""

from __future__ import annotations

import math

import pytest
import torch

from tunelab.datasets import Splits, load_splits
from tunelab.training.costs import inference_ms
from test_training import plan, run

OBJECTIVES = (("val_acc", "max"), ("num_parameters", "min"), ("inference_ms", "min"), ("train_seconds", "min"))


@pytest.fixture(scope="module")
def digits() -> Splits:
    return load_splits("digits", {}, validation_fraction=0.2, test_fraction=0.2, seed=0, max_train_samples=400)


def test_every_epoch_carries_the_parameter_count_and_the_training_time_so_far(digits: Splits) -> None:
    reports = [m for m, _ in run(plan(max_epochs=4, model_params={"depth": 1, "width": 16, "dropout": 0.0}), digits)]
    # 8x8 inputs → 16 → 10 classes: weights and biases of two layers.
    assert {m["num_parameters"] for m in reports} == {64 * 16 + 16 + 16 * 10 + 10}
    seconds = [m["train_seconds"] for m in reports]
    assert seconds[0] > 0 and all(later > earlier for earlier, later in zip(seconds, seconds[1:]))
    assert all(m["train_seconds"] <= sum(r["epoch_seconds"] for r in reports[: i + 1]) for i, m in enumerate(reports)), \
        "training passes only: never more than the epochs' whole time"
    assert 0 < reports[-1]["inference_ms"] < 1000 and all("inference_ms" not in m for m in reports[:-1])


def test_a_multi_objective_trial_reports_each_objective_at_its_best_epoch(digits: Splits) -> None:
    reports = [m for m, _ in run(plan(max_epochs=5, objective="val_acc", objective_mode="max", objectives=OBJECTIVES), digits)]
    last = reports[-1]
    best = next(m for m in reports if m["epoch"] == last["best_epoch"])
    assert last["objective_val_acc"] == best["val_acc"] == last["best_objective"]
    assert last["objective_train_seconds"] == best["train_seconds"]
    assert last["objective_num_parameters"] == best["num_parameters"]
    assert last["objective_inference_ms"] == last["inference_ms"] > 0
    for report in reports[:-1]:  # before the end: the best epoch so far, no latency measured yet
        so_far = max(reports[: report["epoch"]], key=lambda m: (m["val_acc"], -m["epoch"]))
        assert report["objective_val_acc"] == so_far["val_acc"]
        assert report["objective_train_seconds"] == so_far["train_seconds"]
        assert math.isnan(report["objective_inference_ms"])


def test_one_objective_reports_no_objective_values(digits: Splits) -> None:
    last = run(plan(max_epochs=2), digits)[-1][0]
    assert not any(key.startswith("objective_") for key in last)


def test_a_diverged_trial_reports_every_objective_at_its_worst(digits: Splits) -> None:
    exploding = plan(max_epochs=10, objective="val_acc", objective_mode="max", objectives=OBJECTIVES,
                     knobs={"learning_rate": 900.0})
    last = run(exploding, digits)[-1][0]
    assert last["trial_end"] == "diverged"
    assert last["objective_val_acc"] == -math.inf
    assert last["objective_num_parameters"] == last["objective_inference_ms"] == last["objective_train_seconds"] == math.inf


def test_a_resumed_trial_keeps_its_training_time_and_its_best_epoch_values(digits: Splits) -> None:
    trial = plan(max_epochs=4, objective="val_acc", objective_mode="max", objectives=OBJECTIVES, checkpoint_interval_s=0.0)
    whole = run(trial, digits)
    middle_state = whole[1][1]
    assert middle_state is not None
    resumed = run(trial, digits, resume=middle_state)
    assert [m["epoch"] for m, _ in resumed] == [3, 4]
    assert resumed[0][0]["train_seconds"] > middle_state["train_seconds"] > 0
    assert resumed[-1][0]["objective_val_acc"] == whole[-1][0]["objective_val_acc"]


def test_inference_time_grows_with_the_batch() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 10))
    small, large = inference_ms(model, torch.randn(1, 256)), inference_ms(model, torch.randn(2048, 256))
    assert 0 < small < large
