"""What tunelab's driver-side callbacks cost per result, and whether it grows with the study.

Ray Tune runs every callback in its driver loop: while `StoreCallback` (the results store)
and `ProgressCallback` (the progress lines) work, no trial gets its next decision, and Ray
warns ("The callbacks.on_step_end operation took 0.557 s ...") past 0.5 s. This drives both
callbacks as Ray Tune's controller calls them, without Ray's scheduling around them:
trials start, each result is one controller step (`on_step_begin`, `on_trial_result` with
one epoch, `on_step_end`), trials complete, and `concurrent` trials take turns. A simulated
clock advances `--step-seconds` per result, so the store flushes every FLUSH_EVERY_S of
that clock: as often, in results, as in a real study with that result rate. Busy processes
keep every core occupied meanwhile, as training trials do.

Printed for windows of stored epochs (each the next `--window` results after the store holds
that many epochs): median, 99th percentile and largest wall-clock time of one result's
callbacks, the largest in the driver thread's own CPU time (the work itself, without the
waits for a core that other processes cause), the mean (what a result costs the driver,
flushes amortised) and where that mean goes: epoch part writes, epoch part reads (merges),
the trials table, the rest (callback code itself); and the most epoch rows one result's
callbacks read back from part files. A cost that does not grow with the study prints about
the same figures in every window.

    python bench/driver_callbacks.py              # windows at 100, 5000, 20000, 50000 stored epochs
    python bench/driver_callbacks.py --smoke      # windows at 100 and 400: every figure in seconds
    python bench/driver_callbacks.py --busy 0     # on an idle machine
    python bench/driver_callbacks.py --study search_spaces/cnn.yaml --num-samples 20
                                                  # a real study instead: every callback hook timed

With `--study`, the figures come from a real `tunelab` study run in this process (Ray Tune,
real trials keeping the cores busy): per hook of each callback, how often Ray called it and
the median, 99th percentile, largest and total seconds, and where the store's time went.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

FULL_WINDOWS = (100, 5000, 20000, 50000)
SMOKE_WINDOWS = (100, 400)
# 3000 results are 75 flushes: a window's mean includes the merges of part files that come every
# 64 flushes or more often (the whole compaction of the store before its tiers, its lower tiers).
FULL_WINDOW = 3000
SMOKE_WINDOW = 100
PARTS = ("epoch part writes", "epoch part reads", "trials table", "rest")


class SimulatedClock:
    """The callbacks' `time` module, seen through a clock the benchmark advances: flushes come
    every FLUSH_EVERY_S of study time, whatever the benchmark's own speed."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


@dataclass
class StoreTimer:
    """Seconds spent in the store's file operations, by kind, and epoch rows read back from
    parts, since the last `take`."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    rows_read: int = 0

    def wrap(self, function: Callable[..., Any], kind_of: Callable[..., str]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                value = function(*args, **kwargs)
            finally:
                self.seconds[kind_of(*args)] += time.perf_counter() - started
            if kind_of(*args) == "epoch part reads":
                self.rows_read += len(value)
            return value

        return timed

    def take(self) -> tuple[dict[str, float], int]:
        taken = (dict(self.seconds), self.rows_read)
        self.seconds, self.rows_read = defaultdict(float), 0
        return taken


def timed_store(timer: StoreTimer) -> None:
    """Route the store's Parquet writes and reads (in the writer and its part merges) through
    the timer."""
    import importlib

    def write_kind(frame: Any, path: Path) -> str:
        return "trials table" if Path(path).name == "trials.parquet" else "epoch part writes"

    # By name, where each module has it: the same figures for an older store (before its
    # parts merged in tiers, all in `writer`) run against this benchmark.
    for module_name, function, kind in (
        ("tunelab.store.writer", "write_parquet_atomic", write_kind),
        ("tunelab.store.writer", "read_epochs", lambda *args: "epoch part reads"),
        ("tunelab.store.epoch_parts", "write_parquet_atomic", write_kind),
        ("tunelab.store.epoch_parts", "read_table", lambda *args: "epoch part reads"),
    ):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        setattr(module, function, timer.wrap(getattr(module, function), kind))


def result(epoch: int, config: dict[str, Any]) -> dict[str, Any]:
    """One epoch's report, with the fields a classification trial sends."""
    val_acc = 0.9 - 0.5 / epoch
    return {
        "epoch": epoch, "training_iteration": epoch, "train_loss": 1.0 / epoch, "val_loss": 1.1 / epoch,
        "train_acc": val_acc + 0.02, "val_acc": val_acc, "lr": config["learning_rate"], "epoch_seconds": 0.05,
        "time_total_s": 0.05 * epoch, "best_objective": val_acc, "best_epoch": epoch,
        "epoch_rows": [{"epoch": epoch, "train_loss": 1.0 / epoch, "val_loss": 1.1 / epoch, "train_acc": val_acc + 0.02,
                        "val_acc": val_acc, "lr": config["learning_rate"], "epoch_seconds": 0.05}],
    }


def results(epochs_per_trial: int, concurrent: int, total: int) -> Iterator[tuple[str, Any, dict[str, Any] | None]]:
    """("start" | "result" | "complete", trial, result) events of `concurrent` trials at a time,
    taking turns, `total` results in all."""
    sent = 0
    number = 0
    while sent < total:
        batch = []
        for _ in range(concurrent):
            number += 1
            trial = SimpleNamespace(trial_id=f"{number:08x}", config={"learning_rate": 0.01, "depth": 2},
                                    last_result=None, error_file=None)
            batch.append(trial)
            yield "start", trial, None
        for epoch in range(1, epochs_per_trial + 1):
            for trial in batch:
                if sent == total:
                    break
                trial.last_result = result(epoch, trial.config)
                yield "result", trial, trial.last_result
                sent += 1
        for trial in batch:
            trial.last_result = {**(trial.last_result or {}), "trial_end": "completed"}
            yield "complete", trial, None


@dataclass
class Window:
    starts_at: int  # stored epochs when the window opens
    calls: list[float] = field(default_factory=list)  # wall-clock seconds: what Ray's warning sees
    cpu: list[float] = field(default_factory=list)  # the driver thread's own seconds: the work, without waiting for a core
    store: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    most_rows_read: int = 0  # epoch rows one result's callbacks read back from parts (merges)

    def add(self, wall: float, cpu: float, store: dict[str, float], rows_read: int) -> None:
        self.calls.append(wall)
        self.cpu.append(cpu)
        for kind, seconds in store.items():
            self.store[kind] += seconds
        self.most_rows_read = max(self.most_rows_read, rows_read)

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.calls)
        total = sum(ordered)
        stored = sum(self.store.values())
        share = {kind: self.store.get(kind, 0.0) / len(ordered) for kind in PARTS[:-1]}
        share["rest"] = max(total - stored, 0.0) / len(ordered)
        return {
            "median": statistics.median(ordered),
            "p99": percentile(ordered, 0.99),
            "max": ordered[-1],
            "max cpu": max(self.cpu),
            "mean": total / len(ordered),
            **share,
        }


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def measure(folder: Path, windows: tuple[int, ...], window: int, epochs_per_trial: int, concurrent: int,
            step_seconds: float) -> list[Window]:
    from tunelab.tune import progress, store_callback
    from tunelab.tune.progress import ProgressCallback
    from tunelab.store import StudyPaths, StudyWriter
    from tunelab.tune.store_callback import StoreCallback

    clock = SimulatedClock()
    store_callback.time = clock  # type: ignore[assignment]  # the study's clock, see SimulatedClock
    progress.time = clock  # type: ignore[assignment]
    timer = StoreTimer()
    timed_store(timer)

    paths = StudyPaths(folder / "bench-study")
    StudyWriter(paths).update_study(name="bench-study", objective_metric="val_acc", objective_mode="max", status="running")
    store = StoreCallback(paths, objective="val_acc", scheduler_name="asha")
    lines: list[str] = []
    shown = ProgressCallback(num_samples=10**6, objective="val_acc", mode="max", echo=lines.append, store=store)
    callbacks = (store, shown)
    for callback in callbacks:
        callback.setup()

    measured = [Window(starts_at) for starts_at in windows]
    stored = 0
    total = windows[-1] + window
    running: list[Any] = []
    for event, trial, reported in results(epochs_per_trial, concurrent, total):
        if event == "start":
            running.append(trial)
            for callback in callbacks:
                callback.on_trial_start(iteration=0, trials=running, trial=trial)
            continue
        if event == "complete":
            running.remove(trial)
            for callback in callbacks:
                callback.on_trial_complete(iteration=0, trials=running, trial=trial)
            continue
        clock.now += step_seconds
        timer.take()
        started, started_cpu = time.perf_counter(), time.thread_time()
        for callback in callbacks:
            callback.on_step_begin(iteration=0, trials=running)
        for callback in callbacks:
            callback.on_trial_result(iteration=0, trials=running, trial=trial, result=reported)
        for callback in callbacks:
            callback.on_step_end(iteration=0, trials=running)
        wall, cpu = time.perf_counter() - started, time.thread_time() - started_cpu
        open_window = next((w for w in measured if w.starts_at <= stored < w.starts_at + window), None)
        if open_window is not None:
            open_window.add(wall, cpu, *timer.take())
        stored += 1
    store.on_experiment_end(trials=[])
    return measured


HOOKS = ("on_step_begin", "on_step_end", "on_trial_start", "on_trial_result", "on_trial_complete", "on_experiment_end")


def measure_study(spec_file: Path, folder: Path, num_samples: int | None) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Run a real study with every hook of both callbacks timed: seconds per call by hook."""
    from tunelab.tune.progress import ProgressCallback
    from tunelab.spec import load_spec
    from tunelab.tune.store_callback import StoreCallback
    from tunelab.study import run_study

    calls: dict[str, list[float]] = defaultdict(list)
    timer = StoreTimer()
    timed_store(timer)
    for callback in (StoreCallback, ProgressCallback):
        for hook in HOOKS:
            if hook in vars(callback):
                setattr(callback, hook, timed_hook(getattr(callback, hook), f"{callback.__name__}.{hook}", calls))
    overrides = {"budget.num_samples": num_samples} if num_samples else {}
    run_study(load_spec(spec_file, overrides), folder, echo=lambda line: None)
    return calls, timer.take()[0]


def timed_hook(hook: Callable[..., Any], name: str, calls: dict[str, list[float]]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return hook(*args, **kwargs)
        finally:
            calls[name].append(time.perf_counter() - started)

    return timed


def print_study_figures(spec_file: Path, calls: dict[str, list[float]], store: dict[str, float], busy: int) -> None:
    print(f"machine: {os.cpu_count()} CPUs, {busy} busy processes; a real study of {spec_file}, its trials busy too")
    print(f"{'hook':<36} {'calls':>6} {'median ms':>9} {'p99 ms':>8} {'max ms':>8} {'total s':>8}")
    for name, seconds in sorted(calls.items()):
        ordered = sorted(seconds)
        p99 = percentile(ordered, 0.99)
        print(f"{name:<36} {len(ordered):>6} {statistics.median(ordered) * 1e3:>9.2f} {p99 * 1e3:>8.2f} "
              f"{ordered[-1] * 1e3:>8.1f} {sum(ordered):>8.2f}")
    print("store file operations, total s: " + ", ".join(f"{kind} {store.get(kind, 0.0):.2f}" for kind in PARTS[:-1]))


def busy_processes(count: int) -> list[subprocess.Popen[bytes]]:
    """Processes that keep `count` cores busy, as training trials would."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def print_figures(measured: list[Window], args: argparse.Namespace) -> None:
    print(f"machine: {os.cpu_count()} CPUs, {args.busy} busy processes; {args.concurrent} trials at a time, "
          f"{args.epochs_per_trial} epochs each, one epoch per result, a result every {args.step_seconds} s of study time")
    print("one result's callbacks (on_step_begin + on_trial_result + on_step_end, store and progress); "
          "wall-clock ms unless 'cpu' (the driver thread's own time):")
    columns = ["stored epochs", "results", "median", "p99", "max", "max cpu", "mean", *PARTS, "most rows read"]
    widths = [max(len(column), 8) for column in columns]
    print("  ".join(column.rjust(width) for column, width in zip(columns, widths)))
    for window in measured:
        figures = window.summary()
        values = [str(window.starts_at), str(len(window.calls)), *(f"{figures[name] * 1e3:.2f}" for name in columns[2:-1]),
                  str(window.most_rows_read)]
        print("  ".join(value.rjust(width) for value, width in zip(values, widths)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="small windows: every figure in seconds")
    parser.add_argument("--keep", type=Path, help="write the simulated study in this folder and keep it")
    parser.add_argument("--window", type=int, help=f"results measured per window (default {FULL_WINDOW}, smoke {SMOKE_WINDOW})")
    parser.add_argument("--epochs-per-trial", type=int, default=500)
    parser.add_argument("--concurrent", type=int, default=2)
    parser.add_argument("--step-seconds", type=float, default=0.05, help="study time between two results")
    parser.add_argument("--busy", type=int, help="processes keeping cores busy (default: one per core; with --study 0: Ray "
                        "runs trials at a lower priority, and busy processes would starve them, not the driver)")
    parser.add_argument("--study", type=Path, help="time the callbacks of a real study of this experiment file")
    parser.add_argument("--num-samples", type=int, help="with --study: its number of trials")
    args = parser.parse_args()
    if args.busy is None:
        args.busy = 0 if args.study else os.cpu_count() or 1
    windows = SMOKE_WINDOWS if args.smoke else FULL_WINDOWS
    window = args.window or (SMOKE_WINDOW if args.smoke else FULL_WINDOW)
    busy = busy_processes(args.busy)
    try:
        with tempfile.TemporaryDirectory(prefix="driver-callbacks-") as scratch:
            folder = args.keep or Path(scratch)
            if args.study is not None:
                calls, store = measure_study(args.study, folder, args.num_samples)
            else:
                measured = measure(folder, windows, window, args.epochs_per_trial, args.concurrent, args.step_seconds)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    if args.study is not None:
        print_study_figures(args.study, calls, store, args.busy)
    else:
        print_figures(measured, args)


if __name__ == "__main__":
    main()
