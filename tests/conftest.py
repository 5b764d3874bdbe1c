"""Shared fixtures: experiment files built from one small valid study, and a real Ray."""

from __future__ import annotations

import copy
import os
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

# A study that trains in seconds on two cores: digits, a small MLP, TPE + ASHA.
SMALL_STUDY: dict[str, Any] = {
    "name": "small",
    "description": "test study",
    "dataset": {"name": "digits", "validation_fraction": 0.2, "test_fraction": 0.2, "seed": 0},
    "model": {"name": "mlp", "width": 32},
    "search_space": {
        "learning_rate": {"type": "loguniform", "low": 1e-5, "high": 0.3},
        "optimizer": {"type": "choice", "values": ["sgd", "adam"]},
        "momentum": {"type": "uniform", "low": 0.0, "high": 0.9, "when": {"optimizer": "sgd"}},
        "depth": {"type": "int", "low": 1, "high": 3},
        "dropout": {"type": "uniform", "low": 0.0, "high": 0.5},
    },
    "objective": {"metric": "val_loss"},
    "train": {"max_epochs": 6, "batch_size": 64, "early_stopping": {"patience": 3}},
    "searcher": {"name": "tpe", "seed": 0, "n_startup_trials": 4},
    "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 2},
    "budget": {"num_samples": 8, "max_concurrent": 2},
    "resources": {"cpu": 1},
}


def small_study(**changes: Any) -> dict[str, Any]:
    """SMALL_STUDY with top-level sections replaced or (for dicts) updated."""
    study = copy.deepcopy(SMALL_STUDY)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(study.get(key), dict):
            study[key].update(value)
        else:
            study[key] = value
    return study


def fit_study_document() -> dict[str, Any]:
    """A study whose fit diagnosis must tell a cut trial from a too-small model: an MLP on
    MNIST-1D, depth 0 (logistic regression: it cannot fit MNIST-1D, published accuracy 32 %)
    or 2, each with a learning rate that learns (0.01) or barely moves (1e-5). ASHA stops the
    barely-moving trials at its first rung, where their training error is as high as it gets.

    One trial at a time and grid seed 4, whose first configuration is depth 0 at 0.01: the
    first trial to reach each rung is never stopped there (nothing to compare it with), so the
    too-small model runs to its own end and is judged.
    """
    study = small_study(
        name="fit",
        dataset={"name": "mnist1d", "num_samples": 4000},
        model={"name": "mlp", "width": 128},
        objective={"metric": "val_acc"},
        train={"max_epochs": 20, "optimizer": "adam", "early_stopping": {"patience": 4}},
        searcher={"name": "grid", "seed": 4},
        budget={"num_samples": 4, "max_concurrent": 1},
    )
    del study["searcher"]["n_startup_trials"]
    study["search_space"] = {
        "depth": {"type": "choice", "values": [0, 2]},
        "learning_rate": {"type": "choice", "values": [0.01, 1e-5]},
    }
    return study


@pytest.fixture(scope="session")
def fit_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The storage root holding the real study of `fit_study_document`, as recorded (recorded_stores.py)."""
    from recorded_stores import copy_recorded

    return copy_recorded("fit", tmp_path_factory.mktemp("fit") / "store")


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    def write(document: Any, name: str = "study.yaml") -> Path:
        path = tmp_path / name
        path.write_text(document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False))
        return path

    return write


@pytest.fixture(scope="session")
def ray_runtime() -> Iterator[None]:
    """One embedded Ray for the session's in-process studies; shut down only if we started it."""
    import ray

    from tunelab.tune.local_ray import start_ray

    # Trial processes import test models by path (`study_models:FragileMLP`).
    tests_dir = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))
    started_here = not ray.is_initialized()
    start_ray()
    yield
    if started_here:
        ray.shutdown()


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """PyTorch on one thread: small models train faster, and steadier, on a busy 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the CLI in-process, as the console script does; return (exit code, stdout, stderr)."""
    from tunelab.cli import main

    code = 0
    try:
        main(argv)
    except SystemExit as exited:
        code = int(exited.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_run_refused(path: Path, field: str, words: str, storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`tunelab run` of a bad experiment file: one line naming the file (and the field), exit
    code 2, no traceback, and not even the storage folder written."""
    code, out, err = run_cli(["run", str(path), "--storage", str(storage)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"tunelab: error: {path}: ")
    if field:
        assert f": {field}: " in lines[0]
    assert words in lines[0], lines[0]
    assert "Traceback" not in out + err
    assert not storage.exists(), "a rejected file must not create the storage folder"


# ---- the fast path: every test that starts Ray is marked `ray`, and a run without one proves it ----

# Fixtures that start Ray in this process. A test that uses one, directly or through another
# fixture (a session study, say), is marked `ray` without saying so; a test that starts Ray any
# other way (a `tunelab run` subprocess, a Ray head, `ray.cluster_utils`) says `pytest.mark.ray`.
RAY_FIXTURES = frozenset({"ray_runtime"})
# The processes every Ray start spawns once per node (`comm` names, as /proc and ps show them).
RAY_NODE_PROCESSES = frozenset({"raylet", "gcs_server"})


@pytest.hookimpl(tryfirst=True)  # before `-m` selects on the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if RAY_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.ray)


def pytest_collection_finish(session: pytest.Session) -> None:
    """A run that selected no `ray` test (`make test-fast`, `-m "not ray"`, one light file) must not
    start Ray: the guard fails, by name, every test in it that does."""
    if session.items and not session.config.option.collectonly and not any(
            item.get_closest_marker("ray") for item in session.items):
        session.config.pluginmanager.register(RayGuard(), "tunelab-ray-guard")


def ray_processes_below(root: int) -> list[tuple[int, str]]:
    """Ray's node processes (raylet, gcs_server) descended from process `root`, read from /proc
    (a `tunelab run` subprocess's Ray is a grandchild); none where there is no /proc."""
    parents: dict[int, int] = {}
    found: list[tuple[int, str]] = []
    try:
        entries = [entry.name for entry in os.scandir("/proc") if entry.name.isdigit()]
    except OSError:
        return []
    for pid_text in entries:
        try:
            with open(f"/proc/{pid_text}/stat", "rb") as stat_file:
                stat = stat_file.read()
        except OSError:
            continue  # ended meanwhile
        # "pid (comm) state ppid ...": comm may itself hold spaces and parentheses.
        name = stat[stat.index(b"(") + 1:stat.rindex(b")")].decode(errors="replace")
        parents[int(pid_text)] = int(stat[stat.rindex(b")") + 2:].split()[1])
        if name in RAY_NODE_PROCESSES:
            found.append((int(pid_text), name))

    def descends(pid: int) -> bool:
        for _ in range(64):
            pid = parents.get(pid, 0)
            if pid == root:
                return True
            if pid <= 1:
                return False
        return False

    return [(pid, name) for pid, name in found if descends(pid)]


class RayGuard:
    """Watches a run that selected no `ray` test for Ray starting: in this process (`ray.init`)
    or below it (a raylet or gcs_server among its descendants, polled while tests run and checked
    again after each test phase). The test running when it starts fails, naming what was seen."""

    POLL_SECONDS = 0.25

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.current = "between tests"
        self.ray_was_up = False
        self.seen: set[int] = set()
        self.blamed: dict[str, list[str]] = {}
        self.offenders: dict[str, list[str]] = {}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.watch, name="tunelab-ray-guard", daemon=True)
        self.thread.start()

    def look(self) -> None:
        with self.lock:
            found = []
            ray_module = sys.modules.get("ray")
            up = bool(ray_module is not None and getattr(ray_module, "is_initialized", lambda: False)())
            if up and not self.ray_was_up:
                found.append("ray initialised in the pytest process")
            self.ray_was_up = up
            for pid, name in ray_processes_below(os.getpid()):
                if pid not in self.seen:
                    self.seen.add(pid)
                    found.append(f"{name} (pid {pid})")
            if found:
                self.blamed.setdefault(self.current, []).extend(found)

    def watch(self) -> None:
        while not self.stopped.wait(self.POLL_SECONDS):
            self.look()

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Iterator[None]:
        self.look()  # whatever started before this test is not its doing
        with self.lock:
            self.current = item.nodeid
        yield
        with self.lock:
            self.current = "between tests"

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
        outcome = yield
        self.look()
        with self.lock:
            seen = self.blamed.pop(item.nodeid, None)
        if not seen:
            return
        self.offenders.setdefault(item.nodeid, []).extend(seen)
        report = outcome.get_result()
        message = (f"{item.nodeid} started Ray ({', '.join(seen)}) in a run that selected no `ray` test: "
                   "mark it `@pytest.mark.ray` (a test using the `ray_runtime` fixture is marked by itself)")
        report.longrepr = f"{report.longreprtext}\n\n{message}" if report.failed else message
        report.outcome = "failed"

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.stopped.set()
        self.thread.join()
        self.look()
        for where, seen in self.blamed.items():
            self.offenders.setdefault(where, []).extend(seen)
        if self.offenders:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.offenders:
            terminalreporter.section("Ray started in a run that selected no `ray` test", red=True)
            for where, seen in self.offenders.items():
                terminalreporter.write_line(f"{where}: {', '.join(seen)}")
