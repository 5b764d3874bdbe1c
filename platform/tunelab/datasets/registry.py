"""Data sets by name (`digits`) or import path (`package.module:Class`, a user's loader), and
`load_splits`, the one entry point the rest of tunelab calls."""

from __future__ import annotations

import functools
import importlib
import json
from pathlib import Path
from typing import Any, Mapping

from tunelab.datasets.base import DataSet, GeneratedData, Splits, check_fractions, check_seed, make_splits
from tunelab.datasets.cache import source_stamp
from tunelab.errors import BadInputError, DataError, first_line
from tunelab_models.naming import NameRegistry
from tunelab_models.params import ParamError, resolve_params

_DATASETS: NameRegistry[type[DataSet]] = NameRegistry(
    "data set", BadInputError, alternatives=" or an import path 'package.module:Class' of your own loader"
)


def register(cls: type[DataSet]) -> type[DataSet]:
    """Class decorator: make a data set loadable by its `name`."""
    return _DATASETS.register(cls)


def dataset_names() -> list[str]:
    return _DATASETS.names()


def is_user_loader(name: str) -> bool:
    return ":" in name


def get_dataset(name: str) -> type[DataSet]:
    """The data set class for a registered name or a `package.module:Class` path."""
    if is_user_loader(name):
        return _import_loader(name)
    return _DATASETS[name]


def _import_loader(path: str) -> type[DataSet]:
    module_name, _, attribute = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attribute)
    except Exception as exc:  # the user's module may fail in any way while importing
        raise DataError("name", f"cannot import data set {path!r}: {first_line(exc)}") from None
    if not (isinstance(cls, type) and issubclass(cls, DataSet)):
        raise DataError(
            "name", f"{path!r} is not a data set: expected a subclass of tunelab.datasets.DataSet with a `generate` method"
        )
    return cls


def resolve_dataset_params(name: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults overlaid with `params`, each checked, cross-parameter rules included."""
    cls = get_dataset(name)
    try:
        resolved = resolve_params(cls.params, params or {})
    except ParamError as exc:
        raise DataError(exc.name, f"data set {name!r}: parameter {exc.name!r}: {exc.message}") from None
    with _user_errors(name):
        cls.check_params(resolved)
    return resolved


def resolve_paths(name: str, params: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """`params` with the data set's file options made absolute, relative to `base` (the
    experiment file's folder), so the study reads the same files from anywhere."""
    cls = get_dataset(name)
    resolved = dict(params)
    for option in cls.path_params:
        value = resolved.get(option)
        if isinstance(value, str) and value:
            resolved[option] = str((base / Path(value).expanduser()).resolve())
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
    fast with a BadInputError. A data set read from files is read once per process while
    its files stay unchanged: validating the experiment file and running the study share it.
    """
    cls = get_dataset(name)
    resolved = resolve_dataset_params(name, params)
    validation_fraction, test_fraction = check_fractions(validation_fraction, test_fraction)
    seed = check_seed(seed)
    if not cls.path_params:
        return _split(name, cls, resolved, validation_fraction, test_fraction, seed, max_train_samples)
    stamp = tuple(source_stamp(resolved[option]) for option in cls.path_params if resolved.get(option))
    key = json.dumps(dict(params or {}), sort_keys=True, default=str)
    return _split_files(name, key, stamp, validation_fraction, test_fraction, seed, max_train_samples)


@functools.lru_cache(maxsize=1)
def _split_files(
    name: str,
    params_key: str,
    stamp: tuple[Any, ...],
    validation_fraction: float,
    test_fraction: float,
    seed: int,
    max_train_samples: int | None,
) -> Splits:
    # `stamp` (sizes and modification times) is only part of the key: a changed file is read again.
    cls = get_dataset(name)
    resolved = resolve_dataset_params(name, json.loads(params_key))
    return _split(name, cls, resolved, validation_fraction, test_fraction, seed, max_train_samples)


def _split(
    name: str,
    cls: type[DataSet],
    resolved: dict[str, Any],
    validation_fraction: float,
    test_fraction: float,
    seed: int,
    max_train_samples: int | None,
) -> Splits:
    with _user_errors(name):
        data = cls.generate(resolved)
    if not isinstance(data, GeneratedData):
        raise DataError("name", f"data set {name!r}: generate() returned {type(data).__name__}; expected GeneratedData")
    task = data.task or cls.task
    if task is None:
        raise DataError("name", f"data set {name!r} declares no task; set `task` on the class or in GeneratedData")
    return make_splits(
        name, task, data, validation_fraction, test_fraction, seed, cls.standardize_inputs, max_train_samples
    )


class _user_errors:
    """A user's loader may raise anything: its message becomes one line naming the loader.
    Our own data sets raise BadInputError, and a bug in them stays a traceback."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, traceback: Any) -> bool:
        if exc is None or isinstance(exc, BadInputError) or not is_user_loader(self.name):
            return False
        if not isinstance(exc, Exception):  # KeyboardInterrupt and friends pass through
            return False
        raise DataError("name", f"data set {self.name!r} raised {type(exc).__name__}: {first_line(exc)}") from None
