"""The fast path's guard (tests/conftest.py): in a run that selected no `ray` test, a test that
starts Ray fails, naming itself, and the tests around it pass. Shown on a throw-away suite whose
Ray is faked cheaply: a process named `raylet` below the run, and a `ray` module that says it is
initialised."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

# The inner run holds what the guard takes for Ray: in a fast-path run the outer guard would
# (rightly) fail this test too.
pytestmark = pytest.mark.ray

PROBE = '''
import subprocess
import sys
import types


def test_light():
    pass


def test_starts_a_raylet_in_a_subprocess():
    subprocess.run(["sh", "-c", "{raylet} 2"], check=True)


def test_initialises_ray_in_process():
    sys.modules["ray"] = types.SimpleNamespace(is_initialized=lambda: True)


def test_light_after():
    pass
'''


def test_a_test_that_starts_ray_unmarked_fails_by_name_and_the_others_pass(tmp_path: Path) -> None:
    raylet = tmp_path / "raylet"  # `sleep` under Ray's name: the process name is all the guard reads
    shutil.copy(shutil.which("sleep") or "/bin/sleep", raylet)
    (tmp_path / "test_probe.py").write_text(PROBE.format(raylet=raylet))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "conftest", "-p", "no:cacheprovider", "test_probe.py"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO / "tests")},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "2 failed, 2 passed" in output, output
    assert "test_probe.py::test_starts_a_raylet_in_a_subprocess started Ray (raylet (pid " in output, output
    assert ("test_probe.py::test_initialises_ray_in_process started Ray (ray initialised in the pytest process) "
            "in a run that selected no `ray` test") in output, output
    assert "Ray started in a run that selected no `ray` test" in output, output
