"""`bench/gpu.py --fused`: small models trained as fused cohorts of 1 … 64 members on one device,
against the same configurations trained one at a time (issue 21's GPU target: ≥ 10× per GPU at
32 small models). In one process, no Ray: what is measured is the training itself.

Every member is the same MNIST-1D MLP with its own learning rate (Adam; one cohort key), trained
for a fixed number of epochs. Fused: `tunelab.fusion.cohort.train_cohort` over the first n
configurations. One at a time: `train_trial` over the first `baseline` configurations in a loop.
Samples per second are training rows × epochs × models ÷ wall seconds; each epoch of both ways
also measures the training and validation splits, as a trial does, and a trial alone also ends
with its test evaluation (as `train_trial` always does).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

COHORT_SIZES = (1, 2, 4, 8, 16, 32, 64)


@dataclass(frozen=True)
class CohortWorkload:
    num_samples: int  # MNIST-1D examples generated, before the validation and test splits
    max_train_rows: int | None
    width: int
    depth: int
    batch_size: int
    epochs: int
    baseline: int  # configurations trained one at a time


# About 79,000 parameters per member (40 → 256 → 256 → 10).
FUSED_FULL = CohortWorkload(num_samples=10_000, max_train_rows=None, width=256, depth=2, batch_size=128, epochs=5, baseline=8)
# Seconds on a CPU: checks the modes and the figures, not speed.
FUSED_SMOKE = CohortWorkload(num_samples=1000, max_train_rows=200, width=16, depth=1, batch_size=50, epochs=1, baseline=4)


@dataclass(frozen=True)
class CohortTiming:
    way: str  # "fused" (one cohort of `models` members) or "one-at-a-time"
    models: int
    wall: float
    samples_per_s: float


def measure_cohorts(work: CohortWorkload, sizes: list[int], device: str) -> tuple[CohortTiming, list[CohortTiming], int, int]:
    """The one-at-a-time baseline, each cohort size's timing, the training rows and a member's parameters."""
    from tunelab.datasets import load_splits
    from tunelab.fusion.cohort import train_cohort
    from tunelab.training.loop import train_trial

    data = load_splits("mnist1d", {"num_samples": work.num_samples}, 0.2, 0.2, seed=0, max_train_samples=work.max_train_rows)
    rows = len(data.train_y)
    plans = member_plans(work, max(max(sizes), work.baseline), device)
    # Warm-up, not timed: the device's first kernels and allocations, and the imports of a trial's end.
    train_cohort(plans[:1], data, lambda epoch: None)
    train_trial(plans[0], data, lambda metrics, state: None)

    def timed(way: str, count: int, train: Any) -> CohortTiming:
        started = time.perf_counter()
        train()
        synchronize(device)
        wall = time.perf_counter() - started
        return CohortTiming(way, count, wall, rows * work.epochs * count / wall)

    def one_at_a_time() -> None:
        for plan in plans[:work.baseline]:
            train_trial(plan, data, lambda metrics, state: None)

    baseline = timed("one-at-a-time", work.baseline, one_at_a_time)
    fused = [timed("fused", size, lambda size=size: train_cohort(plans[:size], data, lambda epoch: None))
             for size in sizes]
    return baseline, fused, rows, parameters_per_member(plans[0], data)


def member_plans(work: CohortWorkload, count: int, device: str) -> list[Any]:
    """`count` configurations of one cohort: learning rates spread log-evenly over 3e-4 … 1e-2."""
    from tunelab_models import resolve_params

    from tunelab.training.knobs import TRAINING_KNOBS
    from tunelab.training.plan import TrainingRules, TrialPlan

    rules = TrainingRules(max_epochs=work.epochs, objective="val_acc", objective_mode="max", patience=None,
                          min_delta=0.0, monitor="val_acc", monitor_mode="max", seed=0)
    model = {"width": work.width, "depth": work.depth}
    return [TrialPlan("mlp", model, resolve_params(TRAINING_KNOBS, {
        "optimizer": "adam", "batch_size": work.batch_size,
        "learning_rate": 3e-4 * (1e-2 / 3e-4) ** (index / max(1, count - 1))}), rules, device=device)
        for index in range(count)]


def parameters_per_member(plan: Any, data: Any) -> int:
    from tunelab_models import build_model, model_signature

    signature = model_signature(plan.model_name, data.input_shape, data.task, data.num_outputs)
    return sum(value.numel() for value in build_model(plan.model_name, plan.model_params, signature).parameters())


def synchronize(device: str) -> None:
    """A GPU returns before it has finished: wait for it before reading the clock."""
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def cohort_report(baseline: CohortTiming, fused: list[CohortTiming], work: CohortWorkload, rows: int,
                  parameters: int, device: str) -> str:
    lines = [
        f"MNIST-1D MLP width {work.width}, depth {work.depth} ({parameters:,} parameters per member), "
        f"{rows} training rows, batch {work.batch_size}, Adam, {work.epochs} epoch(s); {device}",
        "",
        f"{'way':>13} {'models':>6} {'wall s':>8} {'samples/s':>12} {'vs one at a time':>16}",
    ]
    for timing in (baseline, *fused):
        lines.append(f"{timing.way:>13} {timing.models:>6} {timing.wall:>8.2f} {timing.samples_per_s:>12,.0f} "
                     f"{timing.samples_per_s / baseline.samples_per_s:>15.2f}×")
    return "\n".join(lines)


def run_fused(smoke: bool, sizes: list[int]) -> str:
    """The fused mode's table: on CUDA, or (smoke) on the CPU at tiny sizes."""
    import torch

    work = FUSED_SMOKE if smoke else FUSED_FULL
    device = "cuda" if torch.cuda.is_available() and not smoke else "cpu"
    described = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    baseline, fused, rows, parameters = measure_cohorts(work, sizes, device)
    return cohort_report(baseline, fused, work, rows, parameters, described)
