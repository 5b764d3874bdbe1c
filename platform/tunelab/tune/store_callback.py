"""Driver-side Ray Tune callback that feeds the results store while the study runs."""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

from tunelab.metrics import EPOCH_METRICS, FINAL_METRICS, OBJECTIVE_VALUE_PREFIX, TRIAL_END, Mode, ended_status, epoch_rows
from tunelab.store import StudyPaths, StudyWriter, read_epochs
from tunelab.store.layout import PARAM_PREFIX
from tunelab.store.schema import (
    COMPLETED, DIVERGED, EARLY_STOPPED_PATIENCE, ERRORED, FINISHED, INTERRUPTED, REACHED_GOAL, RUNNING,
)

LOST_REASON = (
    "lost with the killed driver: it started after Ray's last saved state, so the resumed study "
    "ran another trial in its place"
)
# Rows reach disk at least this often, so a live dashboard lags by seconds, not minutes.
FLUSH_EVERY_S = 2.0


def now() -> datetime:
    return datetime.now(timezone.utc)


class StoreCallback(Callback):
    objectives: list[tuple[str, Mode]] | None = None  # also for a callback pickled before it had them

    def __init__(
        self, paths: StudyPaths, objective: str, scheduler_name: str, objectives: list[tuple[str, Mode]] | None = None
    ) -> None:
        self.paths = paths
        self.objective = objective
        self.scheduler_name = scheduler_name
        self.objectives = objectives  # a multi-objective study's: its Pareto front is kept current
        self._open_store()

    def _open_store(self) -> None:
        """(Re)open the study's tables: the store on disk is the truth, also after a resume."""
        self.writer = StudyWriter(self.paths)
        # Never flushed: the first change reaches disk at once, so a live reader finds the
        # trials table from the first trial's start.
        self._last_flush = -math.inf
        trials = self.writer.trials()
        # Ray's trial ids are random: number trials in the order they start (1, 2, ...),
        # continuing after the trials the store already has.
        self._numbers = {
            row["trial_id"]: _count(row["trial_number"]) for row in trials if math.isfinite(_number(row.get("trial_number")))
        }
        self._highest_epoch = {row["trial_id"]: _count(row.get("epochs")) for row in trials}
        self._checked_for_lost_trials = False

    # Ray pickles the callbacks with the experiment and unpickles them to resume it: carry only
    # the settings, and read the tables again from disk when unpickled.
    def __getstate__(self) -> dict[str, Any]:
        return {"paths": self.paths, "objective": self.objective, "scheduler_name": self.scheduler_name,
                "objectives": self.objectives}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._open_store()

    def trial_number(self, trial_id: str) -> int:
        if trial_id not in self._numbers:
            self._numbers[trial_id] = max(self._numbers.values(), default=0) + 1
        return self._numbers[trial_id]

    def _already_finished(self, trial_id: str) -> bool:
        """Finished under an earlier driver: Ray may replay it after a resume; the store keeps it."""
        return str(self.writer.trial(trial_id).get("status", "")) in FINISHED

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        if self._already_finished(trial.trial_id):
            return
        params = {PARAM_PREFIX + name: value for name, value in trial.config.items()}
        started = self.writer.trial(trial.trial_id).get("started_at") or now()  # a resumed trial keeps its start
        self.writer.update_trial(
            trial.trial_id, trial_number=self.trial_number(trial.trial_id), status=RUNNING, started_at=started, **params
        )
        # A started trial survives a killed driver, so a resumed study can account for it.
        self.writer.log_trial(trial.trial_id)
        self._flush_if_due()

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any) -> None:
        rows = epoch_rows(result)
        # Ray times the report, i.e. the last epoch: earlier ones ended their successors'
        # seconds before it.
        ended = _number(result.get("time_total_s"))
        ended_at = [ended]
        for row in reversed(rows[1:]):
            ended -= _number(row.get("epoch_seconds"))
            ended_at.insert(0, ended)
        for row, time_total_s in zip(rows, ended_at):
            self._add_epoch(trial.trial_id, row, time_total_s)
        epoch = int(result.get("epoch", result.get("training_iteration", 0)))
        self.writer.update_trial(
            trial.trial_id,
            epochs=epoch,
            objective=_number(result.get("best_objective")),
            best_epoch=int(result.get("best_epoch", 0)),
            **{f"final_{name}": _number(result.get(name)) for name in FINAL_METRICS},
            **{name: _number(value) for name, value in result.items() if name.startswith(OBJECTIVE_VALUE_PREFIX)},
        )
        if "node_id" in result and "node_id" not in self.writer.trial(trial.trial_id):
            self.writer.update_trial(trial.trial_id, node_id=result["node_id"], gpu_ids=result.get("gpu_ids", ""))
        for name in ("fusion", "cohort"):  # a fused study's: "fused" and its cohort, or why it trained alone
            if name in result:
                self.writer.update_trial(trial.trial_id, **{name: result[name]})
        if "test_confusion" in result:  # JSON text: rows are true classes, columns predictions
            self.writer.update_trial(trial.trial_id, test_confusion=result["test_confusion"])
        self._flush_if_due()

    def _add_epoch(self, trial_id: str, reported: dict[str, Any], time_total_s: float) -> None:
        epoch = int(reported.get("epoch", reported.get("training_iteration", 0)))
        row = {"trial_id": trial_id, "epoch": epoch}
        row.update({name: _number(reported.get(name)) for name in EPOCH_METRICS})
        row["time_total_s"] = time_total_s
        self.writer.add_epoch(row)
        highest = self._highest_epoch.get(trial_id, 0)
        if epoch <= highest:
            # Reported before: a retried or resumed trial went back to an older checkpoint.
            reruns = _count(self.writer.trial(trial_id).get("rerun_epochs")) + 1
            self.writer.update_trial(trial_id, rerun_epochs=reruns)
        self._highest_epoch[trial_id] = max(highest, epoch)

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        if self._already_finished(trial.trial_id):
            return
        last = trial.last_result or {}
        end = last.get(TRIAL_END)
        stop_epoch = int(last.get("epoch", last.get("training_iteration", 0)))
        reasons = {
            COMPLETED: "reached max_epochs",
            EARLY_STOPPED_PATIENCE: f"no improvement in {last.get('epoch', 0) - last.get('best_epoch', 0)} epochs (best epoch {last.get('best_epoch')})",
            DIVERGED: "loss became NaN or infinite",
            REACHED_GOAL: f"{self.objective} reached the study's goal (best epoch {last.get('best_epoch')}): the study ends",
            None: f"stopped by the {self.scheduler_name} scheduler at epoch {stop_epoch}",
        }
        self._finish(trial, status=ended_status(last), stop_epoch=stop_epoch, stop_reason=reasons.get(end, end))

    def on_trial_recover(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        """A failed trial restarts from its saved state; count it and keep the reason."""
        retries = _count(self.writer.trial(trial.trial_id).get("retries")) + 1
        self.writer.update_trial(trial.trial_id, status=RUNNING, retries=retries, error=_error_message(trial))
        self.writer.log_trial(trial.trial_id)
        self._flush_if_due()

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        last = trial.last_result or {}
        self._finish(
            trial,
            status=ERRORED,
            stop_epoch=int(last.get("epoch", 0)),
            stop_reason="the trial raised an exception",
            error=_error_message(trial),
        )

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        records = self.writer.trials()
        winners = [record["trial_number"] for record in records if record.get("status") == REACHED_GOAL]
        reason = (f"stopped when trial {winners[0]} reached the study's goal" if winners
                  else "still running when the study ended (time budget or interrupt)")
        for record in records:
            if record.get("status") == RUNNING:
                self._interrupt(record["trial_id"], _count(record.get("epochs")), reason)
        self.writer.flush()
        self.writer.compact_epochs()

    def _finish(self, trial: Trial, **fields: Any) -> None:
        finished = now()
        started = self.writer.trial(trial.trial_id).get("started_at", finished)
        self.writer.update_trial(
            trial.trial_id, finished_at=finished, duration_s=(finished - started).total_seconds(), **fields
        )
        if self.objectives:
            from tunelab.pareto_tracking import refresh_front

            refresh_front(self.writer, self.objectives, trial.trial_id)
        self.writer.log_trial(trial.trial_id)
        self._flush_if_due()

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        if not self._checked_for_lost_trials:
            self._mark_lost_trials({trial.trial_id for trial in trials})
            self._checked_for_lost_trials = True

    def _mark_lost_trials(self, known_to_ray: set[str]) -> None:
        """After a resume: trials the killed driver started after Ray's last state snapshot.

        Ray restores the study as that snapshot left it (taken every ~10 s), so it knows nothing
        of them: it will not continue them, and it starts new trials for their share of the
        budget. They keep the epochs they trained, marked as what they are.
        """
        lost = [
            record["trial_id"]
            for record in self.writer.trials()
            if record.get("status") == RUNNING and record["trial_id"] not in known_to_ray
        ]
        if not lost:
            return
        # Their rows in the trials table lag their epoch rows, which are all logged.
        epochs = read_epochs(self.paths)
        trained = epochs[epochs["trial_id"].isin(lost)].groupby("trial_id")["epoch"].max()
        for trial_id in lost:
            last_epoch = int(trained.get(trial_id, 0))
            self._interrupt(trial_id, last_epoch, LOST_REASON, epochs=last_epoch)
            self.writer.log_trial(trial_id)

    def _interrupt(self, trial_id: str, stop_epoch: int, reason: str, **fields: Any) -> None:
        """A trial that will train no further, though it did not end on its own."""
        self.writer.update_trial(trial_id, status=INTERRUPTED, stop_epoch=stop_epoch, stop_reason=reason, **fields)

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        # Between results too (long epochs, the last trials of a study), the tables on disk
        # stay at most FLUSH_EVERY_S behind.
        self._flush_if_due()

    def _flush_if_due(self) -> None:
        """Write what changed, unless the last write was less than FLUSH_EVERY_S ago."""
        if self.writer.has_changes and time.monotonic() - self._last_flush >= FLUSH_EVERY_S:
            self.writer.flush()
            self._last_flush = time.monotonic()


def _count(value: Any) -> int:
    """A count read back from the tables: absent in a row is NaN there, and means 0."""
    number = _number(value)
    return int(number) if math.isfinite(number) else 0


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _error_message(trial: Trial) -> str:
    """The last line of the trial's traceback: the exception and its message."""
    error_file = trial.error_file
    if error_file and Path(error_file).exists():
        lines = [line for line in Path(error_file).read_text(errors="replace").splitlines() if line.strip()]
        if lines:
            return lines[-1].strip()[:500]
    return "unknown error (no error file)"
