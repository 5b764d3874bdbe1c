"""What a model is trained to do: the loss, the per-epoch metrics and the final evaluation.

One class per task. The training loop asks the task for targets, a loss and metrics and
never switches on the task's kind.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from tunelab_models import Task

from tunelab.strategy import NameRegistry, Strategy


class TrainingTask(Strategy):
    """A task has no `build`: it is used as it is, inside a trial, where torch is loaded."""

    name: ClassVar[Task]
    # Per-epoch metrics besides the loss, with the direction that is better.
    extra_metrics: ClassVar[dict[str, str]] = {}

    def targets(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y

    def target_dtype(self) -> torch.dtype:
        return torch.float32

    @abstractmethod
    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The mean training loss over a batch."""

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """Mean loss and the task's extra metrics over a whole split."""
        return {"loss": self.loss(outputs, targets).item()}

    def final_metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, object]:
        """Extra figures computed once, when a trial ends (ROC AUC, confusion matrix)."""
        return {}


class ClassificationTask(TrainingTask):
    name = "classification"
    extra_metrics = {"acc": "max"}

    def target_dtype(self) -> torch.dtype:
        return torch.long

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs, targets)

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        accuracy = (outputs.argmax(dim=1) == targets).float().mean().item()
        return {"loss": self.loss(outputs, targets).item(), "acc": accuracy}

    def final_metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, object]:
        num_classes = outputs.shape[1]
        predicted = outputs.argmax(dim=1)
        confusion = torch.bincount(targets * num_classes + predicted, minlength=num_classes**2)
        return {
            "auc": one_vs_rest_auc(torch.softmax(outputs.double(), dim=1).cpu().numpy(), targets.cpu().numpy()),
            # rows: true class, columns: predicted class
            "confusion": confusion.reshape(num_classes, num_classes).cpu().tolist(),
        }


class RegressionTask(TrainingTask):
    name = "regression"
    extra_metrics = {"r2": "max"}

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(outputs, targets)

    def metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        residual = ((targets - outputs) ** 2).sum()
        total = ((targets - targets.mean(dim=0)) ** 2).sum()
        r2 = (1 - residual / total).item() if total > 0 else math.nan
        return {"loss": self.loss(outputs, targets).item(), "r2": r2}


class ReconstructionTask(TrainingTask):
    """Autoencoders: the target is the input itself."""

    name = "reconstruction"

    def targets(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(outputs, targets)


TASKS: NameRegistry[TrainingTask] = NameRegistry("task")
for _task in (ClassificationTask(), RegressionTask(), ReconstructionTask()):
    TASKS.register(_task)


def one_vs_rest_auc(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean one-vs-rest ROC AUC over the classes present (NaN if fewer than two)."""
    present = np.unique(labels)
    if len(present) < 2:
        return math.nan
    return float(np.mean([binary_auc(probabilities[:, c], labels == c) for c in present]))


def binary_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic: the chance that a positive example scores above
    a negative one, ties counting half. (scikit-learn's roc_auc_score gives the same figure
    but costs milliseconds per class in input checks, at the end of every trial.)"""
    order = np.argsort(scores, kind="mergesort")
    _, first, counts = np.unique(scores[order], return_index=True, return_counts=True)
    ranks = np.empty(len(scores))
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)  # 1-based, ties share their mean rank
    n_positive = int(positive.sum())
    n_negative = len(scores) - n_positive
    return float((ranks[positive].sum() - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative))
