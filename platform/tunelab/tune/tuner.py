"""The Ray Tune tuner a study runs on: searcher, scheduler, callbacks and the trial function, built
from the Spec; and its fit, which tells a Ctrl-C from a study that ended."""

from __future__ import annotations

import json
import signal
import threading
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import yaml

from tunelab.datasets import Splits
from tunelab.analysis.objectives import objectives_json
from tunelab.from_spec import rung_epochs, study_budgets, study_objectives, study_setup
from tunelab.metrics import OBJECTIVE_VALUE_PREFIX, Mode
from tunelab.search.schedulers import SCHEDULERS
from tunelab.search.searchers import SEARCHERS
from tunelab.spec import Spec, resolved_options
from tunelab.store import StudyPaths, StudyWriter
from tunelab.store.atomic import write_text_atomic
from tunelab.store.schema import STUDY_RUNNING
from tunelab.training import trial_state
from tunelab.tune.fusion_wiring import concurrent_trials, fusing
from tunelab.tune.stopping import GoalStopper
from tunelab.tune.store_callback import now


@dataclass(frozen=True)
class StudyParts:
    """What decides a study, as `tunelab run` builds it from the Spec: the searcher, the
    scheduler and the driver's callbacks (the store writer and the progress line). Ray Tune's
    loop runs them; so do a fused study's driver (`fused_study`) and the simulator, on Ray
    Tune's order of calls (`study_events`)."""

    search: Any  # StudySearch
    scheduler: Any  # a Ray Tune TrialScheduler
    callbacks: list[Any]
    metric: str  # the primary objective: what the scheduler and the progress line judge
    mode: Mode
    num_samples: int
    max_concurrent: int


def begin_study(spec: Spec, data: Splits, paths: StudyPaths, echo: Callable[[str], None]) -> StudyParts:
    """Write the study's row, then build its searcher, scheduler and callbacks (the store's
    callback reads the row: written after it, it would write its empty copy back)."""
    num_samples, max_concurrent = study_size(spec)
    metric, mode = spec.primary_objective.metric, spec.objective_mode
    writer = StudyWriter(paths)
    objectives = study_objectives(spec)
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
        **({"objectives": objectives_json(objectives)} if objectives else {}),
        searcher=spec.searcher.name,
        scheduler=spec.scheduler.name,
        rung_epochs=rung_epochs(spec),
        max_epochs=spec.train.max_epochs,
        num_samples=num_samples,
        max_concurrent=max_concurrent,
        status=STUDY_RUNNING,
        started_at=now(),
        finished_at=None,
    )
    if data.preprocessing is not None:
        write_text_atomic(data.preprocessing.to_json(), paths.preprocessing)
    echo(
        f"study {spec.name}: {num_samples} trials of {spec.model.name} on {spec.dataset.name}, "
        f"{spec.searcher.name} + {spec.scheduler.name}, {max_concurrent} at a time → {paths.root}"
    )
    return study_parts(spec, paths, echo)


def study_size(spec: Spec) -> tuple[int, int]:
    """The trials the study runs, and how many at once."""
    return spec.budget.num_samples or 1, spec.budget.max_concurrent or concurrent_trials(spec)


def study_parts(spec: Spec, paths: StudyPaths, echo: Callable[[str], None]) -> StudyParts:
    """The study's searcher, scheduler and callbacks, as the Spec asks for them."""
    from tunelab.tune.optuna_search import DefineByRun, StudySearch
    from tunelab.tune.progress import ProgressCallback
    from tunelab.tune.store_callback import StoreCallback

    searcher = SEARCHERS[spec.searcher.name]
    scheduler = SCHEDULERS[spec.scheduler.name]
    searcher_options = resolved_options(spec.searcher, searcher.options)
    scheduler_options = resolved_options(spec.scheduler, scheduler.options)
    num_samples, max_concurrent = study_size(spec)
    # The scheduler and the progress line judge the primary objective; Optuna learns them all.
    metric, mode = spec.primary_objective.metric, spec.objective_mode
    objectives = study_objectives(spec)
    store = StoreCallback(paths, objective=metric, scheduler_name=scheduler.name, objectives=objectives or None)
    search = StudySearch(
        space=DefineByRun(spec.search_space),
        metric=[OBJECTIVE_VALUE_PREFIX + name for name, _ in objectives] if objectives else metric,
        mode=[goal for _, goal in objectives] if objectives else mode,
        sampler=searcher.build(space=spec.search_space, seed=spec.searcher.seed, options=searcher_options,
                               budgets=study_budgets(spec)),
    )
    return StudyParts(
        search=search,
        scheduler=scheduler.build(max_epochs=spec.train.max_epochs, options=scheduler_options),
        callbacks=[store, ProgressCallback(num_samples, metric, mode, echo, store)],
        metric=metric,
        mode=mode,
        num_samples=num_samples,
        max_concurrent=max_concurrent,
    )


class StudyRun(Protocol):
    """A study ready to run: `fit()` runs it to its end; True when Ctrl-C ended it (resumable)."""

    def fit(self) -> bool: ...


def new_study(spec: Spec, data: Splits, paths: StudyPaths, echo: Callable[[str], None]) -> StudyRun:
    """The study begun (its row written), ready to fit: on Ray Tune, or as a fused study."""
    if fusing(spec):
        from tunelab.tune.fused_study import FusedStudy

        return FusedStudy.begin(spec, data, paths, study_setup(spec), echo)
    return RayTuneStudy(ray_tuner(spec, data, paths, begin_study(spec, data, paths, echo)))


def restored_study(spec: Spec, data: Splits, paths: StudyPaths, echo: Callable[[str], None]) -> StudyRun:
    """The study as its driver last saved it: finished trials stay, unfinished ones continue."""
    if fusing(spec):
        from tunelab.tune.fused_study import FusedStudy

        return FusedStudy.restore(spec, data, paths, study_setup(spec), echo)
    from ray import tune

    return RayTuneStudy(tune.Tuner.restore(str(paths.root), trainable=study_trainable(spec, data, paths),
                                           resume_unfinished=True))


def can_restore(spec: Spec, paths: StudyPaths) -> bool:
    if fusing(spec):
        from tunelab.tune.fused_study import FusedStudy

        return FusedStudy.can_restore(paths)
    from ray import tune

    return tune.Tuner.can_restore(str(paths.root))


def ray_tuner(spec: Spec, data: Splits, paths: StudyPaths, parts: StudyParts) -> Any:
    from ray import tune

    return tune.Tuner(
        study_trainable(spec, data, paths),
        tune_config=tune.TuneConfig(
            metric=parts.metric,
            mode=parts.mode,
            search_alg=parts.search,
            scheduler=parts.scheduler,
            num_samples=parts.num_samples,
            max_concurrent_trials=parts.max_concurrent,
            time_budget_s=spec.budget.time_budget_s,
            reuse_actors=True,
            trial_dirname_creator=trial_folder_name,
        ),
        run_config=tune.RunConfig(
            name=spec.name,
            storage_path=str(paths.root.parent),
            callbacks=parts.callbacks,
            failure_config=tune.FailureConfig(max_failures=spec.budget.max_failures),
            stop=GoalStopper() if spec.primary_objective.goal is not None else None,
            verbose=0,
        ),
    )


def study_trainable(spec: Spec, data: Splits, paths: StudyPaths) -> Any:
    """The trial function with the study's data, fixed settings and folder, and its resources."""
    from ray import tune

    from tunelab.tune.trainable import tune_trainable

    return tune.with_resources(
        tune.with_parameters(tune_trainable, data=data, setup=study_setup(spec), study_folder=str(paths.root)),
        {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu},
    )


class RayTuneStudy:
    """A study on Ray Tune's own loop: a trial per Ray worker process."""

    def __init__(self, tuner: Any) -> None:
        self.tuner = tuner

    def fit(self) -> bool:
        """`tuner.fit()`; True when Ctrl-C ended it.

        Ray Tune catches the first SIGINT itself: it stops the experiment, saves its state (so it
        can be resumed) and returns as if the study were done. It swaps its own handler in when
        the fit starts and puts back the handler it found only when it caught a SIGINT, so the
        handler in place afterwards tells which happened. A second Ctrl-C reaches ours: it raises
        KeyboardInterrupt, as Python's own would.
        """
        if threading.current_thread() is not threading.main_thread():
            self.tuner.fit()  # signals go to the main thread only: nothing to notice here
            return False
        previous = signal.getsignal(signal.SIGINT)

        def on_second_ctrl_c(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGINT, on_second_ctrl_c)
        try:
            self.tuner.fit()
            return signal.getsignal(signal.SIGINT) is on_second_ctrl_c
        finally:
            signal.signal(signal.SIGINT, previous)


def trial_folder_name(trial: Any) -> str:
    return trial_state.trial_folder_name(trial.trial_id)
