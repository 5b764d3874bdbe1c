"""The dashboard's Pareto page, rendered by Streamlit's AppTest over a real two-objective study
and a real single-objective one."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from conftest import small_study
from test_dashboard_apptest import figures, open_app, texts, values
from test_dashboard_browser import BROWSER_ARGS, CHROMIUM, require_chromium, screenshot, served_dashboard, settle
from test_multi_objective_study import STUDY, stored  # noqa: F401 (a fixture: the real two-objective study)
from tunelab.store import StudyPaths, read_epochs, read_trials

PARETO_PAGE = "app_pages/pareto.py"
SINGLE = "single"


@pytest.fixture(scope="module")
def storage(stored: StudyPaths) -> StudyPaths:  # noqa: F811
    """The two-objective study's storage, with a small single-objective study beside it."""
    from tunelab.spec import parse_spec
    from tunelab.study import run_study

    document = small_study(name=SINGLE, train={"max_epochs": 2}, budget={"num_samples": 2})
    run_study(parse_spec(yaml.safe_dump(document), "single.yaml"), stored.root.parent, echo=lambda line: None)
    return stored


def pareto_page(paths: StudyPaths, monkeypatch: pytest.MonkeyPatch, study: str = STUDY) -> AppTest:
    app = open_app(paths.root.parent, monkeypatch, study_in_url=study)
    app.switch_page(PARETO_PAGE).run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_the_front_is_highlighted_among_the_finished_trials(storage: StudyPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    app = pareto_page(storage, monkeypatch)
    assert app.title[0].value == f"Pareto — {STUDY}"
    scatter, curves, history = figures(app)
    trials = read_trials(storage)
    finished = trials[trials["status"].isin(["completed", "early_stopped_patience"])]
    others, front = scatter.data
    assert front.name == "Pareto front" and set(values(front.customdata)) == set(trials.loc[trials["pareto"].astype(bool), "trial_id"])
    assert set(values(others.customdata)) == set(finished["trial_id"]) - set(values(front.customdata))
    by_id = finished.set_index("trial_id")
    assert values(front.x) == pytest.approx([by_id.at[t, "objective_val_acc"] for t in values(front.customdata)])
    assert values(front.y) == pytest.approx([by_id.at[t, "objective_num_parameters"] for t in values(front.customdata)])
    assert scatter.layout.xaxis.title.text == "val_acc" and scatter.layout.yaxis.title.text == "num_parameters"
    stored_history = trials.dropna(subset=["hypervolume"]).sort_values("finished_at")["hypervolume"].tolist()
    assert values(history.data[0].y) == pytest.approx(stored_history)
    assert "never falls" in texts(app.caption)


def test_the_chosen_axes_and_trial_change_the_charts(storage: StudyPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    app = pareto_page(storage, monkeypatch)
    app.selectbox(key="pareto_x").set_value("num_parameters").run()
    assert not app.exception
    scatter = figures(app)[0]
    assert (scatter.layout.xaxis.title.text, scatter.layout.yaxis.title.text) == ("num_parameters", "val_acc")

    trials = read_trials(storage).sort_values("trial_number")
    off_front = trials[~trials["pareto"].astype(bool) & (trials["status"] == "completed")]
    chosen = str((off_front if not off_front.empty else trials[trials["status"] == "completed"]).iloc[0]["trial_id"])
    app.selectbox(key="pareto_trial").set_value(chosen).run()
    assert not app.exception
    curves = figures(app)[1]
    validation = next(trace for trace in curves.data if trace.name == "validation loss")
    epochs = read_epochs(storage)
    expected = epochs[epochs["trial_id"] == chosen].sort_values("epoch")["val_loss"]
    assert values(validation.y) == pytest.approx(expected.tolist())


def test_a_single_objective_study_is_said_plainly_to_have_no_front(storage: StudyPaths, monkeypatch: pytest.MonkeyPatch) -> None:
    app = pareto_page(storage, monkeypatch, study=SINGLE)
    assert app.title[0].value == f"Pareto — {SINGLE}"
    assert "This study has one objective (val_loss, minimised): it has a best trial, not a Pareto front" in texts(app.info)
    assert not app.get("plotly_chart") and not app.error


# --- the page in a real browser, served by `tunelab dashboard` ------------------------------


@pytest.fixture(scope="module")
def pareto_server(storage: StudyPaths, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_chromium()
    with served_dashboard(storage.root.parent, tmp_path_factory.mktemp("pareto-server") / "dashboard.log") as url:
        yield url


# Whether a select box shows this choice (Streamlit renders the chosen value in a combobox input).
SELECTBOX_SHOWS = """(wanted) => [...document.querySelectorAll('[data-testid="stSelectbox"] input')]
    .some((input) => input.value === wanted || input.getAttribute('aria-label')?.includes(wanted))
    || [...document.querySelectorAll('[data-testid="stSelectbox"]')].some((box) => box.innerText.includes(wanted))"""


def test_clicking_a_point_of_the_front_in_a_browser_opens_that_trials_curves(
    pareto_server: str, storage: StudyPaths
) -> None:
    from playwright.sync_api import sync_playwright

    trials = read_trials(storage)
    front = trials[trials["pareto"].astype(bool)].sort_values("objective_val_acc")
    with tempfile.TemporaryDirectory(prefix="tunelab-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), args=BROWSER_ARGS, headless=True, viewport={"width": 1400, "height": 1000})
        try:
            page = context.new_page()
            page.goto(f"{pareto_server}/pareto?study={STUDY}")
            settle(page, f"Pareto — {STUDY}", 3)
            assert page.locator('[data-testid="stException"]').count() == 0
            # The front's trace is the second; its points are in order of val_acc (the x axis): the
            # last is the most accurate, not the trial shown before any click. Plotly finds the
            # point under the mouse from its hover layer: hover there, then click.
            wanted = f"trial {int(front.iloc[-1]['trial_number'])} — completed — on the front"
            assert not page.evaluate(SELECTBOX_SHOWS, wanted)
            point = page.locator(".js-plotly-plot").first.locator(".scatterlayer .trace").nth(1).locator(".point").last
            point.scroll_into_view_if_needed()
            box = point.bounding_box()
            assert box is not None
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.wait_for_timeout(300)
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.wait_for_function(SELECTBOX_SHOWS, arg=wanted, timeout=30_000)
            settle(page, f"Pareto — {STUDY}", 3)
            shot = screenshot(page, "pareto-front")
            assert shot.stat().st_size > 20_000
        finally:
            context.close()
