"""Fused trials, pure compute: N configurations of one architecture trained one after another
(tunelab's training loop, as a trial runs it) against the same N as one fused cohort
(`tunelab.fusion.cohort.train_cohort`), in one process, one thread, side by side in one run.

The study-level comparison the issue asks for (unfused `tunelab run` against fused `tunelab
run`, each member its own Ray Tune trial) needs the fusion wired into the tuner, which is not
done yet; this measures the ceiling that wiring can reach.

    python bench/fused.py                  # 16 and 64 digits MLPs (64-128-128-10), 5 epochs
    python bench/fused.py --smoke          # 4 members, 1 epoch
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from tunelab.datasets import load_splits
from tunelab.fusion.cohort import train_cohort
from tunelab.training.knobs import TRAINING_KNOBS
from tunelab.training.loop import train_trial
from tunelab.training.plan import TrainingRules, TrialPlan
from tunelab_models import resolve_params


def plans(members: int, epochs: int) -> list[TrialPlan]:
    rng = np.random.default_rng(0)
    rules = TrainingRules(max_epochs=epochs, objective="val_acc", objective_mode="max", patience=None, min_delta=0.0,
                          monitor="val_acc", monitor_mode="max", seed=0)
    return [TrialPlan("mlp", {"depth": 2, "width": 128},
                      resolve_params(TRAINING_KNOBS, {"optimizer": "sgd", "batch_size": 32,
                                                      "learning_rate": float(10 ** rng.uniform(-3, -1)),
                                                      "momentum": float(rng.uniform(0, 0.95)),
                                                      "weight_decay": float(10 ** rng.uniform(-6, -3))}), rules)
            for _ in range(members)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--keep", help="unused; accepted like the other benchmarks'")
    args = parser.parse_args()
    members, epochs = ([4], 1) if args.smoke else (args.members, args.epochs)
    torch.set_num_threads(1)
    data = load_splits("digits", {}, 0.2, 0.2, seed=0)
    print(f"machine: {os.cpu_count()} CPUs, {platform.machine()}, torch {torch.__version__}, one thread; "
          f"digits MLP 64-128-128-10, SGD with each member's learning rate, momentum and weight decay, {epochs} epochs")
    print(f"{'members':>8} {'one at a time s':>16} {'fused s':>9} {'speed-up':>9} {'member-epochs/s fused':>22}")
    for count in members:
        cohort = plans(count, epochs)
        started = time.perf_counter()
        for plan in cohort:
            train_trial(plan, data, lambda metrics, state: None)
        sequential = time.perf_counter() - started
        started = time.perf_counter()
        train_cohort(cohort, data, lambda result: None)
        fused = time.perf_counter() - started
        print(f"{count:>8} {sequential:>16.2f} {fused:>9.2f} {sequential / fused:>8.2f}× {count * epochs / fused:>22.1f}")


if __name__ == "__main__":
    main()
