"""Run a study: Spec → data → Ray Tune (OptunaSearch + scheduler) → results store."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from tunelab.datasets import Splits, load_splits
from tunelab.errors import BadInputError, StudyInterrupted
from tunelab.metrics import metric_mode
from tunelab.search.schedulers import SCHEDULERS
from tunelab.search.searchers import SEARCHERS
from tunelab.fusion.wiring import concurrent_trials, fused_study_trainable, fusing, release_host
from tunelab.local_ray import start_ray
from tunelab.ray_log import RAY_LOG, RayLog, ray_output_kept
from tunelab.spec import Spec, parse_spec, resolved_options
from tunelab.store import StudyPaths, StudyWriter, read_study, read_trials
from tunelab.store.atomic import write_text_atomic
from tunelab.store.driver_lock import driver_lock
from tunelab.stopping import GoalStopper
from tunelab.store_callback import now
from tunelab.training import trial_state
from tunelab.training.plan import StudySetup, TrainingRules

@dataclass(frozen=True)
class StudyOutcome:
    paths: StudyPaths
    trials: list[dict[str, Any]]
    seconds: float
    ray_start_seconds: float


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


def check_storage_is_shared(storage: Path) -> None:
    """On a multi-node cluster every node must see the same results folder."""
    from tunelab.cluster.storage_check import nodes_missing_storage

    missing = nodes_missing_storage(storage)
    if missing:
        raise BadInputError(
            f"storage {storage} is not visible from {', '.join(missing)}: use a folder every node mounts "
            "(NFS, the Kubernetes volume in k8s/storage.yaml)"
        )


def study_setup(spec: Spec) -> StudySetup:
    early = spec.train.early_stopping
    rules = TrainingRules(
        max_epochs=spec.train.max_epochs,
        objective=spec.objective.metric,
        objective_mode=spec.objective_mode,
        patience=early.patience,
        min_delta=early.min_delta,
        monitor=spec.monitor_metric,
        monitor_mode=metric_mode(spec.monitor_metric),
        seed=spec.train.seed,
        checkpoint_interval_s=spec.train.checkpoint_interval_s,
        goal=spec.objective.goal,
    )
    return StudySetup(
        decision_epochs=frozenset(rung_epochs(spec)),
        model_name=spec.model.name,
        fixed_model_params=spec.model.options(),
        fixed_knobs=spec.train.options(),
        rules=rules,
        cpus_per_trial=spec.resources.cpu,
        gpus_per_trial=spec.resources.gpu,
    )


def rung_epochs(spec: Spec) -> list[int]:
    """The epochs at which the study's scheduler may stop a trial."""
    scheduler = SCHEDULERS[spec.scheduler.name]
    return scheduler.rung_epochs(spec.train.max_epochs, resolved_options(spec.scheduler, scheduler.options))


def trial_budgets(spec: Spec) -> list[int]:
    """The epochs at which the study compares trials: the scheduler's rungs and max_epochs."""
    return [*rung_epochs(spec), spec.train.max_epochs]


def load_study_data(spec: Spec) -> Splits:
    return load_splits(
        spec.dataset.name,
        spec.dataset.options(),
        validation_fraction=spec.dataset.validation_fraction,
        test_fraction=spec.dataset.test_fraction,
        seed=spec.dataset.seed,
        max_train_samples=spec.dataset.max_train_samples,
    )


def run_study(spec: Spec, storage: Path, echo: Callable[[str], None] = print) -> StudyOutcome:
    started = time.monotonic()
    paths = check_storage(storage, spec.name)
    data = load_study_data(spec)

    with ray_output_kept() as ray_log:
        ray_started = time.monotonic()
        start_ray()
        ray_start_seconds = time.monotonic() - ray_started
        check_storage_is_shared(paths.root.parent)
        with driver_lock(paths.root, spec.name):
            if paths.exists():  # another run of this name started since check_storage
                raise study_exists(paths)
            ray_log.write_to(paths.root / RAY_LOG)
            tuner = new_study_tuner(spec, data, paths, echo)
            return fit_study(tuner, spec, paths, echo, started, ray_start_seconds)


def new_study_tuner(spec: Spec, data: Splits, paths: StudyPaths, echo: Callable[[str], None]) -> Any:
    """Write the study's row, then build its tuner: searcher, scheduler, callbacks."""
    from ray import tune

    from tunelab.progress import ProgressCallback
    from tunelab.search.optuna_search import DefineByRun, StudySearch
    from tunelab.store_callback import StoreCallback

    searcher = SEARCHERS[spec.searcher.name]
    scheduler = SCHEDULERS[spec.scheduler.name]
    searcher_options = resolved_options(spec.searcher, searcher.options)
    scheduler_options = resolved_options(spec.scheduler, scheduler.options)
    num_samples = spec.budget.num_samples or 1
    max_concurrent = spec.budget.max_concurrent or concurrent_trials(spec)
    metric, mode = spec.objective.metric, spec.objective_mode

    writer = StudyWriter(paths)
    writer.update_study(
        name=spec.name,
        description=spec.description,
        spec_yaml=yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False),
        dataset=spec.dataset.name,
        task=data.task,
        # JSON text: the confusion matrices' rows and columns, in class-index order.
        class_names=None if data.class_names is None else json.dumps(list(data.class_names)),
        model=spec.model.name,
        objective_metric=metric,
        objective_mode=mode,
        searcher=searcher.name,
        scheduler=scheduler.name,
        rung_epochs=rung_epochs(spec),
        max_epochs=spec.train.max_epochs,
        num_samples=num_samples,
        max_concurrent=max_concurrent,
        status="running",
        started_at=now(),
        finished_at=None,
    )
    if data.preprocessing is not None:
        write_text_atomic(data.preprocessing.to_json(), paths.preprocessing)
    echo(
        f"study {spec.name}: {num_samples} trials of {spec.model.name} on {spec.dataset.name}, "
        f"{searcher.name} + {scheduler.name}, {max_concurrent} at a time → {paths.root}"
    )

    store = StoreCallback(paths, objective=metric, scheduler_name=scheduler.name)
    search = StudySearch(
        space=DefineByRun(spec.search_space),
        metric=metric,
        mode=mode,
        sampler=searcher.build_sampler(spec.search_space, spec.searcher.seed, searcher_options, trial_budgets(spec)),
    )
    return tune.Tuner(
        study_trainable(spec, data, paths),
        tune_config=tune.TuneConfig(
            metric=metric,
            mode=mode,
            search_alg=search,
            scheduler=scheduler.build(spec.train.max_epochs, scheduler_options),
            num_samples=num_samples,
            max_concurrent_trials=max_concurrent,
            time_budget_s=spec.budget.time_budget_s,
            reuse_actors=True,
            trial_dirname_creator=trial_folder_name,
        ),
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=str(paths.root.parent),
            callbacks=[store, ProgressCallback(num_samples, metric, mode, echo, store)],
            failure_config=tune.FailureConfig(max_failures=spec.budget.max_failures),
            stop=GoalStopper() if spec.objective.goal is not None else None,
            verbose=0,
        ),
    )


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
    if study["status"] == "completed":
        raise BadInputError(f"study {name!r} already completed; nothing to resume")
    from ray import tune

    check_own_folder(paths.root)
    if not tune.Tuner.can_restore(str(paths.root)):
        raise BadInputError(f"{paths.root} has no Ray experiment state to resume from")
    spec = parse_spec(str(study["spec_yaml"]), f"{paths.study} (spec_yaml)")
    data = load_study_data(spec)
    ray_started = time.monotonic()
    start_ray()
    ray_start_seconds = time.monotonic() - ray_started
    ray_log.write_to(paths.root / RAY_LOG)
    done = read_trials(paths)
    finished = int((~done["status"].isin(["running", "interrupted"])).sum()) if "status" in done else 0
    echo(f"resuming study {name}: {finished} of {study['num_samples']} trials finished before → {paths.root}")
    StudyWriter(paths).update_study(status="running", resumed_at=now())
    tuner = tune.Tuner.restore(str(paths.root), trainable=study_trainable(spec, data, paths), resume_unfinished=True)
    return fit_study(tuner, spec, paths, echo, started, ray_start_seconds)


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


def study_trainable(spec: Spec, data: Splits, paths: StudyPaths) -> Any:
    """The trial function with the study's data, fixed settings and folder, and its resources."""
    from ray import tune

    from tunelab.training.trainable import tune_trainable

    if fusing(spec):
        return fused_study_trainable(spec, data, paths, study_setup(spec))
    return tune.with_resources(
        tune.with_parameters(tune_trainable, data=data, setup=study_setup(spec), study_folder=str(paths.root)),
        {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
    )


def fit_study(
    tuner: Any, spec: Spec, paths: StudyPaths, echo: Callable[[str], None], started: float, ray_start_seconds: float
) -> StudyOutcome:
    """Run the tuner to its end, keep the study's status true, then any asked-for biasvar.

    Ctrl-C (SIGINT) ends the study as `interrupted`, resumable, and raises StudyInterrupted."""
    status = "failed"
    try:
        interrupted = fit_noticing_ctrl_c(tuner)
        status = "interrupted" if interrupted else "completed"
    except KeyboardInterrupt:
        status = "interrupted"
        raise StudyInterrupted(spec.name) from None
    finally:
        release_host(paths)
        StudyWriter(paths).update_study(status=status, finished_at=now())
    if interrupted:
        raise StudyInterrupted(spec.name)
    write_to_other_tools(spec, paths, echo)
    if spec.biasvar is not None:
        from tunelab.biasvar.runner import run_biasvar

        asked = spec.biasvar
        run_biasvar(paths.root.parent, spec.name, top=asked.top, rounds=asked.rounds, method=asked.method,
                    learning_curve=asked.learning_curve, echo=echo)
    if spec.confirm is not None:
        from tunelab.trust.runners import run_confirm
        from tunelab.trust.report import confirmation

        run_confirm(paths.root.parent, spec.name, top=spec.confirm.top, seeds=spec.confirm.seeds,
                    resplit=spec.confirm.resplit, echo=echo)
        confirmed = confirmation(paths)
        if confirmed is not None:
            echo(confirmed.sentence)
    if spec.audit is not None and (read_trials(paths)["status"] == "stopped_early").any():
        from tunelab.trust.report import audit
        from tunelab.trust.runners import run_audit

        run_audit(paths.root.parent, spec.name, sample=spec.audit.sample, every=spec.audit.all, echo=echo)
        audited = audit(paths, top_k=spec.audit.top)
        for sentence in audited[0].sentences if audited is not None else []:
            echo(sentence)
    return StudyOutcome(paths, read_trials(paths).to_dict("records"), time.monotonic() - started, ray_start_seconds)


def write_to_other_tools(spec: Spec, paths: StudyPaths, echo: Callable[[str], None]) -> None:
    """What the experiment's `logging:` asks for, written from the store once the study ended."""
    from tunelab.other_tools import write_mlflow, write_tensorboard

    if spec.logging.tensorboard:
        echo(f"tensorboard: {write_tensorboard(paths)} (tensorboard --logdir it)")
    if spec.logging.mlflow is not None:
        run_id = write_mlflow(paths, spec.logging.mlflow.tracking_uri, spec.logging.mlflow.experiment)
        echo(f"mlflow: parent run {run_id} in {spec.logging.mlflow.tracking_uri}")


def fit_noticing_ctrl_c(tuner: Any) -> bool:
    """`tuner.fit()`; True when Ctrl-C ended it.

    Ray Tune catches the first SIGINT itself: it stops the experiment, saves its state (so it
    can be resumed) and returns as if the study were done. It swaps its own handler in when
    the fit starts and puts back the handler it found only when it caught a SIGINT, so the
    handler in place afterwards tells which happened. A second Ctrl-C reaches ours: it raises
    KeyboardInterrupt, as Python's own would.
    """
    if threading.current_thread() is not threading.main_thread():
        tuner.fit()  # signals go to the main thread only: nothing to notice here
        return False
    previous = signal.getsignal(signal.SIGINT)

    def on_second_ctrl_c(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_second_ctrl_c)
    try:
        tuner.fit()
        return signal.getsignal(signal.SIGINT) is on_second_ctrl_c
    finally:
        signal.signal(signal.SIGINT, previous)


def trial_folder_name(trial: Any) -> str:
    return trial_state.trial_folder_name(trial.trial_id)
