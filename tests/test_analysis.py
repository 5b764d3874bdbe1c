"""tunelab.analysis on the stores of real studies, checked against the raw tables."""

from __future__ import annotations

import dataclasses
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import tunelab.analysis as analysis
from conftest import small_study
from tunelab.errors import StoreError
from tunelab.spec import Spec, parse_spec
from tunelab.store import StudyPaths, StudyTables, StudyWriter
from tunelab.from_spec import load_study_data
from tunelab.summary import summary_table

CLASSIFIER = "analysed"
REGRESSOR = "regressed"
ENDED = {"completed", "stopped_early", "early_stopped_patience", "diverged", "errored", "interrupted"}


def regression_study() -> dict[str, Any]:
    """A tiny regression study maximising R², with a choice of mixed types (stored as text)."""
    study = small_study(
        name=REGRESSOR,
        dataset={"name": "regression"},
        objective={"metric": "val_r2"},
        search_space={
            "learning_rate": {"type": "loguniform", "low": 1e-3, "high": 0.1},
            "batch_size": {"type": "choice", "values": [32, "full"]},
            "depth": {"type": "int", "low": 1, "high": 2},
        },
        scheduler="none",
        budget={"num_samples": 4, "max_concurrent": 2},
    )
    del study["train"]["batch_size"]  # searched now; a param is fixed or searched, never both
    study["train"]["max_epochs"] = 4
    return study


def specification(document: dict[str, Any]) -> Spec:
    return parse_spec(yaml.safe_dump(document), f"{document['name']}.yaml")


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One storage root with a real 8-trial TPE + ASHA classifier study and a regression one, as
    recorded (recorded_stores.py)."""
    from recorded_stores import copy_recorded

    return copy_recorded("analysis", tmp_path_factory.mktemp("analysis") / "store")


@pytest.fixture(scope="module")
def classifier(storage: Path) -> StudyTables:
    return analysis.load_study(storage, CLASSIFIER)


@pytest.fixture(scope="module")
def regressor(storage: Path) -> StudyTables:
    return analysis.load_study(storage, REGRESSOR)


@pytest.fixture(scope="module")
def empty(storage: Path, tmp_path_factory: pytest.TempPathFactory) -> StudyTables:
    """A study that has just started: its study row, no trials or epochs yet."""
    root = tmp_path_factory.mktemp("empty-store")
    row = {**analysis.load_study(storage, CLASSIFIER).study, "name": "fresh", "status": "running", "finished_at": None}
    StudyWriter(StudyPaths.of(root, "fresh")).update_study(**row)
    return analysis.load_study(root, "fresh")


def finite(values: pd.Series) -> pd.Series:
    return values[np.isfinite(values.astype(float))]


def epoch_value(tables: StudyTables, trial_id: str, epoch: int, metric: str) -> float:
    rows = tables.epochs[(tables.epochs["trial_id"] == trial_id) & (tables.epochs["epoch"] == epoch)]
    assert len(rows) == 1
    return float(rows[metric].iloc[0])


# --- import boundary ------------------------------------------------------------------


def test_importing_analysis_loads_neither_ray_nor_streamlit() -> None:
    code = "import sys, tunelab.analysis; print(sorted(m for m in ('ray', 'streamlit') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- studies --------------------------------------------------------------------------


def test_study_summaries_count_each_status_and_find_the_best(storage: Path) -> None:
    summaries = analysis.study_summaries(storage).set_index("name")
    assert sorted(summaries.index) == [CLASSIFIER, REGRESSOR]
    for name in summaries.index:
        tables = analysis.load_study(storage, name)
        row, trials = summaries.loc[name], tables.trials
        assert row["error"] is None
        assert row["trials_planned"] == tables.study["num_samples"] and row["trials_seen"] == len(trials)
        assert row["trials_completed"] == (trials["status"] == "completed").sum()
        assert row["trials_stopped_early"] == (trials["status"] == "stopped_early").sum()
        assert row["trials_patience"] == (trials["status"] == "early_stopped_patience").sum()
        assert row["trials_running"] == 0 and row["status"] == "completed"
        objectives = finite(trials["objective"])
        expected_best = objectives.min() if tables.study["objective_mode"] == "min" else objectives.max()
        assert row["best_objective"] == pytest.approx(expected_best)
        expected_duration = (tables.study["finished_at"] - tables.study["started_at"]).total_seconds()
        assert row["duration_s"] == pytest.approx(expected_duration)


def test_study_summaries_list_a_corrupt_study_with_its_error_and_still_the_good_one(
    storage: Path, tmp_path: Path
) -> None:
    source = StudyPaths.of(storage, CLASSIFIER)
    for name in ("good", "broken"):
        target = tmp_path / name
        target.mkdir()
        shutil.copy(source.study, target)
        shutil.copy(source.trials, target)
        shutil.copytree(source.epochs, target / "epochs")
    broken_trials = tmp_path / "broken" / "trials.parquet"
    broken_trials.write_bytes(broken_trials.read_bytes()[: broken_trials.stat().st_size // 2])

    summaries = analysis.study_summaries(tmp_path).set_index("name")

    assert sorted(summaries.index) == ["broken", "good"]
    assert str(broken_trials) in summaries.loc["broken", "error"]
    assert summaries.loc["good", "error"] is None
    assert summaries.loc["good", "trials_seen"] == len(analysis.load_study(storage, CLASSIFIER).trials)
    with pytest.raises(StoreError, match="trials.parquet"):
        analysis.load_study(tmp_path, "broken")


def test_load_study_of_a_missing_study_raises_store_error(storage: Path) -> None:
    with pytest.raises(StoreError, match="no-such-study"):
        analysis.load_study(storage, "no-such-study")


# --- overview -------------------------------------------------------------------------


def test_best_trial_holds_the_best_epoch_value_of_the_whole_study(
    classifier: StudyTables, regressor: StudyTables
) -> None:
    for tables, best_of in ((classifier, min), (regressor, max)):
        metric = tables.study["objective_metric"]
        best = analysis.best_trial(tables)
        assert best is not None
        own_epochs = tables.epochs.loc[tables.epochs["trial_id"] == best["trial_id"], metric]
        assert best["objective"] == pytest.approx(best_of(own_epochs))
        assert best["objective"] == pytest.approx(best_of(finite(tables.epochs[metric])))


def test_optimisation_history_running_best_is_the_cumulative_best(
    classifier: StudyTables, regressor: StudyTables
) -> None:
    for tables, ascending in ((classifier, True), (regressor, False)):
        history = analysis.optimisation_history(tables)
        assert list(history["trial_number"]) == sorted(tables.trials["trial_number"])
        by_number = tables.trials.set_index("trial_number")["objective"]
        expected: list[float] = []
        for number in history["trial_number"]:
            value, previous = by_number[number], expected[-1] if expected else math.nan
            better = value < previous if ascending else value > previous
            improves = math.isfinite(value) and (math.isnan(previous) or better)
            expected.append(value if improves else previous)
        assert list(history["running_best"]) == pytest.approx(expected)
        steps = history["running_best"].diff().dropna()
        assert (steps <= 0).all() if ascending else (steps >= 0).all()


def test_trial_table_is_the_summary_table_with_trial_ids(classifier: StudyTables) -> None:
    table = analysis.trial_table(classifier)
    expected = summary_table(classifier.trials, classifier.study["objective_mode"])
    pd.testing.assert_frame_equal(table.drop(columns="trial_id"), expected)
    by_id = classifier.trials.set_index("trial_id")["trial_number"]
    assert list(table["trial_id"].map(by_id)) == list(table["trial"])


def test_filter_trials_keeps_only_chosen_statuses_and_params_in_range(classifier: StudyTables) -> None:
    table = analysis.trial_table(classifier)
    low, high = table["dropout"].quantile(0.25), table["dropout"].quantile(0.75)
    statuses = ["completed", "early_stopped_patience"]

    chosen = analysis.filter_trials(table, statuses=statuses, param_ranges={"dropout": (low, high)})

    expected = table[table["status"].isin(statuses) & (table["dropout"] >= low) & (table["dropout"] <= high)]
    assert list(chosen["trial"]) == list(expected["trial"])
    assert len(analysis.filter_trials(table)) == len(table)
    with_momentum = analysis.filter_trials(table, param_ranges={"momentum": (0.0, 1.0)})
    assert list(with_momentum["trial"]) == list(table.loc[table["momentum"].notna(), "trial"])
    with pytest.raises(KeyError, match="width"):
        analysis.filter_trials(table, param_ranges={"width": (1, 2)})


# --- curves ---------------------------------------------------------------------------


def test_epoch_curves_hold_every_finite_epoch_value(classifier: StudyTables) -> None:
    curves = analysis.epoch_curves(classifier, "val_acc")
    assert len(curves) == len(finite(classifier.epochs["val_acc"]))
    for row in curves.sample(5, random_state=0).itertuples():
        assert row.value == epoch_value(classifier, row.trial_id, row.epoch, "val_acc")
    numbers = classifier.trials.set_index("trial_id")["trial_number"]
    assert (curves["trial_id"].map(numbers) == curves["trial_number"]).all()


def test_stop_points_are_where_each_trial_stopped(classifier: StudyTables) -> None:
    points = analysis.stop_points(classifier, "val_loss").set_index("trial_id")
    trials = classifier.trials.set_index("trial_id")
    assert set(points.index) == set(trials.index[trials["status"].isin(ENDED)])
    assert (points["stop_epoch"] == trials.loc[points.index, "stop_epoch"]).all()
    for trial_id, point in points.iterrows():
        assert point["value"] == epoch_value(classifier, trial_id, point["stop_epoch"], "val_loss")


def test_rung_epochs_are_where_the_scheduler_stopped_trials(classifier: StudyTables, regressor: StudyTables) -> None:
    rungs = analysis.rung_epochs(classifier)
    assert rungs == sorted(rungs) and all(isinstance(epoch, int) for epoch in rungs)
    stopped = classifier.trials.loc[classifier.trials["status"] == "stopped_early", "stop_epoch"]
    assert set(stopped) <= set(rungs)
    assert analysis.rung_epochs(regressor) == []


def test_train_val_curves_give_both_splits_and_the_best_epoch(classifier: StudyTables, regressor: StudyTables) -> None:
    for tables, kind in ((classifier, "loss"), (classifier, "acc"), (regressor, "r2")):
        trial = tables.trials.sort_values("epochs").iloc[-1]
        curves, best_epoch = analysis.train_val_curves(tables, trial["trial_id"], kind)
        assert best_epoch == trial["best_epoch"]
        for split in ("train", "val"):
            series = curves[curves["split"] == split].set_index("epoch")["value"]
            assert list(series.index) == list(range(1, trial["epochs"] + 1))
            assert series[best_epoch] == epoch_value(tables, trial["trial_id"], best_epoch, f"{split}_{kind}")
    with pytest.raises(ValueError, match="kind"):
        analysis.train_val_curves(classifier, classifier.trials["trial_id"].iloc[0], "auc")
    with pytest.raises(KeyError):
        analysis.train_val_curves(classifier, "no-such-trial", "loss")


def test_available_kinds_follow_the_task(classifier: StudyTables, regressor: StudyTables) -> None:
    assert analysis.available_kinds(classifier) == ["loss", "acc"]
    assert analysis.available_kinds(regressor) == ["loss", "r2"]


# --- bias and variance ----------------------------------------------------------------


def expected_errors(tables: StudyTables, train: str, val: str, as_error: Any) -> pd.DataFrame:
    rows = []
    for trial in tables.trials.itertuples():
        rows.append(
            {
                "trial_id": trial.trial_id,
                "status": trial.status,
                "train_error": as_error(epoch_value(tables, trial.trial_id, trial.best_epoch, train)),
                "val_error": as_error(epoch_value(tables, trial.trial_id, trial.best_epoch, val)),
            }
        )
    return pd.DataFrame(rows).set_index("trial_id")


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_fit_diagnosis_takes_errors_at_the_best_epoch_and_regions_follow_the_thresholds(
    task: str, classifier: StudyTables, regressor: StudyTables
) -> None:
    if task == "classification":
        tables, expected = classifier, expected_errors(classifier, "train_acc", "val_acc", lambda acc: 1 - acc)
    else:
        tables, expected = regressor, expected_errors(regressor, "train_loss", "val_loss", lambda loss: loss)

    diagnosis = analysis.fit_diagnosis(tables).set_index("trial_id")

    assert set(diagnosis.index) == set(expected.index)
    assert np.allclose(diagnosis.loc[expected.index, ["train_error", "val_error"]], expected[["train_error", "val_error"]])
    assert np.allclose(diagnosis["gap"], diagnosis["val_error"] - diagnosis["train_error"])
    # Only trials that ran to their own end are judged (the rule is tested on its own in test_fit.py).
    ended = expected["status"].isin(["completed", "early_stopped_patience"])
    assert (diagnosis.loc[expected.index, "judged"] == ended).all() and ended.any()
    judged = diagnosis[diagnosis["judged"]]
    default = max(expected.loc[ended, "val_error"].min(), 0.01 if task == "classification" else 0.0)
    assert list(judged["region"]) == [regions(row, default, default) for row in judged.itertuples()]
    # The judged trial with the lowest validation error is a good fit by the default rule.
    assert diagnosis.loc[expected.loc[ended, "val_error"].idxmin(), "region"] == "good fit"
    assert (judged["remedy"] == judged["region"].map(analysis.REMEDIES)).all()

    bias, variance = judged["train_error"].median(), judged["gap"].median()
    explicit = analysis.fit_diagnosis(tables, bias_threshold=bias, variance_threshold=variance)
    explicit = explicit[explicit["judged"]]
    assert list(explicit["region"]) == [regions(row, bias, variance) for row in explicit.itertuples()]
    everything_fits = analysis.fit_diagnosis(tables, math.inf, math.inf)
    assert set(everything_fits.loc[everything_fits["judged"], "region"]) == {"good fit"}


def regions(row: Any, bias_threshold: float, variance_threshold: float) -> str:
    high = {"bias": row.train_error > bias_threshold, "variance": row.gap > variance_threshold}
    labels = [name for name, is_high in high.items() if is_high]
    return f"high {' and '.join(labels)}" if labels else "good fit"


def test_remedies_cover_every_region() -> None:
    assert set(analysis.REMEDIES) == {"high bias", "high variance", "high bias and variance", "good fit"}
    assert "regularis" in analysis.REMEDIES["high variance"] and "capacity" in analysis.REMEDIES["high bias"]


def test_validation_curve_averages_trials_per_value_or_bin(classifier: StudyTables) -> None:
    diagnosis = analysis.fit_diagnosis(classifier).set_index("trial_id")
    diagnosis = diagnosis[diagnosis["judged"]]  # the curve, like every fit view, judges only these
    params = classifier.trials.set_index("trial_id").loc[diagnosis.index]
    for param in ("depth", "optimizer", "momentum", "dropout", "learning_rate"):
        curve = analysis.validation_curve(classifier, param, bins=3)
        with_param = params[f"param_{param}"].dropna()
        assert curve["n_trials"].sum() == len(with_param), param
        distinct = with_param.nunique()
        assert len(curve) == (distinct if distinct <= 6 else 3), param
    depth_curve = analysis.validation_curve(classifier, "depth").set_index("value")
    expected = diagnosis.join(params["param_depth"]).groupby("param_depth")[["train_error", "val_error"]].mean()
    assert np.allclose(depth_curve.loc[expected.index, ["train_error", "val_error"]], expected)
    dropout = analysis.validation_curve(classifier, "dropout", bins=3)
    assert dropout["value"].is_monotonic_increasing
    assert dropout["value"].between(params["param_dropout"].min(), params["param_dropout"].max()).all()


def test_decomposition_is_none_until_a_biasvar_table_exists(storage: Path, tmp_path: Path) -> None:
    assert analysis.decomposition(StudyPaths.of(storage, CLASSIFIER).root) is None
    table = pd.DataFrame({"config_id": ["a", "b"], "bias2": [0.1, 0.2], "variance": [0.3, 0.05]})
    table.to_parquet(tmp_path / "biasvar.parquet")
    pd.testing.assert_frame_equal(analysis.decomposition(tmp_path), table)


# --- importance -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["fanova", "ped_anova"])
def test_param_importance_sums_to_one_over_the_params_every_trial_has(
    method: str, classifier: StudyTables, regressor: StudyTables
) -> None:
    for tables in (classifier, regressor):
        importance = analysis.param_importance(tables, method)
        scored = tables.trials[np.isfinite(tables.trials["objective"])]
        params = [c.removeprefix("param_") for c in scored if c.startswith("param_") and scored[c].notna().all()]
        assert sorted(importance["param"]) == sorted(params)
        assert importance["importance"].sum() == pytest.approx(1.0)
        assert importance["importance"].is_monotonic_decreasing and (importance["importance"] >= 0).all()
    assert "momentum" not in set(analysis.param_importance(classifier, method)["param"])


def test_param_importance_needs_three_scored_trials(classifier: StudyTables) -> None:
    two = dataclasses.replace(classifier, trials=classifier.trials.head(2))
    importance = analysis.param_importance(two)
    assert importance.empty and list(importance.columns) == ["param", "importance"]
    with pytest.raises(ValueError, match="fanova"):
        analysis.param_importance(classifier, "random-guess")


def test_parallel_coordinates_one_row_per_scored_trial(classifier: StudyTables) -> None:
    frame = analysis.parallel_coordinates(classifier)
    scored = classifier.trials[np.isfinite(classifier.trials["objective"])].sort_values("trial_number")
    assert list(frame["trial_number"]) == list(scored["trial_number"])
    assert list(frame["objective"]) == list(scored["objective"])
    params = {c.removeprefix("param_") for c in classifier.trials if c.startswith("param_")}
    assert set(frame.columns) == {"trial_number", "objective"} | params
    assert all(isinstance(value, str) for value in frame["optimizer"])
    assert pd.api.types.is_numeric_dtype(frame["learning_rate"])


def test_slice_points_pair_each_value_with_its_objective(classifier: StudyTables) -> None:
    points = analysis.slice_points(classifier, "momentum")
    with_momentum = classifier.trials[classifier.trials["param_momentum"].notna()].sort_values("trial_number")
    assert list(points["trial_number"]) == list(with_momentum["trial_number"])
    assert list(points["value"]) == list(with_momentum["param_momentum"])
    assert list(points["objective"]) == list(with_momentum["objective"])
    assert list(points.columns) == ["trial_number", "value", "objective", "status"]


# --- compare --------------------------------------------------------------------------


def test_compare_params_and_metrics_have_one_column_per_chosen_trial(classifier: StudyTables) -> None:
    chosen = classifier.trials.sort_values("trial_number", ascending=False).head(3)
    ids = list(chosen["trial_id"])
    labels = [f"trial {number}" for number in chosen["trial_number"]]

    params = analysis.compare_params(classifier, ids)
    metrics = analysis.compare_metrics(classifier, ids)

    assert list(params.columns) == labels and list(metrics.columns) == labels
    assert list(params.index) == [c.removeprefix("param_") for c in classifier.trials if c.startswith("param_")]
    for label, trial in zip(labels, chosen.itertuples()):
        assert params.loc["learning_rate", label] == trial.param_learning_rate
        assert metrics.loc["status", label] == trial.status
        assert metrics.loc["stop_epoch", label] == trial.stop_epoch
        assert metrics.loc["final_val_loss", label] == trial.final_val_loss
    assert "final_test_r2" not in metrics.index  # a classifier has no R²
    with pytest.raises(KeyError, match="nope"):
        analysis.compare_params(classifier, ["nope"])


def test_confusion_matrix_rows_sum_to_the_test_class_counts(classifier: StudyTables) -> None:
    splits = load_study_data(specification(small_study(name=CLASSIFIER)))
    class_counts = np.bincount(splits.test_y, minlength=splits.num_outputs)
    evaluated = classifier.trials[classifier.trials["final_test_acc"].notna()]
    assert not evaluated.empty
    for trial in evaluated.itertuples():
        matrix = analysis.confusion_matrix(classifier, trial.trial_id)
        assert matrix is not None and matrix.shape == (splits.num_outputs, splits.num_outputs)
        assert list(matrix.sum(axis=1)) == list(class_counts)
        assert np.trace(matrix) / matrix.sum() == pytest.approx(trial.final_test_acc)
    stopped = classifier.trials[classifier.trials["final_test_acc"].isna()]
    assert all(analysis.confusion_matrix(classifier, trial_id) is None for trial_id in stopped["trial_id"])


def test_confusion_matrix_is_none_for_a_regression(regressor: StudyTables) -> None:
    assert analysis.confusion_matrix(regressor, regressor.trials["trial_id"].iloc[0]) is None


# --- a study without trials yet -------------------------------------------------------


def test_a_study_without_trials_gives_empty_results_everywhere(empty: StudyTables) -> None:
    assert analysis.best_trial(empty) is None
    frames = {
        "history": analysis.optimisation_history(empty),
        "table": analysis.trial_table(empty),
        "filtered": analysis.filter_trials(analysis.trial_table(empty), statuses=["completed"]),
        "curves": analysis.epoch_curves(empty, "val_loss"),
        "stops": analysis.stop_points(empty, "val_loss"),
        "diagnosis": analysis.fit_diagnosis(empty),
        "validation": analysis.validation_curve(empty, "dropout"),
        "importance": analysis.param_importance(empty),
        "parallel": analysis.parallel_coordinates(empty),
        "slice": analysis.slice_points(empty, "dropout"),
        "params": analysis.compare_params(empty, []),
        "metrics": analysis.compare_metrics(empty, []),
    }
    assert {name: len(frame) for name, frame in frames.items() if not frame.empty} == {}
    assert list(frames["history"].columns) == ["trial_number", "status", "objective", "running_best"]
    assert list(frames["curves"].columns) == ["trial_id", "trial_number", "status", "epoch", "value"]
    assert "region" in frames["diagnosis"] and "importance" in frames["importance"]
    assert analysis.available_kinds(empty) == []
    assert analysis.confusion_matrix(empty, "x") is None


def test_study_summaries_show_a_running_study_without_trials(empty: StudyTables, tmp_path: Path) -> None:
    StudyWriter(StudyPaths.of(tmp_path, "fresh")).update_study(**empty.study)
    row = analysis.study_summaries(tmp_path).iloc[0]
    assert row["error"] is None and row["status"] == "running"
    assert row["trials_seen"] == 0 and math.isnan(row["best_objective"])
    assert row["duration_s"] >= 0  # measured up to now while the study runs


def test_a_running_and_a_diverged_trial_are_shown_without_a_best_value(classifier: StudyTables) -> None:
    """Mid-study, a running trial has no objective or stop epoch yet, and a diverged one +inf."""
    order = classifier.trials.sort_values("objective")
    best_id, runner_up_id = order["trial_id"].iloc[0], order["trial_id"].iloc[1]
    trials = classifier.trials.copy()
    trials["best_epoch"] = trials["best_epoch"].astype(float)
    trials["stop_epoch"] = trials["stop_epoch"].astype(float)
    running = trials["trial_id"] == best_id
    trials.loc[running, ["status", "objective", "stop_epoch", "best_epoch"]] = ["running", math.nan, math.nan, math.nan]
    trials.loc[trials["trial_id"] == runner_up_id, ["status", "objective"]] = ["diverged", math.inf]
    live = dataclasses.replace(classifier, trials=trials)

    best = analysis.best_trial(live)
    assert best is not None and best["trial_id"] == order["trial_id"].iloc[2]
    history = analysis.optimisation_history(live).set_index("trial_number")
    numbers = trials.set_index("trial_id")["trial_number"]
    for trial_id in (best_id, runner_up_id):
        number = numbers[trial_id]
        assert math.isnan(history.loc[number, "objective"])
        previous = history["running_best"].get(number - 1, math.nan)
        assert history.loc[number, "running_best"] == pytest.approx(previous, nan_ok=True)
    assert best_id not in set(analysis.stop_points(live, "val_loss")["trial_id"])
    diagnosis = analysis.fit_diagnosis(live).set_index("trial_id")
    last_epoch = int(classifier.epochs.loc[classifier.epochs["trial_id"] == best_id, "epoch"].max())
    assert diagnosis.loc[best_id, "val_error"] == pytest.approx(1 - epoch_value(live, best_id, last_epoch, "val_acc"))
    # Not judged until it ends on its own (and a diverged trial never is).
    assert diagnosis.loc[[best_id, runner_up_id], "region"].tolist() == ["still running", "diverged"]
    assert not diagnosis.loc[[best_id, runner_up_id], "judged"].any()
    plotted = set(analysis.parallel_coordinates(live)["trial_number"])
    assert plotted == set(numbers.drop([best_id, runner_up_id]))


def test_fusion_summary_says_how_a_fused_studys_trials_trained() -> None:
    from tunelab.summary import fusion_summary

    mlp, deeper = "mlp depth=2 width=128, batch 32", "mlp depth=3 width=128, batch 32"
    alone = "model 'user_models:TinyNet' is not fused (only mlp, cnn, resnet, autoencoder, rnn)"
    trials = pd.DataFrame({"fusion": ["fused", "fused", "fused", alone],
                           "cohort": [mlp, deeper, mlp, None]})
    assert fusion_summary(trials) == (f"fused: 3 of 4 trials, 2 cohort shapes (most trials: {mlp}: 2); "
                                      f"alone: {alone} (1)")
    each_its_own = pd.DataFrame({"fusion": ["fused", "fused"], "cohort": [mlp, deeper]})
    assert fusion_summary(each_its_own) == ("fused: 2 of 2 trials, each of a shape of its own "
                                            "(cohorts of one: its search space changes shapes)")
    assert fusion_summary(pd.DataFrame({"status": ["completed"]})) is None, "a study that did not fuse"
