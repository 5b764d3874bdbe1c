"""Is the results folder the same folder on every node? Checked before a study starts,
because Ray only finds out when a trial on another node first saves a checkpoint."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

PROBE_TIMEOUT_S = 60


def nodes_missing_storage(folder: Path) -> list[str]:
    """The alive nodes that cannot see a file the driver just wrote into `folder`."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [node for node in ray.nodes() if node.get("Alive")]
    if len(nodes) < 2:
        return []  # one machine: the driver's folder is the trials' folder
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / f".tunelab-visible-{uuid.uuid4().hex}"
    marker.write_text("written by the driver; removed after the check\n")
    try:
        probe = ray.remote(num_cpus=0)(os.path.exists)
        answers = {
            f"{node['NodeManagerAddress']} (node {node['NodeID'][:8]})": probe.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            ).remote(str(marker))
            for node in nodes
        }
        return [name for name, answer in answers.items() if not ray.get(answer, timeout=PROBE_TIMEOUT_S)]
    finally:
        marker.unlink(missing_ok=True)
