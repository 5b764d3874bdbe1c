"""Train one configuration, epoch by epoch. Plain PyTorch: no Ray, no Optuna in here.

`on_epoch(metrics, checkpoint_state)` is called once per epoch; `checkpoint_state` is a
dict to save (or None when no checkpoint is due). The last call carries `trial_end`.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

from tunelab_models import DataSignature, build_model

from tunelab.datasets import Splits
from tunelab.metrics import TRIAL_END, Mode, worst_value
from tunelab.training.optimizers import build_optimizer
from tunelab.training.plan import TrialPlan

OnEpoch = Callable[[dict[str, Any], "dict[str, Any] | None"], None]
EVAL_CHUNK = 8192  # rows per forward pass when evaluating a whole split


@dataclass
class BestTracker:
    """Best value of one metric so far, and how many epochs since it improved."""

    mode: Mode
    min_delta: float = 0.0
    best_value: float = math.nan
    best_epoch: int = 0
    epochs_without_improvement: int = 0

    def update(self, value: float, epoch: int) -> bool:
        if math.isnan(self.best_value):
            improved = True
        elif self.mode == "min":
            improved = value < self.best_value - self.min_delta
        else:
            improved = value > self.best_value + self.min_delta
        if improved:
            self.best_value, self.best_epoch, self.epochs_without_improvement = value, epoch, 0
        else:
            self.epochs_without_improvement += 1
        return improved

    def state(self) -> dict[str, Any]:
        return {"best_value": self.best_value, "best_epoch": self.best_epoch,
                "epochs_without_improvement": self.epochs_without_improvement}

    def restore(self, state: dict[str, Any]) -> None:
        self.best_value = float(state["best_value"])
        self.best_epoch = int(state["best_epoch"])
        self.epochs_without_improvement = int(state["epochs_without_improvement"])


def train_trial(plan: TrialPlan, data: Splits, on_epoch: OnEpoch, resume: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the trial to its end; return the last epoch's metrics."""
    device = torch.device(plan.device)
    torch.manual_seed(plan.seed)

    # Data: whole splits as tensors on the training device, moved once per trial.
    classification = data.task == "classification"
    target_dtype = torch.long if classification else torch.float32
    train_x, train_y = to_device(data.train_x, data.train_y, target_dtype, device)
    val_x, val_y = to_device(data.val_x, data.val_y, target_dtype, device)
    loss_fn = F.cross_entropy if classification else F.mse_loss

    # Model, optimiser and bookkeeping, restored from a checkpoint when resuming.
    signature = DataSignature(data.input_shape, data.task, data.num_outputs)
    model = build_model(plan.model_name, plan.model_params, signature).to(device)
    optimizer = build_optimizer(model.parameters(), plan.knobs)
    objective = BestTracker(plan.objective_mode)
    patience = BestTracker(plan.monitor_mode, plan.min_delta)
    shuffle = torch.Generator(device="cpu").manual_seed(plan.seed)
    best_weights = copy.deepcopy(model.state_dict())
    first_epoch = 1
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        best_weights = resume["best_model"]
        objective.restore(resume["objective"])
        patience.restore(resume["patience"])
        shuffle.set_state(resume["shuffle_rng"])
        torch.set_rng_state(resume["torch_rng"])  # dropout masks continue where they were
        first_epoch = int(resume["epoch"]) + 1

    n_train = train_x.shape[0]
    batch_size = min(plan.knobs["batch_size"], n_train)
    metrics: dict[str, Any] = {}
    for epoch in range(first_epoch, plan.max_epochs + 1):
        started = time.perf_counter()

        # One pass over the training split in shuffled mini-batches.
        model.train()
        order = torch.randperm(n_train, generator=shuffle).to(device)
        # A trailing batch of one example would break batch norm; it rejoins next epoch.
        n_used = n_train - 1 if batch_size > 1 and n_train % batch_size == 1 else n_train
        for start in range(0, n_used, batch_size):
            batch = order[start : start + batch_size]
            loss = loss_fn(model(train_x[batch]), train_y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        # Train metrics in eval mode (no dropout): training error is the bias diagnostic.
        train_loss, train_acc = evaluate(model, train_x, train_y, loss_fn, classification)
        val_loss, val_acc = evaluate(model, val_x, val_y, loss_fn, classification)
        metrics = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "lr": optimizer.param_groups[0]["lr"],
        }
        if classification:
            metrics.update(train_acc=train_acc, val_acc=val_acc)

        diverged = not (math.isfinite(train_loss) and math.isfinite(val_loss))
        if diverged:
            # A NaN never loses at an ASHA rung and Optuna refuses it: an exploded loss is
            # reported as +inf, and an objective that is not finite as its worst value.
            metrics.update(train_loss=math.inf, val_loss=math.inf)
            if not math.isfinite(metrics[plan.objective]):
                metrics[plan.objective] = worst_value(plan.objective_mode)
            end = "diverged"
        else:
            if objective.update(metrics[plan.objective], epoch):
                best_weights = copy.deepcopy(model.state_dict())
            patience.update(metrics[plan.monitor], epoch)
            if plan.patience is not None and patience.epochs_without_improvement >= plan.patience:
                end = "early_stopped_patience"
            elif epoch == plan.max_epochs:
                end = "completed"
            else:
                end = ""
        metrics.update(best_epoch=objective.best_epoch, best_objective=objective.best_value)

        if end and end != "diverged":
            # The held-out test split is touched once, by the best epoch's weights, after
            # the trial has ended: it never takes part in choosing a configuration.
            final_weights = copy.deepcopy(model.state_dict())
            model.load_state_dict(best_weights)
            test_x, test_y = to_device(data.test_x, data.test_y, target_dtype, device)
            test_loss, test_acc = evaluate(model, test_x, test_y, loss_fn, classification)
            metrics["test_loss"] = test_loss
            if classification:
                metrics["test_acc"] = test_acc
            model.load_state_dict(final_weights)
        if end:
            metrics[TRIAL_END] = end
        metrics["epoch_seconds"] = time.perf_counter() - started

        checkpoint_due = bool(end) or epoch % plan.checkpoint_every == 0
        state = None
        if checkpoint_due:
            state = {
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "best_model": best_weights,
                "objective": objective.state(),
                "patience": patience.state(),
                "shuffle_rng": shuffle.get_state(),
                "torch_rng": torch.get_rng_state(),
            }
        on_epoch(metrics, state)
        if end:
            break
    return metrics


def to_device(x: Any, y: Any, target_dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Copies of one split's arrays on the device (arrays from Ray's object store are read-only)."""
    return (
        torch.tensor(x, dtype=torch.float32, device=device),
        torch.tensor(y, dtype=target_dtype, device=device),
    )


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable[..., torch.Tensor], classification: bool
) -> tuple[float, float]:
    """Mean loss and accuracy (NaN for regression) over a whole split, in eval mode."""
    model.eval()
    total_loss = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device)
    for start in range(0, x.shape[0], EVAL_CHUNK):
        outputs = model(x[start : start + EVAL_CHUNK])
        targets = y[start : start + EVAL_CHUNK]
        total_loss += loss_fn(outputs, targets, reduction="sum")
        if classification:
            correct += (outputs.argmax(dim=1) == targets).sum()
    n = x.shape[0]
    mse_per_value = 1 if classification else y[0].numel()
    loss = (total_loss / (n * mse_per_value)).item()
    return loss, (correct / n).item() if classification else math.nan
