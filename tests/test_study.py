"""Real studies: Ray Tune + Optuna + PyTorch, results in Parquet, driven through the CLI."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import small_study
from tunelab.spec import parse_spec
from tunelab.store import StudyPaths, read_epochs, read_study, read_trials
from tunelab.study import run_study

pytestmark = pytest.mark.ray


@dataclass(frozen=True)
class FinishedStudy:
    paths: StudyPaths
    output: str
    returncode: int


def tunelab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tunelab.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


@pytest.fixture(scope="module")
def cli_study(tmp_path_factory: pytest.TempPathFactory) -> FinishedStudy:
    """The small study (8 trials, TPE + ASHA) run once through `tunelab run`."""
    folder = tmp_path_factory.mktemp("cli-study")
    (folder / "small.yaml").write_text(yaml.safe_dump(small_study()))
    done = tunelab("run", "small.yaml", "--storage", "store", cwd=folder)
    return FinishedStudy(StudyPaths.of(folder / "store", "small"), done.stdout + done.stderr, done.returncode)


def test_cli_run_exits_0_and_prints_best_trial_and_results_path(cli_study: FinishedStudy) -> None:
    assert cli_study.returncode == 0, cli_study.output
    assert "best trial: " in cli_study.output
    assert f"results: {cli_study.paths.root}" in cli_study.output
    assert "8/8 done" in cli_study.output
    assert "Traceback" not in cli_study.output


def test_all_three_tables_are_written_with_consistent_row_counts(cli_study: FinishedStudy) -> None:
    study = read_study(cli_study.paths)
    trials = read_trials(cli_study.paths)
    epochs = read_epochs(cli_study.paths)

    assert study["status"] == "completed" and study["num_samples"] == 8
    assert len(trials) == 8 and trials["trial_id"].is_unique
    assert sorted(trials["trial_number"]) == list(range(1, 9))
    assert set(epochs["trial_id"]) == set(trials["trial_id"])
    per_trial = epochs.groupby("trial_id")["epoch"].agg(["count", "max"])
    for trial in trials.itertuples():
        assert per_trial.loc[trial.trial_id, "count"] == trial.epochs == trial.stop_epoch
        assert per_trial.loc[trial.trial_id, "max"] == trial.epochs
    assert epochs[["train_loss", "val_loss", "train_acc", "val_acc", "lr", "epoch_seconds"]].notna().all().all()


def test_epochs_sent_together_are_each_stored_once_in_order_with_their_time(cli_study: FinishedStudy) -> None:
    # The small study's epochs last milliseconds: the trials send them to the driver in batches.
    trials = read_trials(cli_study.paths)
    assert "rerun_epochs" not in trials or (trials["rerun_epochs"].fillna(0) == 0).all(), "an epoch counted twice"
    epochs = read_epochs(cli_study.paths)
    for _, rows in epochs.sort_values("epoch").groupby("trial_id"):
        assert list(rows["epoch"]) == list(range(1, len(rows) + 1))
        assert rows["time_total_s"].is_monotonic_increasing and rows["time_total_s"].iloc[0] > 0


def test_asha_stops_some_trials_at_its_rungs(cli_study: FinishedStudy) -> None:
    study = read_study(cli_study.paths)
    trials = read_trials(cli_study.paths)
    stopped = trials[trials["status"] == "stopped_early"]
    assert len(stopped) >= 1
    assert set(stopped["stop_epoch"]) <= set(study["rung_epochs"])
    assert all("asha" in reason for reason in stopped["stop_reason"])
    assert set(trials["status"]) <= {"completed", "stopped_early", "early_stopped_patience", "diverged"}
    finished = trials[trials["status"].isin(["completed", "early_stopped_patience"])]
    assert len(finished) >= 1 and finished["final_test_acc"].between(0, 1).all()


def test_momentum_is_only_sampled_for_sgd(cli_study: FinishedStudy) -> None:
    trials = read_trials(cli_study.paths)
    sgd = trials["param_optimizer"] == "sgd"
    assert sgd.any() and (~sgd).any(), "the 8 trials should try both optimizers"
    assert trials.loc[sgd, "param_momentum"].notna().all()
    assert trials.loc[~sgd, "param_momentum"].isna().all()


def test_best_trial_is_the_best_objective(cli_study: FinishedStudy) -> None:
    trials = read_trials(cli_study.paths)
    epochs = read_epochs(cli_study.paths)
    best_per_trial = epochs.groupby("trial_id")["val_loss"].min()
    assert trials.set_index("trial_id")["objective"].to_dict() == pytest.approx(best_per_trial.to_dict())
    best = trials.loc[trials["objective"].idxmin()]
    assert f"best trial: {best['trial_number']} with val_loss {best['objective']:.4g}" in cli_study.output


def test_results_command_lists_trials_best_first(cli_study: FinishedStudy) -> None:
    storage = str(cli_study.paths.root.parent)
    as_json = tunelab("results", "small", "--storage", storage, "--format", "json", "--top", "3", cwd=cli_study.paths.root)
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert len(rows) == 3
    assert [r["objective"] for r in rows] == sorted(r["objective"] for r in rows)
    assert {"trial", "status", "learning_rate", "optimizer"} <= set(rows[0])

    as_csv = tunelab("results", "small", "--storage", storage, "--format", "csv", cwd=cli_study.paths.root)
    assert as_csv.returncode == 0
    assert len(as_csv.stdout.strip().splitlines()) == 1 + 8


def test_exploding_learning_rate_is_diverged_and_the_study_completes(ray_runtime: None, tmp_path: Path) -> None:
    document = small_study(
        name="explode",
        searcher={"name": "grid"},
        scheduler={"name": "none"},
        train={"max_epochs": 4, "optimizer": "sgd", "momentum": 0.9},
        budget={"num_samples": 2},
    )
    document["search_space"] = {"learning_rate": {"type": "choice", "values": [0.05, 900.0]}}
    del document["searcher"]["n_startup_trials"], document["scheduler"]["grace_period"], document["scheduler"]["reduction_factor"]
    spec = parse_spec(yaml.safe_dump(document), "explode.yaml")
    lines: list[str] = []
    outcome = run_study(spec, tmp_path, echo=lines.append)

    trials = read_trials(outcome.paths).set_index("param_learning_rate")
    assert trials.loc[900.0, "status"] == "diverged"
    assert trials.loc[900.0, "stop_reason"] == "loss became NaN or infinite"
    assert trials.loc[0.05, "status"] in ("completed", "early_stopped_patience")
    assert math.isfinite(trials.loc[0.05, "objective"])
    assert read_study(outcome.paths)["status"] == "completed"
    assert any("1 diverged" in line for line in lines)
    epochs = read_epochs(outcome.paths)
    classification_columns = ["epoch", "train_loss", "val_loss", "train_acc", "val_acc", "lr", "epoch_seconds"]
    assert not epochs[classification_columns].isna().any().any(), "no NaN reaches the store"


def test_a_grid_study_runs_each_configuration_once_with_conditional_parameters(ray_runtime: None, tmp_path: Path) -> None:
    document = small_study(
        name="conditional-grid",
        searcher={"name": "grid", "resolution": 3},
        scheduler={"name": "none"},
        train={"max_epochs": 1},
        budget={"max_concurrent": 2},
    )
    document["search_space"] = {
        "optimizer": {"type": "choice", "values": ["sgd", "adam"]},
        "momentum": {"type": "uniform", "low": 0.0, "high": 0.9, "when": {"optimizer": "sgd"}},
    }
    del document["budget"]["num_samples"], document["searcher"]["n_startup_trials"]
    del document["scheduler"]["grace_period"], document["scheduler"]["reduction_factor"]
    spec = parse_spec(yaml.safe_dump(document), "conditional-grid.yaml")
    assert spec.budget.num_samples == 3 + 1
    outcome = run_study(spec, tmp_path, echo=lambda line: None)

    trials = read_trials(outcome.paths)
    configurations = sorted(
        (row.param_optimizer, None if pd.isna(row.param_momentum) else round(row.param_momentum, 6))
        for row in trials.itertuples()
    )
    assert configurations == [("adam", None), ("sgd", 0.0), ("sgd", 0.45), ("sgd", 0.9)]
    assert set(trials["status"]) == {"completed"}


def test_bohb_study_models_rung_results_and_optuna_knows_where_each_trial_stopped(
    ray_runtime: None, tmp_path: Path
) -> None:
    """A real TPE-at-the-rungs + ASHA study; Ray's saved searcher state shows what Optuna saw."""
    import pickle

    import optuna

    from tunelab.tune.optuna_search import DefineByRun
    from tunelab.search.rung_tpe import RungTPESampler

    document = small_study(name="bohb", searcher={"name": "bohb", "n_startup_trials": 3},
                           budget={"num_samples": 10})
    spec = parse_spec(yaml.safe_dump(document), "bohb.yaml")
    outcome = run_study(spec, tmp_path, echo=lambda line: None)

    trials = read_trials(outcome.paths).set_index("trial_id")
    assert len(trials) == 10 and read_study(outcome.paths)["status"] == "completed"
    (state_file,) = outcome.paths.root.glob("searcher-state-*.pkl")  # our own test's output
    state = pickle.loads(state_file.read_bytes())
    sampler, ot_study = state["_sampler"], state["_ot_study"]
    assert isinstance(sampler, RungTPESampler) and sampler.budgets == [1, 2, 4, 6]
    for trial_id, ot_trial in state["_ot_trials"].items():
        seen = ot_study.trials[ot_trial.number]
        row = trials.loc[trial_id]
        assert max(seen.intermediate_values) == row["epochs"], f"Optuna saw {trial_id} to its last epoch"
        stopped = row["status"] == "stopped_early"
        assert (seen.state == optuna.trial.TrialState.PRUNED) == stopped
    ended_on_their_own = trials["status"] != "stopped_early"
    deepest = [b for b in (1, 2, 4, 6) if (ended_on_their_own | (trials["epochs"] >= b)).sum() >= 3]
    assert sampler.model_budget(ot_study) == deepest[-1], "the deepest budget three trials reached"

    # The first configurations are random search's draws with the same seed; later ones
    # come from the model.
    random_study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    random_study.optimize(lambda t: DefineByRun(spec.search_space)(t) or 0.0, n_trials=10)
    drawn = [t.params for t in random_study.trials]
    proposed = [t.params for t in ot_study.trials]
    assert proposed[:2] == drawn[:2]
    assert proposed != drawn


def test_trials_table_is_readable_while_the_study_runs(ray_runtime: None, tmp_path: Path) -> None:
    """The store callback flushes during the run: a reader sees trials before the end."""
    spec = parse_spec(yaml.safe_dump(small_study(name="live", budget={"num_samples": 4})), "live.yaml")
    paths = StudyPaths.of(tmp_path, "live")
    seen_while_running: list[int] = []

    def watch(line: str) -> None:
        if "done" in line and paths.trials.exists():
            status = read_study(paths)["status"]
            if status == "running":
                seen_while_running.append(len(read_trials(paths)))

    run_study(spec, tmp_path, echo=watch)
    assert seen_while_running and max(seen_while_running) >= 1
    assert isinstance(read_trials(paths), pd.DataFrame)


def test_command_line_overrides_name_budget_concurrency_and_seed(
    ray_runtime: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tunelab.cli import main

    spec_file = tmp_path / "small.yaml"
    spec_file.write_text(yaml.safe_dump(small_study()))
    storage = tmp_path / "store"
    main(["run", str(spec_file), "--storage", str(storage), "--name", "renamed",
          "--num-samples", "3", "--max-concurrent", "1", "--seed", "7"])
    out = capsys.readouterr().out

    paths = StudyPaths.of(storage, "renamed")
    study = read_study(paths)
    assert (study["name"], study["num_samples"], study["max_concurrent"]) == ("renamed", 3, 1)
    spec = yaml.safe_load(study["spec_yaml"])
    assert spec["searcher"]["seed"] == 7 and spec["budget"]["num_samples"] == 3
    assert len(read_trials(paths)) == 3
    assert "3/3 done" in out
    assert not (storage / "small").exists()


def test_time_budget_ends_the_study_and_marks_unfinished_trials(ray_runtime: None, tmp_path: Path) -> None:
    document = small_study(
        name="budget",
        train={"max_epochs": 5000, "early_stopping": {"patience": None}},
        scheduler={"name": "none"},
        budget={"num_samples": 50, "max_concurrent": 2, "time_budget_s": 20},
    )
    del document["scheduler"]["grace_period"], document["scheduler"]["reduction_factor"]
    outcome = run_study(parse_spec(yaml.safe_dump(document), "budget.yaml"), tmp_path, echo=lambda line: None)

    trials = read_trials(outcome.paths)
    assert 1 <= len(trials) < 50
    assert set(trials["status"]) == {"interrupted"}, "5000 epochs cannot finish in 20 s"
    assert (trials["stop_epoch"] == trials["epochs"]).all() and trials["epochs"].max() >= 1
    epochs = read_epochs(outcome.paths)
    assert epochs.groupby("trial_id")["epoch"].max().to_dict() == trials.set_index("trial_id")["epochs"].to_dict()
    assert read_study(outcome.paths)["status"] == "completed"
    assert outcome.seconds < 90


def test_a_goal_ends_the_study_at_the_first_trial_that_reaches_it(ray_runtime: None, tmp_path: Path) -> None:
    # One learning rate of eight learns; at the others SGD barely moves in 40 epochs.
    rates = [1e-7, 2e-7, 3e-7, 4e-7, 5e-7, 6e-7, 7e-7, 0.1]
    document = small_study(
        name="goal",
        objective={"metric": "val_acc", "goal": 0.8},
        train={"max_epochs": 40, "batch_size": 64, "optimizer": "sgd", "momentum": 0.9, "early_stopping": {"patience": None}},
        scheduler="none",
        budget={"num_samples": 8, "max_concurrent": 2},
    )
    document["searcher"] = {"name": "grid", "seed": 0}
    document["search_space"] = {"learning_rate": {"type": "choice", "values": rates}}
    lines: list[str] = []
    outcome = run_study(parse_spec(yaml.safe_dump(document), "goal.yaml"), tmp_path, echo=lines.append)

    trials = read_trials(outcome.paths).set_index("trial_id")
    epochs = read_epochs(outcome.paths)
    winner = trials[trials["status"] == "reached_goal"]
    assert len(winner) == 1 and winner["param_learning_rate"].iloc[0] == 0.1, trials[["param_learning_rate", "status"]]
    winner_id = winner.index[0]
    curve = epochs[epochs["trial_id"] == winner_id].sort_values("epoch")
    first = int(curve.loc[curve["val_acc"] >= 0.8, "epoch"].min())
    assert winner.loc[winner_id, "stop_epoch"] == winner.loc[winner_id, "epochs"] == first < 40
    assert winner.loc[winner_id, "objective"] >= 0.8 and 0.7 < winner.loc[winner_id, "final_test_acc"] <= 1
    # Nothing started after the goal was reached; what was running then is interrupted.
    others = trials.drop(index=winner_id)
    assert (others["started_at"] <= winner.loc[winner_id, "finished_at"]).all()
    assert len(trials) < 8, "grid seed 0 puts the learning rate that learns before the last trial"
    assert set(others["status"]) <= {"completed", "interrupted"}
    cut = others[others["status"] == "interrupted"]
    assert cut["final_test_acc"].isna().all() and (cut["stop_reason"] == f"stopped when trial {winner.loc[winner_id, 'trial_number']} reached the study's goal").all()
    assert len(cut) <= 1, "two slots: the winner's and at most one other"
    assert read_study(outcome.paths)["status"] == "completed"
    assert any("reached the goal" in line for line in lines), lines


def test_a_trial_that_raises_is_errored_with_its_message_and_the_study_goes_on(ray_runtime: None, tmp_path: Path) -> None:
    document = small_study(name="errors")
    document["model"] = {"name": "study_models:FragileMLP"}
    document["search_space"] = {"width": {"type": "choice", "values": [8, 13, 21]}}
    document["searcher"] = {"name": "grid"}
    document["scheduler"] = "none"
    document["budget"] = {"num_samples": 3, "max_concurrent": 2}
    outcome = run_study(parse_spec(yaml.safe_dump(document), "errors.yaml"), tmp_path, echo=lambda line: None)

    trials = read_trials(outcome.paths).set_index("param_width")
    assert trials.loc[13, "status"] == "errored"
    assert "RuntimeError: width 13 is unlucky" in trials.loc[13, "error"]
    assert {trials.loc[8, "status"], trials.loc[21, "status"]} <= {"completed", "early_stopped_patience"}
    assert read_study(outcome.paths)["status"] == "completed"


def test_a_trial_that_fails_once_is_retried_from_its_checkpoint_and_completes(ray_runtime: None, tmp_path: Path) -> None:
    marker = tmp_path / "failed-once"
    document = small_study(name="retry", budget={"num_samples": 1, "max_concurrent": 1, "max_failures": 1})
    document["model"] = {"name": "study_models:FailOnceMLP", "marker": str(marker)}
    document["search_space"] = {"width": {"type": "choice", "values": [16]}}
    document["scheduler"] = "none"
    document["train"] = {"max_epochs": 5, "early_stopping": {"patience": None}, "batch_size": 64,
                         "checkpoint_interval_s": 0}
    outcome = run_study(parse_spec(yaml.safe_dump(document), "retry.yaml"), tmp_path, echo=lambda line: None)

    assert marker.exists(), "the trial did fail once"
    trial = read_trials(outcome.paths).iloc[0]
    assert trial["status"] == "completed" and trial["retries"] == 1
    assert "simulated crash in the middle of training" in trial["error"]
    epochs = read_epochs(outcome.paths)
    assert list(epochs["epoch"]) == [1, 2, 3, 4, 5], "no epoch lost or stored twice"
    # It crashed in epoch 3 and resumed from the epoch-2 checkpoint: no epoch ran twice.
    assert pd.isna(trial.get("rerun_epochs")) or trial["rerun_epochs"] == 0


def test_a_trial_that_keeps_failing_is_errored_after_its_retries(ray_runtime: None, tmp_path: Path) -> None:
    document = small_study(name="noretry", budget={"num_samples": 1, "max_concurrent": 1, "max_failures": 2})
    document["model"] = {"name": "study_models:FragileMLP", "width": 13}
    document["search_space"] = {"learning_rate": {"type": "choice", "values": [0.01]}}
    document["scheduler"] = "none"
    outcome = run_study(parse_spec(yaml.safe_dump(document), "noretry.yaml"), tmp_path, echo=lambda line: None)
    trial = read_trials(outcome.paths).iloc[0]
    assert trial["status"] == "errored" and trial["retries"] == 2
    assert "RuntimeError: width 13 is unlucky" in trial["error"]


def test_studies_lists_every_study_and_reports_a_damaged_one(cli_study: FinishedStudy, tmp_path: Path) -> None:
    import shutil

    storage = tmp_path / "store"
    shutil.copytree(cli_study.paths.root, storage / "good", ignore=shutil.ignore_patterns("trial_*"))
    shutil.copytree(cli_study.paths.root, storage / "damaged", ignore=shutil.ignore_patterns("trial_*"))
    trials = storage / "damaged" / "trials.parquet"
    trials.write_bytes(trials.read_bytes()[: len(trials.read_bytes()) // 2])

    listed = tunelab("studies", "--storage", str(storage), cwd=tmp_path)
    assert listed.returncode == 0
    assert listed.stdout.startswith("good  completed  8/8 trials  best val_loss ")
    assert listed.stderr.strip().startswith("damaged: cannot be read: ") and str(trials) in listed.stderr
    assert "Traceback" not in listed.stderr
    results = tunelab("results", "damaged", "--storage", str(storage), cwd=tmp_path)
    assert results.returncode == 1 and len(results.stderr.strip().splitlines()) == 1 and str(trials) in results.stderr


def test_storage_that_a_worker_node_cannot_see_is_refused_before_anything_is_written(
    ray_runtime: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Mocked: a node without the results folder cannot exist on one machine, where every
    # Ray node shares the file system. The real multi-node check runs in test_multinode.py.
    from tunelab.cluster import storage_check
    from tunelab.errors import BadInputError

    monkeypatch.setattr(storage_check, "nodes_missing_storage", lambda folder: ["10.0.0.7 (node 3f2a91c0)"])
    spec = parse_spec(yaml.safe_dump(small_study(name="unshared")), "unshared.yaml")
    with pytest.raises(BadInputError, match=r"is not visible from 10\.0\.0\.7 \(node 3f2a91c0\): use a folder every node mounts"):
        run_study(spec, tmp_path, echo=lambda line: None)
    assert not (tmp_path / "unshared").exists()


def test_every_node_of_the_local_ray_sees_the_storage(ray_runtime: None, tmp_path: Path) -> None:
    from tunelab.cluster.storage_check import nodes_missing_storage

    assert nodes_missing_storage(tmp_path) == []
    assert list(tmp_path.iterdir()) == [], "the probe file is removed"
