"""`train.fuse` in `tunelab run` (issue 21): trials of the same shapes train as members of fused
cohorts, and each is still its own Ray Tune trial: its own rows in the store, its own end, its
own ASHA decisions, its own state file. Real studies on real Ray, Optuna and PyTorch, tiny."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import pytest
import yaml

from conftest import run_cli, small_study
from tunelab.spec import Spec, parse_spec
from tunelab.store import StudyPaths, read_epochs, read_study, read_trials
from tunelab.from_spec import load_study_data, study_setup
from tunelab.study import run_study
from tunelab.training.loop import train_trial
from tunelab.training.trial_state import BEST_MODEL_FILE, load_state, trial_folder

CONTINUOUS_SPACE = {
    "learning_rate": {"type": "loguniform", "low": 0.01, "high": 0.3},
    "momentum": {"type": "uniform", "low": 0.0, "high": 0.9},
    "weight_decay": {"type": "loguniform", "low": 1e-6, "high": 1e-3},
}


def study_document(name: str, fuse: Any) -> dict[str, Any]:
    """A digits MLP study whose searched parameters are all continuous: one cohort."""
    document = small_study(name=name, dataset={"max_train_samples": 400}, searcher={"name": "random", "seed": 3},
                           train={"fuse": fuse, "optimizer": "sgd", "max_epochs": 3, "early_stopping": {"patience": None}},
                           budget={"num_samples": 4, "max_concurrent": 4})
    document["search_space"] = CONTINUOUS_SPACE
    del document["searcher"]["n_startup_trials"]
    return document


def run(document: dict[str, Any], storage: Path) -> tuple[Spec, StudyPaths]:
    spec = parse_spec(yaml.safe_dump(document), f"{document['name']}.yaml")
    return spec, run_study(spec, storage, echo=lambda line: None).paths


def params_of(trials: pd.DataFrame) -> pd.Series:
    """Each trial's configuration as one comparable key."""
    columns = sorted(c for c in trials.columns if c.startswith("param_"))
    return trials[columns].round(12).astype(str).agg("|".join, axis=1)


def alone(spec: Spec, config: dict[str, Any]) -> list[dict[str, Any]]:
    """The epochs the configuration's trial reports when it trains alone, in this process."""
    reported: list[dict[str, Any]] = []
    train_trial(study_setup(spec).plan_for(config), load_study_data(spec), lambda metrics, state: reported.append(metrics))
    return reported


@pytest.mark.parametrize("fuse", [0, 1, "maybe", 2.5])
def test_a_fuse_setting_that_is_not_auto_off_or_a_member_count_is_one_line_exit_2_nothing_written(
        fuse: Any, write_spec: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_spec(study_document("bad", fuse))
    code, out, err = run_cli(["run", str(path), "--storage", str(tmp_path / "store")], capsys)
    assert code == 2
    assert err.strip() == (f"tunelab: error: {path}: train.fuse: expected auto, off or a number of members per "
                           f"cohort of at least 2, got {fuse!r}")
    assert not (tmp_path / "store").exists()


def test_run_fuse_on_the_command_line_fuses_the_study_of_an_unfused_file(
        ray_runtime: None, write_spec: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    document = study_document("cli", "off")
    document["budget"] = {"num_samples": 3, "max_concurrent": 3}
    path = write_spec(document)
    code, out, err = run_cli(["run", str(path), "--storage", str(tmp_path / "store"), "--fuse", "3"], capsys)
    assert code == 0, err
    assert "up to 3 members per cohort" in out
    paths = StudyPaths.of(tmp_path / "store", "cli")
    trials = read_trials(paths)
    assert list(trials["fusion"]) == ["fused"] * 3
    assert yaml.safe_load(read_study(paths)["spec_yaml"])["train"]["fuse"] == 3, "the study records what it ran"
    # How the trials trained, said after the results, and on the dashboard's overview.
    said = f"fused: 3 of 3 trials, 1 cohort shape (most trials: {trials['cohort'].iloc[0]}: 3)"
    assert said in out.splitlines()
    from test_dashboard_apptest import open_app, show, texts

    overview = show(open_app(tmp_path / "store", monkeypatch), "overview")
    assert said.capitalize() in texts(overview.caption)


@pytest.mark.parametrize("fuse", ["many", "1"])
def test_a_bad_fuse_on_the_command_line_is_one_line_exit_2_nothing_written(
        fuse: str, write_spec: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_spec(study_document("badcli", "off"))
    code, out, err = run_cli(["run", str(path), "--storage", str(tmp_path / "store"), "--fuse", fuse], capsys)
    assert code == 2
    shown = int(fuse) if fuse.isdigit() else fuse
    assert err.strip() == (f"tunelab: error: {path}: train.fuse: expected auto, off or a number of members per "
                           f"cohort of at least 2, got {shown!r}")
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("written,meaning", [("off", "off"), ("on", "auto"), ("auto", "auto"), ("8", 8)])
def test_fuse_reads_as_written_in_yaml(written: str, meaning: Any) -> None:
    text = yaml.safe_dump(study_document("yaml", "auto")).replace("fuse: auto", f"fuse: {written}")
    assert parse_spec(text, "yaml.yaml").train.fuse == meaning


def test_a_fused_study_stores_the_tables_of_the_same_study_unfused(ray_runtime: None, tmp_path: Path) -> None:
    document = study_document("same", "off")
    document["scheduler"] = "none"
    _, unfused = run(document, tmp_path / "unfused")
    spec, fused = run({**document, "train": {**document["train"], "fuse": 4}}, tmp_path / "fused")

    plain, together = read_trials(unfused), read_trials(fused)
    assert set(together.columns) - set(plain.columns) == {"fusion", "cohort"}
    assert (together["fusion"] == "fused").all()
    assert read_study(fused)["status"] == "completed" and len(together) == 4
    plain.index, together.index = params_of(plain), params_of(together)
    assert sorted(plain.index) == sorted(together.index), "random search proposed the same four configurations"
    for key, row in together.iterrows():
        expected = plain.loc[key]
        assert (row["status"], row["epochs"], row["stop_epoch"], row["best_epoch"], row["stop_reason"]) == (
            expected["status"], expected["epochs"], expected["stop_epoch"], expected["best_epoch"], expected["stop_reason"])
        for column in ("objective", "final_val_loss", "final_test_loss", "final_test_acc", "final_val_acc"):
            assert row[column] == pytest.approx(expected[column], rel=2e-4, abs=2e-5), (key, column)
        assert row["test_confusion"] == expected["test_confusion"]
        # Its best model and its state file, as an unfused trial leaves them.
        best = load_state(trial_folder(fused.root, row["trial_id"]) / BEST_MODEL_FILE)
        assert best is not None and best["best_epoch"] == row["best_epoch"]
        assert set(best["best_model"]) == set(load_state(trial_folder(unfused.root, expected["trial_id"]) / BEST_MODEL_FILE)["best_model"])

    plain_epochs, fused_epochs = read_epochs(unfused), read_epochs(fused)
    assert list(plain_epochs.columns) == list(fused_epochs.columns)
    for epochs, trials in ((plain_epochs, plain), (fused_epochs, together)):
        epochs["config"] = epochs["trial_id"].map(pd.Series(trials.index, index=trials["trial_id"]))
    merged = plain_epochs.merge(fused_epochs, on=["config", "epoch"], suffixes=("_plain", "_fused"), validate="one_to_one")
    assert len(merged) == len(plain_epochs) == len(fused_epochs) == 4 * 3
    for metric in ("train_loss", "val_loss", "train_acc", "val_acc", "lr"):
        assert merged[f"{metric}_fused"].to_numpy() == pytest.approx(merged[f"{metric}_plain"].to_numpy(), rel=2e-4, abs=2e-5), metric


def test_members_end_alone_at_rungs_or_by_divergence_and_the_cohort_goes_on(ray_runtime: None, tmp_path: Path) -> None:
    document = study_document("mixed", 8)
    document["budget"] = {"num_samples": 8, "max_concurrent": 8}
    # Momentum for all: without it the one-cycle trials (which cycle their own) outpace the
    # constant-rate ones, and ASHA stops every constant-rate member at its rungs.
    document["train"] = {**document["train"], "max_epochs": 4, "momentum": 0.9}
    document["searcher"] = {"name": "grid", "seed": 0}
    # A one-cycle schedule and a constant rate in one cohort: the one-cycle members change their
    # rate and momentum every batch, the others never.
    document["search_space"] = {"lr_schedule": {"type": "choice", "values": ["none", "onecycle"]},
                                "learning_rate": {"type": "choice", "values": [1000.0, 1e-5, 0.1, 0.3]}}
    spec, paths = run(document, tmp_path)

    trials = read_trials(paths).set_index("trial_id")
    epochs = read_epochs(paths)
    assert len(trials) == 8 and read_study(paths)["status"] == "completed"
    assert (trials["fusion"] == "fused").all() and trials["cohort"].nunique() == 1

    constant = trials["param_lr_schedule"] == "none"
    exploded = trials[constant & (trials["param_learning_rate"] == 1000.0)].iloc[0]
    assert (exploded["status"], exploded["stop_epoch"], exploded["stop_reason"]) == ("diverged", 1, "loss became NaN or infinite")
    assert math.isinf(epochs.loc[epochs["trial_id"] == exploded.name, "val_loss"].item())

    rungs = set(read_study(paths)["rung_epochs"])
    stopped = trials[trials["status"] == "stopped_early"]
    assert len(stopped) >= 1 and set(stopped["stop_epoch"]) <= rungs
    assert (trials["status"] == "completed").sum() >= 2, "the cohort went on to max_epochs"
    # Every member that did not diverge trained exactly as its trial alone: neither the member
    # that exploded nor those the scheduler stopped disturbed it.
    for trial_id, trial in trials[trials["status"] != "diverged"].iterrows():
        rows = epochs[epochs["trial_id"] == trial_id].sort_values("epoch")
        assert list(rows["epoch"]) == list(range(1, int(trial["epochs"]) + 1))
        config = {"lr_schedule": trial["param_lr_schedule"], "learning_rate": trial["param_learning_rate"]}
        expected = alone(spec, config)[: len(rows)]
        assert rows["val_loss"].to_numpy() == pytest.approx([e["val_loss"] for e in expected], rel=2e-4, abs=2e-5), config
        assert rows["lr"].to_numpy() == pytest.approx([e["lr"] for e in expected], rel=1e-6), config


def test_biasvar_of_a_fused_study_trains_its_rounds_as_one_cohort(ray_runtime: None, tmp_path: Path) -> None:
    from tunelab.biasvar.engine import decompose, train_round
    from tunelab.biasvar.runner import choose_trials, run_biasvar

    document = study_document("rounds", 4)
    document["scheduler"] = "none"
    spec, paths = run(document, tmp_path)
    said: list[str] = []
    table = run_biasvar(tmp_path, "rounds", top=1, rounds=3, method="seeds", learning_curve=False, echo=said.append)
    assert said[0].endswith("1 trial(s) × 3 seeds rounds → 1 Ray tasks"), said
    (row,) = table.to_dict("records")
    assert row["failed_rounds"] == 0
    (chosen,) = choose_trials(spec, read_trials(paths), "rounds", None, 1)
    data = load_study_data(spec)
    alone_rounds = decompose([train_round(chosen.plan, data, "seeds", index) for index in range(3)], data, "classification")
    for name, value in alone_rounds.as_row().items():
        if isinstance(value, float):
            assert row[name] == pytest.approx(value, rel=1e-3, abs=1e-4, nan_ok=True), name
        else:
            assert row[name] == value, name


def test_fused_members_report_each_objective_of_a_multi_objective_study_as_their_trials_alone(
        ray_runtime: None, tmp_path: Path) -> None:
    document = study_document("objectives", 4)
    document["objective"] = [{"metric": "val_acc"}, {"metric": "num_parameters"}, {"metric": "inference_ms"}]
    document["scheduler"] = "none"
    spec, paths = run(document, tmp_path)
    trials, epochs = read_trials(paths), read_epochs(paths)
    assert len(trials) == 4 and (trials["fusion"] == "fused").all()
    study = read_study(paths)
    # The study's row keeps what the study began with beside what the store's callback adds.
    assert study["status"] == "completed" and parse_spec(study["spec_yaml"], "stored").name == "objectives"
    assert len(json.loads(study["hypervolume_reference"])) == 3
    for trial in trials.to_dict("records"):
        expected = alone(spec, {name: trial[f"param_{name}"] for name in CONTINUOUS_SPACE})
        assert trial["objective_num_parameters"] == expected[-1]["objective_num_parameters"]
        assert trial["objective_val_acc"] == pytest.approx(expected[-1]["objective_val_acc"], abs=2e-5)
        assert trial["objective_inference_ms"] > 0
        rows = epochs[epochs["trial_id"] == trial["trial_id"]]
        assert rows["train_seconds"].is_monotonic_increasing and (rows["train_seconds"] > 0).all()
    assert trials["pareto"].astype(bool).any()


def test_a_study_that_minimises_train_seconds_trains_each_trial_alone_and_says_why(
        ray_runtime: None, tmp_path: Path) -> None:
    document = study_document("seconds", 4)
    document["objective"] = [{"metric": "val_acc"}, {"metric": "train_seconds"}]
    document["scheduler"] = "none"
    document["budget"] = {"num_samples": 2, "max_concurrent": 2}
    _, paths = run(document, tmp_path)
    trials = read_trials(paths)
    assert list(trials["status"]) == ["completed", "completed"]
    assert set(trials["fusion"]) == {"train_seconds is an objective: a fused member's training time is its whole cohort's"}
    assert (trials["objective_train_seconds"] > 0).all()


def test_a_fused_study_ends_at_its_goal_and_at_its_time_budget(ray_runtime: None, tmp_path: Path) -> None:
    document = study_document("goal", 4)
    document["scheduler"] = "none"
    document["objective"] = {"metric": "val_acc", "goal": 0.5}
    document["train"] = {**document["train"], "max_epochs": 20}
    document["budget"] = {"num_samples": 40, "max_concurrent": 4}
    _, paths = run(document, tmp_path / "goal")
    trials = read_trials(paths)
    assert read_study(paths)["status"] == "completed"
    winners = trials[trials["status"] == "reached_goal"]
    assert len(winners) >= 1 and (winners["objective"] >= 0.5).all()
    assert len(trials) < 40, "no trial started after the goal was reached"
    assert set(trials["status"]) <= {"reached_goal", "interrupted"}

    document = {**study_document("budget", 4), "scheduler": "none"}
    document["train"] = {**document["train"], "max_epochs": 100_000}
    document["budget"] = {"num_samples": 4, "max_concurrent": 4, "time_budget_s": 4}
    _, paths = run(document, tmp_path / "budget")
    trials = read_trials(paths)
    assert read_study(paths)["status"] == "completed"
    assert list(trials["status"]) == ["interrupted"] * 4
    assert (trials["stop_reason"] == "still running when the study ended (time budget or interrupt)").all()
    assert (trials["epochs"] >= 1).all() and (trials["epochs"] < 100_000).all()


def test_a_structural_parameter_splits_cohorts_and_continuous_ones_never_do(ray_runtime: None, tmp_path: Path) -> None:
    document = study_document("split", 8)
    document["scheduler"] = "none"
    document["budget"] = {"num_samples": 6, "max_concurrent": 6}
    document["searcher"] = {"name": "grid", "seed": 0}
    document["search_space"] = {"learning_rate": {"type": "choice", "values": [0.03, 0.1, 0.3]},
                                "width": {"type": "choice", "values": [16, 32]}}
    del document["model"]["width"]
    spec, paths = run(document, tmp_path)
    trials = read_trials(paths)
    assert (trials["fusion"] == "fused").all() and len(trials) == 6
    # One cohort per width, whatever the learning rate.
    by_width = trials.groupby("param_width")["cohort"].unique()
    assert all(len(labels) == 1 for labels in by_width)
    assert by_width[16][0] == "mlp width=16, batch 64" and by_width[32][0] == "mlp width=32, batch 64"
    epochs = read_epochs(paths)
    for trial in trials.to_dict("records"):
        expected = alone(spec, {name: trial[f"param_{name}"] for name in ("learning_rate", "width")})
        rows = epochs[epochs["trial_id"] == trial["trial_id"]].sort_values("epoch")
        assert rows["val_loss"].to_numpy() == pytest.approx([e["val_loss"] for e in expected], rel=2e-4, abs=2e-5)


@pytest.mark.parametrize("fuse", ["auto", 4])
def test_auto_trains_an_lstm_of_64_units_alone_where_it_is_faster_and_a_member_count_fuses_it(
        ray_runtime: None, tmp_path: Path, fuse: Any) -> None:
    """`fuse: auto` leaves a trial alone where a fused cohort measured slower (an LSTM of 64 or
    more units on torch's own kernel); `fuse: N` asks for fusion wherever it can be done."""
    document = study_document(f"lstm64-{fuse}", fuse)
    document["scheduler"] = "none"
    document["train"]["max_epochs"] = 2
    document["dataset"] = {"name": "adding", "n_samples": 200, "sequence_length": 6, "validation_fraction": 0.2,
                           "test_fraction": 0.2, "seed": 0}
    document["model"] = {"name": "rnn", "cell": "lstm", "hidden_size": 64, "num_layers": 1}
    _, paths = run(document, tmp_path)
    trials = read_trials(paths)
    assert read_study(paths)["status"] == "completed" and (trials["status"] == "completed").all()
    if fuse == "auto":
        assert trials["fusion"].str.startswith("an LSTM of 64 or more units trains faster alone").all()
    else:
        assert (trials["fusion"] == "fused").all() and trials["cohort"].nunique() == 1


def test_a_recurrent_study_fuses_its_trials_each_as_it_trains_alone(ray_runtime: None, tmp_path: Path) -> None:
    """An LSTM (two layers, both directions) on the adding problem: one cohort of four members,
    every epoch's losses as each configuration's trial alone (torch's own LSTM kernels)."""
    document = study_document("lstm", "auto")
    document["scheduler"] = "none"
    document["dataset"] = {"name": "adding", "n_samples": 300, "sequence_length": 10, "validation_fraction": 0.2,
                           "test_fraction": 0.2, "seed": 0}
    document["model"] = {"name": "rnn", "cell": "lstm", "hidden_size": 8, "num_layers": 2, "bidirectional": True}
    spec, paths = run(document, tmp_path)
    trials = read_trials(paths)
    assert read_study(paths)["status"] == "completed" and len(trials) == 4
    assert (trials["fusion"] == "fused").all()
    (cohort,) = set(trials["cohort"])
    assert cohort.startswith("rnn bidirectional cell=lstm hidden_size=8") and "num_layers=2" in cohort
    epochs = read_epochs(paths)
    for trial in trials.to_dict("records"):
        expected = alone(spec, {name: trial[f"param_{name}"] for name in CONTINUOUS_SPACE})
        rows = epochs[epochs["trial_id"] == trial["trial_id"]].sort_values("epoch")
        for metric in ("train_loss", "val_loss"):
            assert rows[metric].to_numpy() == pytest.approx([e[metric] for e in expected], rel=2e-4, abs=2e-5), metric
