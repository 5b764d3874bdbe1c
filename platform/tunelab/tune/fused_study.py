"""A fused study's driver (issue 21): Ray Tune's searcher, scheduler and callbacks, with the
epochs of every trial trained by fusion hosts, members of fused cohorts.

Each trial is still its own trial: its own Optuna trial, its own decisions by the scheduler at
its rungs, its own rows in the store, its own state file and resume. What differs from Ray
Tune's own loop is only who trains: not one Ray worker process per trial, but a few fusion
hosts (`fusion.host`, one per GPU or per CPU slot), each training whole cohorts in one process:
Ray actors where Ray is up, else processes of this machine (`host_pools`).
A Ray worker per trial cost a study of 16 members seconds of start-up and a report round trip
per epoch each, more than the fused epochs saved (bench/RESULTS.md).

The loop: start trials (the searcher's next configurations) until the study's concurrency is
reached, each joining the host with the fewest members of its cohort; give every idle host its
longest-waiting cohort of ready members; as a host answers, hand each member's epoch to the
study's events (`study_events`: the scheduler decides, the searcher and callbacks see it), save
the state files that fell due, and tell the host which members the scheduler stopped.

A snapshot of the searcher, the scheduler, the callbacks and the trials (`SNAPSHOT_FILE`) is
saved after a trial starts or ends, at most every SNAPSHOT_EVERY_S. `tunelab resume` continues from it: finished trials stay,
the others rejoin a host from their state files, the store notes trials it never saw.
"""

from __future__ import annotations

import pickle
import secrets
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

from tunelab.datasets import Splits
from tunelab.fusion.cohort import cohort_key, cohort_label, fusion_choice
from tunelab.fusion.messages import FUSED, EpochAnswer
from tunelab.metrics import EPOCH_ROWS, TRIAL_END, epoch_row
from tunelab.spec import Spec
from tunelab.store import StudyPaths
from tunelab.training.plan import StudySetup
from tunelab.training.trial_state import (
    BEST_MODEL_FILE, STATE_FILE, save_state_bytes, state_from_bytes, trial_folder,
)
from tunelab.tune.host_pools import HostDied, HostPool, host_pool
from tunelab.tune.ray_log import RAY_LOG
from tunelab.tune.study_events import StudyEvents
from tunelab.tune.tuner import StudyParts, begin_study, study_size

SNAPSHOT_FILE = "fused_study.pkl"
ERROR_FILE = "error.txt"
# How long the driver waits for a host before it checks the time budget and Ctrl-C again.
POLL_S = 0.5
# Snapshots at most this often: each pickles the searcher with every trial it has seen. A trial
# that starts after the last one and is cut short by a killed driver is lost (the store says so,
# as for a Ray Tune study, whose snapshots come every ~10 s); its share of the budget runs again.
SNAPSHOT_EVERY_S = 1.0


@dataclass(eq=False)
class MemberTrial:
    """A trial of a fused study, as the driver, the scheduler, the searcher and the callbacks see it."""

    trial_id: str
    config: dict[str, Any]
    fusion: str = FUSED  # or why it trains alone
    cohort: str = ""  # its cohort key in words; none when it trains alone
    key: Hashable = None  # its cohort: members with one key train together
    host: int = 0
    time_before: float = 0.0  # seconds it trained under earlier drivers
    joined_at: float = 0.0
    last_result: dict[str, Any] = field(default_factory=dict)
    error_file: str | None = None
    failures: int = 0
    finished: bool = False
    ready_since: int = 0  # when it became ready to train its next epoch: who waited longest goes first

    def snapshot(self) -> dict[str, Any]:
        return {"trial_id": self.trial_id, "config": self.config, "finished": self.finished,
                "time_before": self.time_total(), "failures": self.failures}

    def time_total(self) -> float:
        return self.time_before + (time.monotonic() - self.joined_at if self.joined_at else 0.0)


class FusedStudy:
    """`fit()` runs the study to its end (True when Ctrl-C ended it, resumable)."""

    def __init__(self, spec: Spec, data: Splits, paths: StudyPaths, setup: StudySetup, parts: StudyParts,
                 trials: list[MemberTrial], echo: Callable[[str], None]) -> None:
        self.spec = spec
        self.echo = echo
        self.data = data
        self.paths = paths
        self.setup = setup
        self.parts = parts
        self.trials = trials
        self.running = {trial.trial_id: trial for trial in trials if not trial.finished}  # in the order they started
        self.events = StudyEvents(parts, trials)
        self.run_id = secrets.token_hex(4)  # trial ids: this driver's, numbered
        self.pool: HostPool | None = None  # where the hosts run: started with the study
        self.hosts: list[Any] = []  # None where a host died and none could take its place
        self.placements: list[dict[str, str]] = []
        self.cohort_limit: dict[Hashable, int] = {}
        self.joining: dict[str, Any] = {}  # trial id → its host's pending answer to join, not yet read
        self.in_flight: dict[Any, tuple[int, list[MemberTrial]]] = {}  # a host's pending epoch → (host, members)
        self.ready_counter = 0
        self.changed = False  # a trial started or ended since the last snapshot
        self.last_snapshot = -float("inf")
        self.stop_reason: str | None = None

    # ---- building ----

    @classmethod
    def begin(cls, spec: Spec, data: Splits, paths: StudyPaths, setup: StudySetup, echo: Callable[[str], None]
              ) -> FusedStudy:
        return cls(spec, data, paths, setup, begin_study(spec, data, paths, echo), [], echo)

    @classmethod
    def restore(cls, spec: Spec, data: Splits, paths: StudyPaths, setup: StudySetup, echo: Callable[[str], None]
                ) -> FusedStudy:
        saved = pickle.loads((paths.root / SNAPSHOT_FILE).read_bytes())
        num_samples, max_concurrent = study_size(spec)
        parts = StudyParts(search=saved["search"], scheduler=saved["scheduler"], callbacks=saved["callbacks"],
                           metric=spec.primary_objective.metric, mode=spec.objective_mode, num_samples=num_samples,
                           max_concurrent=max_concurrent)
        for callback in parts.callbacks:
            if hasattr(callback, "echo"):  # the progress line: pickled without its output
                callback.echo = echo
        trials = [MemberTrial(t["trial_id"], t["config"], time_before=t["time_before"], failures=t["failures"],
                              finished=t["finished"]) for t in saved["trials"]]
        return cls(spec, data, paths, setup, parts, trials, echo)

    @staticmethod
    def can_restore(paths: StudyPaths) -> bool:
        return (paths.root / SNAPSHOT_FILE).exists()

    # ---- running ----

    def fit(self) -> bool:
        interrupted = threading.Event()
        previous = None
        if threading.current_thread() is threading.main_thread():
            def on_ctrl_c(signum: int, frame: Any) -> None:
                if interrupted.is_set():
                    raise KeyboardInterrupt  # the second Ctrl-C: now
                interrupted.set()

            previous = signal.signal(signal.SIGINT, on_ctrl_c)
        try:
            self.pool = pool = host_pool(self.spec, self.data, self.setup, self.paths.root / RAY_LOG)
            self.hosts = [pool.start_host() for _ in range(pool.layout.hosts)]
            self.placements = [pool.placement(host) for host in self.hosts]
            each = "1 GPU" if pool.layout.gpus else f"{pool.layout.cpus:g} CPU"
            self.echo(f"fused: {len(self.hosts)} fusion host(s), {each} each, up to "
                      f"{pool.max_members} members per cohort on a host")
            self.events.begin()
            for trial in list(self.running.values()):
                self._join(trial, new=False)
            self._run(interrupted)
            self._save_snapshot()
            self.events.end()
            return interrupted.is_set()
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            for host in self.hosts:
                if host is not None:
                    self.pool.stop(host)
            if self.pool is not None:
                self.pool.close()

    def _run(self, interrupted: threading.Event) -> None:
        deadline = time.monotonic() + (self.spec.budget.time_budget_s or float("inf"))
        while not interrupted.is_set() and self.stop_reason is None:
            self._start_trials()
            self._give_idle_hosts_work()
            if not self.in_flight:
                return  # every trial ended, and the searcher has no more
            for pending in self.pool.wait(list(self.in_flight), timeout=POLL_S):
                self._take_epochs(pending)
            if self.changed and time.monotonic() - self.last_snapshot >= SNAPSHOT_EVERY_S:
                self._save_snapshot()
            self.events.step_ended()
            if time.monotonic() >= deadline:
                return

    def _start_trials(self) -> None:
        while len(self.running) < self.parts.max_concurrent and len(self.trials) < self.parts.num_samples:
            trial_id = f"{self.run_id}_{len(self.trials) + 1:05d}"
            config = self.events.suggest(trial_id)
            if config is None:
                return
            trial = MemberTrial(trial_id, config)
            self.trials.append(trial)
            self.running[trial_id] = trial
            self._join(trial, new=True)

    def _join(self, trial: MemberTrial, *, new: bool) -> None:
        """The trial (re)starts on a host: from its state file when it has one."""
        state_file = trial_folder(self.paths.root, trial.trial_id) / STATE_FILE
        saved = state_file.read_bytes() if state_file.exists() else None
        state = state_from_bytes(saved) if saved is not None else None
        plan = self.setup.plan_for(trial.config)
        refusal = fusion_choice(plan, self.spec.train.fuse)
        if refusal is None and state is not None and "fused" not in state:
            refusal = "its saved state is an unfused trial's: it continues unfused"
        trial.fusion = refusal or FUSED
        trial.key = cohort_key(plan) if refusal is None else ("alone", trial.trial_id)
        trial.cohort = cohort_label(plan) if refusal is None else ""
        trial.host = self._host_for(trial)
        trial.joined_at = time.monotonic()
        self.changed = True
        self.events.started(trial, new=new)
        if state is not None and state["trial_end"]:
            # It had ended, but the last snapshot did not know yet: report its end again, with no rows.
            self._report(trial, {**state["last_metrics"], EPOCH_ROWS: []})
            return
        self.joining[trial.trial_id] = self.pool.call(self.hosts[trial.host], "join", trial.trial_id, trial.config,
                                                      saved, refusal is not None)
        self._ready(trial)

    def _host_for(self, trial: MemberTrial) -> int:
        """The host with the fewest running members of the trial's cohort, then the fewest members."""
        placed = [t for t in self.running.values() if t is not trial and t.joined_at]

        def load(host: int) -> tuple[int, int]:
            on_host = [t for t in placed if t.host == host]
            return sum(1 for t in on_host if t.key == trial.key), len(on_host)

        return min((host for host, actor in enumerate(self.hosts) if actor is not None), key=load)

    def _ready(self, trial: MemberTrial) -> None:
        self.ready_counter += 1
        trial.ready_since = self.ready_counter

    def _give_idle_hosts_work(self) -> None:
        busy = {host for host, _ in self.in_flight.values()}
        for host, actor in enumerate(self.hosts):
            if host in busy or actor is None:
                continue
            ready = sorted((t for t in self.running.values() if t.host == host), key=lambda t: t.ready_since)
            try:
                for trial in ready:  # how many of its cohort one fused epoch may hold, as the host said
                    if trial.trial_id in self.joining:
                        self.cohort_limit[trial.key] = self.pool.answer(self.joining.pop(trial.trial_id))
            except HostDied as error:
                self._host_died(host, error)
                continue
            except Exception as error:  # a state that would not load: that trial failed
                self._failed(trial, error)
                continue
            if ready:
                key = ready[0].key
                members = [t for t in ready if t.key == key][: self.cohort_limit.get(key, 1)]
                self.in_flight[self.pool.call(actor, "train", [t.trial_id for t in members])] = (host, members)

    def _take_epochs(self, pending: Any) -> None:
        host, members = self.in_flight.pop(pending)
        try:
            answers: list[EpochAnswer] = self.pool.answer(pending)
        except HostDied as error:
            self._host_died(host, error)
            return
        except Exception as error:  # the epoch raised: each member of it failed
            for trial in members:
                self._failed(trial, error)
            return
        states: list[tuple[MemberTrial, bytes]] = []
        stopped: list[str] = []
        for trial, answer in zip(members, answers):
            folder = trial_folder(self.paths.root, trial.trial_id)
            if answer.best_model is not None:  # before the last report, as an unfused trial writes it
                save_state_bytes(answer.best_model, folder / BEST_MODEL_FILE)
            ended = self._report(trial, {**answer.metrics, EPOCH_ROWS: [epoch_row(answer.metrics)]})
            if answer.state is not None:
                states.append((trial, answer.state))
            if ended and TRIAL_END not in answer.metrics:
                stopped.append(trial.trial_id)
            if not ended:
                self._ready(trial)
        # Only now: the store holds every epoch these states cover.
        for trial, state in states:
            save_state_bytes(state, trial_folder(self.paths.root, trial.trial_id) / STATE_FILE)
        if stopped:
            self.pool.call(self.hosts[host], "leave", stopped)

    def _host_died(self, host: int, error: BaseException) -> None:
        """The host's process died (killed, out of memory, its node lost). A new host takes its
        place where there is room for one (else its members join the other hosts), and each of
        its members starts again from its state file, as a trial whose process died."""
        self.hosts[host] = None
        if self.pool.room_for_a_host() or not any(actor is not None for actor in self.hosts):
            self.hosts[host] = self.pool.start_host()
            self.placements[host] = self.pool.placement(self.hosts[host])
        for trial in [t for t in self.running.values() if t.host == host]:
            self.joining.pop(trial.trial_id, None)
            self._failed(trial, error)

    def _report(self, trial: MemberTrial, metrics: dict[str, Any]) -> bool:
        """One epoch of the trial to the study; True when the trial ended with it."""
        result = {**metrics, "training_iteration": metrics["epoch"], "time_total_s": trial.time_total(),
                  "trial_id": trial.trial_id, "fusion": trial.fusion,
                  **({"cohort": trial.cohort} if trial.cohort else {}), **self.placements[trial.host]}
        if not self.events.result(trial, result):
            return False
        self._finished(trial)
        if self.events.completed(trial):
            self.stop_reason = "goal"
        return True

    def _failed(self, trial: MemberTrial, error: BaseException) -> None:
        """The trial starts again from its state file, or fails for good after max_failures."""
        if trial.finished:
            return
        error_file = trial_folder(self.paths.root, trial.trial_id) / ERROR_FILE
        error_file.parent.mkdir(parents=True, exist_ok=True)
        error_file.write_text("".join(traceback.format_exception(error)))
        trial.error_file = str(error_file)
        trial.failures += 1
        if trial.failures <= self.spec.budget.max_failures:
            self.events.recovered(trial)
            trial.time_before = trial.time_total()
            self._join(trial, new=False)
            return
        self._finished(trial)
        self.events.errored(trial)

    def _finished(self, trial: MemberTrial) -> None:
        trial.finished = True
        self.running.pop(trial.trial_id, None)
        self.changed = True

    def _save_snapshot(self) -> None:
        snapshot = {"search": self.parts.search, "scheduler": self.parts.scheduler, "callbacks": self.parts.callbacks,
                    "trials": [trial.snapshot() for trial in self.trials]}
        save_state_bytes(pickle.dumps(snapshot), self.paths.root / SNAPSHOT_FILE)
        self.changed = False
        self.last_snapshot = time.monotonic()
