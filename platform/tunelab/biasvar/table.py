"""The `biasvar` and `learning_curves` tables beside a study's own tables."""

from __future__ import annotations

import pandas as pd

from tunelab.store import StudyPaths
from tunelab.store.atomic import one_updater, write_parquet_atomic
from tunelab.store.layout import BIASVAR_TABLE, LEARNING_CURVES_TABLE
from tunelab.store.reader import read_table


def write_decompositions(paths: StudyPaths, rows: pd.DataFrame) -> None:
    """Add rows; a new decomposition of the same trial by the same method replaces the old."""
    _merge(paths, BIASVAR_TABLE, rows, key=["trial_id", "method"])


def write_learning_curves(paths: StudyPaths, rows: pd.DataFrame) -> None:
    _merge(paths, LEARNING_CURVES_TABLE, rows, key=["trial_id", "fraction"])


def _merge(paths: StudyPaths, name: str, rows: pd.DataFrame, key: list[str]) -> None:
    path = paths.root / name
    with one_updater(path):
        if path.exists():
            rows = pd.concat([read_table(path), rows], ignore_index=True).drop_duplicates(subset=key, keep="last")
        write_parquet_atomic(rows.reset_index(drop=True), path)
