"""Progress lines while a study runs: trials done / running / stopped, best so far."""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any, Callable

from ray.tune import Callback
from ray.tune.experiment import Trial

from tunelab.metrics import Mode, ended_status, epoch_rows
from tunelab.store.schema import (
    DIVERGED, EARLY_STOPPED_PATIENCE, ERRORED, INTERRUPTED, REACHED_GOAL, RUNNING, STOPPED_EARLY,
)
from tunelab.tune.ray_log import RAY_LOG
from tunelab.tune.store_callback import StoreCallback

HEARTBEAT_S = 15.0


def print_line(line: str) -> None:
    print(line, flush=True)


class ProgressCallback(Callback):
    def __init__(
        self,
        num_samples: int,
        objective: str,
        mode: Mode,
        echo: Callable[[str], None],
        store: StoreCallback,
    ) -> None:
        self.store = store
        self.num_samples = num_samples
        self.objective = objective
        self.mode = mode
        self.echo = echo
        self.started = time.monotonic()
        self.last_line = self.started
        self.running: set[str] = set()
        self.ended: Counter[str] = Counter()
        self.best_value = math.nan
        self.best_trial = ""

    # Ray pickles the callbacks with the experiment. The output function is not part of the
    # experiment (a closure or a patched `print` cannot be pickled): after an unpickle, such as
    # a resume in a new process, lines go to standard output.
    def __getstate__(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key != "echo"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.echo = print_line

    def trial_number(self, trial_id: str) -> int:
        return self.store.trial_number(trial_id)

    def setup(self, **info: Any) -> None:
        """Start counting (again, for a resumed study) from what the store already has."""
        self.started = self.last_line = time.monotonic()
        self.running, self.ended = set(), Counter()
        self.best_value, self.best_trial = math.nan, ""
        for record in self.store.writer.trials():
            status = str(record.get("status", ""))
            if status not in (RUNNING, INTERRUPTED, ""):
                self.ended[status] += 1
            value = record.get("objective")
            if isinstance(value, float) and math.isfinite(value) and self._better(value):
                self.best_value, self.best_trial = value, str(record["trial_id"])

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self.running.add(trial.trial_id)

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any) -> None:
        for row in epoch_rows(result):
            value = row.get(self.objective)
            if isinstance(value, (int, float)) and math.isfinite(value) and self._better(value):
                self.best_value, self.best_trial = float(value), trial.trial_id
        if time.monotonic() - self.last_line >= HEARTBEAT_S:
            self._line("")

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        last = trial.last_result or {}
        status = ended_status(last)
        self._end(trial, status, f"{status.replace('_', ' ')} at epoch {last.get('epoch', '?')}")

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._end(trial, "errored", "errored")
        self._error_line(trial, "error")

    def on_trial_recover(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._error_line(trial, "failed, retrying from its saved state")

    def _error_line(self, trial: Trial, what: str) -> None:
        """The error in one line; Ray's traceback of it goes to the study's log, not here. (The
        store's callback runs first: it has recorded the error already.)"""
        error = self.store.writer.trial(trial.trial_id).get("error") or "unknown error"
        log = self.store.paths.root / RAY_LOG
        self.echo(f"trial {self.trial_number(trial.trial_id)} {what}: {error} (traceback in {log})")

    def _end(self, trial: Trial, status: str, what: str) -> None:
        self.running.discard(trial.trial_id)
        self.ended[status] += 1
        self._line(f"trial {self.trial_number(trial.trial_id):>3} {what:<34} │ ")

    def _better(self, value: float) -> bool:
        if math.isnan(self.best_value):
            return True
        return value < self.best_value if self.mode == "min" else value > self.best_value

    def _line(self, event: str) -> None:
        self.last_line = time.monotonic()
        done = sum(self.ended.values())
        counts = [f"{done}/{self.num_samples} done", f"{len(self.running)} running"]
        for status, label in ((STOPPED_EARLY, "stopped by scheduler"), (EARLY_STOPPED_PATIENCE, "by patience"),
                              (DIVERGED, "diverged"), (ERRORED, "errored"), (REACHED_GOAL, "reached the goal")):
            if self.ended[status]:
                counts.append(f"{self.ended[status]} {label}")
        if self.best_trial:
            counts.append(f"best {self.objective} {self.best_value:.4g} (trial {self.trial_number(self.best_trial)})")
        self.echo(f"[{self.last_line - self.started:6.1f}s] {event}{' · '.join(counts)}")
