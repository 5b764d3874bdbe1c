"""A study's trials in TensorBoard and MLflow: written from the store by a real study's end
(`logging:` in the experiment file) and by `tunelab export`, read back with each tool's own
reader and compared with the store."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import run_cli, small_study
from tunelab.store import StudyPaths, read_epochs, read_trials

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def logged(ray_runtime: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from tunelab.spec import parse_spec
    from tunelab.study import run_study

    storage = tmp_path_factory.mktemp("other-tools")
    tracking = f"sqlite:///{storage / 'mlflow.db'}"  # MLflow 3 keeps its file store for reading old runs only
    document = small_study(name="logged", train={"max_epochs": 4}, budget={"num_samples": 4, "max_concurrent": 2},
                           logging={"tensorboard": True, "mlflow": {"tracking_uri": tracking, "experiment": "tunelab-tests"}})
    said: list[str] = []
    run_study(parse_spec(yaml.safe_dump(document), "logged.yaml"), storage, echo=said.append)
    assert any(line.startswith("tensorboard: ") for line in said) and any(line.startswith("mlflow: parent run") for line in said)
    return storage, tracking


def stored_curves(storage: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    paths = StudyPaths.of(storage, "logged")
    return read_trials(paths).sort_values("trial_number"), read_epochs(paths)


def test_tensorboard_event_files_hold_every_trials_epochs(logged: tuple[Path, str]) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    storage, _ = logged
    trials, epochs = stored_curves(storage)
    for trial in trials.itertuples():
        events = EventAccumulator(str(storage / "logged" / "tensorboard" / f"trial_{trial.trial_number:04d}"))
        events.Reload()
        rows = epochs[epochs["trial_id"] == trial.trial_id].sort_values("epoch")
        for metric in ("train_loss", "val_loss", "val_acc"):
            scalars = events.Scalars(metric)
            assert [s.step for s in scalars] == list(rows["epoch"])
            assert [s.value for s in scalars] == pytest.approx(list(rows[metric]), rel=1e-6)


def test_mlflow_holds_a_parent_run_and_a_child_run_per_trial_equal_to_the_store(logged: tuple[Path, str]) -> None:
    from mlflow.tracking import MlflowClient

    storage, tracking = logged
    trials, epochs = stored_curves(storage)
    client = MlflowClient(tracking_uri=tracking)
    experiment = client.get_experiment_by_name("tunelab-tests")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    assert len(parents) == 1 and parents[0].data.tags["tunelab.study"] == "logged"
    assert parents[0].data.params["objective_metric"] == "val_loss"
    children = {run.data.tags["tunelab.trial_id"]: run for run in runs if run.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id}
    assert set(children) == set(trials["trial_id"])
    for trial in trials.itertuples():
        child = children[trial.trial_id]
        assert child.data.tags["tunelab.status"] == trial.status
        assert child.info.run_name == f"trial {trial.trial_number}"
        assert float(child.data.params["learning_rate"]) == pytest.approx(trial.param_learning_rate)
        history = client.get_metric_history(child.info.run_id, "val_loss")
        rows = epochs[epochs["trial_id"] == trial.trial_id].sort_values("epoch")
        assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [
            (int(e), pytest.approx(v, rel=1e-9)) for e, v in zip(rows["epoch"], rows["val_loss"]) if math.isfinite(v)]


def test_export_writes_tensorboard_and_mlflow_for_a_stored_study(logged: tuple[Path, str], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    storage, _ = logged
    code, out, err = run_cli(["export", "logged", "--storage", str(storage), "--tensorboard", str(tmp_path / "tb")], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == [f"trial_{n:04d}" for n in range(1, 5)]
    code, out, err = run_cli(["export", "logged", "--storage", str(storage), "--mlflow", f"sqlite:///{tmp_path / 'runs.db'}"], capsys)
    assert code == 0 and "parent run" in out, err
    code, _, err = run_cli(["export", "logged", "--storage", str(storage), "--mlflow", f"file://{tmp_path / 'mlruns'}"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "cannot use it" in err
    code, _, err = run_cli(["export", "logged", "--storage", str(storage), "--mlflow", "x", "--tensorboard", "y"], capsys)
    assert code == 2 and "give one of" in err
