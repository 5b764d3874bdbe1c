"""Run a study: check the storage → load the data → build the tuner → fit → record the end,
then what the experiment file asks for afterwards. Ray is behind `tunelab.tune`."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tunelab.errors import BadInputError, StudyInterrupted
from tunelab.follow_ups import run_follow_ups
from tunelab.from_spec import load_study_data
from tunelab.spec import Spec, parse_spec
from tunelab.store import StudyPaths, StudyWriter, read_study, read_trials
from tunelab.store.driver_lock import driver_lock
from tunelab.store.schema import FINISHED, STUDY_COMPLETED, STUDY_FAILED, STUDY_INTERRUPTED, STUDY_RUNNING
from tunelab.tune.host_pools import hosts_started_early
from tunelab.tune.local_ray import ray_is_up, start_ray, study_needs_ray
from tunelab.tune.ray_log import RAY_LOG, RayLog, ray_output_kept
from tunelab.tune.store_callback import now
from tunelab.tune.tuner import StudyRun, can_restore, new_study, restored_study


@dataclass(frozen=True)
class StudyOutcome:
    paths: StudyPaths
    trials: list[dict[str, Any]]
    seconds: float
    ray_start_seconds: float | None  # None: the study started no Ray (`study_needs_ray`)


def check_storage(storage: Path, study_name: str) -> StudyPaths:
    """Refuse, before anything is written, a study that exists or storage we cannot write."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:/", str(storage)):
        # A Path collapses s3://b/x into s3:/b/x: without this, it would become a local folder.
        raise BadInputError(
            f"storage {storage}: object-store URIs are not supported yet; use a folder every node can reach "
            "(a local disk, NFS, or the Kubernetes volume in k8s/storage.yaml)"
        )
    paths = StudyPaths.of(storage, study_name)
    if paths.root.exists():
        raise study_exists(paths)
    existing = paths.root.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise BadInputError(f"storage {storage}: {existing} is not a writable folder")
    return paths


def study_exists(paths: StudyPaths) -> BadInputError:
    return BadInputError(
        f"study {paths.name!r} already exists in {paths.root.parent}; continue it with "
        f"`tunelab resume {paths.name}`, or choose another name with --name"
    )


def start_ray_if_needed(spec: Spec) -> float | None:
    """Start (or join) Ray when the study needs it; the seconds that took, None when it does not."""
    if not study_needs_ray(spec):
        return None
    ray_started = time.monotonic()
    start_ray()
    return time.monotonic() - ray_started


def check_storage_is_shared(storage: Path) -> None:
    """On a multi-node cluster every node must see the same results folder."""
    from tunelab.cluster.storage_check import nodes_missing_storage

    if not ray_is_up():
        return  # no cluster: this machine's folder is the hosts' folder
    missing = nodes_missing_storage(storage)
    if missing:
        raise BadInputError(
            f"storage {storage} is not visible from {', '.join(missing)}: use a folder every node mounts "
            "(NFS, the Kubernetes volume in k8s/storage.yaml)"
        )


def run_study(spec: Spec, storage: Path, echo: Callable[[str], None] = print) -> StudyOutcome:
    started = time.monotonic()
    paths = check_storage(storage, spec.name)
    with hosts_started_early(spec):
        data = load_study_data(spec)
        with ray_output_kept() as ray_log:
            ray_start_seconds = start_ray_if_needed(spec)
            check_storage_is_shared(paths.root.parent)
            with driver_lock(paths.root, spec.name):
                if paths.exists():  # another run of this name started since check_storage
                    raise study_exists(paths)
                ray_log.write_to(paths.root / RAY_LOG)
                return fit_study(new_study(spec, data, paths, echo), spec, paths, echo, started, ray_start_seconds)


def resume_study(storage: Path, name: str, echo: Callable[[str], None] = print) -> StudyOutcome:
    """Continue a study whose driver died: finished trials stay, unfinished ones continue
    from their last checkpoints, and the searcher from its saved state."""
    started = time.monotonic()
    paths = StudyPaths.of(storage, name)
    if not paths.exists():
        raise BadInputError(f"no study {name!r} in {storage}")
    with driver_lock(paths.root, name), ray_output_kept() as ray_log:
        return continue_study(paths, started, echo, ray_log)


def continue_study(paths: StudyPaths, started: float, echo: Callable[[str], None], ray_log: RayLog) -> StudyOutcome:
    study = read_study(paths)
    name = paths.name
    if study["status"] == STUDY_COMPLETED:
        raise BadInputError(f"study {name!r} already completed; nothing to resume")
    check_own_folder(paths.root)
    spec = parse_spec(str(study["spec_yaml"]), f"{paths.study} (spec_yaml)")
    if not can_restore(spec, paths):
        raise BadInputError(f"{paths.root} has no saved state of its driver to resume from")
    with hosts_started_early(spec):
        data = load_study_data(spec)
        ray_start_seconds = start_ray_if_needed(spec)
        ray_log.write_to(paths.root / RAY_LOG)
        done = read_trials(paths)
        finished = int(done["status"].isin(FINISHED).sum()) if "status" in done else 0
        echo(f"resuming study {name}: {finished} of {study['num_samples']} trials finished before → {paths.root}")
        StudyWriter(paths).update_study(status=STUDY_RUNNING, resumed_at=now())
        return fit_study(restored_study(spec, data, paths, echo), spec, paths, echo, started, ray_start_seconds)


def check_own_folder(folder: Path) -> None:
    """Resuming unpickles Ray's experiment state, which can run code: refuse a study folder
    (or state file) that another user owns or that anyone may write to. (Group-writable is
    allowed: with a umask of 002, a user's own files are.)"""
    for path in (folder, *folder.glob("*.pkl"), *folder.glob("experiment_state-*.json")):
        info = path.stat()
        if info.st_uid != os.getuid() or info.st_mode & 0o002:
            who = "owned by another user" if info.st_uid != os.getuid() else "writable by every user"
            raise BadInputError(
                f"refusing to resume from {path}: it is {who}, and resuming unpickles what is there; "
                "resume only from your own storage"
            )


def fit_study(
    run: StudyRun, spec: Spec, paths: StudyPaths, echo: Callable[[str], None], started: float,
    ray_start_seconds: float | None,
) -> StudyOutcome:
    """Run the study to its end, keep the study's status true, then the follow-ups the file asks for.

    Ctrl-C (SIGINT) ends the study as `interrupted`, resumable, and raises StudyInterrupted."""
    status = STUDY_FAILED
    try:
        interrupted = run.fit()
        status = STUDY_INTERRUPTED if interrupted else STUDY_COMPLETED
    except KeyboardInterrupt:
        status = STUDY_INTERRUPTED
        raise StudyInterrupted(spec.name) from None
    finally:
        StudyWriter(paths).update_study(status=status, finished_at=now())
    if interrupted:
        raise StudyInterrupted(spec.name)
    run_follow_ups(spec, paths, echo)
    return StudyOutcome(paths, read_trials(paths).to_dict("records"), time.monotonic() - started, ray_start_seconds)


