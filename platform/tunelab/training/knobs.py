"""Training knobs: the hyperparameters of the training loop (not of the model)."""

from __future__ import annotations

from tunelab_models.params import Param

from tunelab.training.optimizers import OPTIMIZERS

TRAINING_KNOBS: tuple[Param, ...] = (
    Param("optimizer", str, "adam", "optimisation algorithm", choices=tuple(OPTIMIZERS)),
    Param("learning_rate", float, 1e-3, "step size", low=1e-12, high=1e3),
    Param("batch_size", int, 64, "examples per gradient step (larger than the training set: full batch)", low=1, high=10_000_000),
    Param("momentum", float, 0.0, "SGD momentum", low=0.0, high=1.0, high_exclusive=True),
    Param("weight_decay", float, 0.0, "L2 penalty", low=0.0, high=10.0),
)
