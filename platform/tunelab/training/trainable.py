"""The Ray Tune function trainable: a thin adapter around `train_trial`."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from tunelab.datasets import Splits
from tunelab.training.loop import train_trial
from tunelab.training.plan import StudySetup
from tunelab.training.reporting import EpochReporter

CHECKPOINT_FILE = "state.pt"


def tune_trainable(config: dict[str, Any], *, data: Splits, setup: StudySetup) -> None:
    # One "checkpoint created" line per epoch per trial drowns the progress display.
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    # Ray sets OMP_NUM_THREADS for the actor; torch must agree or trials oversubscribe cores.
    torch.set_num_threads(max(1, int(setup.cpus_per_trial)))
    device = "cuda" if setup.gpus_per_trial > 0 and torch.cuda.is_available() else "cpu"
    plan = setup.plan_for(config, device=device)
    # Where the trial runs: which node, and the GPU ids Ray gave it (it sees only those).
    placement = {"node_id": ray.get_runtime_context().get_node_id(), "gpu_ids": ",".join(map(str, ray.get_gpu_ids()))}

    def report(metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
        metrics = {**metrics, **placement}
        if state is None:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory() as folder:
            torch.save(state, Path(folder) / CHECKPOINT_FILE)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    train_trial(plan, data, EpochReporter(report, setup.decision_epochs), resume=load_checkpoint(tune.get_checkpoint()))


def load_checkpoint(checkpoint: tune.Checkpoint | None) -> dict[str, Any] | None:
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        path = os.path.join(folder, CHECKPOINT_FILE)
        # weights_only: a checkpoint is data, never code.
        return torch.load(path, weights_only=True, map_location="cpu")
