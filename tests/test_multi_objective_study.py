"""A real two-objective study (Ray Tune + Optuna's multi-objective TPE + ASHA + PyTorch): the
stored Pareto front, the hypervolume history, ASHA judging the primary objective alone, the
results command, the Python API and the Optuna export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from optuna.trial import TrialState

from conftest import run_cli, small_study
from test_api import interrupt
from test_pareto import brute_force_front
from tunelab.analysis.pareto import hypervolume, reference_point
from tunelab.store import StudyPaths, read_epochs, read_study, read_trials

pytestmark = pytest.mark.ray

STUDY = "pareto"
ENDED_ON_THEIR_OWN = ("completed", "early_stopped_patience")
OBJECTIVES = [("val_acc", "max"), ("num_parameters", "min")]
VALUES = ["objective_val_acc", "objective_num_parameters"]


@pytest.fixture(scope="module")
def stored(ray_runtime: None, tmp_path_factory: pytest.TempPathFactory) -> StudyPaths:
    """Accuracy against size: a one-layer MLP 2 to 64 units wide (narrow ones learn less). One
    trial at a time, so that the order in which trials reach each ASHA rung is their trial
    order (see the replay)."""
    from tunelab.spec import parse_spec
    from tunelab.study import run_study

    storage = tmp_path_factory.mktemp("multi-objective")
    document = small_study(
        name=STUDY,
        dataset={"max_train_samples": 500},
        objective=[{"metric": "val_acc"}, {"metric": "num_parameters"}],
        train={"max_epochs": 4, "early_stopping": {"patience": None}},
        budget={"num_samples": 10, "max_concurrent": 1},
    )
    document["model"] = {"name": "mlp", "depth": 1}
    document["train"]["optimizer"] = "adam"
    document["search_space"] = {"width": {"type": "choice", "values": [2, 4, 8, 16, 64]},
                                "learning_rate": {"type": "loguniform", "low": 0.003, "high": 0.05}}
    run_study(parse_spec(yaml.safe_dump(document), "pareto.yaml"), storage, echo=lambda line: None)
    return StudyPaths.of(storage, STUDY)


def trials_of(paths: StudyPaths) -> pd.DataFrame:
    return read_trials(paths).sort_values("trial_number").reset_index(drop=True)


def test_the_stored_front_is_the_brute_force_non_dominated_filter_of_the_stored_values(stored: StudyPaths) -> None:
    trials = trials_of(stored)
    assert {"completed", "stopped_early"} <= set(trials["status"]), "trials ended both ways"
    counted = trials[trials["status"].isin(ENDED_ON_THEIR_OWN)
                     & np.isfinite(trials[VALUES].to_numpy(dtype=float)).all(axis=1)]
    expected = dict(zip(counted["trial_id"], brute_force_front(counted[VALUES].to_numpy(dtype=float).tolist(),
                                                              [mode for _, mode in OBJECTIVES])))
    stored_flags = dict(zip(trials["trial_id"], trials["pareto"].astype(bool)))
    assert {trial_id: stored_flags[trial_id] for trial_id in expected} == expected
    assert not any(stored_flags[t] for t in set(stored_flags) - set(expected)), "stopped trials are never on it"
    assert sum(expected.values()) >= 2, "a front of trade-offs, not one trial better in both"


def test_each_objective_is_stored_at_every_epoch_and_the_trial_keeps_its_best_epochs(stored: StudyPaths) -> None:
    trials, epochs = trials_of(stored), read_epochs(stored)
    for trial in trials.to_dict("records"):
        rows = epochs[epochs["trial_id"] == trial["trial_id"]].set_index("epoch")
        assert len(rows) == trial["epochs"] and rows["val_acc"].notna().all()
        assert (rows["num_parameters"] == trial["objective_num_parameters"]).all()
        assert rows["train_seconds"].is_monotonic_increasing
        assert trial["objective_val_acc"] == pytest.approx(rows.at[trial["best_epoch"], "val_acc"])
        assert trial["objective_val_acc"] == pytest.approx(trial["objective"]), "the primary is the objective column"
    assert trials["objective_num_parameters"].nunique() > 1, "width changes the size: a real trade-off"


def test_the_hypervolume_never_falls_as_trials_finish_and_ends_at_the_fronts(stored: StudyPaths) -> None:
    trials = trials_of(stored)
    history = trials.dropna(subset=["hypervolume"]).sort_values("finished_at")["hypervolume"].tolist()
    assert len(history) >= 3 and history[-1] > 0
    assert all(later >= earlier for earlier, later in zip(history, history[1:]))
    assert len(set(history)) > 2, "each new member of the front adds volume"
    reference = json.loads(read_study(stored)["hypervolume_reference"])
    front = trials[trials["pareto"].astype(bool)]
    assert history[-1] == pytest.approx(hypervolume(front[VALUES].to_numpy(dtype=float), ["max", "min"], reference))
    finished = trials[trials["status"].isin(ENDED_ON_THEIR_OWN)][VALUES].to_numpy(dtype=float)
    assert reference == pytest.approx(reference_point(finished, ["max", "min"]).tolist()), "from every finished trial"


def replay_asha(trials: pd.DataFrame, epochs: pd.DataFrame, metric: str, mode: str, rungs: list[int]) -> dict[str, int]:
    """Ray's ASHA (one bracket, reduction factor 2) on one metric, trial by trial in the order
    they ran: at each rung a trial stops when it is below the median of those recorded there
    before it. Returns trial id → the epoch it would be stopped at."""
    recorded: dict[int, list[float]] = {rung: [] for rung in rungs}
    stopped: dict[str, int] = {}
    for trial in trials.to_dict("records"):
        curve = epochs[epochs["trial_id"] == trial["trial_id"]].set_index("epoch")[metric]
        for rung in rungs:
            if rung not in curve.index:
                break
            reward = float(curve[rung]) * (1 if mode == "max" else -1)
            cutoff = np.nanpercentile(recorded[rung], 50) if recorded[rung] else None
            recorded[rung].append(reward)
            if cutoff is not None and reward < cutoff:
                stopped[trial["trial_id"]] = rung
                break
    return stopped


def test_asha_stops_trials_on_the_primary_objective_only(stored: StudyPaths) -> None:
    trials, epochs = trials_of(stored), read_epochs(stored)
    rungs = [int(r) for r in read_study(stored)["rung_epochs"]]
    actual = dict(zip(*[trials.loc[trials["status"] == "stopped_early", c] for c in ("trial_id", "stop_epoch")]))
    assert actual, "ASHA stopped some trials"
    assert replay_asha(trials, epochs, "val_acc", "max", rungs) == actual
    assert replay_asha(trials, epochs, "num_parameters", "min", rungs) != actual, \
        "judged on the other objective, ASHA would have stopped other trials: the replay tells them apart"


def test_results_shows_the_pareto_front_first_with_a_column_per_objective(
    stored: StudyPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["results", STUDY, "--storage", str(stored.root.parent), "--format", "json"], capsys)
    assert code == 0, err
    shown = pd.DataFrame(json.loads(out))
    trials = trials_of(stored)
    front = trials[trials["pareto"].astype(bool)]
    assert list(shown.columns[:6]) == ["trial", "pareto", "status", "val_acc", "num_parameters", "best_epoch"]
    assert shown["pareto"].tolist() == [True] * len(front) + [False] * (len(trials) - len(front))
    assert set(shown["trial"][: len(front)]) == set(front["trial_number"])
    assert shown["val_acc"][: len(front)].is_monotonic_decreasing, "the front by the primary, best first"

    code, out, _ = run_cli(["results", STUDY, "--storage", str(stored.root.parent), "--top", "1"], capsys)
    assert code == 0 and "Pareto front first over val_acc (max), num_parameters (min)" in out
    members = ", ".join(str(n) for n in shown["trial"][: len(front)])
    assert f"Pareto front: trials {members} (hypervolume " in out, "the whole front, whatever --top shows"


def test_the_python_api_gives_the_front_and_the_primarys_best(stored: StudyPaths) -> None:
    import tunelab

    study = tunelab.load_study(STUDY, stored.root.parent)
    trials = trials_of(stored)
    assert study.objectives == OBJECTIVES
    assert set(study.pareto_front["trial_id"]) == set(trials.loc[trials["pareto"].astype(bool), "trial_id"])
    finished = trials[trials["status"].isin(ENDED_ON_THEIR_OWN)]
    assert study.best_trial["objective_val_acc"] == finished["objective_val_acc"].max()
    assert bool(study.best_trial["pareto"]), "the primary's best is always on the front"


def test_the_export_loads_in_optuna_with_directions_and_value_lists(
    stored: StudyPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "pareto.journal"
    code, _, err = run_cli(["export", STUDY, "--storage", str(stored.root.parent), "--optuna", str(target)], capsys)
    assert code == 0 and err == "", err
    study = optuna.load_study(study_name=STUDY, storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(target))))
    trials = trials_of(stored)
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    assert study.metric_names == ["val_acc", "num_parameters"]
    assert len(study.trials) == len(trials)
    for ours, theirs in zip(trials.to_dict("records"), study.trials):
        assert theirs.user_attrs["trial_id"] == ours["trial_id"]
        expected_state = TrialState.COMPLETE if ours["status"] in (*ENDED_ON_THEIR_OWN, "diverged") else TrialState.PRUNED
        assert theirs.state == expected_state, ours["status"]
        if theirs.state == TrialState.COMPLETE:
            assert theirs.values == pytest.approx([ours[c] for c in VALUES])
        assert theirs.intermediate_values == {}, "multi-objective Optuna studies keep no intermediate values"
    assert {t.user_attrs["trial_id"] for t in study.best_trials} == set(trials.loc[trials["pareto"].astype(bool), "trial_id"])


@pytest.mark.parametrize("target,message", [
    ("{again}", "holds an Optuna study named 'pareto' already"),
    ("{file}/inside.journal", "cannot open it as an Optuna storage"),
    ("/proc/pareto.journal", "cannot open it as an Optuna storage"),
], ids=["existing study name", "a file as its folder", "an unwritable folder"])
def test_the_export_refuses_a_target_in_one_line_and_writes_nothing(
    stored: StudyPaths, tmp_path: Path, target: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    again, file = tmp_path / "again.journal", tmp_path / "file"
    file.write_text("not a folder")
    assert run_cli(["export", STUDY, "--storage", str(stored.root.parent), "--optuna", str(again)], capsys)[0] == 0
    before = again.read_bytes()
    code, _, err = run_cli(["export", STUDY, "--storage", str(stored.root.parent),
                            "--optuna", target.format(again=again, file=file)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert "Traceback" not in err
    assert again.read_bytes() == before and file.read_text() == "not a folder", "nothing written"


def test_a_multi_objective_nsga2_study_interrupted_by_ctrl_c_resumes_with_its_front(ray_runtime: None, tmp_path: Path) -> None:
    """A real SIGINT to a running NSGA-II study, then `resume_study`: the searcher (its sampler
    pickled by Ray) and the store's front upkeep carry on, and the front covers every trial."""
    import tunelab
    from tunelab.study import resume_study

    document = small_study(name="mo-ctrl-c", dataset={"max_train_samples": 300},
                           objective=[{"metric": "val_loss"}, {"metric": "train_seconds"}],
                           train={"max_epochs": 40, "early_stopping": {"patience": None}},
                           searcher={"name": "nsga2", "seed": 0, "population_size": 4},
                           budget={"num_samples": 6, "max_concurrent": 2}, scheduler="none")
    del document["searcher"]["n_startup_trials"]
    script = ("import sys, yaml, tunelab\n"
              "try:\n"
              "    tunelab.run(yaml.safe_load(sys.argv[1]), storage=sys.argv[2], quiet=True)\n"
              "except KeyboardInterrupt:\n"
              "    sys.exit(130)\n")
    process = subprocess.Popen([sys.executable, "-c", script, yaml.safe_dump(document), str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    paths = StudyPaths.of(tmp_path, "mo-ctrl-c")

    def a_trial_finished() -> bool:
        return paths.trials.exists() and (read_trials(paths).get("status", pd.Series(dtype=str)) == "completed").any()

    out, err = interrupt(process, when=a_trial_finished)
    assert process.returncode == 130, out + err
    assert tunelab.load_study("mo-ctrl-c", storage=tmp_path).status == "interrupted"

    resume_study(tmp_path, "mo-ctrl-c", echo=lambda line: None)
    trials = trials_of(paths)
    assert read_study(paths)["status"] == "completed" and (trials["status"] == "completed").sum() == 6
    values = ["objective_val_loss", "objective_train_seconds"]
    expected = brute_force_front(trials[values].to_numpy(dtype=float).tolist(), ["min", "min"])
    assert trials["pareto"].astype(bool).tolist() == expected
    history = trials.sort_values("finished_at")["hypervolume"].tolist()
    assert len(history) == 6 and all(later >= earlier for earlier, later in zip(history, history[1:]))
