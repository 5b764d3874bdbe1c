"""A stored study's objectives, and its Pareto front and hypervolume history as tables. Pandas
over the store (no Ray): the CLI, `Study`, the dashboard and the driver's callback share it.

A multi-objective study keeps, in the trials table, each objective's value (`objective_<metric>`,
at the primary objective's best epoch), `pareto` (non-dominated among the trials that ended on
their own) and `hypervolume` (of that front, when the trial finished); in the study table the
list `objectives` and the hypervolume's `hypervolume_reference` (JSON text).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from tunelab.analysis.pareto import hypervolume, non_dominated, reference_point
from tunelab.metrics import OBJECTIVE_VALUE_PREFIX, Mode
from tunelab.store.layout import PARAM_PREFIX
from tunelab.store.schema import WITH_A_FINAL_RESULT

PARETO = "pareto"
HYPERVOLUME = "hypervolume"
REFERENCE = "hypervolume_reference"

Objectives = list[tuple[str, Mode]]


def study_objectives(study: Mapping[str, Any]) -> Objectives:
    """The study's objectives, (metric, mode), in the experiment file's order; one for a
    single-objective study (and for a study stored before tunelab had several)."""
    listed = study.get("objectives")
    if isinstance(listed, str) and listed:
        return [(str(item["metric"]), item["mode"]) for item in json.loads(listed)]
    return [(str(study.get("objective_metric")), study.get("objective_mode") or "min")]


def objectives_json(objectives: Objectives) -> str:
    return json.dumps([{"metric": metric, "mode": mode} for metric, mode in objectives])


def value_columns(objectives: Objectives) -> list[str]:
    return [OBJECTIVE_VALUE_PREFIX + metric for metric, _ in objectives]


def finished_values(trials: pd.DataFrame, objectives: Objectives) -> pd.DataFrame:
    """The trials whose objective values count: ended on their own, every value finite."""
    columns = value_columns(objectives)
    if trials.empty or "status" not in trials or not set(columns) <= set(trials.columns):
        return trials.iloc[0:0]
    # A trial the scheduler stopped has early values (and no latency measured).
    ended = trials[trials["status"].isin(WITH_A_FINAL_RESULT)]
    finite = np.isfinite(ended[columns].to_numpy(dtype=float)).all(axis=1) if len(ended) else np.array([], dtype=bool)
    return ended[finite]


def front_flags(trials: pd.DataFrame, objectives: Objectives) -> pd.Series:
    """`pareto` for every trial (by index): non-dominated among the finished values."""
    flags = pd.Series(False, index=trials.index, dtype=bool)
    counted = finished_values(trials, objectives)
    if not counted.empty:
        modes = [mode for _, mode in objectives]
        flags[counted.index] = non_dominated(counted[value_columns(objectives)].to_numpy(dtype=float), modes)
    return flags


def reference_for(trials: pd.DataFrame, objectives: Objectives) -> list[float] | None:
    """The hypervolume's reference point from the finished values (see `pareto.reference_point`),
    None before any trial has them."""
    counted = finished_values(trials, objectives)
    if counted.empty:
        return None
    return reference_point(counted[value_columns(objectives)].to_numpy(dtype=float), [m for _, m in objectives]).tolist()


def front_hypervolume(trials: pd.DataFrame, objectives: Objectives, reference: list[float]) -> float:
    counted = finished_values(trials, objectives)
    return hypervolume(counted[value_columns(objectives)].to_numpy(dtype=float), [m for _, m in objectives], reference)


def hypervolume_by_trial(trials: pd.DataFrame, objectives: Objectives, reference: list[float]) -> dict[str, float]:
    """For each finished trial (any way), the hypervolume of the front of the trials finished
    up to and including it, all at one reference point: a history that never falls."""
    ended = trials[trials["finished_at"].notna()].sort_values("finished_at", kind="stable") if "finished_at" in trials else trials.iloc[0:0]
    return {str(trial_id): front_hypervolume(ended.iloc[: count + 1], objectives, reference)
            for count, trial_id in enumerate(ended["trial_id"])}


def primary_objective(study: Mapping[str, Any]) -> tuple[str, Mode]:
    return str(study.get("objective_metric")), study.get("objective_mode") or "min"


def pareto_table(trials: pd.DataFrame, objectives: Objectives, primary: tuple[str, Mode]) -> pd.DataFrame:
    """Every trial, the stored front first, then the rest, each part by the primary objective's
    value, best first; `pareto` true on the front."""
    if trials.empty:
        return trials
    flags = trials[PARETO].astype("boolean").fillna(False).astype(bool) if PARETO in trials else front_flags(trials, objectives)
    rank, mode = OBJECTIVE_VALUE_PREFIX + primary[0], primary[1]
    ordered = trials.assign(**{PARETO: flags, "_rank": trials[rank] if rank in trials else np.nan})
    ordered = ordered.sort_values([PARETO, "_rank"], ascending=[False, mode == "min"], kind="stable", na_position="last")
    return ordered.drop(columns="_rank").reset_index(drop=True)


def hypervolume_history(trials: pd.DataFrame) -> pd.DataFrame:
    """The front's hypervolume each time a trial finished, in the order they finished."""
    columns = ["trial_number", "finished_at", HYPERVOLUME]
    if trials.empty or HYPERVOLUME not in trials or "finished_at" not in trials:
        return pd.DataFrame(columns=columns)
    known = trials[trials[HYPERVOLUME].map(lambda v: isinstance(v, (int, float)) and math.isfinite(v))]
    return known.sort_values("finished_at", kind="stable")[columns].reset_index(drop=True)


def is_multi_objective(study: Mapping[str, Any]) -> bool:
    return len(study_objectives(study)) > 1


def front_summary_table(trials: pd.DataFrame, study: Mapping[str, Any], top: int | None = None) -> pd.DataFrame:
    """`tunelab results` of a multi-objective study: the Pareto front first, then the rest (each
    by the primary objective), a column per objective named after its metric, then how each
    trial ended and its parameters."""
    objectives = study_objectives(study)
    ordered = pareto_table(trials, objectives, primary_objective(study))
    if top is not None:
        ordered = ordered.head(top)
    named = {OBJECTIVE_VALUE_PREFIX + metric: metric for metric, _ in objectives}
    params = [column for column in ordered.columns if str(column).startswith(PARAM_PREFIX)]
    columns = ["trial_number", PARETO, "status", *named, "best_epoch", "stop_epoch", *params]
    table = ordered.reindex(columns=columns).rename(columns={**named, "trial_number": "trial"})
    return table.rename(columns=lambda column: str(column).removeprefix(PARAM_PREFIX))


def pareto_points(trials: pd.DataFrame, objectives: Objectives) -> pd.DataFrame:
    """The trials with finished values, one column per objective named after its metric, and
    `pareto` as stored: what the Pareto page plots."""
    columns = ["trial_id", "trial_number", "status", PARETO, *(metric for metric, _ in objectives)]
    counted = finished_values(trials, objectives)
    if counted.empty:
        return pd.DataFrame(columns=columns)
    flags = counted[PARETO].astype("boolean").fillna(False).astype(bool) if PARETO in counted else front_flags(trials, objectives)[counted.index]
    points = counted.assign(**{PARETO: flags}).rename(columns=dict(zip(value_columns(objectives), (m for m, _ in objectives))))
    return points[columns].sort_values("trial_number").reset_index(drop=True)
