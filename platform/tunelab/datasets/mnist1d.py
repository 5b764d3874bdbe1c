"""MNIST-1D, generated procedurally (never downloaded) and cached on disk.

Generating 5000 samples takes about ten seconds, so the arrays are cached (`cache.py`) under a
hash of the generator arguments; trials on one machine then share one generation.
"""

from __future__ import annotations

import contextlib
import random
from importlib.metadata import version
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from tunelab.datasets import cache
from tunelab.datasets.base import DataSet, GeneratedData
from tunelab.datasets.registry import register
from tunelab_models.params import Param

DIGIT_CLASSES = 10
# Bump when the cached layout or what we store changes, so old files are not misread.
CACHE_FORMAT = 1


def generator_args(num_samples: int, seed: int) -> dict[str, Any]:
    """mnist1d's default generator arguments with our sample count and seed."""
    from mnist1d.data import get_dataset_args

    args = get_dataset_args(as_dict=True)
    args["num_samples"] = num_samples
    args["seed"] = seed
    # The download address does not change what is generated; keep it out of the key.
    args.pop("url", None)
    return args


def cache_path(args: dict[str, Any]) -> Path:
    return cache.cache_path("mnist1d", {"format": CACHE_FORMAT, "mnist1d": version("mnist1d"), "args": args})


@register
class Mnist1d(DataSet):
    """Ten 1-D digit templates, randomly padded, sheared, shifted and noised; (1, 40) inputs."""

    name = "mnist1d"
    task = "classification"
    params = (
        Param("num_samples", int, 5000, "samples generated (rounded down to a multiple of 10)", low=100),
        Param(
            "generator_seed", int, 42, "seed of the mnist1d generator (the split has its own seed)", low=0, high=2**32 - 1
        ),
    )

    @classmethod
    def input_shape(cls, params: dict[str, Any]) -> tuple[int, ...]:
        return (1, 40)  # one channel, 40 steps: a sequence for CNNs and RNNs

    @classmethod
    def generate(cls, params: dict[str, Any]) -> GeneratedData:
        x, y = load_or_generate(generator_args(params["num_samples"], params["generator_seed"]))
        return GeneratedData(
            x=x[:, np.newaxis, :],
            y=y,
            num_outputs=DIGIT_CLASSES,
            class_names=tuple(str(digit) for digit in range(DIGIT_CLASSES)),
        )


def load_or_generate(args: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    path = cache_path(args)
    cached = cache.read_arrays(path)
    if cached is not None and {"x", "y"} <= cached.keys():
        return cached["x"], cached["y"]
    x, y = _generate(args)
    cache.write_arrays(path, x=x, y=y)
    return x, y


def _generate(args: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    from mnist1d import data as mnist1d_data
    from mnist1d.utils import ObjectView

    with _global_rng_preserved():
        dataset = mnist1d_data.make_dataset(ObjectView(dict(args)))
    # mnist1d cuts its own train/test parts; we split the whole sample our way.
    x = np.concatenate([dataset["x"], dataset["x_test"]]).astype(np.float32)
    y = np.concatenate([dataset["y"], dataset["y_test"]]).astype(np.int64)
    return x, y


@contextlib.contextmanager
def _global_rng_preserved() -> Iterator[None]:
    # make_dataset reseeds the global `random` and `np.random` generators; undo that so
    # loading data never changes the random stream of the code around it.
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
