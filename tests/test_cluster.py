"""`tunelab submit` and `tunelab jobs` against a real Ray head on 127.0.0.1."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from conftest import small_study
from tunelab.store import StudyPaths, read_study, read_trials

pytestmark = pytest.mark.ray
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Head:
    address: str
    token: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def session_processes(session_id: int) -> list[int]:
    listing = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid, sid in zip(listing[::2], listing[1::2]) if int(sid) == session_id]


@pytest.fixture(scope="module")
def ray_head() -> Iterator[Head]:
    """A Ray head with token auth on free loopback ports and its own temp folder.

    Started in its own session so that teardown stops exactly the processes it started
    (never `ray stop`, which would stop every Ray on the machine)."""
    token = secrets.token_hex(16)
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # short: Ray's unix sockets live in it
    dashboard_port = free_port()
    ports = {name: free_port() for name in ("port", "ray-client-server-port", "dashboard-agent-listen-port",
                                             "dashboard-agent-grpc-port", "metrics-export-port", "runtime-env-agent-port")}
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
           "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}  # the entrypoint's `python`
    command = [str(VENV_BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
               "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}", "--num-cpus=2",
               "--disable-usage-stats", f"--temp-dir={temp}", *(f"--{name}={port}" for name, port in ports.items())]
    head = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"http://127.0.0.1:{dashboard_port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{address}/api/version", timeout=2)
            break
        except OSError as exc:
            if "401" in str(exc) or "403" in str(exc):
                break  # up, and asking for the token
            if time.monotonic() > deadline or head.poll() is not None:
                head.kill()
                pytest.fail(f"the Ray head did not start: {exc}")
            time.sleep(1)
    try:
        yield Head(address, token)
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        for pid in session_processes(head.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def tunelab(*args: str, token: str | None, cwd: Path, home: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    if token is not None:
        env["RAY_AUTH_TOKEN"] = token
    if home is not None:
        env["HOME"] = str(home)  # no ~/.ray/auth_token to fall back on
    return subprocess.run([sys.executable, "-m", "tunelab.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def write_study(folder: Path, name: str, **changes: object) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(small_study(name=name, **changes)))
    return path


def test_a_submitted_study_finishes_with_its_results_in_the_store(ray_head: Head, tmp_path: Path) -> None:
    spec = write_study(tmp_path, "remote", budget={"num_samples": 3, "max_concurrent": 2}, train={"max_epochs": 3})
    storage = tmp_path / "store"
    done = tunelab("submit", spec.name, "--address", ray_head.address, "--storage", str(storage), "--follow",
                   token=ray_head.token, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    job_id = done.stdout.split("as job ", 1)[1].split()[0]
    assert f"tunelab jobs logs {job_id} --follow" in done.stdout
    assert "best trial: " in done.stdout and "SUCCEEDED" in done.stdout

    paths = StudyPaths.of(storage, "remote")
    assert read_study(paths)["status"] == "completed"
    assert len(read_trials(paths)) == 3

    listed = tunelab("jobs", "list", "--address", ray_head.address, token=ray_head.token, cwd=tmp_path)
    assert job_id in listed.stdout and "SUCCEEDED" in listed.stdout and "remote" in listed.stdout
    status = tunelab("jobs", "status", job_id, "--address", ray_head.address, token=ray_head.token, cwd=tmp_path)
    assert status.stdout.startswith(f"{job_id}: SUCCEEDED  study remote")
    logs = tunelab("jobs", "logs", job_id, "--address", ray_head.address, token=ray_head.token, cwd=tmp_path)
    assert "3/3 done" in logs.stdout and f"results: {paths.root}" in logs.stdout


def test_a_users_table_travels_with_the_job_and_is_read_from_its_copy(ray_head: Head, tmp_path: Path) -> None:
    from user_data import SPECIES, write_table

    (tmp_path / "data").mkdir()
    original = write_table(tmp_path / "data")
    document = small_study(name="remote-table", budget={"num_samples": 2, "max_concurrent": 2}, train={"max_epochs": 2})
    document["dataset"] = {"name": "table", "path": "data/birds.csv", "target": "species"}
    (tmp_path / "table.yaml").write_text(yaml.safe_dump(document))
    storage = tmp_path / "store"
    done = tunelab("submit", "table.yaml", "--address", ray_head.address, "--storage", str(storage), "--follow",
                   token=ray_head.token, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr

    study = read_study(StudyPaths.of(storage, "remote-table"))
    assert study["status"] == "completed" and yaml.safe_load(study["class_names"]) == list(SPECIES)
    read_from = Path(yaml.safe_load(study["spec_yaml"])["dataset"]["path"])
    assert read_from != original and read_from.name == "birds.csv"  # the job's own copy
    assert not read_from.is_relative_to(tmp_path)


def test_jobs_stop_stops_a_long_study(ray_head: Head, tmp_path: Path) -> None:
    spec = write_study(tmp_path, "long", train={"max_epochs": 5000, "early_stopping": {"patience": None}},
                       scheduler={"name": "none"}, budget={"num_samples": 2})
    yaml_doc = yaml.safe_load(spec.read_text())
    yaml_doc["scheduler"] = "none"
    spec.write_text(yaml.safe_dump(yaml_doc))
    submitted = tunelab("submit", spec.name, "--address", ray_head.address, "--storage", str(tmp_path / "store"),
                        token=ray_head.token, cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.split("as job ", 1)[1].split()[0]
    deadline = time.monotonic() + 120
    while "RUNNING" not in tunelab("jobs", "status", job_id, "--address", ray_head.address, token=ray_head.token, cwd=tmp_path).stdout:
        assert time.monotonic() < deadline, "the job never started running"
        time.sleep(2)
    stopped = tunelab("jobs", "stop", job_id, "--address", ray_head.address, token=ray_head.token, cwd=tmp_path)
    assert stopped.returncode == 0 and "stop requested" in stopped.stdout
    deadline = time.monotonic() + 60
    while "STOPPED" not in tunelab("jobs", "status", job_id, "--address", ray_head.address, token=ray_head.token, cwd=tmp_path).stdout:
        assert time.monotonic() < deadline, "the job did not stop"
        time.sleep(2)


@pytest.mark.parametrize(
    "case,words",
    [
        ("wrong token", "rejected the authentication token"),
        ("no token", "requires an authentication token; set RAY_AUTH_TOKEN"),
        ("wrong address", "cannot reach the Ray Jobs API"),
        ("unknown job", "job-that-does-not-exist"),
    ],
)
def test_cluster_problems_are_one_line_errors_with_exit_2(case: str, words: str, ray_head: Head, tmp_path: Path) -> None:
    address = f"http://127.0.0.1:{free_port()}" if case == "wrong address" else ray_head.address
    token = {"wrong token": "not-the-token", "no token": None}.get(case, ray_head.token)
    args = ["jobs", "status", "job-that-does-not-exist"] if case == "unknown job" else ["jobs", "list"]
    done = tunelab(*args, "--address", address, token=token, cwd=tmp_path, home=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and words in done.stderr
    assert "Traceback" not in done.stderr


def test_submit_refuses_bad_input_before_contacting_the_cluster(tmp_path: Path) -> None:
    spec = write_study(tmp_path, "local")
    relative = tunelab("submit", spec.name, "--address", "http://127.0.0.1:1", "--storage", "results", token=None, cwd=tmp_path)
    assert relative.returncode == 2 and "expected an absolute path" in relative.stderr
    bad = write_study(tmp_path, "bad", model={"name": "mpl"})
    refused = tunelab("submit", bad.name, "--address", "http://127.0.0.1:1", token=None, cwd=tmp_path)
    assert refused.returncode == 2 and "model.name: unknown model 'mpl'" in refused.stderr
