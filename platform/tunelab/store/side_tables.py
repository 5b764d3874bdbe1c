"""Tables that later commands add beside a study's own (biasvar, confirm, audit): rows merged
by key, one updater at a time, each write atomic."""

from __future__ import annotations

import pandas as pd

from tunelab.store.atomic import one_updater, write_parquet_atomic
from tunelab.store.layout import StudyPaths
from tunelab.store.reader import read_table


def merge_rows(paths: StudyPaths, name: str, rows: pd.DataFrame, key: list[str], replace: list[str] | None = None) -> None:
    """Add `rows` to table `name`; a stored row with the same `key` is replaced. With `replace`,
    every stored row that shares those columns' values with a new row goes first (a new audit
    of a trial replaces all its old epoch rows)."""
    path = paths.root / name
    with one_updater(path):
        if path.exists():
            stored = read_table(path)
            if replace:
                renewed = rows[replace].drop_duplicates()
                stored = stored.merge(renewed, on=replace, how="left", indicator=True)
                stored = stored[stored["_merge"] == "left_only"].drop(columns="_merge")
            rows = pd.concat([stored, rows], ignore_index=True).drop_duplicates(subset=key, keep="last")
        write_parquet_atomic(rows.reset_index(drop=True), path)


def read_side_table(paths: StudyPaths, name: str) -> pd.DataFrame:
    """The table, or an empty one where the command has not run."""
    path = paths.root / name
    return read_table(path) if path.exists() else pd.DataFrame()
