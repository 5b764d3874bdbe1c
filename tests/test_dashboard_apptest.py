"""The dashboard rendered by Streamlit's AppTest over a real study (Ray Tune + Optuna + PyTorch),
plus stores that are empty, missing, corrupt, or caught mid-run."""

from __future__ import annotations

import base64
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io
import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO
from tunelab.analysis import FIT_RULE, REMEDIES
from tunelab.store import StudyPaths, StudyWriter, read_epochs, read_study, read_trials

APP = REPO / "dashboard" / "app.py"
STUDY = "dash"
PAGES = {
    "studies": "app_pages/studies.py",
    "overview": "app_pages/overview.py",
    "early_stopping": "app_pages/early_stopping.py",
    "bias_variance": "app_pages/bias_variance.py",
    "hyperparameters": "app_pages/hyperparameters.py",
    "compare": "app_pages/compare.py",
}


@dataclass(frozen=True)
class RealStore:
    storage: Path
    study: str

    @property
    def paths(self) -> StudyPaths:
        return StudyPaths.of(self.storage, self.study)


@pytest.fixture(scope="session")
def dashboard_store(tmp_path_factory: pytest.TempPathFactory) -> RealStore:
    """One real study for every dashboard test, as recorded (recorded_stores.py): 12 trials, TPE +
    ASHA (rungs 1, 2, 4, 8), so trials end every way a small study lets them (scheduler,
    patience, completed)."""
    from recorded_stores import copy_recorded

    return RealStore(copy_recorded("dashboard", tmp_path_factory.mktemp("dashboard") / "store"), STUDY)


def open_app(storage: Path, monkeypatch: pytest.MonkeyPatch, study_in_url: str | None = None) -> AppTest:
    monkeypatch.setenv("TUNELAB_STORAGE", str(storage))
    app = AppTest.from_file(str(APP), default_timeout=60)
    if study_in_url is not None:
        app.query_params["study"] = study_in_url
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def show(app: AppTest, page: str) -> AppTest:
    app.switch_page(PAGES[page]).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def copy_study(source: StudyPaths, storage: Path, name: str) -> StudyPaths:
    target = StudyPaths.of(storage, name)
    shutil.copytree(source.root, target.root, ignore=shutil.ignore_patterns("trial_*", "*.pkl", "*.json"))
    StudyWriter(target).update_study(name=name)
    return target


def figures(app: AppTest) -> list[go.Figure]:
    """The page's Plotly figures as sent to the browser (arrays decoded)."""
    return [plotly.io.from_json(chart.proto.spec) for chart in app.get("plotly_chart")]


def values(array: object) -> list:
    """A trace's values; Plotly sends numeric arrays as base64 (`bdata`) with their dtype."""
    if array is None:
        return []
    if isinstance(array, dict) and "bdata" in array:
        decoded = np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"])
        if "shape" in array:  # "rows, columns"
            decoded = decoded.reshape([int(n) for n in str(array["shape"]).split(",")])
        return decoded.tolist()
    return list(array)


def texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


def trial_table(app: AppTest) -> pd.DataFrame:
    tables = [frame.value for frame in app.dataframe if {"trial", "status", "objective"} <= set(frame.value.columns)]
    assert len(tables) == 1
    return tables[0]


# --- the real study, page by page ---------------------------------------------------------


def test_studies_page_lists_the_study_with_how_its_trials_ended(dashboard_store: RealStore, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_app(dashboard_store.storage, monkeypatch)
    trials = read_trials(dashboard_store.paths)

    listing = app.dataframe[0].value.set_index("study")
    row = listing.loc[STUDY]
    assert row["status"] == "completed"
    assert row["done"] == "12 / 12"
    assert row["stopped by scheduler"] == (trials["status"] == "stopped_early").sum()
    assert row["stopped by patience"] == (trials["status"] == "early_stopped_patience").sum()
    assert f"{trials['objective'].min():.4g}" in row["best objective"]
    assert app.session_state["study"] == STUDY
    assert app.query_params["study"] == STUDY
    assert f"Chosen: {STUDY}" in texts(app.subheader)


@pytest.mark.parametrize(
    ("page", "least_charts"),
    [("overview", 1), ("early_stopping", 2), ("bias_variance", 2), ("hyperparameters", 3), ("compare", 2)],
)
def test_every_page_renders_the_study_with_its_charts(
    dashboard_store: RealStore, monkeypatch: pytest.MonkeyPatch, page: str, least_charts: int
) -> None:
    app = show(open_app(dashboard_store.storage, monkeypatch), page)
    assert STUDY in app.title[0].value
    assert len(app.get("plotly_chart")) >= least_charts
    assert not app.error


def test_overview_shows_the_best_trial_and_every_trial(dashboard_store: RealStore, monkeypatch: pytest.MonkeyPatch) -> None:
    app = show(open_app(dashboard_store.storage, monkeypatch), "overview")
    trials = read_trials(dashboard_store.paths)
    best = trials.loc[trials["objective"].idxmin()]  # the study minimises val_loss

    assert app.metric[0].label == f"Trial {best['trial_number']} · val_loss"
    assert app.metric[0].value == f"{best['objective']:.4g}"
    table = trial_table(app)
    assert len(table) == len(trials) == 12
    assert table["trial"].iloc[0] == best["trial_number"], "best first"
    assert "12 of 12 trials" in texts(app.caption)
    assert len(app.get("download_button")) == 2
    history = figures(app)[0]
    assert sorted(x for trace in history.data[:-1] for x in values(trace.x)) == sorted(trials["trial_number"])


def test_status_filter_narrows_the_trial_table(dashboard_store: RealStore, monkeypatch: pytest.MonkeyPatch) -> None:
    app = show(open_app(dashboard_store.storage, monkeypatch), "overview")
    trials = read_trials(dashboard_store.paths)

    app.multiselect[0].set_value(["stopped_early"]).run()
    table = trial_table(app)
    assert len(table) == (trials["status"] == "stopped_early").sum() > 0
    assert set(table["status"]) == {"stopped_early"}


def test_parameter_range_filter_narrows_the_trial_table(dashboard_store: RealStore, monkeypatch: pytest.MonkeyPatch) -> None:
    app = show(open_app(dashboard_store.storage, monkeypatch), "overview")
    rates = read_trials(dashboard_store.paths)["param_learning_rate"]
    upper = float(rates.median())

    slider = next(s for s in app.slider if s.label == "learning_rate")
    slider.set_value((float(rates.min()), upper)).run()
    table = trial_table(app)
    assert len(table) == (rates <= upper).sum() < len(rates)
    assert table["learning_rate"].max() <= upper


def test_early_stopping_draws_every_curve_each_stop_and_the_rungs(dashboard_store: RealStore, monkeypatch: pytest.MonkeyPatch) -> None:
    app = show(open_app(dashboard_store.storage, monkeypatch), "early_stopping")
    study = read_study(dashboard_store.paths)
    trials = read_trials(dashboard_store.paths)
    curves = figures(app)[0]

    rung_lines = sorted(shape.x0 for shape in curves.layout.shapes)
    assert rung_lines == sorted(int(epoch) for epoch in study["rung_epochs"]) == [1, 2, 4, 8]
    lines = [trace for trace in curves.data if trace.mode == "lines"]
    drawn_trials = {number for trace in lines for number in values(trace.customdata) if number is not None}
    assert drawn_trials == set(trials["trial_number"])
    stops = [trace for trace in curves.data if trace.mode == "markers"]
    assert sorted(x for trace in stops for x in values(trace.x)) == sorted(trials["stop_epoch"])
    assert {trace.name for trace in lines} <= {"completed", "stopped by scheduler", "stopped by patience"}


def test_one_trial_shows_train_against_validation_with_its_best_epoch(dashboard_store: RealStore, monkeypatch: pytest.MonkeyPatch) -> None:
    app = show(open_app(dashboard_store.storage, monkeypatch), "early_stopping")
    trials = read_trials(dashboard_store.paths).set_index("trial_number")
    best_number = int(trials["objective"].idxmin())

    assert app.selectbox(key="curve_trial").value == trials.at[best_number, "trial_id"]
    one_trial = figures(app)[1]
    assert {trace.name for trace in one_trial.data} == {"training loss", "validation loss"}
    annotations = [a.text for a in one_trial.layout.annotations]
    assert f"best epoch {trials.at[best_number, 'best_epoch']}" in annotations

    other = int(trials.index[trials.index != best_number][0])
    app.selectbox(key="curve_trial").set_value(trials.at[other, "trial_id"]).run()
    assert not app.exception
    epochs = read_epochs(dashboard_store.paths)
    expected = (epochs["trial_id"] == trials.at[other, "trial_id"]).sum()
    assert [len(values(trace.x)) for trace in figures(app)[1].data] == [expected, expected]


def test_bias_variance_shows_each_trial_the_regions_remedies_and_a_note_for_the_decomposition(
    dashboard_store: RealStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = show(open_app(dashboard_store.storage, monkeypatch), "bias_variance")
    trials = read_trials(dashboard_store.paths)
    ran_to_the_end = trials["status"].isin(["completed", "early_stopped_patience"]).sum()
    assert 0 < ran_to_the_end < 12, "ASHA stopped some of the 12 trials"

    fit_map = figures(app)[0]
    assert sum(len(values(trace.x)) for trace in fit_map.data) == ran_to_the_end
    assert fit_map.layout.xaxis.title.text.startswith("training error")
    regions = app.dataframe[0].value
    assert list(regions["region"]) == list(REMEDIES) and list(regions["remedy"]) == list(REMEDIES.values())
    assert regions["trials"].sum() == ran_to_the_end
    assert "tunelab biasvar" in texts(app.info)

    app.toggle(key="custom_thresholds").set_value(True).run()
    assert len(figures(app)[0].layout.shapes) == 4, "explicit thresholds shade the four regions"


def test_validation_curve_follows_the_chosen_hyperparameter(dashboard_store: RealStore, monkeypatch: pytest.MonkeyPatch) -> None:
    app = show(open_app(dashboard_store.storage, monkeypatch), "bias_variance")
    app.selectbox(key="validation_curve_param").set_value("depth").run()
    trials = read_trials(dashboard_store.paths)
    judged = trials[trials["status"].isin(["completed", "early_stopped_patience"])]
    depths = sorted(judged["param_depth"].unique())

    curve = figures(app)[1]
    assert curve.layout.xaxis.title.text == "depth"
    assert sorted(values(curve.data[0].x)) == depths


def test_bias_variance_shows_trials_the_scheduler_stopped_apart_and_says_which_rule_it_uses(
    fit_study: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The MNIST-1D study of conftest.fit_study_document: ASHA stopped trials, and a depth-0
    model that ran to its end."""
    app = show(open_app(fit_study, monkeypatch), "bias_variance")
    trials = read_trials(StudyPaths.of(fit_study, "fit")).set_index("trial_number")
    stopped = trials[trials["status"] == "stopped_early"]
    assert len(stopped) >= 1

    assert FIT_RULE in texts(app.caption)
    assert "Fit is judged only for trials that ran to their own end" in FIT_RULE
    fit_map = figures(app)[0]
    plotted = {int(point[0]) for trace in fit_map.data for point in values(trace.customdata)}
    assert plotted == set(trials.index) - set(stopped.index), "the map holds only judged trials"
    assert "high bias" in {trace.name for trace in fit_map.data}, "the too-small model"
    regions = app.dataframe[0].value
    assert regions["trials"].sum() == len(trials) - len(stopped)

    groups = app.dataframe[1].value.set_index("group")
    assert list(groups.index) == ["stopped before converging"]
    assert groups.loc["stopped before converging", "trials"] == len(stopped)
    for epoch in stopped["stop_epoch"].unique():
        assert f"epoch {epoch} × " in groups.loc["stopped before converging", "stopped at"]
    listed = app.dataframe[2].value.set_index("trial")
    assert set(listed.index) == set(stopped.index)
    assert set(listed["group"]) == {"stopped before converging"}
    assert listed["stopped at epoch"].to_dict() == stopped["stop_epoch"].to_dict()
    assert f"Not judged: {len(stopped)} stopped before converging" in texts(app.markdown)


def test_decomposition_and_learning_curves_from_tunelab_biasvar_are_shown(
    dashboard_store: RealStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ray_runtime: None
) -> None:
    from tunelab.biasvar.runner import run_biasvar

    copy_study(dashboard_store.paths, tmp_path, "decomposed")
    written = run_biasvar(tmp_path, "decomposed", top=2, rounds=2, echo=lambda line: None)
    app = show(open_app(tmp_path, monkeypatch), "bias_variance")

    shown = app.dataframe[-1].value
    assert list(shown["trial"]) == sorted(written["trial_number"])
    assert shown["expected_loss"].tolist() == pytest.approx(written.sort_values("trial_number")["expected_loss"].tolist())
    bars = figures(app)[-2]
    assert {trace.name for trace in bars.data} == {"bias", "net variance", "expected loss"}
    curves = figures(app)[-1]
    assert curves.layout.xaxis.title.text == "training examples" and len(curves.data) == 4  # 2 trials × train/val
    assert "No decomposition" not in texts(app.info)


def test_hyperparameters_page_ranks_searched_parameters(dashboard_store: RealStore, monkeypatch: pytest.MonkeyPatch) -> None:
    app = show(open_app(dashboard_store.storage, monkeypatch), "hyperparameters")
    importance, parallel, *slices = figures(app)

    ranked = importance.data[0]
    assert set(values(ranked.y)) <= {"learning_rate", "optimizer", "depth", "dropout"} and len(values(ranked.y)) >= 3
    assert sum(values(ranked.x)) == pytest.approx(1.0)
    labels = [dimension.label for dimension in parallel.data[0].dimensions]
    assert labels[-1] == "val_loss" and "log10(learning_rate)" in labels
    trials = read_trials(dashboard_store.paths)
    sampled = [p for p in ("learning_rate", "optimizer", "momentum", "depth", "dropout") if trials[f"param_{p}"].notna().any()]
    assert len(slices) == len(sampled), "one slice per searched parameter that some trial has"

    app.button_group(key="importance_method").set_value("ped_anova").run()
    assert not app.exception
    assert "PED-ANOVA" in figures(app)[0].layout.xaxis.title.text


def test_compare_puts_the_chosen_trials_side_by_side(dashboard_store: RealStore, monkeypatch: pytest.MonkeyPatch) -> None:
    app = show(open_app(dashboard_store.storage, monkeypatch), "compare")
    trials = read_trials(dashboard_store.paths).sort_values("objective")
    top_three = [f"trial {n}" for n in trials["trial_number"].head(3)]

    params, metrics = app.dataframe[0].value, app.dataframe[1].value
    assert list(params.columns) == list(metrics.columns) == top_three
    assert {"learning_rate", "depth", "dropout", "optimizer"} <= set(params.index)
    assert {"status", "objective", "final_test_acc"} <= set(metrics.index)
    curves = figures(app)[0]
    assert len(curves.data) == 6, "validation and training for each of three trials"
    with_confusion = trials.head(3)["test_confusion"].notna().sum()
    assert len(figures(app)) == 1 + with_confusion

    app.multiselect(key="compared_trials").set_value(list(trials["trial_id"].head(1))).run()
    assert "Choose 2 to 5 trials." in texts(app.info)


# --- which study, and stores that are not a finished study -------------------------------


def test_study_in_the_url_opens_that_study_and_the_sidebar_choice_updates_the_url(
    dashboard_store: RealStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    copy_study(dashboard_store.paths, tmp_path, "alpha")
    copy_study(dashboard_store.paths, tmp_path, "beta")

    app = show(open_app(tmp_path, monkeypatch, study_in_url="beta"), "overview")
    assert app.title[0].value == "Overview — beta"
    assert app.session_state["study"] == "beta"

    app.sidebar.selectbox(key="study_picker").set_value("alpha").run()
    assert app.title[0].value == "Overview — alpha"
    assert app.query_params["study"] == "alpha"
    show(app, "early_stopping")
    assert app.title[0].value == "Early stopping — alpha", "the choice holds across pages"


def test_unknown_study_in_the_url_is_a_warning(dashboard_store: RealStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    copy_study(dashboard_store.paths, tmp_path, "alpha")
    app = open_app(tmp_path, monkeypatch, study_in_url="nope")
    assert "No study 'nope'" in texts(app.sidebar.warning)
    assert app.session_state["study"] == "alpha"


def test_corrupt_study_shows_its_error_and_the_others_keep_working(
    dashboard_store: RealStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    copy_study(dashboard_store.paths, tmp_path, "good")
    broken = copy_study(dashboard_store.paths, tmp_path, "broken")
    broken.trials.write_bytes(b"PAR1 this is not a parquet file")

    app = open_app(tmp_path, monkeypatch, study_in_url="good")
    listing = app.dataframe[0].value.set_index("study")
    assert listing.loc["broken", "status"] == "unreadable"
    assert listing.loc["good", "status"] == "completed"
    assert "broken" in texts(app.error) and "trials.parquet" in texts(app.error)

    app.sidebar.selectbox(key="study_picker").set_value("broken").run()
    show(app, "overview")
    assert "cannot be read" in texts(app.error)
    app.sidebar.selectbox(key="study_picker").set_value("good").run()
    assert app.title[0].value == "Overview — good" and not app.error


def test_empty_storage_shows_a_note_on_every_page(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    app = open_app(tmp_path, monkeypatch)
    assert "No studies in" in texts(app.info)
    for page in PAGES:
        show(app, page)
        assert app.info, page


def test_missing_storage_folder_is_a_warning(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    app = open_app(tmp_path / "absent", monkeypatch)
    assert "There is no folder" in texts(app.warning)


def test_storage_on_the_command_line_wins_over_the_environment(dashboard_store: RealStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.argv", ["app.py", "--storage", str(dashboard_store.storage)])
    app = open_app(tmp_path, monkeypatch)  # the environment names an empty folder
    assert STUDY in set(app.dataframe[0].value["study"])


def test_a_study_caught_mid_run_shows_notes_and_refreshes_itself(
    dashboard_store: RealStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A running study: three trials started, one epoch each, no objective or stop yet."""
    live = StudyPaths.of(tmp_path, "live")
    live.epochs.mkdir(parents=True)
    writer = StudyWriter(live)
    writer.update_study(**{**read_study(dashboard_store.paths), "name": "live", "status": "running", "finished_at": None})
    trials = read_trials(dashboard_store.paths).head(3)
    for trial in trials.to_dict("records"):
        params = {key: value for key, value in trial.items() if key.startswith("param_")}
        writer.update_trial(trial["trial_id"], trial_number=trial["trial_number"], status="running", **params)
    epochs = read_epochs(dashboard_store.paths)
    for row in epochs[(epochs["epoch"] == 1) & epochs["trial_id"].isin(trials["trial_id"])].to_dict("records"):
        writer.add_epoch(row)
    writer.flush()

    app = open_app(tmp_path, monkeypatch)
    assert "live: study running" in texts(app.sidebar.caption), "a running study checks for new results"
    for page in PAGES:
        show(app, page)
        assert not app.error, page
    show(app, "overview")
    assert "No trial has reached a finite objective yet." in texts(app.info)
    assert len(trial_table(app)) == 3
    show(app, "early_stopping")
    assert len(figures(app)) == 2


def test_a_finished_study_does_not_poll(dashboard_store: RealStore, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_app(dashboard_store.storage, monkeypatch)
    assert "live: study running" not in texts(app.sidebar.caption)


def test_values_that_are_not_finite_do_not_break_the_pages(dashboard_store: RealStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A diverged trial stores +inf as its objective: every page still renders."""
    study = copy_study(dashboard_store.paths, tmp_path, "diverging")
    trials = read_trials(study)
    trials.loc[0, ["status", "objective"]] = ["diverged", math.inf]
    trials.to_parquet(study.trials)
    app = open_app(tmp_path, monkeypatch)
    for page in PAGES:
        show(app, page)
        assert not app.error, page
