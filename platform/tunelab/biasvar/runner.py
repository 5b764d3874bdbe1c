"""`tunelab biasvar`: retrain chosen trials of a stored study as parallel Ray tasks and store
their bias–variance decomposition (and learning curves) beside the study's tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from tunelab.biasvar.engine import LEARNING_CURVE_FRACTIONS, decompose, fixed_length, learning_curve_point, train_round
from tunelab.biasvar.table import write_decompositions, write_learning_curves
from tunelab.errors import BadInputError
from tunelab.fusion.rounds import rounds_fuse
from tunelab.spec import Spec, parse_spec
from tunelab.store import StudyPaths, read_study, read_trials
from tunelab.stored_study import trial_params
from tunelab.summary import rank_trials
from tunelab.training.plan import TrialPlan

# A decomposition needs several rounds; below this a trial's failed rounds void it.
MIN_ROUNDS = 2


@dataclass(frozen=True)
class ChosenTrial:
    trial_id: str
    trial_number: int
    plan: TrialPlan
    params: dict[str, Any]


def choose_trials(
    spec: Spec, trials: pd.DataFrame, study: str, trial_ids: list[str] | None, top: int | None
) -> list[ChosenTrial]:
    """The trials to decompose: the named ones, or the best `top` by objective."""
    from tunelab.from_spec import study_setup

    if trial_ids:
        known = set(trials["trial_id"]) if "trial_id" in trials else set()
        by_number = {str(n): t for n, t in zip(trials.get("trial_number", []), trials.get("trial_id", []))}
        resolved = [by_number.get(t, t) for t in trial_ids]
        missing = [t for t, r in zip(trial_ids, resolved) if r not in known]
        if missing:
            raise BadInputError(f"study {study!r} has no trial {missing[0]!r}; give a trial id or number from `tunelab results {study}`")
        rows = trials.set_index("trial_id").loc[resolved].reset_index()
    else:
        finished = trials[trials.get("best_epoch", pd.Series(dtype=float)).fillna(0) > 0] if not trials.empty else trials
        rows = rank_trials(finished, spec.objective_mode).head(top or 1)
        if rows.empty:
            raise BadInputError(f"study {study!r} has no trial with a result yet")
    setup = study_setup(spec)
    chosen = []
    for row in rows.to_dict("records"):
        params = trial_params(pd.Series(row))
        epochs = int(row.get("best_epoch") or row.get("stop_epoch") or spec.train.max_epochs)
        chosen.append(ChosenTrial(row["trial_id"], int(row["trial_number"]), fixed_length(setup.plan_for(params), epochs), params))
    return chosen


def run_biasvar(
    storage: Path,
    study: str,
    trial_ids: list[str] | None = None,
    top: int | None = None,
    rounds: int = 10,
    method: str = "bootstrap",
    learning_curve: bool = True,
    echo: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Decompose the chosen trials' test error; return the rows written to `biasvar.parquet`."""
    paths = StudyPaths.of(storage, study)
    if not paths.exists():
        raise BadInputError(f"no study {study!r} in {storage}")
    spec = parse_spec(read_study(paths)["spec_yaml"], f"{paths.study} (spec_yaml)")
    chosen = choose_trials(spec, read_trials(paths), study, trial_ids, top)

    from tunelab.tune.ray_tasks import Job, run_jobs
    from tunelab.from_spec import load_study_data

    data = load_study_data(spec)
    gpu = spec.resources.gpu > 0
    jobs = []
    fused = {trial.trial_id for trial in chosen if rounds_fuse(trial.plan, spec.train.fuse)}
    for trial in chosen:
        if trial.trial_id in fused:  # every round a member of one fused cohort, in one task
            jobs.append(Job(("rounds", trial.trial_id), f"trial {trial.trial_number} rounds (fused)",
                            _fused_rounds_on_device, (trial.plan, method, rounds, gpu)))
        for index in range(rounds if trial.trial_id not in fused else 0):
            jobs.append(Job(("round", trial.trial_id, index), f"trial {trial.trial_number} round {index}",
                            _round_on_device, (trial.plan, method, index, gpu)))
        if learning_curve:
            for fraction in LEARNING_CURVE_FRACTIONS:
                jobs.append(Job(("curve", trial.trial_id, fraction), f"trial {trial.trial_number} curve {fraction}",
                                _curve_on_device, (trial.plan, fraction, gpu)))
    echo(f"biasvar {study}: {len(chosen)} trial(s) × {rounds} {method} rounds"
         f"{f' + {len(LEARNING_CURVE_FRACTIONS)} learning-curve points' if learning_curve else ''} → {len(jobs)} Ray tasks")
    results, failures = run_jobs(jobs, data, spec.resources.cpu, spec.resources.gpu, echo)
    numbers = {trial.trial_id: trial.trial_number for trial in chosen}
    outputs = {trial.trial_id: results.get(("rounds", trial.trial_id)) or
               [results[key] for key in sorted(results) if key[:2] == ("round", trial.trial_id)] for trial in chosen}
    failed_rounds = {trial.trial_id: sum(1 for key in failures if key[:2] == ("round", trial.trial_id))
                     + (rounds if ("rounds", trial.trial_id) in failures else 0) for trial in chosen}
    curves = [{"trial_id": key[1], "trial_number": numbers[key[1]], **value}
              for key, value in results.items() if key[0] == "curve"]

    rows = []
    for trial in chosen:
        if len(outputs[trial.trial_id]) < MIN_ROUNDS:
            echo(f"trial {trial.trial_number}: only {len(outputs[trial.trial_id])} round(s) succeeded; nothing stored for it")
            continue
        result = decompose(outputs[trial.trial_id], data, _task_of(spec, data))
        rows.append({
            "trial_id": trial.trial_id,
            "trial_number": trial.trial_number,
            "method": method,
            "failed_rounds": failed_rounds[trial.trial_id],
            "epochs": trial.plan.rules.max_epochs,
            **result.as_row(),
            **{f"param_{name}": value for name, value in trial.params.items()},
            "created_at": datetime.now(timezone.utc),
        })
    table = pd.DataFrame(rows)
    if rows:
        write_decompositions(paths, table)
    if curves:
        write_learning_curves(paths, pd.DataFrame(curves))
    echo(f"wrote {len(rows)} decomposition(s) to {paths.root / 'biasvar.parquet'}")
    return table


def _round_on_device(data: Any, plan: TrialPlan, method: str, index: int, gpu: bool) -> np.ndarray:
    return train_round(_on_device(plan, gpu), data, method, index)


def _fused_rounds_on_device(data: Any, plan: TrialPlan, method: str, rounds: int, gpu: bool) -> list[np.ndarray]:
    from tunelab.fusion.rounds import fused_round_outputs

    return fused_round_outputs(_on_device(plan, gpu), data, method, rounds)


def _curve_on_device(data: Any, plan: TrialPlan, fraction: float, gpu: bool) -> dict[str, Any]:
    return learning_curve_point(_on_device(plan, gpu), data, fraction)


def _on_device(plan: TrialPlan, gpu: bool) -> TrialPlan:
    import dataclasses

    from tunelab.tune.ray_tasks import on_device

    return dataclasses.replace(plan, device=on_device(1, gpu))


def _task_of(spec: Spec, data: Any) -> str:
    from tunelab_models import get_model

    return "reconstruction" if get_model(spec.model.name).learns_inputs else data.task
