"""A study's trials in the tools people already use: TensorBoard event files and an MLflow run
tree (one parent run per study, a child run per trial). Both are written from the store, which
stays the source of truth, and both are optional extras: `pip install 'tunelab[tensorboard]'`,
`'tunelab[mlflow]'`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from tunelab.errors import BadInputError
from tunelab.metrics import EPOCH_METRICS
from tunelab.store import StudyPaths, read_epochs, read_study, read_trials, schema
from tunelab.stored_study import trial_params

TENSORBOARD_FOLDER = "tensorboard"
# How a trial's status reads in MLflow's run states.
MLFLOW_STATUS = {schema.ERRORED: "FAILED", schema.INTERRUPTED: "KILLED", schema.RUNNING: "RUNNING"}
STUDY_FIELDS = ("dataset", "model", "objective_metric", "objective_mode", "searcher", "scheduler", "max_epochs", "num_samples")


def write_tensorboard(paths: StudyPaths, folder: Path | None = None) -> Path:
    """One event-file folder per trial (`trial_0001`, ...) with every per-epoch metric as a
    scalar at its epoch, and the trial's parameters and status as text. Returns the folder."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise BadInputError("TensorBoard is not installed; expected `pip install 'tunelab[tensorboard]'`") from None
    root = folder or paths.root / TENSORBOARD_FOLDER
    epochs = read_epochs(paths)
    for row in _trials(paths):
        writer = SummaryWriter(log_dir=str(root / f"trial_{int(row['trial_number']):04d}"))
        try:
            for epoch in epochs[epochs["trial_id"] == row["trial_id"]].sort_values("epoch").to_dict("records"):
                for metric, value in _finite(epoch).items():
                    writer.add_scalar(metric, value, global_step=int(epoch["epoch"]))
            writer.add_text("status", str(row.get("status")))
            writer.add_text("params", ", ".join(f"{k}={v}" for k, v in trial_params(pd.Series(row)).items()))
        finally:
            writer.close()
    return root


def write_mlflow(paths: StudyPaths, tracking_uri: str, experiment: str | None = None) -> str:
    """A parent run for the study and a child run per trial (its parameters, every epoch's
    metrics with the epoch as the step, its status and tunelab's tags). Returns the parent run's id."""
    try:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise BadInputError("MLflow is not installed; expected `pip install 'tunelab[mlflow]'`") from None
    info = read_study(paths)
    name = experiment or paths.name
    try:
        client = MlflowClient(tracking_uri=tracking_uri)
        found = client.get_experiment_by_name(name)
        experiment_id = found.experiment_id if found is not None else client.create_experiment(name)
    except Exception as exc:  # MLflow's stores raise their own kinds for a URI they cannot use
        raise BadInputError(f"mlflow tracking_uri {tracking_uri}: cannot use it ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    parent = client.create_run(experiment_id, run_name=paths.name, tags={"tunelab.study": paths.name})
    client.log_batch(parent.info.run_id, params=[Param(f, str(info.get(f))) for f in STUDY_FIELDS if info.get(f) is not None])
    epochs = read_epochs(paths)
    for row in _trials(paths):
        tags = {"mlflow.parentRunId": parent.info.run_id, "tunelab.study": paths.name, "tunelab.trial_id": str(row["trial_id"]),
                "tunelab.status": str(row.get("status"))}
        child = client.create_run(experiment_id, run_name=f"trial {int(row['trial_number'])}", tags=tags)
        rows = epochs[epochs["trial_id"] == row["trial_id"]].sort_values("epoch").to_dict("records")
        metrics = [Metric(metric, value, 0, int(epoch["epoch"])) for epoch in rows for metric, value in _finite(epoch).items()]
        params = [Param(k, str(v)) for k, v in trial_params(pd.Series(row)).items()]
        for start in range(0, max(len(metrics), 1), 900):  # MLflow takes at most 1000 entities a batch
            client.log_batch(child.info.run_id, metrics=metrics[start:start + 900], params=params if start == 0 else [],
                             tags=[RunTag("tunelab.objective", str(row.get("objective")))] if start == 0 else [])
        client.set_terminated(child.info.run_id, status=MLFLOW_STATUS.get(str(row.get("status")), "FINISHED"))
    client.set_terminated(parent.info.run_id, status="FINISHED" if info.get("status") == schema.STUDY_COMPLETED else "KILLED")
    return parent.info.run_id


def _trials(paths: StudyPaths) -> list[dict[str, Any]]:
    trials = read_trials(paths)
    return trials.sort_values("trial_number").to_dict("records") if "trial_number" in trials else []


def _finite(epoch: dict[str, Any]) -> dict[str, float]:
    return {metric: float(epoch[metric]) for metric in EPOCH_METRICS
            if isinstance(epoch.get(metric), (int, float)) and math.isfinite(epoch[metric])}
