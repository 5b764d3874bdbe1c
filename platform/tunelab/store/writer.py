"""The one writer of a study's tables: the driver, fed by a Ray Tune callback.

Epoch rows are buffered and written as new part files (append-only, cheap at any study
size); the small trials and study tables are rewritten whole. Every write is atomic.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from tunelab.store.atomic import write_parquet_atomic
from tunelab.store.layout import StudyPaths
from tunelab.store.reader import read_epochs, read_study, read_trials

# Past this many part files, they are merged into one so readers stay fast.
COMPACT_AFTER_PARTS = 64


class StudyWriter:
    def __init__(self, paths: StudyPaths) -> None:
        self.paths = paths
        self._study: dict[str, Any] = read_study(paths) if paths.exists() else {}
        existing = read_trials(paths) if paths.trials.exists() else pd.DataFrame()
        self._trials: dict[str, dict[str, Any]] = {
            row["trial_id"]: row for row in existing.to_dict("records")
        }
        self._trials_dirty = False
        self._pending_epochs: list[dict[str, Any]] = []
        parts = paths.epoch_parts()
        self._next_part = _part_number(parts[-1]) + 1 if parts else 1

    def update_study(self, **fields: Any) -> None:
        self._study.update(fields)
        write_parquet_atomic(pd.DataFrame([self._study]), self.paths.study)

    def update_trial(self, trial_id: str, **fields: Any) -> None:
        self._trials.setdefault(trial_id, {"trial_id": trial_id}).update(fields)
        self._trials_dirty = True

    def trial(self, trial_id: str) -> dict[str, Any]:
        return self._trials.get(trial_id, {})

    def trials(self) -> list[dict[str, Any]]:
        return list(self._trials.values())

    def add_epoch(self, row: dict[str, Any]) -> None:
        self._pending_epochs.append(row)

    def flush(self) -> None:
        if self._pending_epochs:
            part = self.paths.epochs / f"part-{self._next_part:08d}.parquet"
            write_parquet_atomic(pd.DataFrame(self._pending_epochs), part)
            self._next_part += 1
            self._pending_epochs = []
            if len(self.paths.epoch_parts()) > COMPACT_AFTER_PARTS:
                self.compact_epochs()
        if self._trials_dirty:
            write_parquet_atomic(pd.DataFrame(self.trials()), self.paths.trials)
            self._trials_dirty = False

    def compact_epochs(self) -> None:
        """Merge all part files into one; readers see duplicates at worst, never gaps."""
        old_parts = self.paths.epoch_parts()
        if len(old_parts) < 2:
            return
        merged = read_epochs(self.paths)
        write_parquet_atomic(merged, self.paths.epochs / f"part-{self._next_part:08d}.parquet")
        self._next_part += 1
        for part in old_parts:
            part.unlink(missing_ok=True)


def _part_number(part: Any) -> int:
    match = re.search(r"part-(\d+)\.parquet$", str(part))
    return int(match.group(1)) if match else 0
