"""Data sets by name, and `load_splits`, the one entry point the rest of tunelab calls."""

from __future__ import annotations

from typing import Any, Mapping

from tunelab.datasets.base import DataSet, Splits, check_fractions, check_seed, make_splits
from tunelab.errors import BadInputError
from tunelab_models.naming import NameRegistry
from tunelab_models.params import ParamError, resolve_params

_DATASETS: NameRegistry[type[DataSet]] = NameRegistry("data set", BadInputError)


def register(cls: type[DataSet]) -> type[DataSet]:
    """Class decorator: make a data set loadable by its `name`."""
    return _DATASETS.register(cls)


def dataset_names() -> list[str]:
    return _DATASETS.names()


def get_dataset(name: str) -> type[DataSet]:
    return _DATASETS.get(name)


def resolve_dataset_params(name: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults overlaid with `params`, each checked, cross-parameter rules included."""
    cls = get_dataset(name)
    try:
        resolved = resolve_params(cls.params, params or {})
    except ParamError as exc:
        raise BadInputError(f"data set {name!r}: parameter {exc.name!r}: {exc.message}") from None
    cls.check_params(resolved)
    return resolved


def load_splits(
    name: str,
    params: Mapping[str, Any] | None,
    validation_fraction: float,
    test_fraction: float,
    seed: int,
    max_train_samples: int | None = None,
) -> Splits:
    """Generate (or read from cache) data set `name` and split it for training.

    Every input is checked before any data is generated, so a bad experiment file fails
    fast with a BadInputError.
    """
    cls = get_dataset(name)
    resolved = resolve_dataset_params(name, params)
    validation_fraction, test_fraction = check_fractions(validation_fraction, test_fraction)
    seed = check_seed(seed)
    data = cls.generate(resolved)
    return make_splits(
        cls.name, cls.task, data, validation_fraction, test_fraction, seed, cls.standardize_inputs, max_train_samples
    )
