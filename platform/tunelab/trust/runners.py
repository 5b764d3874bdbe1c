"""`tunelab confirm` and `tunelab audit`: retraining as parallel Ray tasks, rows stored beside
the study's tables (`confirm.parquet`; `audit.parquet` and `audit_epochs.parquet`)."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from tunelab.store.schema import STOPPED_EARLY, STUDY_RUNNING, WITH_A_FINAL_RESULT
from tunelab.errors import BadInputError
from tunelab.fusion.cohort import fusion_choice
from tunelab.fusion.messages import FUSED
from tunelab.spec import Spec, parse_spec
from tunelab.store import StudyPaths, read_study, read_trials
from tunelab.store.layout import AUDIT_EPOCHS_TABLE, AUDIT_TABLE, CONFIRM_TABLE
from tunelab.store.side_tables import merge_rows
from tunelab.stored_study import trial_params
from tunelab.summary import rank_trials
from tunelab.training.plan import TrialPlan
from tunelab.trust.retrain import continue_stopped, fused_replicates, replicate

# Audit about this share of the stopped trials by default, and at least this many.
AUDIT_SHARE = 0.10
AUDIT_AT_LEAST = 4
# A fused cohort's members share their splits; resplit replicates each have their own.
RESPLIT_NOT_FUSED = "each replicate's own train/validation split (--resplit) is not fused"


def run_confirm(storage: Path, study: str, top: int = 3, seeds: int = 5, resplit: bool = False,
                echo: Callable[[str], None] = print) -> pd.DataFrame:
    """Retrain the `top` best configurations `seeds` times each; return the rows stored."""
    if seeds < 2:
        raise BadInputError(f"--seeds {seeds}: expected at least 2 (an interval needs two replicates)")
    if top < 1:
        raise BadInputError(f"--top {top}: expected at least 1")
    paths, spec, trials = _finished_study(storage, study)
    scored = rank_trials(trials[trials["status"].isin([*WITH_A_FINAL_RESULT, STOPPED_EARLY]) & trials["objective"].notna()], spec.objective_mode)
    if len(scored) < top:
        raise BadInputError(f"study {study!r} has {len(scored)} trial(s) with a result; expected at least --top {top}")
    chosen = scored.head(top)
    from tunelab.tune.ray_tasks import Job

    plans = {row["trial_id"]: _as_trained(spec, row) for row in chosen.to_dict("records")}
    # A fused study fuses each configuration's replicates too: one Ray task trains them all.
    fusion = ({trial_id: _replicates_fusion(plan, resplit, spec.train.fuse) for trial_id, plan in plans.items()}
              if spec.train.fuse != "off" else {})
    jobs = []
    threads, gpu = spec.resources.cpu, spec.resources.gpu > 0
    for row in chosen.to_dict("records"):
        plan, label = plans[row["trial_id"]], f"trial {int(row['trial_number'])}"
        if fusion.get(row["trial_id"]) == FUSED:
            jobs.append(Job((row["trial_id"], FUSED), f"{label} {seeds} seeds (fused)", fused_replicates,
                            (plan, seeds, threads, gpu)))
        else:
            jobs.extend(Job((row["trial_id"], index), f"{label} seed {index}", replicate, (plan, index, resplit, threads, gpu))
                        for index in range(seeds))
    fused = sum(1 for word in fusion.values() if word == FUSED)
    echo(f"confirm {study}: {top} configuration(s) × {seeds} seeds{' on new train/validation splits' if resplit else ''} "
         f"→ {len(jobs)} Ray tasks{f' ({fused} configuration(s) fused)' if fused else ''}")
    results = _run(spec, jobs, echo)
    numbers = chosen.set_index("trial_id")["trial_number"]
    rows = [{"trial_id": trial_id, "trial_number": int(numbers[trial_id]), **one,
             **({"fusion": fusion[trial_id]} if fusion else {}), "created_at": datetime.now(timezone.utc)}
            for (trial_id, job), result in results.items() for one in (result if job == FUSED else [result])]
    rows.sort(key=lambda row: (row["trial_id"], row["replicate"]))
    table = pd.DataFrame(rows)
    if rows:
        # A new confirmation of a trial replaces its old replicates.
        merge_rows(paths, CONFIRM_TABLE, table, key=["trial_id", "replicate"], replace=["trial_id"])
    echo(f"wrote {len(rows)} replicate(s) to {paths.root / CONFIRM_TABLE}")
    return table


def run_audit(storage: Path, study: str, sample: int | None = None, every: bool = False,
              echo: Callable[[str], None] = print) -> pd.DataFrame:
    """Continue stopped trials to their own end; return the per-trial rows stored."""
    paths, spec, trials = _finished_study(storage, study)
    stopped = trials[trials["status"] == STOPPED_EARLY]
    if stopped.empty:
        raise BadInputError(f"study {study!r} has no trial the scheduler stopped; nothing to audit")
    if sample is not None and sample < 1:
        raise BadInputError(f"--sample {sample}: expected at least 1")
    chosen = stopped if every else stratified_sample(stopped, sample or max(AUDIT_AT_LEAST, math.ceil(AUDIT_SHARE * len(stopped))))
    from tunelab.tune.ray_tasks import Job

    jobs = [Job(row["trial_id"], f"trial {int(row['trial_number'])} from epoch {int(row['stop_epoch'])}", continue_stopped,
                (_plan(spec, row), spec.resources.cpu, spec.resources.gpu > 0))
            for row in chosen.to_dict("records")]
    echo(f"audit {study}: {len(jobs)} of {len(stopped)} stopped trials continued to their own end "
         f"(up to {spec.train.max_epochs} epochs) → {len(jobs)} Ray tasks")
    results = _run(spec, jobs, echo)
    by_id = chosen.set_index("trial_id")
    now = datetime.now(timezone.utc)
    rows, epoch_rows = [], []
    for trial_id, result in results.items():
        curve = result.pop("epochs")
        stop = int(by_id.loc[trial_id, "stop_epoch"])
        at_stop = next((e for e in curve if e["epoch"] == stop), {})
        rows.append({"trial_id": trial_id, "trial_number": int(by_id.loc[trial_id, "trial_number"]), "stop_epoch": stop,
                     "value_at_stop": at_stop.get(spec.primary_objective.metric, math.nan), "epochs": len(curve), **result,
                     "created_at": now})
        epoch_rows.extend({"trial_id": trial_id, **epoch} for epoch in curve)
    table = pd.DataFrame(rows)
    if rows:
        merge_rows(paths, AUDIT_TABLE, table, key=["trial_id"])
        merge_rows(paths, AUDIT_EPOCHS_TABLE, pd.DataFrame(epoch_rows), key=["trial_id", "epoch"], replace=["trial_id"])
    echo(f"wrote {len(rows)} continued trial(s) to {paths.root / AUDIT_TABLE}")
    return table


def stratified_sample(stopped: pd.DataFrame, size: int, seed: int = 0) -> pd.DataFrame:
    """`size` stopped trials spread over the rungs they were stopped at (each rung's share of
    them, at least one per rung while the size allows), seeded."""
    size = min(size, len(stopped))
    groups = {rung: rows for rung, rows in stopped.groupby("stop_epoch")}
    quota = {rung: 1 if size >= len(groups) else 0 for rung in groups}
    rest = size - sum(quota.values())
    shares = {rung: len(rows) / len(stopped) * rest for rung, rows in groups.items()}
    for rung in sorted(groups, key=lambda r: shares[r] - int(shares[r]), reverse=True):
        quota[rung] += int(shares[rung])
    leftover = size - sum(quota.values())
    for rung in sorted(groups, key=lambda r: len(groups[r]) - quota[r], reverse=True)[:leftover]:
        quota[rung] += 1
    rng = np.random.default_rng(seed)
    picked = [rows.iloc[np.sort(rng.choice(len(rows), size=min(quota[rung], len(rows)), replace=False))]
              for rung, rows in groups.items() if quota[rung]]
    return pd.concat(picked).sort_values("trial_number")


def _finished_study(storage: Path, study: str) -> tuple[StudyPaths, Spec, pd.DataFrame]:
    paths = StudyPaths.of(storage, study)
    if not paths.exists():
        raise BadInputError(f"no study {study!r} in {storage}")
    info = read_study(paths)
    if info["status"] == STUDY_RUNNING:
        raise BadInputError(f"study {study!r} is still running; confirm and audit a study once it has ended")
    spec = parse_spec(str(info["spec_yaml"]), f"{paths.study} (spec_yaml)")
    return paths, spec, read_trials(paths)


def _plan(spec: Spec, row: dict[str, Any]) -> TrialPlan:
    from tunelab.from_spec import study_setup

    return study_setup(spec).plan_for(trial_params(pd.Series(row)))


def _as_trained(spec: Spec, row: dict[str, Any]) -> TrialPlan:
    """The trial's plan as it trained: to its own end, or, where the scheduler stopped it, to the
    epoch it was stopped at (so its replicates and its search score cover the same epochs)."""
    plan = _plan(spec, row)
    if row["status"] != STOPPED_EARLY:
        return plan
    return dataclasses.replace(plan, rules=dataclasses.replace(plan.rules, max_epochs=int(row["stop_epoch"])))


def _replicates_fusion(plan: TrialPlan, resplit: bool, fuse: str | int) -> str:
    """`fused`, or why a fused study's configuration has its replicates trained alone (the
    words of the trials table's `fusion` column)."""
    if resplit:
        return RESPLIT_NOT_FUSED
    return fusion_choice(plan, fuse) or FUSED


def _run(spec: Spec, jobs: list[Any], echo: Callable[[str], None]) -> dict[Any, Any]:
    from tunelab.tune.ray_tasks import run_jobs
    from tunelab.from_spec import load_study_data

    results, failures = run_jobs(jobs, load_study_data(spec), spec.resources.cpu, spec.resources.gpu, echo)
    if failures:
        echo(f"{len(failures)} task(s) failed and are left out")
    return results
