"""What a fusion host hands its study's driver. Plain data: the host serialises every tensor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The trials-table column `fusion`: this word for a member trained fused, else why it was not.
FUSED = "fused"


@dataclass(frozen=True)
class EpochAnswer:
    """One epoch of one member, trained in a fused cohort."""

    metrics: dict[str, Any]  # as train_trial reports the epoch (with `trial_end` on the last)
    state: bytes | None  # the member's state file, when one is due (see trial_state)
    best_model: bytes | None  # the best epoch's weights, on the last epoch
