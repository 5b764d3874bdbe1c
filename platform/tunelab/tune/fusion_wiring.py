"""A fused study's settings (issue 21): whether it fuses, its fusion hosts, members per cohort,
and the trials it runs at once. Light: `tunelab.tune.tuner` imports it to build any study."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tunelab.spec import Spec

# Members per cohort with `train.fuse: auto`. On one core 16 members trained 2.9-3.0x faster than
# one at a time, 64 members 2.2-3.1x (bench/fused_engine.py): more buy little, and fewer trials
# running at once leave the searcher more rounds to learn from.
AUTO_MEMBERS = 16


@dataclass(frozen=True)
class HostLayout:
    """The fusion hosts a study starts: each owns a GPU, or `cpus` CPUs of one node."""

    hosts: int
    cpus: float
    gpus: int  # per host: 0 or 1


def fusing(spec: Spec) -> bool:
    return spec.train.fuse != "off"


def members_per_cohort(spec: Spec) -> int:
    return AUTO_MEMBERS if spec.train.fuse == "auto" else int(spec.train.fuse)


def host_layout(spec: Spec) -> HostLayout:
    """Where Ray is up (a cluster, GPUs, a program's own Ray): one host per GPU when trials ask
    for a GPU, else one per `resources.cpu` CPUs of each node. Otherwise one per `resources.cpu`
    CPUs of this machine, each a process of its own (`host_pools.LocalHostPool`)."""
    from tunelab.tune.local_ray import ray_is_up

    return ray_host_layout(spec) if ray_is_up() else local_host_layout(spec)


def ray_host_layout(spec: Spec) -> HostLayout:
    """The devices the study's trials would have shared on Ray's nodes, each now training whole cohorts."""
    import ray

    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    cpus = max(1.0, float(spec.resources.cpu))
    if spec.resources.gpu > 0:
        hosts = sum(int(node.get("GPU", 0)) for node in nodes)
        return HostLayout(max(1, hosts), min(cpus, max((node.get("CPU", 0) for node in nodes), default=1)), 1)
    hosts = sum(int(node.get("CPU", 0) // cpus) for node in nodes)
    return HostLayout(max(1, hosts), cpus, 0)


def local_host_layout(spec: Spec) -> HostLayout:
    """This machine's CPUs as an embedded Ray would count them (cgroup limits included)."""
    from ray._private.utils import get_num_cpus

    cpus = max(1.0, float(spec.resources.cpu))
    return HostLayout(max(1, int(get_num_cpus() // cpus)), cpus, 0)


def concurrent_trials(spec: Spec) -> int:
    """Trials at once when the experiment does not say: a fused study runs a full cohort per host."""
    from tunelab.tune.local_ray import concurrent_trial_slots

    return members_per_cohort(spec) * host_layout(spec).hosts if fusing(spec) else concurrent_trial_slots(spec)
