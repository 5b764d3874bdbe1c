"""Retrain one configuration round by round and decompose its test error. No Ray in here:
the runner ships these functions to Ray tasks, the tests call them directly."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from tunelab.training.replicates import BIASVAR_METHODS
from tunelab.biasvar.decomposition import Decomposition, squared_error_decomposition, zero_one_decomposition
from tunelab.datasets import Splits
from tunelab.training.loop import predict, train_trial
from tunelab.training.plan import TrialPlan

LEARNING_CURVE_FRACTIONS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)


def fixed_length(plan: TrialPlan, epochs: int) -> TrialPlan:
    """The configuration as tuned, trained for exactly `epochs` (no patience)."""
    return replace(plan, rules=replace(plan.rules, max_epochs=max(1, epochs), patience=None))


def train_round(plan: TrialPlan, data: Splits, method: str, round_index: int) -> np.ndarray:
    """The test-split outputs of the model trained in round `round_index`."""
    rounds = BIASVAR_METHODS[method]
    result = train_trial(rounds.round_plan(plan, round_index), rounds.round_data(data, round_index), _ignore)
    test_x = torch.tensor(data.test_x, dtype=torch.float32, device=plan.device)
    return predict(result.model, test_x).cpu().numpy().astype(np.float64)


def decompose(outputs: list[np.ndarray], data: Splits, task: str) -> Decomposition:
    """Bias and variance of the rounds' test outputs, with the loss that suits the task."""
    stacked = np.stack(outputs)
    if task == "classification":
        probabilities = _softmax(stacked)
        return zero_one_decomposition(probabilities.argmax(axis=2), data.test_y, probabilities)
    if task == "reconstruction":
        flat = data.test_x.reshape(len(data.test_x), -1)
        return squared_error_decomposition(stacked.reshape(len(outputs), len(flat), -1), flat)
    noise = None
    if data.test_y_clean is not None:
        # The noise actually present in these test targets: the part of the measured
        # expected loss no model can remove.
        noise = float(np.mean((data.test_y.astype(np.float64) - data.test_y_clean) ** 2))
    return squared_error_decomposition(stacked, data.test_y, clean_targets=data.test_y_clean, noise_variance=noise)


def learning_curve_point(plan: TrialPlan, data: Splits, fraction: float) -> dict[str, Any]:
    """Train on a seeded share of the training split; final training and validation error."""
    rows = len(data.train_y)
    keep = np.sort(np.random.RandomState(plan.rules.seed).permutation(rows)[: max(2, math.ceil(fraction * rows))])
    subset = replace(data, train_x=data.train_x[keep], train_y=data.train_y[keep])
    metrics = train_trial(plan, subset, _ignore).metrics
    return {
        "fraction": fraction,
        "train_samples": len(keep),
        "train_error": error_of(metrics, "train"),
        "val_error": error_of(metrics, "val"),
    }


def error_of(metrics: dict[str, Any], split: str) -> float:
    """Misclassification rate where there is an accuracy, the loss otherwise."""
    accuracy = metrics.get(f"{split}_acc")
    return 1.0 - float(accuracy) if accuracy is not None else float(metrics[f"{split}_loss"])


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _ignore(metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
    """Retraining rounds report nothing and keep no checkpoints."""
