"""A fused study's Ray parts: its fusion host, and the trainable of its member trials.

The host owns the CPUs (or the GPU) the study's trials would have taken; each member trial
asks Ray for a sliver of a CPU (MEMBER_CPU), enough to be scheduled, since it only waits for
the host and reports. A trial the host refuses trains alone inside that sliver.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the spec and the data import torch; `tunelab.study` imports this module
    from tunelab.datasets import Splits
    from tunelab.spec import Spec
    from tunelab.store import StudyPaths
    from tunelab.training.plan import StudySetup

# Members per cohort with `train.fuse: auto`. In process the speed-up over one at a time was 2.2x
# at 16 members and 1.1x at 64 (bench/RESULTS.md); and every member is a Ray worker process of
# its own, whose start-up (Ray starts a few at a time) a study pays once per concurrent member.
AUTO_MEMBERS = 16
# What each member trial asks of Ray: it trains nothing itself (Ray's smallest unit is 0.0001).
MEMBER_CPU = 0.001
# The host's share never falls below this, however many members (a busy cluster, a tiny node).
MIN_HOST_CPU = 0.5

_hosts: dict[Path, Any] = {}  # study folder → its fusion host, until the study's fit ends


def fusing(spec: Spec) -> bool:
    return spec.train.fuse != "off"


def members_per_cohort(spec: Spec) -> int:
    return AUTO_MEMBERS if spec.train.fuse == "auto" else int(spec.train.fuse)


def concurrent_trials(spec: Spec) -> int:
    """Trials at once when the experiment does not say: a fused study runs a cohort's worth."""
    from tunelab.tune.local_ray import concurrent_trial_slots

    return members_per_cohort(spec) if fusing(spec) else concurrent_trial_slots(spec)


def fused_study_trainable(spec: Spec, data: Splits, paths: StudyPaths, setup: StudySetup) -> Any:
    """Start the study's fusion host; return the member trainable that hands it its epochs."""
    import ray
    from ray import tune

    from tunelab.fusion.host import FusionHost
    from tunelab.tune.fused_member import fused_member_trainable

    release_host(paths)
    concurrent = spec.budget.max_concurrent or concurrent_trials(spec)
    host_cpus = round(max(MIN_HOST_CPU, _largest_node_cpus() - concurrent * MEMBER_CPU), 3)
    gpus = 1 if spec.resources.gpu > 0 else 0
    # One core fewer than the host holds: the driver and the members' reports run beside it, and
    # torch's threads wait for each other at every operation when one of them shares its core
    # (bench/fused.py: a fused epoch's mean 0.5 s with 2 threads on 2 cores, 0.16 s with 1).
    host = (
        ray.remote(FusionHost)
        .options(num_cpus=host_cpus, num_gpus=gpus, max_concurrency=4 * concurrent + 16)
        .remote(data, setup, threads=max(1, round(host_cpus) - 1), max_members=members_per_cohort(spec),
                device="cuda" if gpus else "cpu")
    )
    _hosts[paths.root] = host
    return tune.with_resources(
        tune.with_parameters(fused_member_trainable, host=host, rung_epochs=setup.rung_epochs,
                             alone=[ray.put((data, setup))], study_folder=str(paths.root)),
        {"cpu": MEMBER_CPU},
    )


def release_host(paths: StudyPaths) -> None:
    """End the study's fusion host, giving its CPUs back (to biasvar, confirm, the next study)."""
    host = _hosts.pop(paths.root, None)
    if host is not None:
        import ray

        ray.kill(host)


def _largest_node_cpus() -> float:
    """The host is one actor, on one node: the most CPUs one node has."""
    import ray

    return max((node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node.get("Alive")), default=1.0)
