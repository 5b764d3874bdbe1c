"""Small synthetic data sets drawn with a fixed generator seed.

Each takes a `generator_seed` separate from the split seed: the rows are the same
population sample whatever split seed an experiment uses, and a fresh draw is an
explicit choice (change `generator_seed`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tunelab.datasets.base import DataSet, GeneratedData
from tunelab.datasets.registry import register
from tunelab.errors import BadInputError
from tunelab_models.params import Param

MIN_SAMPLES = 20


def _n_samples(default: int) -> Param:
    return Param("n_samples", int, default, "rows before splitting", low=MIN_SAMPLES)


def _noise(default: float, help: str) -> Param:
    return Param("noise", float, default, help, low=0.0)


GENERATOR_SEED = Param(
    "generator_seed", int, 0, "seed that draws the rows (the split has its own seed)", low=0, high=2**32 - 1
)


@register
class Moons(DataSet):
    """Two interleaving half circles in 2-D: a small non-linear classification task."""

    name = "moons"
    task = "classification"
    params = (
        _n_samples(1000),
        _noise(0.2, "standard deviation of Gaussian noise on the points"),
        GENERATOR_SEED,
    )

    @classmethod
    def input_shape(cls, params: dict[str, Any]) -> tuple[int, ...]:
        return (2,)

    @classmethod
    def generate(cls, params: dict[str, Any]) -> GeneratedData:
        from sklearn.datasets import make_moons  # only where data is generated

        x, y = make_moons(
            n_samples=params["n_samples"], noise=params["noise"], random_state=params["generator_seed"]
        )
        return GeneratedData(x=x.astype(np.float32), y=y.astype(np.int64), num_outputs=2)


@register
class Classification(DataSet):
    """sklearn's make_classification: Gaussian clusters on the corners of a hypercube."""

    name = "classification"
    task = "classification"
    params = (
        _n_samples(1000),
        Param("n_features", int, 20, "input features", low=1),
        Param("n_informative", int, 5, "features that carry the class signal", low=1),
        Param("n_classes", int, 3, "number of classes", low=2),
        Param("n_clusters_per_class", int, 2, "Gaussian clusters making up each class", low=1),
        Param("class_sep", float, 1.0, "distance between clusters; larger is easier", low=0.0),
        Param("flip_y", float, 0.01, "share of labels assigned at random (label noise)", low=0.0, high=1.0),
        GENERATOR_SEED,
    )

    @classmethod
    def input_shape(cls, params: dict[str, Any]) -> tuple[int, ...]:
        return (params["n_features"],)

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        # sklearn's own checks surface as tracebacks mid-run; say what to change instead.
        if params["n_informative"] > params["n_features"]:
            raise BadInputError(
                f"data set 'classification': n_informative ({params['n_informative']}) "
                f"must be at most n_features ({params['n_features']})"
            )
        clusters = params["n_classes"] * params["n_clusters_per_class"]
        if clusters > 2 ** params["n_informative"]:
            raise BadInputError(
                f"data set 'classification': n_classes * n_clusters_per_class ({clusters}) must be "
                f"at most 2**n_informative ({2 ** params['n_informative']}); raise n_informative"
            )

    @classmethod
    def generate(cls, params: dict[str, Any]) -> GeneratedData:
        from sklearn.datasets import make_classification  # only where data is generated

        x, y = make_classification(
            n_samples=params["n_samples"],
            n_features=params["n_features"],
            n_informative=params["n_informative"],
            # Only informative and pure-noise features: no redundant or repeated ones, so
            # n_informative <= n_features is the whole feature-count rule.
            n_redundant=0,
            n_repeated=0,
            n_classes=params["n_classes"],
            n_clusters_per_class=params["n_clusters_per_class"],
            class_sep=params["class_sep"],
            flip_y=params["flip_y"],
            random_state=params["generator_seed"],
        )
        return GeneratedData(x=x.astype(np.float32), y=y.astype(np.int64), num_outputs=params["n_classes"])


@register
class Regression(DataSet):
    """Noisy sine: x ~ Uniform(-pi, pi), y = sin(x) + N(0, noise^2), with known noise."""

    name = "regression"
    task = "regression"
    params = (_n_samples(500), _noise(0.3, "standard deviation of the Gaussian noise on y"), GENERATOR_SEED)

    @classmethod
    def input_shape(cls, params: dict[str, Any]) -> tuple[int, ...]:
        return (1,)

    @classmethod
    def generate(cls, params: dict[str, Any]) -> GeneratedData:
        rng = np.random.default_rng(params["generator_seed"])
        rows, noise = params["n_samples"], params["noise"]
        x = rng.uniform(-np.pi, np.pi, size=(rows, 1))
        y_clean = np.sin(x)
        y = y_clean + rng.normal(0.0, noise, size=(rows, 1))
        # Targets stay in their own units (only x gets standardised), so noise_variance
        # and y_clean remain directly comparable with predictions of y.
        return GeneratedData(
            x=x.astype(np.float32),
            y=y.astype(np.float32),
            num_outputs=1,
            y_clean=y_clean.astype(np.float32),
            noise_variance=noise**2,
        )


@register
class AddingProblem(DataSet):
    """The adding problem (Hochreiter & Schmidhuber): a long-range memory task for RNNs.

    Each sample is `sequence_length` steps of two channels: a value drawn from U(0, 1) and
    a marker that is 1 at exactly two steps (one in each half). The target is the sum of
    the two marked values. Predicting the mean (1.0) scores an MSE of 1/6; plain RNNs
    struggle to beat that on long sequences, LSTMs and GRUs learn it.
    """

    name = "adding"
    task = "regression"
    params = (
        _n_samples(2000),
        Param("sequence_length", int, 50, "time steps per sample", low=4, high=10_000),
        GENERATOR_SEED,
    )
    # The marker channel must stay exactly 0/1 and values stay in [0, 1].
    standardize_inputs = False

    @classmethod
    def input_shape(cls, params: dict[str, Any]) -> tuple[int, ...]:
        return (2, params["sequence_length"])

    @classmethod
    def generate(cls, params: dict[str, Any]) -> GeneratedData:
        rng = np.random.default_rng(params["generator_seed"])
        rows, steps = params["n_samples"], params["sequence_length"]
        values = rng.uniform(0.0, 1.0, size=(rows, steps))
        half = steps // 2
        first = rng.integers(0, half, size=rows)
        second = rng.integers(half, steps, size=rows)
        markers = np.zeros((rows, steps))
        markers[np.arange(rows), first] = 1.0
        markers[np.arange(rows), second] = 1.0
        target = (values * markers).sum(axis=1, keepdims=True)
        x = np.stack([values, markers], axis=1)
        return GeneratedData(
            x=x.astype(np.float32), y=target.astype(np.float32), num_outputs=1,
            y_clean=target.astype(np.float32), noise_variance=0.0,
        )
