"""Starting Ray for a study: embedded on this machine, or joining the cluster a job runs on."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the spec imports every registry (torch, Optuna, Ray); a command that trains nothing must not
    from tunelab.spec import Spec

# Concurrent trials asked for when the cluster has no room yet (autoscaling from zero workers).
AUTOSCALING_CONCURRENCY = 8


def start_ray() -> None:
    """Embedded Ray for local mode: loopback only, no Ray dashboard, quiet logs."""
    import logging

    # Trials use absolute paths, but user code may not: keep the working directory.
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    # Ray's CSV/JSON/TensorBoard loggers duplicate our store and cost time per result.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    # Ray's new console output prints its own tables even at verbose=0; ours replace them.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray

    quiet_ray_logs()
    if ray.is_initialized():
        return
    cluster = cluster_address()
    if cluster:
        # Inside a Ray job (tunelab submit, a KubeRay RayJob): join the cluster it runs on.
        ray.init(address=cluster, logging_level=logging.WARNING, configure_logging=True)
        return
    ray.init(
        address="local",
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        logging_level=logging.WARNING,
        configure_logging=True,
    )


def cluster_address() -> str:
    """The Ray cluster this process runs in (a Ray job's RAY_ADDRESS), or "" on its own machine."""
    cluster = os.environ.get("RAY_ADDRESS", "")
    return "" if cluster.startswith(("http://", "https://")) else cluster


def study_needs_ray(spec: Spec) -> bool:
    """Whether the study starts (or joins) Ray. A fused study on this machine's CPUs does not: its
    driver runs Ray Tune's searcher, scheduler and callbacks itself, and its fusion hosts are
    processes of this machine (`host_pools.LocalHostPool`). An embedded Ray's start and stop cost
    about 5 s of every `tunelab run` on 2 vCPUs, more than a short fused study trains."""
    from tunelab.tune.fusion_wiring import fusing

    return not fusing(spec) or spec.resources.gpu > 0 or bool(cluster_address()) or ray_is_up()


def ray_is_up() -> bool:
    """Whether this process has connected to Ray (without importing Ray to find out)."""
    return "ray" in sys.modules and sys.modules["ray"].is_initialized()


def stop_ray_quietly() -> None:
    """End this process's Ray at the end of a command, without its workers' last words.

    Ray's shutdown stops worker processes with SIGTERM; one caught mid-teardown prints
    "SystemExit: 1" with a traceback, which Ray forwards to this terminal after the command's
    own output. Once the command is done no worker output is news, so the driver stops
    printing it first (Ray's own switch for that, as `ray.shutdown` uses; a Ray without it
    only prints the noise again)."""
    if not ray_is_up():
        return
    import ray

    try:
        from ray._private.ray_logging import global_worker_stdstream_dispatcher

        global_worker_stdstream_dispatcher.remove_handler("ray_print_logs")
    except (ImportError, AttributeError):
        pass
    ray.shutdown()


def quiet_ray_logs() -> None:
    """Silence driver-side messages that are expected in our set-up, not problems."""
    import logging

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Token auth stays on (Ray's secure default); the notice about it is not news locally.
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    # Ray's result loggers are off on purpose (our store replaces them), so its analysis
    # object finds no result.json to read.
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    # A grid searcher stops its Optuna study once every point was tried; Ray reports the stop
    # as a warning because it is not called from inside an objective. It is the expected end.
    logging.getLogger("ray.tune.search.optuna.optuna_search").addFilter(
        lambda record: "Study.stop" not in record.getMessage()
    )


def concurrent_trial_slots(spec: Spec) -> int:
    """Trials the cluster can run at once now; on an autoscaling cluster that starts with no
    workers that is none yet, so allow a few and let the autoscaler add nodes for them."""
    import ray

    resources = ray.cluster_resources()
    slots = int(resources.get("CPU", 0) // spec.resources.cpu)
    if spec.resources.gpu > 0:
        slots = min(slots, int(resources.get("GPU", 0) // spec.resources.gpu))
    return slots if slots > 0 else min(spec.budget.num_samples or 1, AUTOSCALING_CONCURRENCY)
