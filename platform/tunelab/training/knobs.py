"""Training knobs: the hyperparameters of the training loop (not of the model)."""

from __future__ import annotations

from tunelab_models.params import Param

from tunelab.training.optimizers import OPTIMIZERS
from tunelab.training.schedules import SCHEDULES

TRAINING_KNOBS: tuple[Param, ...] = (
    Param("optimizer", str, "adam", "optimisation algorithm", choices=tuple(OPTIMIZERS)),
    Param("learning_rate", float, 1e-3, "step size (peak rate for onecycle)", low=1e-12, high=1e3),
    Param(
        "batch_size", int, 64, "examples per gradient step: 1 is stochastic, 'full' (or anything "
        "larger than the training set) is full-batch gradient descent", low=1, high=10_000_000, also=("full",),
    ),
    Param("momentum", float, 0.0, "momentum for sgd and rmsprop", low=0.0, high=1.0, high_exclusive=True),
    Param("nesterov", bool, False, "Nesterov momentum for sgd (when momentum > 0)"),
    Param("weight_decay", float, 0.0, "L2 penalty (decoupled decay for adamw)", low=0.0, high=10.0),
    Param("l1", float, 0.0, "L1 penalty on weights (not biases or norm parameters)", low=0.0, high=10.0),
    Param("lr_schedule", str, "none", "learning-rate schedule", choices=tuple(SCHEDULES)),
    Param("lr_step_size", int, 10, "epochs between decays for lr_schedule: step", low=1, high=100_000),
    Param("lr_gamma", float, 0.1, "decay factor for lr_schedule: step", low=0.0, high=1.0, high_exclusive=True),
    Param("grad_clip_norm", float, 0.0, "clip the gradient's global norm to this (0: off)", low=0.0, high=1e6),
)
