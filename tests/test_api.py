"""tunelab from Python: `tunelab.run`, `load_study`, the trained model, export and predict.

Real studies run in-process on the session's Ray (small budgets); the exported bundle is
loaded in a fresh process; Ctrl-C is a real SIGINT to a real run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import tunelab
from conftest import REPO, run_cli, small_study
from tunelab.store import StudyPaths, read_study, read_trials
from user_data import SPECIES, write_table

pytestmark = pytest.mark.ray

SEARCH = {"learning_rate": {"type": "loguniform", "low": 0.003, "high": 0.03}}


def experiment(name: str, **changes: Any) -> dict[str, Any]:
    sections = {"objective": {"metric": "val_acc"}, "train": {"max_epochs": 6, "optimizer": "adam"},
                "budget": {"num_samples": 3, "max_concurrent": 2}}
    document = small_study(name=name, **{**sections, **changes})
    document["search_space"] = SEARCH
    document["searcher"] = {"name": "random", "seed": 0}  # the same configurations in any run
    return document


def for_data(document: dict[str, Any], **dataset: Any) -> dict[str, Any]:
    """An experiment for `data=`: its dataset section only says how to read the data."""
    return {**document, "dataset": dataset}


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api-store")


@pytest.fixture(scope="module")
def digits_study(ray_runtime: None, storage: Path) -> tunelab.Study:
    return tunelab.run(experiment("api-digits"), storage=storage, quiet=True)


@pytest.fixture(scope="module")
def birds(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return pd.read_csv(write_table(tmp_path_factory.mktemp("birds"), rows=360, seed=5))


@pytest.fixture(scope="module")
def table_study(ray_runtime: None, storage: Path, birds: pd.DataFrame) -> tunelab.Study:
    """A study of a DataFrame in memory: text target with class names, a categorical column."""
    features = birds[["wingspan", "habitat", "weight"]]
    target = birds["species"].astype("category")
    return tunelab.run(for_data(experiment("api-birds"), missing="error"), storage=storage, data=(features, target),
                       quiet=True, max_epochs=8)


def test_run_returns_the_study_with_its_trials_and_best_trial(digits_study: tunelab.Study) -> None:
    trials = digits_study.trials
    assert digits_study.name == "api-digits" and digits_study.status == "completed"
    assert list(trials["trial_number"]) == [1, 2, 3]
    best = trials.loc[trials["objective"].idxmax()]
    assert digits_study.best_trial["trial_id"] == best["trial_id"]
    assert digits_study.best_value == pytest.approx(best["objective"])
    assert digits_study.best_params == {"learning_rate": pytest.approx(best["param_learning_rate"])}
    assert {"status", "objective", "final_test_acc", "param_learning_rate"} <= set(trials.columns)
    assert set(digits_study.epochs["trial_id"]) == set(trials["trial_id"])


def test_run_writes_the_same_tables_as_the_cli(
    digits_study: tunelab.Study, storage: Path, write_spec: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_spec(experiment("cli-digits"))
    code, _, err = run_cli(["run", str(path), "--storage", str(storage)], capsys)
    assert code == 0, err
    cli = StudyPaths.of(storage, "cli-digits")
    api_trials, cli_trials = digits_study.trials, read_trials(cli).sort_values("trial_number")
    assert set(api_trials.columns) == set(cli_trials.columns)
    # The same seeded random searcher: the same configurations (which trial number each gets
    # depends on which of two concurrent trials Ray starts first).
    np.testing.assert_allclose(sorted(api_trials["param_learning_rate"]), sorted(cli_trials["param_learning_rate"]))
    assert sorted(read_study(cli)) == sorted(digits_study.info)
    assert (cli.root / "preprocessing.json").read_text() == digits_study.paths.preprocessing.read_text()


def test_best_model_reproduces_the_stored_test_accuracy_exactly(digits_study: tunelab.Study) -> None:
    model = digits_study.best_model()
    assert isinstance(model, torch.nn.Module) and not model.training
    assert next(model.parameters()).device.type == "cpu"
    splits = digits_study.splits()
    with torch.no_grad():
        predicted = model(torch.from_numpy(splits.test_x)).argmax(dim=1).numpy()
    accuracy = np.float32((predicted == splits.test_y).mean())
    assert accuracy == np.float32(digits_study.best_trial["final_test_acc"])


def test_predict_takes_raw_inputs_and_applies_the_studys_preprocessing(digits_study: tunelab.Study) -> None:
    from sklearn.datasets import load_digits

    raw = load_digits().images[:, np.newaxis].astype(np.float32)  # unscaled pixels 0-16
    scaled = digits_study.preprocessing.model_inputs(raw)
    assert abs(float(raw.mean())) > 1 and abs(float(scaled.mean())) < 0.5
    with torch.no_grad():
        expected = digits_study.best_model()(torch.from_numpy(scaled)).argmax(dim=1).numpy()
    assert list(digits_study.predict(raw)) == [str(label) for label in expected]
    probabilities = digits_study.predict_proba(raw[:10])
    assert list(probabilities.columns) == [str(digit) for digit in range(10)]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_a_study_of_a_dataframe_predicts_class_names_from_raw_rows(table_study: tunelab.Study, birds: pd.DataFrame) -> None:
    assert table_study.preprocessing.class_names == SPECIES
    rows = birds[["wingspan", "habitat", "weight"]].head(40)
    predicted = table_study.predict(rows)
    assert set(predicted) <= set(SPECIES)
    assert (predicted == birds["species"].head(40).to_numpy()).mean() > 0.8
    encoded = table_study.preprocessing.model_inputs(rows)
    with torch.no_grad():
        outputs = table_study.best_model()(torch.from_numpy(encoded)).numpy()
    assert list(predicted) == [SPECIES[i] for i in outputs.argmax(axis=1)]
    # The data was written once, under the storage, and the study reads it from there.
    stored = yaml.safe_load(table_study.info["spec_yaml"])["dataset"]
    assert stored["name"] == "table" and ".tunelab-data" in stored["path"] and Path(stored["path"]).is_file()


def test_an_exported_bundle_predicts_the_same_in_a_fresh_process(
    table_study: tunelab.Study, birds: pd.DataFrame, tmp_path: Path
) -> None:
    bundle = table_study.export(tmp_path / "bundle")
    assert {"model.safetensors", "model.json", "preprocessing.json", "README.md"} <= {p.name for p in bundle.iterdir()}
    assert json.loads((bundle / "model.json").read_text())["trial"]["number"] == int(table_study.best_trial["trial_number"])
    rows = birds[["wingspan", "habitat", "weight"]].head(50)
    rows.to_csv(tmp_path / "new.csv", index=False)
    script = (
        "import sys, json, pandas as pd, tunelab\n"
        "model = tunelab.load_model(sys.argv[1])\n"
        "rows = pd.read_csv(sys.argv[2])\n"
        "print(json.dumps({'labels': list(model.predict(rows)), 'p': model.predict_proba(rows).values.tolist()}))\n"
    )
    # Another folder and no storage: the bundle alone is enough.
    done = subprocess.run([sys.executable, "-c", script, str(bundle), str(tmp_path / "new.csv")], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    fresh = json.loads(done.stdout.strip().splitlines()[-1])
    assert fresh["labels"] == list(table_study.predict(rows))
    np.testing.assert_allclose(fresh["p"], table_study.predict_proba(rows).to_numpy(), rtol=1e-6)


def test_tunelab_predict_writes_predictions_for_a_csv_of_new_rows(
    table_study: tunelab.Study, birds: pd.DataFrame, storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new_rows = birds.drop(columns=["species"]).tail(30)
    new_rows.to_csv(tmp_path / "new.csv", index=False)
    code, out, err = run_cli(["predict", "api-birds", str(tmp_path / "new.csv"), "-o", str(tmp_path / "out.csv"),
                              "--storage", str(storage)], capsys)
    assert code == 0, err
    written = pd.read_csv(tmp_path / "out.csv")
    assert list(written["id"]) == list(new_rows["id"])  # the input's own columns are carried through
    assert list(written["prediction"]) == list(table_study.predict(new_rows))
    assert {f"probability_{name}" for name in SPECIES} <= set(written.columns)
    assert "30 predictions" in out

    code, out, err = run_cli(["export", "api-birds", "-o", str(tmp_path / "bundle"), "--storage", str(storage)], capsys)
    assert code == 0, err
    code, out, err = run_cli(["predict", str(tmp_path / "bundle"), str(tmp_path / "new.csv"), "-o",
                              str(tmp_path / "again.parquet")], capsys)
    assert code == 0, err
    assert list(pd.read_parquet(tmp_path / "again.parquet")["prediction"]) == list(written["prediction"])


def test_a_trial_the_scheduler_stopped_has_no_model_to_load(digits_study: tunelab.Study, table_study: tunelab.Study) -> None:
    for study in (digits_study, table_study):
        stopped = study.trials[study.trials["status"] == "stopped_early"]
        for number in stopped["trial_number"]:
            with pytest.raises(tunelab.BadInputError, match=f"trial {number} .* has no saved model: it ended stopped_early"):
                study.best_model(int(number))


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda s: tunelab.run(dict(experiment("x"), model={"name": "mpl"}), storage=s), "<experiment dict>: model.name: unknown model 'mpl' (did you mean 'mlp'?)"),
        (lambda s: tunelab.run(experiment("x"), storage=s, num_sample=3), "run(): unknown option 'num_sample'"),
        (lambda s: tunelab.run(for_data(experiment("x")), storage=s, data=(np.zeros((10, 3)), np.zeros(9))), "x has 10 examples but y has 9"),
        (lambda s: tunelab.run(for_data(experiment("x")), storage=s, data=[1, 2]), "data: expected (x, y) or tunelab.Data"),
        (lambda s: tunelab.load_study("nope", storage=s), "no study 'nope'"),
        (lambda s: tunelab.load_model(s), "is not a tunelab model bundle"),
    ],
    ids=["bad experiment", "unknown option", "x and y differ", "data not a pair", "unknown study", "not a bundle"],
)
def test_bad_input_through_the_api_raises_bad_input_error_and_writes_nothing(call: Any, message: str, tmp_path: Path) -> None:
    with pytest.raises(tunelab.BadInputError) as raised:
        call(tmp_path)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()], "bad input leaves nothing behind"


def test_the_api_raises_the_message_the_cli_prints(write_spec: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_spec(dict(experiment("x"), train={"max_epochs": "ten"}))
    code, _, err = run_cli(["run", str(path), "--storage", str(tmp_path)], capsys)
    with pytest.raises(tunelab.BadInputError) as raised:
        tunelab.run(path, storage=tmp_path)
    assert code == 2 and err.strip() == f"tunelab: error: {raised.value}"


def test_ctrl_c_ends_the_study_as_interrupted_and_it_resumes(ray_runtime: None, tmp_path: Path) -> None:
    """A real SIGINT to a process running `tunelab.run`: the study is marked interrupted (not
    completed), `load_study` reads it while it ran, and `tunelab resume` finishes it."""
    document = experiment("ctrl-c", train={"max_epochs": 60, "early_stopping": {"patience": None}},
                          budget={"num_samples": 6, "max_concurrent": 2}, scheduler="none")
    script = (
        "import sys, yaml, tunelab\n"
        "try:\n"
        "    tunelab.run(yaml.safe_load(sys.argv[1]), storage=sys.argv[2], quiet=True)\n"
        "except KeyboardInterrupt:\n"
        "    print('KeyboardInterrupt raised')\n"
        "    sys.exit(130)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script, yaml.safe_dump(document), str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")])})
    seen: list[tuple[str, int]] = []  # what load_study showed while the study ran

    def running() -> bool:
        try:
            live = tunelab.load_study("ctrl-c", storage=tmp_path)
        except tunelab.BadInputError:
            return False  # not started yet
        seen.append((live.status, len(live.trials)))
        return live.status == "running" and len(live.epochs) >= 3

    out, err = interrupt(process, when=running)
    status, trials = seen[-1]
    assert status == "running" and trials > 0
    assert process.returncode == 130, out + err
    assert "KeyboardInterrupt raised" in out
    stopped = tunelab.load_study("ctrl-c", storage=tmp_path)
    assert stopped.status == "interrupted"
    assert (stopped.trials["status"] == "completed").sum() < 6

    from tunelab.study import resume_study

    resume_study(tmp_path, "ctrl-c", echo=lambda line: None)
    resumed = tunelab.load_study("ctrl-c", storage=tmp_path)
    assert resumed.status == "completed"
    assert (resumed.trials["status"] == "completed").sum() == 6


def test_ctrl_c_on_tunelab_run_says_how_to_continue(tmp_path: Path) -> None:
    document = experiment("ctrl-c-cli", train={"max_epochs": 400, "early_stopping": {"patience": None}},
                          budget={"num_samples": 4, "max_concurrent": 2}, scheduler="none")
    spec = tmp_path / "study.yaml"
    spec.write_text(yaml.safe_dump(document))
    process = subprocess.Popen([sys.executable, "-m", "tunelab.cli", "run", str(spec), "--storage", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    epochs = tmp_path / "ctrl-c-cli" / "epochs" / "pending.jsonl"
    out, err = interrupt(process, when=lambda: epochs.exists() and epochs.stat().st_size > 0)
    assert process.returncode == 130, out + err
    assert err.strip().splitlines()[-1] == "tunelab: study 'ctrl-c-cli' was interrupted; continue it with `tunelab resume ctrl-c-cli`"
    assert "Traceback" not in err
    assert tunelab.load_study("ctrl-c-cli", storage=tmp_path).status == "interrupted"


def interrupt(process: subprocess.Popen[str], when: Callable[[], bool]) -> tuple[str, str]:
    """Ctrl-C (SIGINT) to `process` once `when()` holds; its output once it has ended."""
    try:
        deadline = time.monotonic() + 240
        while not when():
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"the study did not get going: {process.communicate(timeout=60)}")
            time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        return process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
