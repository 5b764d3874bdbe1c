"""Which params mattered: Optuna's importance evaluators, parallel coordinates, slices."""

from __future__ import annotations

import math
from typing import Any

import optuna
import pandas as pd
import yaml

from tunelab.analysis.overview import PARAM_PREFIX, finite_numbers, objective_mode, param_names
from tunelab.store import StudyTables

SLICE_COLUMNS = ["trial_number", "value", "objective", "status"]
# Fewer trials than this give an importance estimate that is noise.
MIN_TRIALS_FOR_IMPORTANCE = 3
EVALUATORS = {
    "fanova": lambda: optuna.importance.FanovaImportanceEvaluator(seed=0),
    "ped_anova": lambda: optuna.importance.PedAnovaImportanceEvaluator(),
    "mean_decrease_impurity": lambda: optuna.importance.MeanDecreaseImpurityImportanceEvaluator(seed=0),
}


def param_importance(tables: StudyTables, method: str = "fanova") -> pd.DataFrame:
    """Share of the objective's variation each param explains, summing to 1, largest first.

    The stored trials with a finite objective are replayed into an in-memory Optuna study
    with the search space's distributions. Only params every such trial has are scored: the
    evaluators need a value in each trial, so a conditional param (momentum only for SGD)
    counts through the param it depends on (the optimizer).
    """
    if method not in EVALUATORS:
        raise ValueError(f"method must be one of {', '.join(EVALUATORS)}; got {method!r}")
    trials = _scored_trials(tables)
    everywhere = sorted(set.intersection(*(set(trial.params) for trial in trials))) if trials else []
    if len(trials) < MIN_TRIALS_FOR_IMPORTANCE or not everywhere:
        return pd.DataFrame({"param": pd.Series(dtype=str), "importance": pd.Series(dtype=float)})
    importances = _importances(trials, everywhere, objective_mode(tables), EVALUATORS[method]())
    frame = pd.DataFrame({"param": list(importances), "importance": [float(v) for v in importances.values()]})
    total = frame["importance"].sum()
    if total > 0:  # every param flat: all zero, and nothing to normalise
        frame["importance"] /= total
    return frame.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def parallel_coordinates(tables: StudyTables) -> pd.DataFrame:
    """One row per trial with a finite objective: trial_number, objective, each param
    (categorical params as text, so a chart treats them as categories)."""
    trials = tables.trials
    if "objective" not in trials:
        return pd.DataFrame({"trial_number": pd.Series(dtype=int), "objective": pd.Series(dtype=float)})
    objective = finite_numbers(trials["objective"])
    scored = trials[objective.notna()]
    frame = pd.DataFrame({"trial_number": scored["trial_number"], "objective": objective[objective.notna()]})
    for name in param_names(trials):
        values = scored[PARAM_PREFIX + name]
        frame[name] = values if _is_numeric(values) else values.map(lambda v: None if _missing(v) else str(v))
    return frame.sort_values("trial_number", kind="stable").reset_index(drop=True)


def slice_points(tables: StudyTables, param: str) -> pd.DataFrame:
    """Objective against one param, for trials that have the param and a finite objective."""
    column = PARAM_PREFIX + param
    if column not in tables.trials or "objective" not in tables.trials:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in SLICE_COLUMNS})
    points = tables.trials.assign(value=tables.trials[column], objective=finite_numbers(tables.trials["objective"]))
    points = points.dropna(subset=["value", "objective"]).sort_values("trial_number", kind="stable")
    return points[SLICE_COLUMNS].reset_index(drop=True)


def search_space(tables: StudyTables) -> dict[str, dict[str, Any]]:
    """The searched params' entries from the stored spec, as plain mappings.

    Read as YAML, not as a Spec: validating would import a user's model, which the
    dashboard's machine may not have.
    """
    document = yaml.safe_load(tables.study.get("spec_yaml") or "") or {}
    return dict(document.get("search_space") or {})


def optuna_distribution(entry: dict[str, Any]) -> optuna.distributions.BaseDistribution:
    kind = entry["type"]
    if kind == "loguniform":
        return optuna.distributions.FloatDistribution(entry["low"], entry["high"], log=True)
    if kind == "uniform":
        return optuna.distributions.FloatDistribution(entry["low"], entry["high"], step=entry.get("step"))
    if kind == "int":
        return optuna.distributions.IntDistribution(
            entry["low"], entry["high"], step=entry.get("step") or 1, log=bool(entry.get("log"))
        )
    return optuna.distributions.CategoricalDistribution(entry["values"])


def _importances(
    trials: list[optuna.trial.FrozenTrial],
    params: list[str],
    mode: str,
    evaluator: optuna.importance.BaseImportanceEvaluator,
) -> dict[str, float]:
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "A new study created" on every call
    try:
        study = optuna.create_study(direction="minimize" if mode == "min" else "maximize")
        study.add_trials(trials)
        return optuna.importance.get_param_importances(study, evaluator=evaluator, params=params)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _scored_trials(tables: StudyTables) -> list[optuna.trial.FrozenTrial]:
    """Stored trials with a finite objective as COMPLETE Optuna trials."""
    distributions = {name: optuna_distribution(entry) for name, entry in search_space(tables).items()}
    trials = tables.trials
    if "objective" not in trials:
        return []
    objective = finite_numbers(trials["objective"])
    replayed = []
    stored = {name: PARAM_PREFIX + name for name in distributions if PARAM_PREFIX + name in trials}
    for index in trials.index[objective.notna()]:
        params: dict[str, Any] = {}
        for name, column in stored.items():
            value = _stored_value(trials.at[index, column], distributions[name])
            if value is not None:
                params[name] = value
        used = {name: distributions[name] for name in params}
        replayed.append(optuna.trial.create_trial(params=params, distributions=used, value=float(objective[index])))
    return replayed


def _stored_value(value: Any, distribution: optuna.distributions.BaseDistribution) -> Any:
    """A stored param as its distribution expects it, or None when absent or out of range."""
    if _missing(value):
        return None
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        # A choice of mixed types (32 or "full") is stored as text: match by text.
        matches = [choice for choice in distribution.choices if choice == value or str(choice) == str(value)]
        return matches[0] if matches else None
    number = int(value) if isinstance(distribution, optuna.distributions.IntDistribution) else float(value)
    return number if distribution._contains(distribution.to_internal_repr(number)) else None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
