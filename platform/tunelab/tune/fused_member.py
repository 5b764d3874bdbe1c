"""A fused study's trial: an ordinary Ray Tune function trainable whose epochs a fusion host
trains (see `host`). It reports exactly as `tune_trainable` does (the same metrics, batched by
the same EpochReporter, the state file saved once a report returned, the best model before the
last report), so the store, the scheduler, the searcher and resume see ordinary trials.

Light on purpose: the process imports no torch (dozens of members run at once, each in its
own Ray worker), except a trial the host refuses, which trains alone as `tune_trainable`.
"""

from __future__ import annotations

from typing import Any

import ray
from ray import tune

from tunelab.fusion.messages import FUSED, EpochAnswer, Joined
from tunelab.metrics import EPOCH_ROWS, TRIAL_END
from tunelab.training.reporting import EpochReporter
from tunelab.training.trial_state import BEST_MODEL_FILE, STATE_FILE, save_state_bytes, trial_folder

# Epochs a member sends together at most this far apart (EpochReporter: rungs, saved states and
# the end go at once). Longer than a lone trial's: dozens of members report to one driver, and
# each result costs it milliseconds that the host's CPUs share.
MEMBER_REPORT_EVERY_S = 1.0


def fused_member_trainable(config: dict[str, Any], *, host: Any, rung_epochs: frozenset[int],
                           alone: list[ray.ObjectRef], study_folder: str) -> None:
    """`alone`: in a list, so Ray hands over the reference, not the object: the study's data and
    setup, fetched (and torch imported) only by a trial the host refuses, to train alone."""
    trial_id = tune.get_context().get_trial_id()
    folder = trial_folder(study_folder, trial_id)
    state_file = folder / STATE_FILE
    # A trial Ray starts again (after a crash, in a resumed study) continues from its state file,
    # whatever the host still holds of it: the file is what the driver has seen.
    saved = state_file.read_bytes() if state_file.exists() else None
    joined: Joined = ray.get(host.join.remote(trial_id, config, saved))
    if joined.refusal is not None:
        from tunelab.tune.trainable import tune_trainable

        data, setup = ray.get(alone[0])
        tune_trainable(config, data=data, setup=setup, study_folder=study_folder, marks={"fusion": joined.refusal})
        return
    marks = {"fusion": FUSED, **joined.placement}
    if joined.ended is not None:
        # It had ended, but Ray's last snapshot did not know yet: tell Ray its end again, with no rows.
        tune.report({**joined.ended, EPOCH_ROWS: [], **marks})
        return

    def send(metrics: dict[str, Any], state: bytes | None) -> None:
        tune.report({**metrics, **marks})
        if state is not None:
            # Only now: report returns once the driver has taken these epochs.
            save_state_bytes(state, state_file)

    reporter = EpochReporter(send, rung_epochs, every_s=MEMBER_REPORT_EVERY_S)
    try:
        while True:
            answer: EpochAnswer = ray.get(host.epoch.remote(trial_id))
            if answer.best_model is not None:  # before the last report, as tune_trainable writes it
                save_state_bytes(answer.best_model, folder / BEST_MODEL_FILE)
            reporter(answer.metrics, answer.state)
            if TRIAL_END in answer.metrics:
                return
    finally:
        # Stopped by the scheduler (Ray ends the trial inside `tune.report`) or ended: the host
        # stops waiting for this member and frees its state.
        host.leave.remote(trial_id)
