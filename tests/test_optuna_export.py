"""`tunelab export STUDY --optuna`: a real study written as an Optuna study, loaded back with
Optuna and compared trial by trial with the store."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from conftest import run_cli, small_study
from tunelab.store import StudyPaths, read_epochs, read_trials

pytestmark = pytest.mark.ray

EXPECTED_STATE = {"completed": TrialState.COMPLETE, "early_stopped_patience": TrialState.COMPLETE,
                  "diverged": TrialState.COMPLETE, "stopped_early": TrialState.PRUNED, "errored": TrialState.FAIL}


@pytest.fixture(scope="module")
def stored(ray_runtime: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Trials that end every way: completed, stopped by ASHA, and errored (width 13 raises)."""
    from tunelab.spec import parse_spec
    from tunelab.study import run_study

    storage = tmp_path_factory.mktemp("optuna-export")
    document = small_study(name="exported", train={"max_epochs": 4, "early_stopping": {"patience": None}},
                           budget={"num_samples": 8, "max_concurrent": 2, "max_failures": 0})
    document["model"] = {"name": "study_models:FragileMLP"}
    document["search_space"] = {"learning_rate": {"type": "loguniform", "low": 1e-4, "high": 0.1},
                                "width": {"type": "choice", "values": [13, 16, 32]},
                                "optimizer": {"type": "choice", "values": ["sgd", "adam"]},
                                "momentum": {"type": "uniform", "low": 0.0, "high": 0.9, "when": {"optimizer": "sgd"}}}
    document["searcher"] = {"name": "random", "seed": 3}
    run_study(parse_spec(yaml.safe_dump(document), "exported.yaml"), storage, echo=lambda line: None)
    return storage


@pytest.mark.parametrize("target", ["journal", "sqlite"])
def test_the_exported_study_loads_in_optuna_trial_by_trial(
    stored: Path, tmp_path: Path, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    where = str(tmp_path / "exported.journal") if target == "journal" else f"sqlite:///{tmp_path / 'exported.db'}"
    code, out, err = run_cli(["export", "exported", "--storage", str(stored), "--optuna", where], capsys)
    assert code == 0 and err == "", err
    storage = (optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(where))
               if target == "journal" else where)
    study = optuna.load_study(study_name="exported", storage=storage)

    trials = read_trials(StudyPaths.of(stored, "exported")).sort_values("trial_number").reset_index(drop=True)
    epochs = read_epochs(StudyPaths.of(stored, "exported"))
    assert study.direction == optuna.study.StudyDirection.MINIMIZE  # val_loss
    assert len(study.trials) == len(trials) == 8
    assert {"completed", "stopped_early", "errored"} <= set(trials["status"]), "trials ended every way"
    for ours, theirs in zip(trials.to_dict("records"), study.trials):
        assert theirs.state == EXPECTED_STATE[ours["status"]], ours["status"]
        assert theirs.user_attrs["trial_id"] == ours["trial_id"] and theirs.user_attrs["status"] == ours["status"]
        expected_params = {c.removeprefix("param_"): v for c, v in ours.items()
                           if c.startswith("param_") and not (isinstance(v, float) and math.isnan(v))}
        assert set(theirs.params) == set(expected_params)
        for name, value in expected_params.items():
            assert theirs.params[name] == pytest.approx(value) if isinstance(value, float) else theirs.params[name] == value
        if theirs.state == TrialState.COMPLETE:
            assert theirs.value == pytest.approx(ours["objective"])
        rows = epochs[epochs["trial_id"] == ours["trial_id"]].set_index("epoch")["val_loss"]
        assert theirs.intermediate_values == pytest.approx({int(e): float(v) for e, v in rows.items() if math.isfinite(v)})
    assert study.best_trial.user_attrs["trial_id"] == trials.loc[trials["objective"].idxmin(), "trial_id"]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--optuna", "{again}"], "holds an Optuna study named 'exported' already"),
        (["--optuna", "{folder}"], "is a folder; expected a journal file or a database URL"),
        (["--optuna", "nosuchdb://x"], "cannot open it as an Optuna storage"),
        ([], "give one of -o DIR (the model bundle), --optuna FILE_OR_URL, --tensorboard DIR, --mlflow URI"),
    ],
    ids=["existing study", "a folder", "unknown database", "neither"],
)
def test_export_refuses_in_one_line(stored: Path, tmp_path: Path, argv: list[str], message: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    again = tmp_path / "again.journal"
    run_cli(["export", "exported", "--storage", str(stored), "--optuna", str(again)], capsys)
    args = [a.format(again=again, folder=tmp_path) for a in argv]
    code, _, err = run_cli(["export", "exported", "--storage", str(stored), *args], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
