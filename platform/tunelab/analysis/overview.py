"""The study at a glance: best trial, optimisation history, the trial table and its filters."""

from __future__ import annotations

import math

import pandas as pd

from tunelab.store import StudyTables
from tunelab.store.layout import PARAM_PREFIX
from tunelab.summary import summary_table

HISTORY_COLUMNS = ["trial_number", "status", "objective", "running_best"]


def objective_mode(tables: StudyTables) -> str:
    return str(tables.study.get("objective_mode") or "min")


def finite_numbers(values: pd.Series) -> pd.Series:
    """Values as floats, NaN where not a finite number (a diverged trial's ±inf, text)."""
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    return numbers.where(numbers.abs() < math.inf)


def param_names(trials: pd.DataFrame) -> list[str]:
    return [column.removeprefix(PARAM_PREFIX) for column in trials.columns if column.startswith(PARAM_PREFIX)]


def best_trial(tables: StudyTables) -> pd.Series | None:
    """The trials row with the best finite objective, or None before any trial has one."""
    if "objective" not in tables.trials:
        return None
    objectives = finite_numbers(tables.trials["objective"]).dropna()
    if objectives.empty:
        return None
    best_index = objectives.idxmin() if objective_mode(tables) == "min" else objectives.idxmax()
    return tables.trials.loc[best_index]


def optimisation_history(tables: StudyTables) -> pd.DataFrame:
    """Objective per trial in start order and the best so far.

    Non-finite objectives (a diverged trial's ±inf, a running trial) are NaN here, since a
    chart cannot draw them; they carry the previous best forward.
    """
    if tables.trials.empty or "objective" not in tables.trials:
        return pd.DataFrame({column: pd.Series(dtype=float) for column in HISTORY_COLUMNS})
    history = tables.trials.sort_values("trial_number", kind="stable")
    objective = finite_numbers(history["objective"])
    best_so_far = objective.cummin() if objective_mode(tables) == "min" else objective.cummax()
    return pd.DataFrame(
        {
            "trial_number": history["trial_number"].astype(int),
            "status": history["status"],
            "objective": objective,
            "running_best": best_so_far.ffill(),
        }
    ).reset_index(drop=True)


def trial_table(tables: StudyTables) -> pd.DataFrame:
    """Every trial, best first: what `tunelab.summary.summary_table(trials, mode)` shows,
    plus `trial_id` as the last column so a selection can be passed to `compare_*`."""
    return summary_table(tables.trials, objective_mode(tables), with_trial_id=True)


def filter_trials(
    table: pd.DataFrame,
    statuses: list[str] | None = None,
    param_ranges: dict[str, tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """Rows of `trial_table` with one of `statuses` and each named param in [low, high].

    A trial without a value for a ranged param (a conditional param that does not apply)
    is left out: it does not lie in the range.
    """
    keep = pd.Series(True, index=table.index)
    if statuses is not None:
        keep &= table["status"].isin(statuses)
    for name, (low, high) in (param_ranges or {}).items():
        if name not in table:
            raise KeyError(f"no parameter {name!r}; the table has {list(table.columns)}")
        values = pd.to_numeric(table[name], errors="coerce")
        keep &= values.between(low, high).fillna(False)
    return table[keep]
