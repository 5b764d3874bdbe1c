"""GPU packing: samples per second per trial and in total, with 1, 2, 4 and 8 trials per GPU;
and (--fused) fused cohorts of 1 … 64 small models on one GPU against one at a time.

The same fixed MNIST-1D MLP configurations run through tunelab once per packing, each in a
fresh process: `resources.gpu` is 1/packing, so Ray places that many trials on each GPU at
once, and each trial moves its data set to its GPU once and trains from there. Printed per
packing: the trials, the wall time from the first trial's start to the last one's end, the
median samples per second of one trial (training rows × epochs ÷ the trial's duration), and
the samples per second of all trials together.

    python bench/gpu.py                 # needs CUDA: 16 configurations × 20 epochs per packing
    python bench/gpu.py --packings 1,4
    python bench/gpu.py --smoke         # no GPU needed: one logical GPU that Ray schedules
                                        # exactly like a real one, trials train on the CPU

The smoke mode checks the packing and the figures, not GPU speed.

--fused trains one MNIST-1D MLP (40 → 256 → 256 → 10, about 79,000 parameters, batch 128, Adam,
5 epochs on 6,000 rows), each member with its own learning rate, as one fused cohort of 1, 2, 4,
8, 16, 32 and 64 members in this process (`bench/fused_cohorts.py`), and 8 of the configurations
one at a time (`train_trial` in a loop). Printed per way: the models, the wall seconds, the
samples per second (training rows × epochs × models ÷ wall) and the speed-up over one at a time.

    python bench/gpu.py --fused                 # needs CUDA
    python bench/gpu.py --fused --members 1,32
    python bench/gpu.py --fused --smoke         # on the CPU, tiny sizes: checks the figures, not speed
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fused_cohorts import COHORT_SIZES, run_fused

PACKINGS = (1, 2, 4, 8)
GRID = {"learning_rate": [0.001, 0.003], "batch_size": [256, 1024], "depth": [2, 3], "dropout": [0.0, 0.2]}


@dataclass(frozen=True)
class Workload:
    num_samples: int
    width: int
    epochs: int
    grid: dict[str, list[Any]]


FULL = Workload(num_samples=40_000, width=1024, epochs=20, grid=GRID)
SMOKE = Workload(num_samples=3000, width=32, epochs=3, grid={"learning_rate": [0.001, 0.01], "depth": [1]})


def experiment(work: Workload, packing: int, cpus_per_trial: float) -> dict[str, Any]:
    return {
        "name": f"gpu-packing-{packing}",
        "dataset": {"name": "mnist1d", "num_samples": work.num_samples, "seed": 0},
        "model": {"name": "mlp", "width": work.width, "activation": "relu"},
        "search_space": {name: {"type": "choice", "values": values} for name, values in work.grid.items()},
        "objective": {"metric": "val_acc"},
        "train": {"max_epochs": work.epochs, "optimizer": "adam", "early_stopping": {"patience": None}},
        "searcher": {"name": "grid"},
        "scheduler": {"name": "none"},
        "budget": {"num_samples": math.prod(len(values) for values in work.grid.values())},
        "resources": {"cpu": cpus_per_trial, "gpu": 1 / packing},
    }


# ---------------------------------------------------------------------------------------
# One packing, in its own process.


def run_packing(spec_file: Path, out: Path, logical_gpus: int) -> None:
    import ray

    from tunelab.spec import load_spec
    from tunelab.store import read_trials
    from tunelab.from_spec import load_study_data
    from tunelab.study import run_study

    spec = load_spec(spec_file)
    if logical_gpus:
        # No CUDA here: Ray schedules logical GPUs exactly like real ones (run_study joins
        # this Ray instead of starting its own).
        ray.init(address="local", num_gpus=logical_gpus, include_dashboard=False, _node_ip_address="127.0.0.1")
    train_rows = len(load_study_data(spec).train_x)
    outcome = run_study(spec, out.parent / "tunelab-results", echo=lambda line: None)
    trials = read_trials(outcome.paths)
    records = [
        {
            "start": row["started_at"].timestamp(),
            "end": row["finished_at"].timestamp(),
            "samples": train_rows * int(row["epochs"]),
        }
        for row in trials.to_dict("records")
    ]
    out.write_text(json.dumps({"trials": records}))


# ---------------------------------------------------------------------------------------
# The orchestrator.


@dataclass(frozen=True)
class Packed:
    packing: int
    trials: int
    peak: int  # most trials running at once
    window: float  # first trial's start to last trial's end
    per_trial: float  # median samples/s of one trial
    total: float  # all samples / window


def measure(work: Workload, packing: int, folder: Path, logical_gpus: int) -> Packed:
    cpus = os.cpu_count() or 1
    gpus = logical_gpus or visible_gpus()
    # One CPU per trial when the machine has them; otherwise the CPUs are shared out.
    cpus_per_trial = min(1.0, cpus / (packing * gpus))
    spec_file = folder / f"gpu-packing-{packing}.yaml"
    spec_file.write_text(yaml.safe_dump(experiment(work, packing, cpus_per_trial), sort_keys=False))
    out = folder / f"gpu-packing-{packing}.json"
    done = subprocess.run(
        [sys.executable, __file__, "--run-packing", "--spec", str(spec_file), "--out", str(out),
         "--logical-gpus", str(logical_gpus)],
        capture_output=True, text=True,
    )
    (folder / f"gpu-packing-{packing}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        sys.exit(f"packing {packing} failed:\n{(done.stdout + done.stderr)[-4000:]}")
    record = json.loads(out.read_text())
    trials = record["trials"]
    window = max(t["end"] for t in trials) - min(t["start"] for t in trials)
    events = sorted([(t["start"], 1) for t in trials] + [(t["end"], -1) for t in trials])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return Packed(
        packing=packing,
        trials=len(trials),
        peak=peak,
        window=window,
        per_trial=statistics.median(t["samples"] / (t["end"] - t["start"]) for t in trials),
        total=sum(t["samples"] for t in trials) / window,
    )


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count()


def report(rows: list[Packed], work: Workload, device: str) -> str:
    lines = [
        f"{rows[0].trials} MNIST-1D MLP configurations (width {work.width}, {work.num_samples} samples) × "
        f"{work.epochs} epochs, no early stopping; {device}",
        "",
        f"{'trials/GPU':>10} {'trials':>6} {'at once':>7} {'window s':>8} {'samples/s per trial':>19} "
        f"{'samples/s total':>15} {'total vs 1/GPU':>14}",
    ]
    single = next((row for row in rows if row.packing == 1), None)
    for row in rows:
        gain = f"{row.total / single.total:.2f}×" if single else "—"
        lines.append(
            f"{row.packing:>10} {row.trials:>6} {row.peak:>7} {row.window:>8.1f} {row.per_trial:>19,.0f} "
            f"{row.total:>15,.0f} {gain:>14}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on one logical GPU (no CUDA needed); with --fused, on the CPU")
    parser.add_argument("--packings", default=",".join(map(str, PACKINGS)), help="trials per GPU, comma-separated")
    parser.add_argument("--fused", action="store_true", help="fused cohorts of small models against one at a time")
    parser.add_argument("--members", default=",".join(map(str, COHORT_SIZES)), help="--fused: members per cohort, comma-separated")
    parser.add_argument("--keep", type=Path, help="keep experiment files, logs and results in this folder (--fused keeps none)")
    parser.add_argument("--run-packing", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--logical-gpus", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_packing:
        from tunelab_cli import exit_without_teardown

        run_packing(args.spec, args.out, args.logical_gpus)
        exit_without_teardown()

    if args.fused:
        sizes = counts(parser, "--members", args.members)
        if not args.smoke and not visible_gpus():
            sys.exit("bench/gpu.py --fused: no CUDA device here; run it on a GPU machine, or --smoke on the CPU")
        print(run_fused(args.smoke, sizes))
        return
    packings = counts(parser, "--packings", args.packings)
    work, logical_gpus = (SMOKE, 1) if args.smoke else (FULL, 0)
    if not args.smoke and not visible_gpus():
        sys.exit("bench/gpu.py: no CUDA device here; run it on a GPU machine, or --smoke to check it on one logical GPU")
    device = "1 logical GPU (smoke mode: trials train on the CPU)" if args.smoke else gpu_names()
    with tempfile.TemporaryDirectory(prefix="tunelab-bench-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for packing in packings:
            print(f"running {packing} trial(s) per GPU ...", flush=True)
            started = time.time()
            rows.append(measure(work, packing, folder, logical_gpus))
            print(f"  {time.time() - started:.0f} s", flush=True)
        print()
        print(report(rows, work, device))


def counts(parser: argparse.ArgumentParser, option: str, text: str) -> list[int]:
    """Whole numbers of at least 1, separated by commas."""
    try:
        values = [int(value) for value in text.split(",") if value]
    except ValueError:
        parser.error(f"{option}: expected whole numbers separated by commas, got {text!r}")
    if not values or min(values) < 1:
        parser.error(f"{option}: expected whole numbers of at least 1, got {text!r}")
    return values


def gpu_names() -> str:
    import torch

    names = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
    return ", ".join(f"{count} × {name}" for name, count in ((n, names.count(n)) for n in dict.fromkeys(names)))


if __name__ == "__main__":
    main()
