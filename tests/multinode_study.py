"""Run a study on a multi-node Ray cluster on this machine (a head and two GPU workers).

Run as a script by the tests, so the cluster lives and dies in its own process.
Usage: python multinode_study.py SPEC.yaml STORAGE [--remove-a-worker]
With --remove-a-worker, one worker node is removed once trials are running on both.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from tunelab.spec import load_spec
from tunelab.store import StudyPaths, read_trials
from tunelab.study import run_study


def remove_a_worker_when_both_are_busy(cluster: Cluster, worker: object, paths: StudyPaths) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            trials = read_trials(paths)
        except Exception:  # not written yet
            trials = None
        if trials is not None and "node_id" in trials and (trials["status"] == "running").sum() >= 2 \
                and trials.loc[trials["status"] == "running", "node_id"].nunique() == 2:
            cluster.remove_node(worker)
            print("removed a worker node", flush=True)
            return
        time.sleep(0.5)


def main(spec_file: str, storage: str, remove_a_worker: bool) -> None:
    # No CPUs on the head: like the KubeRay head, it runs no trials.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    # Logical GPUs: Ray schedules and assigns ids as on real ones (no CUDA needed).
    workers = [cluster.add_node(num_cpus=2, num_gpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    spec = load_spec(spec_file)
    if remove_a_worker:
        paths = StudyPaths.of(storage, spec.name)
        threading.Thread(target=remove_a_worker_when_both_are_busy, args=(cluster, workers[1], paths), daemon=True).start()
    try:
        run_study(spec, Path(storage), echo=print)
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], "--remove-a-worker" in sys.argv[3:])
