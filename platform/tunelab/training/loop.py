"""Train one configuration, epoch by epoch. Plain PyTorch: no Ray, no Optuna in here.

`on_epoch(metrics, checkpoint_state)` is called once per epoch; `checkpoint_state` is a
dict to save (or None when no checkpoint is due). The last call carries `trial_end`.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from tunelab_models import build_model, model_signature

from tunelab.datasets import Splits
from tunelab.metrics import TRIAL_END
from tunelab.training.epoch_end import BestTracker, judge_epoch
from tunelab.training.optimizers import build_optimizer
from tunelab.training.plan import TrialPlan
from tunelab.training.schedules import SCHEDULES
from tunelab.training.tasks import TASKS, TrainingTask

OnEpoch = Callable[[dict[str, Any], "dict[str, Any] | None"], None]
EVAL_CHUNK = 8192  # rows per forward pass when evaluating a whole split
checkpoint_clock = time.monotonic  # when checkpoints fall due (tests replace it)


@dataclass(frozen=True)
class TrialResult:
    metrics: dict[str, Any]  # the last epoch's report
    model: torch.nn.Module  # as trained, in eval mode, on the training device
    task: TrainingTask


def train_trial(plan: TrialPlan, data: Splits, on_epoch: OnEpoch, resume: dict[str, Any] | None = None) -> TrialResult:
    """Run the trial to its end; return its last report and the trained model."""
    device = torch.device(plan.device)
    rules = plan.rules
    torch.manual_seed(rules.seed)

    # Model and task: an autoencoder learns its inputs whatever labels the data has.
    signature = model_signature(plan.model_name, data.input_shape, data.task, data.num_outputs)
    task = TASKS[signature.task]
    model = build_model(plan.model_name, plan.model_params, signature).to(device)

    # Data: whole splits as tensors on the training device, moved once per trial.
    train_x, train_y = to_device(data.train_x, data.train_y, task, device)
    val_x, val_y = to_device(data.val_x, data.val_y, task, device)

    # Optimiser, learning-rate schedule and bookkeeping, restored when resuming.
    knobs = plan.knobs
    n_train = train_x.shape[0]
    batch_size = n_train if knobs["batch_size"] == "full" else min(knobs["batch_size"], n_train)
    # A trailing batch of one example would break batch norm; it rejoins next epoch.
    n_used = n_train - 1 if batch_size > 1 and n_train % batch_size == 1 else n_train
    steps_per_epoch = math.ceil(n_used / batch_size)
    optimizer = build_optimizer(model.parameters(), knobs)
    schedule = SCHEDULES[knobs["lr_schedule"]]
    lr_scheduler = schedule.build(optimizer, knobs, rules.max_epochs, steps_per_epoch)
    penalised = [p for name, p in model.named_parameters() if p.dim() > 1]  # weights, not biases/norms
    objective = BestTracker(rules.objective_mode)
    patience = BestTracker(rules.monitor_mode, rules.min_delta)
    shuffle = torch.Generator(device="cpu").manual_seed(rules.seed)
    best_weights = copy_weights(model)
    first_epoch = 1
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        if lr_scheduler is not None:
            lr_scheduler.load_state_dict(resume["lr_scheduler"])
        best_weights = resume["best_model"]
        objective.restore(resume["objective"])
        patience.restore(resume["patience"])
        shuffle.set_state(resume["shuffle_rng"])
        torch.set_rng_state(resume["torch_rng"])  # dropout masks continue where they were
        if device.type == "cuda" and "cuda_rng" in resume:  # on a GPU they come from its generator
            torch.cuda.set_rng_state(resume["cuda_rng"], device)
        first_epoch = int(resume["epoch"]) + 1
        if resume.get("trial_end"):
            # The trial had ended when this state was saved (Ray's state snapshot can lag
            # behind): resuming it must not train past its end.
            model.eval()
            return TrialResult({"epoch": first_epoch - 1, TRIAL_END: resume["trial_end"]}, model, task)

    metrics: dict[str, Any] = {}
    last_checkpoint = checkpoint_clock()
    for epoch in range(first_epoch, rules.max_epochs + 1):
        started = time.perf_counter()
        epoch_lr = optimizer.param_groups[0]["lr"]

        # One pass over the training split in shuffled mini-batches.
        model.train()
        order = torch.randperm(n_train, generator=shuffle).to(device)
        for start in range(0, n_used, batch_size):
            batch = order[start : start + batch_size]
            loss = task.loss(model(train_x[batch]), train_y[batch])
            if knobs["l1"] > 0:
                loss = loss + knobs["l1"] * sum(p.abs().sum() for p in penalised)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if knobs["grad_clip_norm"] > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), knobs["grad_clip_norm"])
            optimizer.step()
            if lr_scheduler is not None and schedule.per_batch:
                lr_scheduler.step()
        if lr_scheduler is not None and not schedule.per_batch:
            lr_scheduler.step()

        # Train metrics in eval mode (no dropout): training error is the bias diagnostic.
        metrics = {"epoch": epoch, "lr": epoch_lr}
        metrics.update(prefixed("train", task.metrics(predict(model, train_x), train_y)))
        metrics.update(prefixed("val", task.metrics(predict(model, val_x), val_y)))

        verdict = judge_epoch(metrics, epoch, rules, objective, patience)
        if verdict.improved:
            best_weights = copy_weights(model)
        end = verdict.end

        if end and end != "diverged":
            metrics.update(final_evaluation(model, best_weights, data, task, device))
        if end:
            metrics[TRIAL_END] = end
        metrics["epoch_seconds"] = time.perf_counter() - started

        state = None
        if end or checkpoint_clock() - last_checkpoint >= rules.checkpoint_interval_s:
            last_checkpoint = checkpoint_clock()
            state = {
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "lr_scheduler": lr_scheduler.state_dict() if lr_scheduler is not None else {},
                "best_model": best_weights,
                "objective": objective.state(),
                "patience": patience.state(),
                "shuffle_rng": shuffle.get_state(),
                "torch_rng": torch.get_rng_state(),
                **({"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}),
                "trial_end": end,
                "last_metrics": metrics,  # to report the end again if the trial is started again
            }
        on_epoch(metrics, state)
        if end:
            break
    model.eval()
    return TrialResult(metrics, model, task)


def final_evaluation(
    model: torch.nn.Module, best_weights: dict[str, Any], data: Splits, task: TrainingTask, device: torch.device
) -> dict[str, Any]:
    """Test metrics of the best epoch's weights, plus the task's final figures.

    The held-out test split is touched once, after the trial has ended: it never takes
    part in choosing a configuration.
    """
    current = copy_weights(model)
    model.load_state_dict(best_weights)
    val_x, val_y = to_device(data.val_x, data.val_y, task, device)
    test_x, test_y = to_device(data.test_x, data.test_y, task, device)
    test_outputs = predict(model, test_x)
    results: dict[str, Any] = prefixed("test", task.metrics(test_outputs, test_y))
    val_final = task.final_metrics(predict(model, val_x), val_y)
    test_final = task.final_metrics(test_outputs, test_y)
    if "auc" in test_final:
        results.update(val_auc=val_final["auc"], test_auc=test_final["auc"])
    if "confusion" in test_final:
        results["test_confusion"] = json.dumps(test_final["confusion"])
    model.load_state_dict(current)
    return results


def copy_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A snapshot of the model's state that later training steps do not change."""
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def prefixed(split: str, values: dict[str, float]) -> dict[str, float]:
    return {f"{split}_{name}": value for name, value in values.items()}


def to_device(x: np.ndarray, y: np.ndarray, task: TrainingTask, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One split's inputs and targets as tensors on the device.

    On the CPU they share the arrays' memory: arrays from Ray's object store are shared by every
    trial on the node, and a copy per trial would multiply a large data set by the trials
    running. Training never writes to them (batches are gathered copies), which matters: the
    object store's pages are read-only.
    """
    inputs = _shared_tensor(x, torch.float32, device)
    return inputs, task.targets(inputs, _shared_tensor(y, task.target_dtype(), device))


def _shared_tensor(array: np.ndarray, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    with warnings.catch_warnings():
        # torch warns that the array is not writable; we never write to it (see to_device).
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.as_tensor(array, dtype=dtype, device=device)


@torch.no_grad()
def predict(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's outputs for a whole split, in eval mode."""
    model.eval()
    # Each chunk a copy: `x` may be the shared data itself (see to_device), and a user's model
    # that changed its input in place would change it for every trial.
    return torch.cat([model(x[start : start + EVAL_CHUNK].clone()) for start in range(0, x.shape[0], EVAL_CHUNK)])
