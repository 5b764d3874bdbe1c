"""Data sets by name (built-in, offline ones and a user's tables, arrays and image folders) or
by import path (a user's loader), split into standardised train / validation / test arrays."""

from __future__ import annotations

from tunelab.datasets.base import DataSet, GeneratedData, Splits
from tunelab.datasets.preprocessing import Preprocessing
from tunelab.datasets.registry import (
    dataset_names,
    get_dataset,
    load_splits,
    register,
    resolve_dataset_params,
    resolve_paths,
)

# Importing a data set module registers it.
from tunelab.datasets import digits as _digits  # noqa: E402,F401
from tunelab.datasets import mnist1d as _mnist1d  # noqa: E402,F401
from tunelab.datasets import synthetic as _synthetic  # noqa: E402,F401
from tunelab.datasets import table as _table  # noqa: E402,F401
from tunelab.datasets import arrays as _arrays  # noqa: E402,F401
from tunelab.datasets import images as _images  # noqa: E402,F401

__all__ = [
    "DataSet",
    "GeneratedData",
    "Preprocessing",
    "Splits",
    "dataset_names",
    "get_dataset",
    "load_splits",
    "register",
    "resolve_dataset_params",
    "resolve_paths",
]
