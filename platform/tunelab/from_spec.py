"""What a Spec means for the run: the fixed half of every trial's plan, the scheduler's rungs, the
study's budgets, its data. A leaf: the study, biasvar, confirm/audit and the benchmarks read a
Spec through these, and none of them imports another for it."""

from __future__ import annotations

from tunelab.datasets import Splits, load_splits
from tunelab.metrics import Mode, metric_mode
from tunelab.search.schedulers import SCHEDULERS
from tunelab.spec import Spec, resolved_options
from tunelab.training.plan import StudySetup, TrainingRules


def study_setup(spec: Spec) -> StudySetup:
    early = spec.train.early_stopping
    rules = TrainingRules(
        max_epochs=spec.train.max_epochs,
        objective=spec.primary_objective.metric,
        objective_mode=spec.objective_mode,
        patience=early.patience,
        min_delta=early.min_delta,
        monitor=spec.monitor_metric,
        monitor_mode=metric_mode(spec.monitor_metric),
        seed=spec.train.seed,
        checkpoint_interval_s=spec.train.checkpoint_interval_s,
        goal=spec.primary_objective.goal,
        objectives=tuple(study_objectives(spec)),
    )
    return StudySetup(
        rung_epochs=frozenset(rung_epochs(spec)),
        model_name=spec.model.name,
        fixed_model_params=spec.model.options(),
        fixed_knobs=spec.train.options(),
        rules=rules,
        cpus_per_trial=spec.resources.cpu,
        gpus_per_trial=spec.resources.gpu,
    )


def study_objectives(spec: Spec) -> list[tuple[str, Mode]]:
    """A multi-objective study's objectives, (metric, mode) in the file's order; empty for one."""
    return [(o.metric, o.mode or metric_mode(o.metric)) for o in spec.objectives] if spec.is_multi_objective else []


def rung_epochs(spec: Spec) -> list[int]:
    """The epochs at which the study's scheduler may stop a trial."""
    scheduler = SCHEDULERS[spec.scheduler.name]
    return scheduler.rung_epochs(spec.train.max_epochs, resolved_options(spec.scheduler, scheduler.options))


def study_budgets(spec: Spec) -> list[int]:
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
