"""The one writer of a study's tables: the driver, fed by a Ray Tune callback.

Epoch rows are buffered and written as new part files, merged in tiers so that a flush
costs the same at any study size (`epoch_parts`); the small trials and study tables are
rewritten whole. Every write is atomic.

Until its part is written, each epoch row also sits in a write-ahead log, appended as it
arrives: a driver killed between two flushes loses no row, because the next writer opened on
the study turns what the log holds into a part first. (A trial resumed from a checkpoint
does not report that checkpoint's epochs again, so the rows must survive on our side.)
A trial row that must not be lost (a trial finished, or failed and restarted) goes to a
second log, `log_trial`: an append, where rewriting the trials table would cost time that
grows with the study, once per trial.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import IO, Any

import numpy as np
import pandas as pd

from tunelab.store.atomic import write_parquet_atomic
from tunelab.store.epoch_parts import EpochParts
from tunelab.store.layout import StudyPaths
from tunelab.store.reader import decode_timestamps, read_epochs, read_log, read_study, read_table


class StudyWriter:
    def __init__(self, paths: StudyPaths) -> None:
        self.paths = paths
        self._study: dict[str, Any] = read_study(paths) if paths.exists() else {}
        existing = read_table(paths.trials) if paths.trials.exists() else pd.DataFrame()
        self._trials: dict[str, dict[str, Any]] = {
            row["trial_id"]: row for row in existing.to_dict("records")
        }
        self._trials_dirty = False
        self._pending_epochs: list[dict[str, Any]] = []
        self._parts = EpochParts(paths.epochs, existing=paths.epoch_parts())
        self._log: IO[str] | None = None
        self._trials_log: IO[str] | None = None
        self._recover_logged_epochs()
        self._recover_logged_trials()

    def study(self) -> dict[str, Any]:
        return dict(self._study)

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
        if self._log is None:
            self.paths.epochs.mkdir(parents=True, exist_ok=True)
            self._log = open(self.paths.epochs_log, "a", encoding="utf-8")
        self._log.write(json.dumps(row, default=str) + "\n")
        self._log.flush()  # in the OS's hands now: it survives the process being killed

    @property
    def has_changes(self) -> bool:
        """Whether a flush would write anything."""
        return bool(self._pending_epochs) or self._trials_dirty

    def log_trial(self, trial_id: str) -> None:
        """Make the trial's row as it is now survive a killed process, without a flush."""
        if self._trials_log is None:
            self._trials_log = open(self.paths.trials_log, "a", encoding="utf-8")
        self._trials_log.write(json.dumps(self._trials[trial_id], default=_to_json) + "\n")
        self._trials_log.flush()

    def flush(self) -> None:
        if self._pending_epochs:
            self._parts.append(self._pending_epochs)
            self._pending_epochs = []
            if self._log is not None:
                os.ftruncate(self._log.fileno(), 0)  # those rows are in a part now
        if self._trials_dirty:
            write_parquet_atomic(pd.DataFrame(self.trials()), self.paths.trials)
            self._trials_dirty = False
            if self._trials_log is not None:
                os.ftruncate(self._trials_log.fileno(), 0)  # those rows are in the table now

    def _recover_logged_epochs(self) -> None:
        """Rows a killed writer logged but never wrote to a part."""
        log = self.paths.epochs_log
        if not log.exists():
            return
        rows = read_log(log)
        if rows:
            # Rows that also reached a part before the kill are harmless: readers keep one
            # row per (trial, epoch).
            self._parts.append(rows)
        log.unlink()

    def _recover_logged_trials(self) -> None:
        """Trial rows a killed writer logged but never wrote to the table (later lines win)."""
        log = self.paths.trials_log
        if not log.exists():
            return
        # The table was read without them: the log is still to be taken in.
        for row in read_log(log, object_hook=decode_timestamps):
            self._trials.setdefault(row["trial_id"], {}).update(row)
            self._trials_dirty = True
        self.flush()
        log.unlink()

    def compact_epochs(self) -> None:
        """Merge all part files into one, one row per (trial, epoch): at the study's end, when
        the time it takes (growing with the study) no longer holds up trials. Readers see
        duplicates at worst, never gaps."""
        old_parts = self.paths.epoch_parts()
        if len(old_parts) < 2:
            return
        merged = read_epochs(self.paths)
        write_parquet_atomic(merged, self._parts.new_path())
        self._parts.forget_written()
        for part in old_parts:
            part.unlink(missing_ok=True)


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
