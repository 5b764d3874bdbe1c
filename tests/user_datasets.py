"""A user's own data-set loaders, named in experiment files as `user_datasets:Spirals`."""

from __future__ import annotations

from typing import Any

import numpy as np

from tunelab.datasets import DataSet, GeneratedData
from tunelab_models import Param


class Spirals(DataSet):
    """Two interleaved spirals: a loader with its own declared parameters."""

    task = "classification"
    params = (
        Param("n_samples", int, 400, "points, half per spiral", low=20),
        Param("noise", float, 0.05, "standard deviation of the noise on each point", low=0.0),
        Param("turns", float, 1.0, "how far each spiral winds", low=0.25, high=4.0),
    )

    @classmethod
    def generate(cls, params: dict[str, Any]) -> GeneratedData:
        rng = np.random.default_rng(0)
        half = params["n_samples"] // 2
        angle = np.sqrt(rng.uniform(0, 1, half)) * params["turns"] * 2 * np.pi
        arm = np.stack([angle * np.cos(angle), angle * np.sin(angle)], axis=1) / (2 * np.pi)
        x = np.concatenate([arm, -arm]) + rng.normal(0, params["noise"], (2 * half, 2))
        y = np.repeat([0, 1], half)
        return GeneratedData(x=x.astype(np.float32), y=y, num_outputs=2, class_names=("inner", "outer"))


class DatabaseDown(DataSet):
    """A loader whose source is unavailable: it raises, as real loaders do."""

    task = "classification"

    @classmethod
    def generate(cls, params: dict[str, Any]) -> GeneratedData:
        raise ConnectionError("could not connect to the warehouse at db:5432\n(retried 3 times)")


class NotADataSet:
    pass
