"""The fused cohort engine in one process: N trials one after another vs one fused cohort.

The same N configurations (SGD, batch 32, each its own learning rate, momentum and weight
decay, drawn from one seeded generator) trained two ways, side by side in one process on one
thread:

  alone   tunelab's training loop (`train_trial`), one trial after the other
  fused   one fused cohort of N members (`tunelab.fusion.cohort.train_cohort`)

on two models: digits MLP 64-128-128-10, and MNIST-1D (4000 samples) CNN of 2 blocks × 16
channels; on request (`--models lstm gru`) an LSTM or GRU of 64 units reading MNIST-1D's 40
steps. Both ways measure train and validation metrics every epoch, as a study does.
`--profile` prints where a fused step's time goes (torch.profiler, its top operators).

    python bench/fused_engine.py                     # 16 and 64 members, 5 epochs (a few minutes)
    python bench/fused_engine.py --smoke             # 2 and 4 members, 1 epoch, small data: seconds
    python bench/fused_engine.py --models cnn --members 16 --profile
    python bench/fused_engine.py --models lstm --members 16  # the recurrent layers written out
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
from typing import Any

import torch

from tunelab.datasets import Splits, load_splits
from tunelab.fusion.cohort import train_cohort
from tunelab.training.knobs import TRAINING_KNOBS
from tunelab.training.loop import train_trial
from tunelab.training.plan import TrainingRules, TrialPlan
from tunelab_models import resolve_params

MODELS: dict[str, tuple[str, dict[str, Any], str, dict[str, Any]]] = {
    # name: (model, its parameters, data set, the data set's parameters)
    "mlp": ("mlp", {"width": 128, "depth": 2}, "digits", {}),
    "cnn": ("cnn", {"blocks": 2, "channels": 16}, "mnist1d", {"num_samples": 4000}),
    "lstm": ("rnn", {"cell": "lstm", "hidden_size": 64}, "mnist1d", {"num_samples": 4000}),
    "gru": ("rnn", {"cell": "gru", "hidden_size": 64}, "mnist1d", {"num_samples": 4000}),
}
DEFAULT_MODELS = ["cnn", "mlp"]  # the figures the README quotes


def plans(model: str, members: int, epochs: int) -> list[TrialPlan]:
    name, params, _, _ = MODELS[model]
    rules = TrainingRules(max_epochs=epochs, objective="val_loss", objective_mode="min", patience=None,
                          min_delta=0.0, monitor="val_loss", monitor_mode="min", seed=0)
    draw = random.Random(0)
    return [TrialPlan(name, params, resolve_params(TRAINING_KNOBS, {
        "optimizer": "sgd", "batch_size": 32, "learning_rate": 10 ** draw.uniform(-3, -1),
        "momentum": draw.uniform(0, 0.95), "weight_decay": 10 ** draw.uniform(-6, -3)}), rules)
        for _ in range(members)]


def data_for(model: str, smoke: bool) -> Splits:
    _, _, dataset, params = MODELS[model]
    if smoke:
        params = {**params, "num_samples": 1000} if dataset == "mnist1d" else params
    return load_splits(dataset, params, 0.2, 0.2, seed=0)


def seconds_alone(trials: list[TrialPlan], data: Splits) -> float:
    started = time.perf_counter()
    for trial in trials:
        train_trial(trial, data, lambda metrics, state: None)
    return time.perf_counter() - started


def seconds_fused(trials: list[TrialPlan], data: Splits) -> float:
    started = time.perf_counter()
    train_cohort(trials, data, lambda result: None)
    return time.perf_counter() - started


def profile_fused(trials: list[TrialPlan], data: Splits, rows: int = 25) -> None:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        train_cohort(trials, data, lambda result: None)
    print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=DEFAULT_MODELS)
    parser.add_argument("--members", nargs="+", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--smoke", action="store_true", help="2 and 4 members, 1 epoch, small data")
    parser.add_argument("--profile", action="store_true", help="the fused way under torch.profiler")
    parser.add_argument("--keep", help="unused: the benchmarks' smoke tests pass a folder to every script")
    args = parser.parse_args()
    members = args.members or ([2, 4] if args.smoke else [16, 64])
    epochs = args.epochs or (1 if args.smoke else 5)
    torch.set_num_threads(1)  # one core: the figures of one trial's worth of CPU
    print(f"machine: {os.cpu_count()} CPUs, {platform.machine()}, load average {os.getloadavg()[0]:.2f} at the start; "
          f"torch {torch.__version__} on 1 thread; {epochs} epochs")
    print(f"{'model':<6} {'members':>7} {'alone s':>8} {'fused s':>8} {'speed-up':>9}")
    for model in args.models:
        data = data_for(model, args.smoke)
        warm_up = plans(model, 2, 1)
        seconds_alone(warm_up[:1], data), seconds_fused(warm_up, data)  # imports, first-call costs: timed by neither
        for count in members:
            trials = plans(model, count, epochs)
            if args.profile:
                profile_fused(trials, data)
                continue
            alone, fused = seconds_alone(trials, data), seconds_fused(trials, data)
            print(f"{model:<6} {count:>7} {alone:>8.2f} {fused:>8.2f} {alone / fused:>8.2f}×", flush=True)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
