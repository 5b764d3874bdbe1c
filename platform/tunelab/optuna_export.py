"""`tunelab export STUDY --optuna TARGET`: a stored study as an Optuna study, so optuna-dashboard
and `optuna.load_study` open it.

Every trial goes over with its parameters and their distributions (from the experiment's search
space), its per-epoch objective as intermediate values, and its state as tunelab tells Optuna
during a study: trials that ended on their own (completed, patience, goal, diverged) COMPLETE
with their best value, trials the scheduler stopped PRUNED, errored and interrupted ones FAIL.
tunelab's own words (status, trial id, stop epoch, test metrics) are user attributes.

A multi-objective study becomes one with a direction per objective and a value list per trial
(each objective at the primary's best epoch), named after the metrics; it carries no
intermediate values, as Optuna's own multi-objective studies do not (Trial.report refuses them,
and its TPE cannot read them there).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from tunelab.analysis.objectives import study_objectives, value_columns
from tunelab.errors import BadInputError
from tunelab.search.space import Choice, IntRange, LogUniform, Uniform, _Distribution
from tunelab.store import StudyPaths, read_epochs, read_study, read_trials
from tunelab.store.schema import ENDED_ON_THEIR_OWN, RUNNING, STOPPED_EARLY
from tunelab.stored_study import trial_params

USER_ATTRIBUTES = ("trial_id", "status", "stop_epoch", "best_epoch", "epochs", "stop_reason")


def _converters() -> dict[type, Callable[[Any], Any]]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    return {
        LogUniform: lambda d: FloatDistribution(d.low, d.high, log=True),
        Uniform: lambda d: FloatDistribution(d.low, d.high, step=d.step),
        IntRange: lambda d: IntDistribution(d.low, d.high, step=d.step, log=d.log),
        Choice: lambda d: CategoricalDistribution(d.values),
    }


def optuna_distribution(distribution: _Distribution) -> Any:
    return _converters()[type(distribution)](distribution)


def export_to_optuna(paths: StudyPaths, target: str) -> tuple[str, int]:
    """Write the study to `target` (a journal file, or an RDB URL such as sqlite:///x.db);
    return the Optuna study's name and how many trials it holds."""
    import optuna

    from tunelab.spec import parse_spec

    info = read_study(paths)
    spec = parse_spec(str(info["spec_yaml"]), f"{paths.study} (spec_yaml)", read_data=False)
    storage = _storage(target)
    name = paths.name
    if name in {summary.study_name for summary in optuna.study.get_all_study_summaries(storage)}:
        raise BadInputError(f"--optuna {target}: holds an Optuna study named {name!r} already; expected a new name "
                            "(another file or database, or delete that study)")
    objectives = study_objectives(info)
    several = len(objectives) > 1
    directions = ["maximize" if mode == "max" else "minimize" for _, mode in objectives]
    trials = read_trials(paths)
    trials = trials.sort_values("trial_number") if "trial_number" in trials else trials
    curves = {} if several else _intermediate_values(read_epochs(paths), str(info["objective_metric"]))
    columns = value_columns(objectives) if several else ["objective"]
    frozen = [_frozen(row, spec.search_space, curves.get(row["trial_id"], {}), columns) for row in trials.to_dict("records")]
    frozen = [trial for trial in frozen if trial is not None]
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # its "A new study created" line is not ours to print
    try:
        study = optuna.create_study(storage=storage, study_name=name, directions=directions)
    finally:
        optuna.logging.set_verbosity(verbosity)
    if several:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # stable since 3.2, still marked
            study.set_metric_names([metric for metric, _ in objectives])
    study.set_user_attr("tunelab_objective", str(info["objective_metric"]))
    study.set_user_attr("tunelab_storage", str(paths.root))
    study.add_trials(frozen)
    return name, len(frozen)


def _storage(target: str) -> Any:
    import optuna
    from optuna.storages.journal import JournalFileBackend

    try:
        if "://" in target:
            return optuna.storages.RDBStorage(target)
        path = Path(target).expanduser()
        if path.is_dir():
            raise BadInputError(f"--optuna {target}: is a folder; expected a journal file or a database URL (sqlite:///study.db)")
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    except BadInputError:
        raise
    except Exception as exc:  # Optuna and SQLAlchemy raise many kinds for a target they cannot open
        raise BadInputError(f"--optuna {target}: cannot open it as an Optuna storage ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def _intermediate_values(epochs: pd.DataFrame, metric: str) -> dict[str, dict[int, float]]:
    if epochs.empty or metric not in epochs:
        return {}
    finite = epochs[epochs[metric].map(lambda v: isinstance(v, (int, float)) and math.isfinite(v))]
    return {trial_id: dict(zip(rows["epoch"].astype(int), rows[metric].astype(float)))
            for trial_id, rows in finite.groupby("trial_id")}


def _frozen(row: dict[str, Any], space: dict[str, _Distribution], intermediate: dict[int, float], columns: list[str]) -> Any:
    """The trial as Optuna stores it, or None for one still running (Optuna cannot take it as
    finished, and it has nothing final to show)."""
    from optuna.trial import TrialState, create_trial

    status = str(row.get("status"))
    if status == RUNNING:
        return None
    params = {name: value for name, value in trial_params(pd.Series(row)).items() if name in space}
    distributions = {name: optuna_distribution(space[name]) for name in params}
    params = {name: distributions[name].to_external_repr(distributions[name].to_internal_repr(value))
              for name, value in params.items()}
    values = [row.get(column) for column in columns]
    has_value = all(isinstance(value, (int, float)) and not math.isnan(value) for value in values)
    attributes = {name: _plain(row.get(name)) for name in USER_ATTRIBUTES if row.get(name) is not None}
    attributes.update({name: _plain(v) for name, v in row.items() if str(name).startswith("final_test_") and _plain(v) is not None})
    if status in ENDED_ON_THEIR_OWN and has_value:
        state, told = TrialState.COMPLETE, [float(value) for value in values]
    elif status == STOPPED_EARLY:
        state, told = TrialState.PRUNED, None
    else:
        state, told = TrialState.FAIL, None
    return create_trial(state=state, values=told, params=params, distributions=distributions,
                        intermediate_values=intermediate, user_attrs=attributes)


def _plain(value: Any) -> Any:
    """A value Optuna's storages keep as JSON: numbers, text; NaN and the like left out."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value if isinstance(value, (int, float, str, bool)) else None
