"""The decomposition functions agree with independent references on the same predictions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from mlxtend.evaluate import bias_variance_decomp
from sklearn.datasets import make_classification, make_regression
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from tunelab.biasvar.decomposition import main_prediction, squared_error_decomposition, zero_one_decomposition


class Recording:
    """An estimator that remembers what it predicted in each of mlxtend's bootstrap rounds."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator
        self.predictions: list[np.ndarray] = []

    def fit(self, x: np.ndarray, y: np.ndarray) -> "Recording":
        self.estimator.fit(x, y)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        predicted = self.estimator.predict(x)
        self.predictions.append(predicted)
        return predicted


def test_zero_one_matches_mlxtend_on_the_same_bootstrap_rounds() -> None:
    x, y = make_classification(n_samples=400, n_features=8, n_informative=4, n_classes=3, random_state=0)
    recording = Recording(DecisionTreeClassifier(max_depth=4, random_state=0))
    expected_loss, bias, variance = bias_variance_decomp(
        recording, x[:300], y[:300], x[300:], y[300:], loss="0-1_loss", num_rounds=25, random_seed=1
    )
    ours = zero_one_decomposition(np.stack(recording.predictions), y[300:])
    assert ours.expected_loss == pytest.approx(expected_loss, abs=1e-9)
    assert ours.bias == pytest.approx(bias, abs=1e-9)
    assert ours.variance == pytest.approx(variance, abs=1e-9)
    assert 0 < ours.bias < ours.expected_loss and ours.variance > 0


def test_squared_error_matches_mlxtend_on_the_same_bootstrap_rounds() -> None:
    x, y = make_regression(n_samples=300, n_features=5, noise=10.0, random_state=0)
    recording = Recording(DecisionTreeRegressor(max_depth=5, random_state=0))
    expected_loss, bias, variance = bias_variance_decomp(
        recording, x[:200], y[:200], x[200:], y[200:], loss="mse", num_rounds=30, random_seed=2
    )
    ours = squared_error_decomposition(np.stack(recording.predictions), y[200:])
    assert ours.expected_loss == pytest.approx(expected_loss, rel=1e-9)
    assert ours.bias == pytest.approx(bias, rel=1e-9)
    assert ours.variance == pytest.approx(variance, rel=1e-9)
    assert ours.expected_loss == pytest.approx(ours.bias + ours.variance, rel=1e-9)


def test_zero_one_hand_computed_case() -> None:
    # 4 rounds × 3 points, labels [0, 1, 1].
    predicted = np.array([[0, 0, 1], [0, 0, 1], [1, 1, 1], [0, 0, 0]])
    labels = np.array([0, 1, 1])
    result = zero_one_decomposition(predicted, labels)
    # main predictions [0, 0, 1]: point 1 is biased.
    assert list(main_prediction(predicted)) == [0, 0, 1]
    # errors per round: 1, 1, 1, 2
    assert result.expected_loss == pytest.approx(5 / 12)
    assert result.bias == pytest.approx(1 / 3)
    # disagreement with the main prediction: [1/4, 1/4, 1/4]
    assert result.variance == pytest.approx(0.25)
    assert result.variance_unbiased == pytest.approx((0.25 + 0.25) / 3)
    assert result.variance_biased == pytest.approx(0.25 / 3)
    # two classes: loss = bias + unbiased variance − biased variance, exactly
    assert result.expected_loss == pytest.approx(result.bias + result.net_variance, abs=1e-12)


def test_multiclass_net_variance_uses_domingos_coefficient() -> None:
    # One point, true class 0, main prediction 1 (biased). Rounds: 1, 1, 2, 0.
    predicted = np.array([[1], [1], [2], [0]])
    result = zero_one_decomposition(predicted, np.array([0]))
    assert result.bias == 1.0 and result.variance == pytest.approx(0.5)
    assert result.variance_biased == pytest.approx(0.5)
    # Only the round that predicted 0 removed error: c2 * V = -(1/2) * (1/2).
    assert result.net_variance == pytest.approx(-0.25)
    assert result.expected_loss == pytest.approx(result.bias + result.net_variance) == pytest.approx(0.75)


def test_expected_loss_is_bias_plus_net_variance_for_random_multiclass_predictions() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 5, size=300)
    predicted = np.where(rng.random((20, 300)) < 0.6, labels, rng.integers(0, 5, size=(20, 300)))
    result = zero_one_decomposition(predicted, labels)
    assert result.expected_loss == pytest.approx(result.bias + result.net_variance, abs=1e-12)


def test_cross_entropy_is_the_mean_negative_log_probability_of_the_true_class() -> None:
    probabilities = np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.6, 0.4], [0.5, 0.5]]])
    result = zero_one_decomposition(probabilities.argmax(axis=2), np.array([0, 1]), probabilities)
    assert result.cross_entropy == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.6, 0.5])), abs=1e-12)


def test_squared_error_with_known_noise_adds_up_to_the_expected_loss() -> None:
    rng = np.random.default_rng(0)
    clean = np.sin(np.linspace(-3, 3, 40_000))
    sigma = 0.3
    noisy = clean + rng.normal(0, sigma, size=clean.shape)
    # An estimator with a known bias (+0.2) and variance (0.1²) per round.
    predictions = clean + 0.2 + rng.normal(0, 0.1, size=(50, clean.size))
    result = squared_error_decomposition(predictions, noisy, clean_targets=clean, noise_variance=sigma**2)
    assert result.bias_clean == pytest.approx(0.04, rel=0.02)
    # Spread around the empirical mean of R rounds: sigma² (R - 1) / R.
    assert result.variance == pytest.approx(0.01 * 49 / 50, rel=0.02)
    total = result.bias_clean + result.variance + result.noise
    assert total == pytest.approx(result.expected_loss, rel=0.02)
