"""How many members of one architecture a fused epoch may stack: as many as asked, unless the
device's free memory holds fewer (`train.fuse: auto` means "members that fit")."""

from __future__ import annotations

import os

import torch

# Copies of a member's parameters a fused epoch holds: the stacked parameters, their gradients,
# two optimiser moments, the best weights, the member's own unstacked state and a state file
# being serialised; and activations, which for these small models are of the same order.
COPIES_PER_MEMBER = 12
# The share of the free memory fused epochs may take: the data, the driver and Ray need the rest.
SHARE_OF_FREE_MEMORY = 0.5


def members_that_fit(parameters: int, free_bytes: int, asked: int) -> int:
    """At most `asked`, at least 1 (a member alone always trains, as its trial alone would)."""
    per_member = max(1, parameters * 4 * COPIES_PER_MEMBER)
    return max(1, min(asked, int(free_bytes * SHARE_OF_FREE_MEMORY) // per_member))


def free_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
