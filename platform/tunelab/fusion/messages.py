"""What a fused member trial and its fusion host say to each other. Plain data: the member's
process imports no torch (the host serialises every tensor it hands over)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The trials-table column `fusion`: this word for a member trained fused, else why it was not.
FUSED = "fused"


@dataclass(frozen=True)
class Joined:
    """The host's answer to a member that (re)starts."""

    refusal: str | None = None  # why this trial cannot be fused: it trains alone, in its own process
    ended: dict[str, Any] | None = None  # its saved state had already ended: its last report, to send again
    placement: dict[str, str] = field(default_factory=dict)  # where it trains: the host's node and GPUs


@dataclass(frozen=True)
class EpochAnswer:
    """One epoch of one member, trained in a fused cohort."""

    metrics: dict[str, Any]  # as train_trial reports the epoch (with `trial_end` on the last)
    state: bytes | None  # the member's state file, when one is due (see trial_state)
    best_model: bytes | None  # the best epoch's weights, on the last epoch
