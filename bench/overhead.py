"""What running trials through Ray costs: in-process vs plain Ray Tune vs `tunelab run`.

One fixed list of digits-MLP configurations (a 4 × 3 × 4 grid: learning rate × batch size
× depth = 48), fixed epochs, no early stopping, the same seed, trained three ways, each in
a fresh process, one after the other on the same machine:

  in-process   the training loop called in a plain Python loop: no Ray, one trial at a
               time, one thread. Its per-trial times are the pure trial time.
  parallel     as many in-process loops as there are slots, side by side, each training its
               share of the configurations: no Ray, no scheduling. What the machine itself
               allows (cores share caches and memory bandwidth): the ceiling for η.
  plain Ray    Ray Tune with its defaults: `ray.init()`, a function trainable reporting
               every epoch, `Tuner` defaults (a new worker process per trial, Ray's result
               loggers on).
  tunelab      `tunelab run` on the same configurations.

Efficiency η = pure trial time ÷ (time × parallel slots), over the whole wall time, and at
steady state: once every slot has finished its first trial (Ray, the worker processes and
their imports are warm), from the first later trial's start to the last trial's end, counting
only the pure time of those later trials (conservative: the window also holds the tail of
the first trials). The overhead per trial is the slot time in that window not spent on pure
training, divided by the trials in it.

    python bench/overhead.py                   # the 48-config study (about 4 minutes)
    python bench/overhead.py --smoke           # tiny sizes: prints every figure in seconds
    python bench/overhead.py --ways tunelab    # only some ways (in-process always runs)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

WAYS = ("inprocess", "parallel", "plain-ray", "tunelab")
GRID = {
    "learning_rate": [0.003, 0.01, 0.03, 0.1],
    "batch_size": [32, 64, 128],
    "depth": [1, 2, 3, 4],
}
SMOKE_GRID = {"learning_rate": [0.01, 0.1], "batch_size": [64], "depth": [1, 2]}


def workload(grid: dict[str, list[Any]], epochs: int, slots: int) -> dict[str, Any]:
    """The experiment file every way trains: the grid searched exhaustively, no early stopping."""
    return {
        "name": "overhead",
        "dataset": {"name": "digits", "validation_fraction": 0.2, "test_fraction": 0.2, "seed": 0},
        "model": {"name": "mlp", "width": 64, "activation": "relu"},
        "search_space": {name: {"type": "choice", "values": values} for name, values in grid.items()},
        "objective": {"metric": "val_acc"},
        "train": {"max_epochs": epochs, "optimizer": "sgd", "momentum": 0.9, "early_stopping": {"patience": None}},
        "searcher": {"name": "grid"},
        "scheduler": {"name": "none"},
        "budget": {"num_samples": len(configurations(grid)), "max_concurrent": slots},
        "resources": {"cpu": 1, "gpu": 0},
    }


def configurations(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(grid, values)) for values in itertools.product(*grid.values())]


def config_key(config: dict[str, Any]) -> str:
    return json.dumps({name: config[name] for name in sorted(config)})


# ---------------------------------------------------------------------------------------
# Each way runs in its own process and writes what it measured to a JSON file.


def run_inprocess(spec_file: Path, out: Path, share: int = 0, shares: int = 1) -> None:
    import torch

    from tunelab.spec import load_spec
    from tunelab.from_spec import load_study_data, study_setup
    from tunelab.training.loop import train_trial

    torch.set_num_threads(1)  # one CPU per trial, as in the Ray ways
    spec = load_spec(spec_file)
    data, setup = load_study_data(spec), study_setup(spec)
    grid = {name: dist.values for name, dist in spec.search_space.items()}
    configs = configurations(grid)
    # PyTorch imports parts of itself on first use (the first optimizer costs a second):
    # a one-epoch throwaway trial keeps that out of the pure trial times.
    train_trial(replace(setup.plan_for(configs[0]), rules=replace(setup.rules, max_epochs=1)), data, lambda m, s: None)
    trials = []
    for config in configs[share::shares]:
        started = time.time()
        train_trial(setup.plan_for(config), data, lambda metrics, state: None)
        trials.append({"config": config_key(config), "start": started, "end": time.time()})
    out.write_text(json.dumps({"trials": trials}))


def run_plain_ray(spec_file: Path, out: Path) -> None:
    import ray
    from ray import tune

    from tunelab.spec import load_spec
    from tunelab.from_spec import load_study_data, study_setup

    spec = load_spec(spec_file)
    data, setup = load_study_data(spec), study_setup(spec)
    started = time.perf_counter()
    ray.init(_node_ip_address="127.0.0.1")  # Ray's defaults, kept on loopback
    ray_start = time.perf_counter() - started

    class TrialTimes(tune.Callback):  # wall-clock bounds of the trials; nothing else
        def __init__(self) -> None:
            self.trials: dict[str, dict[str, Any]] = {}

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.trials[trial.trial_id] = {"config": config_key(trial.config), "start": time.time()}

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            self.trials[trial.trial_id]["end"] = time.time()

    times = TrialTimes()
    tuner = tune.Tuner(
        tune.with_parameters(plain_trainable, data=data, setup=setup),
        param_space={name: tune.grid_search(list(dist.values)) for name, dist in spec.search_space.items()},
        tune_config=tune.TuneConfig(metric=spec.objective.metric, mode=spec.objective_mode),
        run_config=tune.RunConfig(storage_path=str(out.parent / "ray_results"), callbacks=[times]),
    )
    tuner.fit()
    out.write_text(json.dumps({"trials": list(times.trials.values()), "ray_start": ray_start}))


def plain_trainable(config: dict[str, Any], data: Any, setup: Any) -> None:
    """What a Ray Tune user writes: train, report the metrics every epoch."""
    from ray import tune

    from tunelab.training.loop import train_trial

    train_trial(setup.plan_for(config), data, lambda metrics, state: tune.report(metrics))


def run_tunelab(spec_file: Path, out: Path) -> None:
    """`tunelab run` as a user types it; the trial times come from its results store."""
    from tunelab.store import StudyPaths, read_trials
    from tunelab.store.layout import PARAM_PREFIX
    from tunelab_cli import tunelab_run

    storage = out.parent / "tunelab-results"
    output = tunelab_run(spec_file, storage, out.with_suffix(".log"))
    ray_start = float(re.search(r"Ray start-up ([0-9.]+) s", output).group(1))
    trials = read_trials(StudyPaths.of(storage, "overhead"))
    params = [column for column in trials.columns if column.startswith(PARAM_PREFIX)]
    records = [
        {
            "config": config_key({column[len(PARAM_PREFIX):]: row[column] for column in params}),
            "start": row["started_at"].timestamp(),
            "end": row["finished_at"].timestamp(),
        }
        for row in trials.to_dict("records")
    ]
    out.write_text(json.dumps({"trials": records, "ray_start": ray_start}))


RUNNERS = {"plain-ray": run_plain_ray, "tunelab": run_tunelab}


# ---------------------------------------------------------------------------------------
# The orchestrator: one fresh process per way, then the figures side by side.


@dataclass(frozen=True)
class Trial:
    config: str
    start: float  # wall-clock seconds
    end: float


@dataclass(frozen=True)
class Measured:
    way: str
    started: float  # when its process was launched
    wall: float  # process launch to process end
    ray_start: float | None  # ray.init() alone
    trials: list[Trial]  # in the order they started

    @property
    def startup(self) -> float:
        """Process launch to the first trial's start: interpreter, imports, data, Ray."""
        return self.trials[0].start - self.started


@dataclass(frozen=True)
class Figures:
    way: str
    wall: float
    startup: float
    ray_start: float | None
    efficiency_wall: float
    steady: float  # the steady-state window
    efficiency_steady: float
    overhead_per_trial: float  # seconds of slot time per trial, at steady state


def measure(way: str, spec_file: Path, folder: Path, slots: int) -> Measured:
    """Run one way in fresh processes (`slots` side by side for `parallel`) and collect."""
    shares = slots if way == "parallel" else 1
    outs = [folder / f"{way}-{share}.json" for share in range(shares)]
    started = time.time()
    # The tunelab way's own Python only launches `tunelab run`: its start counts too.
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--run-way", "inprocess" if way == "parallel" else way,
             "--spec", str(spec_file), "--out", str(out), "--share", str(share), "--shares", str(shares)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for share, out in enumerate(outs)
    ]
    logs = [process.communicate()[0] for process in processes]
    wall = time.time() - started
    for process, log in zip(processes, logs):
        if process.returncode != 0:
            sys.exit(f"{way} failed:\n{log[-6000:]}")
    measured = [json.loads(out.read_text()) for out in outs]
    trials = sorted((Trial(**trial) for m in measured for trial in m["trials"]), key=lambda trial: trial.start)
    return Measured(way, started, wall, measured[0].get("ray_start"), trials)


def figures(run: Measured, pure: dict[str, float], slots: int) -> Figures:
    """Efficiency over the wall time and at steady state, against the pure trial times."""
    total_pure = sum(pure[trial.config] for trial in run.trials)
    # Steady state: trials that started once `slots` trials had run (warm workers).
    later = run.trials[slots:] or run.trials
    window = max(trial.end for trial in run.trials) - later[0].start
    later_pure = sum(pure[trial.config] for trial in later)
    return Figures(
        way=run.way,
        wall=run.wall,
        startup=run.startup,
        ray_start=run.ray_start,
        efficiency_wall=total_pure / (run.wall * slots),
        steady=window,
        efficiency_steady=later_pure / (window * slots),
        overhead_per_trial=(window * slots - later_pure) / len(later),
    )


def report(runs: list[Measured], slots: int, epochs: int) -> str:
    baseline = runs[0]
    pure = {trial.config: trial.end - trial.start for trial in baseline.trials}
    rows = [figures(run, pure, 1 if run.way == "inprocess" else slots) for run in runs]
    plain = next((row for row in rows if row.way == "plain-ray"), None)
    ceiling = next((row for row in rows if row.way == "parallel"), None)
    lines = [
        f"{len(pure)} digits-MLP configurations × {epochs} epochs, no early stopping; "
        f"{slots} trials at once in the Ray ways; {os.cpu_count()} CPUs",
        f"pure trial time (in-process, one thread): {sum(pure.values()):.1f} s in all, "
        f"{1000 * sum(pure.values()) / len(pure):.0f} ms per trial",
        "",
        f"{'way':<10} {'wall s':>7} {'start-up s':>10} {'Ray init s':>10} {'η wall':>7} "
        f"{'steady s':>8} {'η steady':>8} {'overhead/trial':>14} {'speed-up vs plain Ray':>21}",
    ]
    for row in rows:
        ray_start = f"{row.ray_start:.1f}" if row.ray_start is not None else "—"
        speedup = f"{plain.wall / row.wall:.1f}×" if plain is not None else "—"
        lines.append(
            f"{row.way:<10} {row.wall:>7.1f} {row.startup:>10.1f} {ray_start:>10} {row.efficiency_wall:>7.2f} "
            f"{row.steady:>8.1f} {row.efficiency_steady:>8.2f} {1000 * row.overhead_per_trial:>11.0f} ms "
            f"{speedup:>21}"
        )
    if ceiling is not None:
        # Cores that slow each other down (a busy host, shared caches) lower every η alike:
        # the ratio to what two plain processes reach in the same run is the stable figure.
        shares = [
            f"{row.way} {row.efficiency_steady / ceiling.efficiency_steady:.2f}"
            for row in rows if row.way not in ("inprocess", "parallel")
        ]
        lines += ["", "η steady as a share of the parallel ceiling's: " + ", ".join(shares)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="4 configurations × 2 epochs")
    parser.add_argument("--epochs", type=int, default=40, help="the quickstart's epoch budget")
    parser.add_argument("--slots", type=int, default=2, help="trials at once in the Ray ways")
    parser.add_argument("--ways", default=",".join(WAYS[1:]), help="which ways to run besides in-process (comma-separated)")
    parser.add_argument("--keep", type=Path, help="keep logs and results in this folder")
    parser.add_argument("--run-way", choices=WAYS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--share", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--shares", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_way:
        if args.run_way == "inprocess":
            run_inprocess(args.spec, args.out, args.share, args.shares)
        else:
            RUNNERS[args.run_way](args.spec, args.out)
        from tunelab_cli import exit_without_teardown

        exit_without_teardown()

    grid, epochs = (SMOKE_GRID, 2) if args.smoke else (GRID, args.epochs)
    ways = ["inprocess", *(way for way in args.ways.split(",") if way and way != "inprocess")]
    unknown = set(ways) - set(WAYS)
    if unknown:
        parser.error(f"--ways: unknown {', '.join(sorted(unknown))}; expected some of {', '.join(WAYS[1:])}")
    with tempfile.TemporaryDirectory(prefix="tunelab-bench-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        spec_file = folder / "overhead.yaml"
        spec_file.write_text(yaml.safe_dump(workload(grid, epochs, args.slots), sort_keys=False))
        runs = []
        for way in ways:
            print(f"running {way} ...", flush=True)
            runs.append(measure(way, spec_file, folder, args.slots))
        print()
        print(report(runs, args.slots, epochs))


if __name__ == "__main__":
    main()
