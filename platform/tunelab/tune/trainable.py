"""The Ray Tune function trainable: a thin adapter around `train_trial`."""

from __future__ import annotations

from typing import Any

import ray
import torch
from ray import tune

from tunelab.datasets import Splits
from tunelab.metrics import EPOCH_ROWS
from tunelab.training.loop import train_trial
from tunelab.training.plan import StudySetup
from tunelab.training.reporting import EpochReporter
from tunelab.training.trial_state import BEST_MODEL_FILE, STATE_FILE, best_model_of, load_state, save_state, trial_folder


def tune_trainable(config: dict[str, Any], *, data: Splits, setup: StudySetup, study_folder: str,
                   marks: dict[str, str] | None = None) -> None:
    """`marks`: fields every report carries besides the metrics (a fused study's `fusion`)."""
    # Ray sets OMP_NUM_THREADS for the actor; torch must agree or trials oversubscribe cores.
    torch.set_num_threads(max(1, int(setup.cpus_per_trial)))
    device = "cuda" if setup.gpus_per_trial > 0 and torch.cuda.is_available() else "cpu"
    plan = setup.plan_for(config, device=device)
    # Where the trial runs: which node, and the GPU ids Ray gave it (it sees only those).
    placement = {"node_id": ray.get_runtime_context().get_node_id(), "gpu_ids": ",".join(map(str, ray.get_gpu_ids())),
                 **(marks or {})}
    state_file = trial_folder(study_folder, tune.get_context().get_trial_id()) / STATE_FILE

    def report(metrics: dict[str, Any], state: dict[str, Any] | None) -> None:
        if state is not None and state["trial_end"]:
            save_state(best_model_of(state), state_file.with_name(BEST_MODEL_FILE))
        tune.report({**metrics, **placement})
        if state is not None:
            # Only now: report returns once the driver has taken these epochs.
            save_state(state, state_file)

    # A trial Ray starts again (after a crash, in a resumed study) continues from its state.
    state = load_state(state_file)
    if state is not None and state["trial_end"]:
        # It had ended, but Ray's last snapshot did not know yet: tell Ray its end again,
        # with no epoch rows, for none was trained.
        tune.report({**state["last_metrics"], EPOCH_ROWS: [], **placement})
        return
    train_trial(plan, data, EpochReporter(report, setup.rung_epochs), resume=state)
