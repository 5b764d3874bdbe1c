"""Data sets by name, and `load_splits`, the one entry point the rest of tunelab calls."""

from __future__ import annotations

import difflib
from typing import Any, Mapping

from tunelab.datasets.base import DataSet, Splits, check_fractions, check_seed, make_splits
from tunelab.errors import BadInputError
from tunelab_models.params import ParamError, resolve_params

_DATASETS: dict[str, type[DataSet]] = {}


def register(cls: type[DataSet]) -> type[DataSet]:
    """Class decorator: make a data set loadable by its `name`."""
    if cls.name in _DATASETS and _DATASETS[cls.name] is not cls:
        raise ValueError(f"data set name {cls.name!r} is already registered")
    _DATASETS[cls.name] = cls
    return cls


def dataset_names() -> list[str]:
    return sorted(_DATASETS)


def get_dataset(name: str) -> type[DataSet]:
    if name in _DATASETS:
        return _DATASETS[name]
    close = difflib.get_close_matches(str(name), _DATASETS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise BadInputError(f"unknown data set {name!r}{hint}; expected one of {', '.join(dataset_names())}")


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
