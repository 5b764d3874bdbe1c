"""Run a study on a multi-node Ray cluster on this machine (a head and two GPU workers).

Run as a script by tests/test_multinode.py, so the cluster lives and dies in its own process.
Usage: python multinode_study.py SPEC.yaml STORAGE
"""

from __future__ import annotations

import sys
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from tunelab.spec import load_spec
from tunelab.study import run_study


def main(spec_file: str, storage: str) -> None:
    # No CPUs on the head: like the KubeRay head, it runs no trials.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    # Logical GPUs: Ray schedules and assigns ids as on real ones (no CUDA needed).
    for _ in range(2):
        cluster.add_node(num_cpus=2, num_gpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    try:
        run_study(load_spec(spec_file), Path(storage), echo=print)
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
