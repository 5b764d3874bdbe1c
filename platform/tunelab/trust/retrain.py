"""Training for `confirm` and `audit`, without Ray: the runner ships these functions to Ray
tasks, the tests call them directly."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tunelab.datasets import Splits
from tunelab.metrics import EPOCH_METRICS, TRIAL_END
from tunelab.training.plan import TrialPlan

# Replicate r trains with the study's seed + REPLICATE_SEED_OFFSET + r: seeds no trial of the
# study used (they all share the study's seed), the same for every configuration (replicates
# are paired by seed).
REPLICATE_SEED_OFFSET = 1000


def replicate(data: Splits, plan: TrialPlan, index: int, resplit: bool, threads: float, gpu: bool) -> dict[str, Any]:
    """Train the configuration as its trial was (its epochs, its early stopping) with a new
    seed (initialisation, shuffling, dropout); with `resplit`, on a new train/validation split
    of the same rows (the test split stays). Its best validation objective and test metrics."""
    from tunelab.tune.ray_tasks import on_device
    from tunelab.training.loop import train_trial

    plan = replicate_plan(plan, index, on_device(threads, gpu))
    seed = plan.rules.seed
    metrics = train_trial(plan, resplit_data(data, seed) if resplit else data, _ignore).metrics
    return replicate_row(index, seed, resplit, metrics)


def fused_replicates(data: Splits, plan: TrialPlan, replicates: int, threads: float, gpu: bool) -> list[dict[str, Any]]:
    """Replicates 0 … replicates-1 of the configuration as members of one fused cohort
    (`tunelab.fusion.rounds`), each row the one `replicate` gives without `resplit` (a cohort
    shares its splits)."""
    from tunelab.fusion.rounds import fused_trial_ends
    from tunelab.tune.ray_tasks import on_device

    device = on_device(threads, gpu)
    plans = [replicate_plan(plan, index, device) for index in range(replicates)]
    return [replicate_row(index, member.rules.seed, False, metrics)
            for index, (member, metrics) in enumerate(zip(plans, fused_trial_ends(plans, data)))]


def replicate_plan(plan: TrialPlan, index: int, device: str) -> TrialPlan:
    """The configuration with replicate `index`'s seed, on the device."""
    seed = plan.rules.seed + REPLICATE_SEED_OFFSET + index
    return dataclasses.replace(plan, device=device, rules=dataclasses.replace(plan.rules, seed=seed))


def replicate_row(index: int, seed: int, resplit: bool, metrics: dict[str, Any]) -> dict[str, Any]:
    """A replicate's row in `confirm.parquet`, from its last report."""
    return {
        "replicate": index,
        "seed": seed,
        "resplit": resplit,
        "objective": float(metrics["best_objective"]),
        "best_epoch": int(metrics["best_epoch"]),
        "epochs": int(metrics["epoch"]),
        "end": str(metrics.get(TRIAL_END, "")),
        **{name: float(value) for name, value in metrics.items() if name.startswith("test_") and isinstance(value, float)},
    }


def resplit_data(data: Splits, seed: int) -> Splits:
    """The training and validation rows drawn apart again (seeded, stratified for classes,
    the same validation size): repeated hold-out. The scaling stays the study's, fitted on its
    own training rows."""
    from sklearn.model_selection import train_test_split

    x = np.concatenate([data.train_x, data.val_x])
    y = np.concatenate([data.train_y, data.val_y])
    rows = np.arange(len(y))
    train, validation = train_test_split(
        rows, test_size=len(data.val_y), random_state=seed, stratify=y if data.task == "classification" else None
    )
    return dataclasses.replace(data, train_x=x[train], train_y=y[train], val_x=x[validation], val_y=y[validation])


def continue_stopped(data: Splits, plan: TrialPlan, threads: float, gpu: bool) -> dict[str, Any]:
    """Train a trial the scheduler stopped as it would have run without the scheduler: the
    same seed, so its first epochs repeat the stored ones exactly, then on to its own end
    (max_epochs, or patience). Every epoch's metrics and how it ended."""
    from tunelab.tune.ray_tasks import on_device
    from tunelab.training.loop import train_trial

    plan = dataclasses.replace(plan, device=on_device(threads, gpu))
    epochs: list[dict[str, Any]] = []

    def keep(metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
        epochs.append({"epoch": int(metrics["epoch"]), **{name: float(metrics[name]) for name in EPOCH_METRICS if name in metrics}})

    metrics = train_trial(plan, data, keep).metrics
    return {
        "epochs": epochs,
        "end": str(metrics.get(TRIAL_END, "")),
        "best_objective": float(metrics["best_objective"]),
        "best_epoch": int(metrics["best_epoch"]),
        **{name: float(value) for name, value in metrics.items() if name.startswith("test_") and isinstance(value, float)},
    }


def _ignore(metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
    """Replicates report nothing and keep no checkpoints."""
