"""A trial's saved training state: one file in its folder of the study, kept by tunelab.

Ray Tune's own checkpoints are not used. Ray records which checkpoint a trial is at only in
its experiment-state snapshots, taken seconds apart, while it deletes old checkpoints as new
ones arrive: a driver killed in between leaves a snapshot that names a deleted checkpoint,
and that trial cannot be resumed at all ("Could not recover from checkpoint as it does not
exist on storage anymore"). Here each trial keeps one state file, replaced atomically, and
reads it back whenever Ray starts it again (a retry after a crash, a resumed study): it
always continues from its newest state, whatever Ray's snapshot says.

The trainable saves the state only once the driver has taken the epochs it covers (after
`tune.report` returns), so a trial that continues from it never skips rows the store lacks.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

STATE_FILE = "state.pt"
# The weights of a finished trial's best epoch, for `Study.best_model` and `tunelab export`.
# Written before the trial's last report: Ray may end the trial's process on that report,
# and the state saved after a report would then never be written.
BEST_MODEL_FILE = "best_model.pt"


def trial_folder(study_folder: str | Path, trial_id: str) -> Path:
    """Where Ray keeps a trial's files (see `trial_folder_name`), on storage every node mounts."""
    return Path(study_folder) / trial_folder_name(trial_id)


def trial_folder_name(trial_id: str) -> str:
    return f"trial_{trial_id}"


def save_state(state: dict[str, Any], path: Path) -> None:
    """Replace the file in one step: a process killed mid-write leaves the previous state."""
    save_state_bytes(state_bytes(state), path)


def save_state_bytes(saved: bytes, path: Path) -> None:
    """`save_state` for a state already serialised (a fused member's, by its fusion host)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(saved)
    os.replace(partial, path)


def best_model_of(state: dict[str, Any]) -> dict[str, Any]:
    """What `BEST_MODEL_FILE` holds, from an ended trial's training state."""
    return {"best_model": state["best_model"], "best_epoch": state["objective"]["best_epoch"]}


def state_bytes(state: dict[str, Any]) -> bytes:
    # torch imported here, not above: importing this module stays light.
    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def load_state(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    return state_from_bytes(path.read_bytes())


def state_from_bytes(saved: bytes) -> dict[str, Any]:
    import torch

    # weights_only: a saved state is data, never code.
    return torch.load(io.BytesIO(saved), weights_only=True, map_location="cpu")
