"""Retraining work as parallel Ray tasks (biasvar rounds, confirm replicates, audit
continuations): the study's data shipped once, one task per job, progress as jobs finish,
a failed job reported and left out rather than ending the others."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Job:
    key: Any  # how the caller finds the job's result
    label: str  # for progress lines, e.g. "trial 7 round 3"
    function: Callable[..., Any]  # function(data, *args), run in a Ray task
    args: tuple[Any, ...]


def run_jobs(
    jobs: list[Job], data: Any, cpus: float, gpus: float, echo: Callable[[str], None]
) -> tuple[dict[Any, Any], dict[Any, str]]:
    """Run every job; return each finished job's result and each failed job's last error line."""
    import ray

    from tunelab.tune.local_ray import start_ray

    start_ray()
    data_ref = ray.put(data)
    remote = ray.remote(num_cpus=cpus, num_gpus=gpus)
    tasks: dict[Callable[..., Any], Any] = {}
    pending = {}
    for job in jobs:
        if job.function not in tasks:
            tasks[job.function] = remote(job.function)
        pending[tasks[job.function].remote(data_ref, *job.args)] = job
    started = time.monotonic()
    results: dict[Any, Any] = {}
    failures: dict[Any, str] = {}
    total = len(pending)
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        job = pending.pop(done[0])
        try:
            results[job.key] = ray.get(done[0])
        except Exception as exc:  # a failed job is reported and left out, never stored
            failures[job.key] = last_line(exc)
            echo(f"[{time.monotonic() - started:6.1f}s] {job.label} failed: {failures[job.key]}")
            continue
        echo(f"[{time.monotonic() - started:6.1f}s] {total - len(pending)}/{total} done ({job.label})")
    return results, failures


def on_device(threads: float, gpu: bool) -> str:
    """Set up a task's torch like a trial's (its threads), and the device it trains on."""
    import torch

    torch.set_num_threads(max(1, int(threads)))
    return "cuda" if gpu and torch.cuda.is_available() else "cpu"


def last_line(exc: BaseException) -> str:
    """A Ray task's error ends with the exception's own line (its traceback comes first)."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(exc).__name__
