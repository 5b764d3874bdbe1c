"""The `biasvar` and `learning_curves` tables beside a study's own tables."""

from __future__ import annotations

import pandas as pd

from tunelab.store import StudyPaths
from tunelab.store.layout import BIASVAR_TABLE, LEARNING_CURVES_TABLE
from tunelab.store.side_tables import merge_rows


def write_decompositions(paths: StudyPaths, rows: pd.DataFrame) -> None:
    """Add rows; a new decomposition of the same trial by the same method replaces the old."""
    merge_rows(paths, BIASVAR_TABLE, rows, key=["trial_id", "method"])


def write_learning_curves(paths: StudyPaths, rows: pd.DataFrame) -> None:
    merge_rows(paths, LEARNING_CURVES_TABLE, rows, key=["trial_id", "fraction"])
