"""Rules that need the registries: names exist, options fit their declarations, the search
space fits the model and the training knobs, conditions refer to searched parameters."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from tunelab_models import ParamError, UnknownModelError, get_model
from tunelab_models.params import Param, resolve_params

from tunelab.datasets import get_dataset, load_splits, resolve_dataset_params, resolve_paths
from tunelab.errors import BadInputError, DataError, SpecError
from tunelab.metrics import OBJECTIVE_METRICS
from tunelab.search.schedulers import SCHEDULERS
from tunelab.search.searchers import SEARCHERS
from tunelab.search.space import Choice, _Distribution, evaluation_order
from tunelab.spec.objectives import resolved_objective
from tunelab.spec.schema import Spec
from tunelab.strict import OptionsModel
from tunelab.training.knobs import TRAINING_KNOBS
from tunelab.training.optimizers import OPTIMIZERS
from tunelab.training.schedules import SCHEDULES

DEFAULT_NUM_SAMPLES = 20
# A grid beyond this is a typo in a resolution, not a study: it would not fit in memory.
MAX_PLANNED_TRIALS = 1_000_000


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def validate_spec(spec: Spec, source: str, base: Path | None = None, read_data: bool = True) -> Spec:
    """Raise SpecError for the first problem; return the Spec with defaults resolved and the
    data set's files made absolute (relative ones are relative to `base`, the experiment
    file's folder, else the working folder). A data set whose shape only its rows can tell
    (a user's table, arrays, images) is read here, so its mistakes surface now, unless
    `read_data` is off (its files are where the study will run, not here)."""

    def fail(field: str, message: str) -> SpecError:
        return SpecError(source, field, message)

    dataset = _lookup(lambda: get_dataset(spec.dataset.name), "dataset.name", fail)
    _check_options(spec.dataset, dataset.params, "dataset", fail)
    options = resolve_paths(spec.dataset.name, spec.dataset.options(), base or Path.cwd())
    spec = spec.model_copy(update={"dataset": type(spec.dataset).model_validate({**spec.dataset.model_dump(), **options})})
    dataset_options = _lookup(lambda: resolve_dataset_params(spec.dataset.name, options), "dataset", fail)

    model = _lookup(lambda: get_model(spec.model.name), "model.name", fail)
    _check_options(spec.model, model.hyperparameters, "model", fail)
    data_task, input_shape = dataset.task, dataset.input_shape(dataset_options)
    if input_shape is None and read_data:
        splits = _lookup(lambda: load_splits(
            spec.dataset.name, options, spec.dataset.validation_fraction, spec.dataset.test_fraction,
            spec.dataset.seed, spec.dataset.max_train_samples,
        ), "dataset", fail)
        data_task, input_shape = splits.task, splits.input_shape
    elif input_shape is None and dataset_options.get("task") in ("classification", "regression"):
        data_task = dataset_options["task"]
    # An autoencoder learns its inputs, whatever the data set's labels are.
    task = "reconstruction" if model.learns_inputs else data_task
    if task is not None and task not in model.tasks:
        raise fail("model.name", f"model {spec.model.name!r} does not support {task} data ({spec.dataset.name})")
    reason = None if input_shape is None else model.unsupported_reason(input_shape)
    if reason:
        raise fail("model.name", f"model {spec.model.name!r} cannot take {spec.dataset.name}'s inputs {input_shape}: {reason}")

    _check_options(spec.train, TRAINING_KNOBS, "train", fail)

    searcher = _registered(SEARCHERS, spec.searcher.name, "searcher.name", fail)
    searcher_options = _check_options(spec.searcher, searcher.options, "searcher", fail)
    scheduler = _registered(SCHEDULERS, spec.scheduler.name, "scheduler.name", fail)
    scheduler_options = _check_options(spec.scheduler, scheduler.options, "scheduler", fail)
    for option, problem in scheduler.problems(spec.train.max_epochs, scheduler_options).items():
        raise fail(f"scheduler.{option}", problem)

    # Data not read here (it lives on the cluster) leaves the task open: any task's metric.
    metrics = OBJECTIVE_METRICS[task] if task else {m: d for known in OBJECTIVE_METRICS.values() for m, d in known.items()}
    objective = resolved_objective(spec, task, metrics, searcher, scheduler, fail)
    monitor = spec.train.early_stopping.monitor
    if monitor is not None and monitor not in metrics:
        raise fail("train.early_stopping.monitor", f"unknown metric {monitor!r}{did_you_mean(monitor, metrics)}; expected one of {', '.join(metrics)}")

    tunable = {p.name: p for p in (*model.hyperparameters, *TRAINING_KNOBS)}
    fixed = {**spec.model.options(), **spec.train.options()}
    _check_search_space(spec.search_space, tunable, fixed, {p.name for p in dataset.params}, fail)
    _check_schedules_suit_optimizers(spec, fail)

    planned = searcher.planned_trials(spec.search_space, searcher_options)
    if planned is not None and planned > MAX_PLANNED_TRIALS:
        raise fail(
            "search_space",
            f"the {searcher.name} searcher has {planned:,} configurations; expected at most {MAX_PLANNED_TRIALS:,} "
            "(fewer values, or a lower searcher.resolution)",
        )
    num_samples = spec.budget.num_samples
    if planned is not None and num_samples is not None and num_samples > planned:
        raise fail("budget.num_samples", f"the {searcher.name} searcher has {planned} configurations; expected at most {planned}, got {num_samples}")
    num_samples = num_samples or planned or DEFAULT_NUM_SAMPLES

    return spec.model_copy(
        update={
            "objective": objective,
            "budget": spec.budget.model_copy(update={"num_samples": num_samples}),
        }
    )


def resolved_options(section: OptionsModel, declared: Iterable[Param]) -> dict[str, Any]:
    """A section's declared options with defaults filled in (for a validated Spec)."""
    return resolve_params(declared, section.options())


def _lookup(find: Callable[[], Any], field: str, fail: Callable[[str, str], SpecError]) -> Any:
    try:
        return find()
    except DataError as exc:
        raise fail(f"dataset.{exc.option}", exc.message) from None
    except (UnknownModelError, BadInputError) as exc:
        raise fail(field, str(exc)) from None


def _registered(registry: Mapping[str, Any], name: str, field: str, fail: Callable[[str, str], SpecError]) -> Any:
    if name not in registry:
        raise fail(field, f"unknown {field.split('.')[0]} {name!r}{did_you_mean(name, registry)}; expected one of {', '.join(registry)}")
    return registry[name]


def _check_options(
    section: OptionsModel, declared: Iterable[Param], prefix: str, fail: Callable[[str, str], SpecError]
) -> dict[str, Any]:
    table = {p.name: p for p in declared}
    for key in section.options():
        if key not in table:
            known = [*type(section).model_fields, *table]
            raise fail(f"{prefix}.{key}", f"unknown key{did_you_mean(key, known)}; expected one of {', '.join(known)}")
    try:
        return resolved_options(section, declared)
    except ParamError as exc:
        raise fail(f"{prefix}.{exc.name}", exc.message) from None


def _check_search_space(
    space: Mapping[str, _Distribution],
    tunable: Mapping[str, Param],
    fixed: Mapping[str, Any],
    dataset_params: set[str],
    fail: Callable[[str, str], SpecError],
) -> None:
    for name, dist in space.items():
        field = f"search_space.{name}"
        if name in dataset_params:
            raise fail(field, "data set parameters cannot be searched: the data is loaded once per study")
        if name not in tunable:
            raise fail(field, f"not a parameter of the model or the training loop{did_you_mean(name, tunable)}; expected one of {', '.join(tunable)}")
        if name in fixed:
            raise fail(field, "also set as a fixed value in the model or train section; keep one")
        declared = tunable[name]
        if declared.kind in (str, bool) and not isinstance(dist, Choice):
            raise fail(f"{field}.type", f"{name} takes {declared.expectation()}; expected type 'choice'")
        if declared.kind is int and dist.type in ("uniform", "loguniform"):  # type: ignore[attr-defined]
            raise fail(f"{field}.type", f"{name} takes integers; expected type 'int' or 'choice'")
        for value in dist.bounds():
            try:
                declared.check(value)
            except ParamError as exc:
                raise fail(field, exc.message) from None
    _check_conditions(space, fail)


def _check_schedules_suit_optimizers(spec: Spec, fail: Callable[[str, str], SpecError]) -> None:
    """A schedule that cycles momentum (onecycle) with an optimiser that has none (adagrad)
    fails every trial that draws the pair: refused here, unless the search space's conditions
    keep them apart."""
    space, train = spec.search_space, resolved_options(spec.train, TRAINING_KNOBS)

    def possible(name: str) -> list[Any]:
        searched = space.get(name)
        return list(searched.values) if isinstance(searched, Choice) else [train[name]]

    def drawn_with(name: str, other: str, value: Any) -> bool:
        """Whether `name`'s search space lets it be drawn when `other` is `value`."""
        allowed = space[name].condition_values().get(other) if name in space else None
        return allowed is None or value in allowed

    for schedule in possible("lr_schedule"):
        if not SCHEDULES[schedule].cycles_momentum:
            continue
        for optimizer in possible("optimizer"):
            if OPTIMIZERS[optimizer].has_momentum or not drawn_with("lr_schedule", "optimizer", optimizer) \
                    or not drawn_with("optimizer", "lr_schedule", schedule):
                continue
            suited = ", ".join(name for name in OPTIMIZERS if OPTIMIZERS[name].has_momentum)
            raise fail("search_space.lr_schedule" if "lr_schedule" in space else "train.lr_schedule",
                       f"{schedule!r} cycles momentum, which optimizer {optimizer!r} has none of; expected it only "
                       f"with {suited} (a condition `when: {{optimizer: [...]}}` can keep them apart)")


def _check_conditions(space: Mapping[str, _Distribution], fail: Callable[[str, str], SpecError]) -> None:
    for name, dist in space.items():
        for parent, values in dist.condition_values().items():
            field = f"search_space.{name}.when.{parent}"
            if parent not in space:
                raise fail(field, f"condition on {parent!r}, which is not in search_space{did_you_mean(parent, space)}")
            parent_dist = space[parent]
            if not isinstance(parent_dist, Choice):
                raise fail(field, f"conditions must refer to a 'choice' parameter; {parent!r} is {parent_dist.type!r}")  # type: ignore[attr-defined]
            for value in values:
                if value not in parent_dist.values:
                    raise fail(field, f"{value!r} is not one of {parent}'s values {parent_dist.values}")
    try:
        evaluation_order(space)
    except ValueError as exc:
        raise fail("search_space", str(exc)) from None
