"""The dashboard as a user gets it: the `tunelab dashboard` command, a real server, every page in
headless Chromium (with a screenshot of each), live refresh, and a non-editable install."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO
from test_dashboard_apptest import STUDY, RealStore, copy_study, dashboard_store  # noqa: F401 (a fixture)
from tunelab.store import StudyPaths, StudyWriter, read_epochs, read_study, read_trials

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("TUNELAB_TEST_ARTIFACTS") or REPO / "tests" / "artifacts")
# url path → (words in the page title, the fewest charts the page draws for the real study)
PAGES = {
    "": ("Studies", 0),
    "overview": ("Overview", 1),
    "early_stopping": ("Early stopping", 2),
    "bias_variance": ("Bias & variance", 2),
    "hyperparameters": ("Hyperparameters", 3),
    "compare": ("Compare", 2),
    "pareto": ("Pareto", 0),  # a single-objective study: the page says so (tests/test_dashboard_pareto.py: a front)
}
LIVE_STUDY = "live"


def tunelab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tunelab.cli", *args], capture_output=True, text=True, timeout=60)


def test_dashboard_refuses_a_missing_storage_folder_in_one_line(tmp_path: Path) -> None:
    done = tunelab("dashboard", "--storage", str(tmp_path / "absent"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"tunelab: error: storage {tmp_path / 'absent'}: no such folder; run a study first or pass --storage DIR"
    ]


def test_dashboard_help_names_its_options() -> None:
    done = tunelab("dashboard", "--help")
    assert done.returncode == 0
    assert all(option in done.stdout for option in ("--storage", "--port", "--host", "127.0.0.1"))


# --- a real server in a real browser --------------------------------------------------------


@dataclass(frozen=True)
class Server:
    url: str
    storage: Path
    log: Path


def running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if running_in_ci():
        pytest.fail(f"{CHROMIUM} is missing: CI must run the browser tests (.ci/run installs Chromium)")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); CI runs these tests")


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_answering(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the dashboard exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.25)
    pytest.fail(f"the dashboard did not answer within {timeout_s} s:\n{log.read_text()}")


def start_live_study(source: StudyPaths, storage: Path) -> StudyWriter:
    """A study still running: its first three trials, one epoch each."""
    writer = StudyWriter(StudyPaths.of(storage, LIVE_STUDY))
    writer.update_study(**{**read_study(source), "name": LIVE_STUDY, "status": "running", "finished_at": None})
    add_running_trials(writer, source, first=0, count=3)
    return writer


def add_running_trials(writer: StudyWriter, source: StudyPaths, first: int, count: int) -> None:
    trials = read_trials(source).iloc[first : first + count]
    for trial in trials.to_dict("records"):
        params = {key: value for key, value in trial.items() if key.startswith("param_")}
        writer.update_trial(trial["trial_id"], trial_number=trial["trial_number"], status="running", **params)
    epochs = read_epochs(source)
    for row in epochs[(epochs["epoch"] == 1) & epochs["trial_id"].isin(trials["trial_id"])].to_dict("records"):
        writer.add_epoch(row)
    writer.flush()


@pytest.fixture(scope="module")
def server(dashboard_store: RealStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`tunelab dashboard` on a free loopback port over a copy of the real study and a live one."""
    require_chromium()
    storage = tmp_path_factory.mktemp("served-store")
    copy_study(dashboard_store.paths, storage, STUDY)
    start_live_study(dashboard_store.paths, storage)
    log = storage.parent / "dashboard-server.log"
    with served_dashboard(storage, log) as url:
        yield Server(url, storage, log)


@contextmanager
def served_dashboard(storage: Path, log: Path) -> Iterator[str]:
    """`tunelab dashboard` over `storage` on a free loopback port, until the block ends; its URL."""
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as output:
        # `tunelab dashboard` replaces itself with the Streamlit server: this PID is the server.
        process = subprocess.Popen(
            [sys.executable, "-m", "tunelab.cli", "dashboard", "--storage", str(storage), "--port", str(port)],
            stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        wait_until_answering(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser_page(server: Server) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="tunelab-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), args=BROWSER_ARGS, headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


def settle(page: object, title: str, least_charts: int) -> None:
    """Wait until the page shows its title, has drawn its charts and Streamlit is idle."""
    page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
    page.wait_for_function(
        """(least) => document.querySelectorAll('.js-plotly-plot .main-svg').length >= least
            && !document.querySelector('[data-testid="stStatusWidget"]')""",
        arg=least_charts, timeout=60_000,
    )
    page.wait_for_timeout(500)  # Plotly's last relayout


def screenshot(page: object, name: str) -> Path:
    """The whole page: the viewport grows to the content's height (Streamlit scrolls inside its
    main block, so a full-page screenshot alone would stop at the first screen)."""
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(max(int(height), 1000), 6000)})
    page.wait_for_timeout(800)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})
    return path


@pytest.mark.parametrize("url_path", list(PAGES), ids=[path or "studies" for path in PAGES])
def test_every_page_opens_in_a_browser_for_the_study_in_the_url(browser_page: object, server: Server, url_path: str) -> None:
    page = browser_page
    title, least_charts = PAGES[url_path]
    page.goto(f"{server.url}/{url_path}?study={STUDY}")
    settle(page, f"{title} — {STUDY}" if url_path else title, least_charts)

    text = page.inner_text("body")
    assert STUDY in text
    assert "Traceback" not in text
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    assert page.locator(".js-plotly-plot").count() >= least_charts
    # The toolbar is a viewer's: no Streamlit developer tools such as "Deploy" to Streamlit's cloud.
    assert page.locator('[data-testid="stToolbar"]').count() == 1
    assert page.locator('[data-testid="stAppDeployButton"]').count() == 0
    assert page.get_by_role("button", name="Deploy").count() == 0
    shot = screenshot(page, (url_path or "studies").replace("_", "-"))
    assert shot.stat().st_size > 20_000, "a screenshot of a rendered page, not a blank one"


def test_a_running_study_refreshes_without_a_reload(browser_page: object, server: Server, dashboard_store: RealStore) -> None:
    page = browser_page
    page.goto(f"{server.url}/overview?study={LIVE_STUDY}")
    page.get_by_text("3 of 3 trials").wait_for(timeout=60_000)
    assert page.get_by_text("live: study running").count() == 1

    writer = StudyWriter(StudyPaths.of(server.storage, LIVE_STUDY))
    add_running_trials(writer, dashboard_store.paths, first=3, count=2)
    # No navigation and no reload: the page's own poll must pick the new trials up.
    page.get_by_text("5 of 5 trials").wait_for(timeout=30_000)

    writer.update_study(status="completed")
    page.get_by_text("live: study running").wait_for(state="detached", timeout=30_000)
    assert "Traceback" not in page.inner_text("body")


def test_dashboard_binds_only_the_loopback_interface(server: Server) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True)
    if listening.returncode != 0:
        pytest.skip("`ss` is not available to list listening sockets")
    addresses = {line.split()[3].rsplit(":", 1)[0] for line in listening.stdout.splitlines() if line.strip()}
    assert addresses == {"127.0.0.1"}, listening.stdout


# --- a non-editable install -----------------------------------------------------------------


def test_a_non_editable_install_ships_the_dashboard(tmp_path: Path) -> None:
    """Build a wheel from a clean copy of the sources, install it into a fresh venv (the test
    environment's dependencies borrowed through a .pth, so it stays offline), and run the
    installed app and command from there."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for folder in ("platform", "models", "dashboard"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp_path / "wheels"), str(source)], check=True)
    (wheel,) = (tmp_path / "wheels").glob("tunelab-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    pages = sorted(path.name for path in (REPO / "dashboard" / "app_pages").glob("*.py"))
    assert {"tunelab_dashboard/app.py", *(f"tunelab_dashboard/app_pages/{name}" for name in pages)} <= shipped
    assert "tunelab/cli.py" in shipped and "tunelab_models/__init__.py" in shipped

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], check=True)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # After the venv's own site-packages: the installed tunelab wins; the borrowed folder's
    # editable-install hook (a .pth inside it) is not run, so the checkout stays out of reach.
    (Path(site) / "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}

    where = subprocess.run(
        [str(python), "-c", "import tunelab, tunelab_dashboard; print(tunelab.__file__); print(tunelab_dashboard.APP_SCRIPT)"],
        capture_output=True, text=True, check=True, cwd=tmp_path, env=env,
    ).stdout.split()
    assert all(path.startswith(site) for path in where), where
    installed_app = Path(where[1])
    assert sorted(path.name for path in (installed_app.parent / "app_pages").glob("*.py")) == pages

    help_text = subprocess.run([str(venv / "bin" / "tunelab"), "dashboard", "--help"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert help_text.returncode == 0, help_text.stderr
    assert "--storage" in help_text.stdout and "--port" in help_text.stdout

    empty = tmp_path / "empty-store"
    empty.mkdir()
    rendered = subprocess.run(
        [str(python), "-c", (
            "import sys; from streamlit.testing.v1 import AppTest\n"
            "app = AppTest.from_file(sys.argv[1], default_timeout=60); app.run()\n"
            "assert not app.exception, [e.value for e in app.exception]\n"
            "print([info.value for info in app.info])"
        ), str(installed_app)],
        capture_output=True, text=True, cwd=tmp_path, env={**env, "TUNELAB_STORAGE": str(empty)},
    )
    assert rendered.returncode == 0, rendered.stderr
    assert "No studies in" in rendered.stdout
