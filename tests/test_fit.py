"""Which trials a fit diagnosis judges, on a real study (Ray Tune + ASHA, MNIST-1D) where the
scheduler stopped trials and one model is too small: the analysis, `tunelab results` and the
sentence `tunelab run` ends with all say the same."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import tunelab.analysis as analysis
from conftest import run_cli
from tunelab.store import StudyTables

STOPPED = "stopped before converging"


@pytest.fixture(scope="module")
def tables(fit_study: Path) -> StudyTables:
    return analysis.load_study(fit_study, "fit")


@pytest.fixture(scope="module")
def diagnosis(tables: StudyTables) -> pd.DataFrame:
    return analysis.fit_diagnosis(tables).set_index("trial_id")


def test_no_trial_the_scheduler_stopped_is_labelled_high_bias(tables: StudyTables, diagnosis: pd.DataFrame) -> None:
    stopped = diagnosis[diagnosis["status"] == "stopped_early"]
    assert len(stopped) >= 1, "ASHA stops the learning rate that barely moves"
    judged = diagnosis[diagnosis["judged"]]
    # Judged like the others, they would be high bias: their training error, where they were cut,
    # is above every threshold the study's finished trials set.
    assert (stopped["train_error"] > judged["val_error"].min()).all()

    assert not stopped["judged"].any()
    assert set(stopped["region"]) == {STOPPED}
    assert not stopped["region"].isin(list(analysis.REMEDIES)).any(), "never in a bias/variance region"
    assert set(stopped["stop_epoch"]) <= set(analysis.rung_epochs(tables)), "each shown with the rung that stopped it"
    assert set(judged["status"]) <= {"completed", "early_stopped_patience", "reached_goal"}


def test_a_model_too_small_for_the_data_is_still_high_bias(tables: StudyTables, diagnosis: pd.DataFrame) -> None:
    params = tables.trials.set_index("trial_id")
    logistic = diagnosis[(params["param_depth"] == 0) & (params["param_learning_rate"] == 0.01)].iloc[0]
    assert logistic["status"] in ("completed", "early_stopped_patience"), "it ran to its own end"
    assert logistic["judged"] and logistic["region"] == "high bias"
    assert "capacity" in logistic["remedy"]
    deeper = diagnosis[(params["param_depth"] == 2) & (params["param_learning_rate"] == 0.01)].iloc[0]
    assert deeper["judged"] and "bias" not in deeper["region"]


def test_the_groups_and_the_sentence_count_each_trial_once(tables: StudyTables, diagnosis: pd.DataFrame) -> None:
    stopped = diagnosis[diagnosis["status"] == "stopped_early"]
    groups = analysis.fit_groups(diagnosis.reset_index()).set_index("group")
    assert list(groups.index) == [STOPPED]
    assert groups.loc[STOPPED, "trials"] == len(stopped)
    rungs = stopped["stop_epoch"].astype(int).value_counts()
    assert groups.loc[STOPPED, "stopped at"] == ", ".join(f"epoch {epoch} × {n}" for epoch, n in sorted(rungs.items()))

    judged = diagnosis[diagnosis["judged"]]
    sentence = analysis.fit_summary(diagnosis.reset_index())
    assert sentence.startswith(f"{len(judged)} of {len(diagnosis)} trials ran to their own end and are judged: ")
    assert "1 high bias" in sentence
    assert sentence.endswith(f"Not judged: {len(stopped)} {STOPPED} ({groups.loc[STOPPED, 'stopped at']}).")


def test_the_validation_curve_averages_only_judged_trials(tables: StudyTables, diagnosis: pd.DataFrame) -> None:
    curve = analysis.validation_curve(tables, "learning_rate")
    # Only 0.01 ran to the end: 1e-5 was cut at the first rung, which says nothing about 1e-5.
    assert list(curve["value"]) == [0.01]
    assert curve["n_trials"].sum() == diagnosis["judged"].sum()


def test_results_shows_each_trials_fit_and_its_table_the_sentence(
    fit_study: Path, diagnosis: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["results", "fit", "--storage", str(fit_study), "--format", "json"], capsys)
    assert code == 0, err
    shown = {row["trial"]: row["fit"] for row in json.loads(out)}
    assert shown == dict(zip(diagnosis["trial_number"], diagnosis["region"]))
    assert "high bias" in shown.values() and STOPPED in shown.values()

    code, out, err = run_cli(["results", "fit", "--storage", str(fit_study)], capsys)
    assert code == 0, err
    assert f"fit: {analysis.fit_summary(diagnosis.reset_index())}\n" in out
