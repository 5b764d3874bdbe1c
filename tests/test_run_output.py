"""What `tunelab run` prints: tunelab's own lines and nothing else. Ray's log lines, a failed
trial's traceback and what trial processes print go to `ray.log` in the study's folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass

import pytest
import yaml

from conftest import REPO, small_study
from tunelab.store import StudyPaths

pytestmark = pytest.mark.ray

# Every line tunelab itself prints during `tunelab run`, as a pattern.
TUNELAB_LINES = [
    r"study \S+: \d+ trials of \S+ on \S+, \S+ \+ \S+, \d+ at a time → \S+",  # the study starts
    r"\[ *\d+\.\ds\] (trial +\d+ .+ │ )?\d+/\d+ done · \d+ running( · .+)?",  # progress and heartbeat
    r"trial \d+ (error|failed, retrying from its saved state): .+ \(traceback in \S+/ray\.log\)",
    r" *\S+ — best trials by \S+ \((min|max)\) *",  # the summary table: its title,
    r"[┏┃┡│└].*[┓┃┩│┘]",  # its rows and rules
    r"\d+ trials: \d+ \w+(, \d+ \w+)*",
    r"fit: \d+ of \d+ trials .+",
    r"best trial: \d+ with \S+ \S+",
    r"results: \S+",
    r"took \d+\.\d s \(Ray start-up \d+\.\d s\)",
]


@dataclass(frozen=True)
class Run:
    paths: StudyPaths
    stdout: str
    stderr: str
    returncode: int


@pytest.fixture(scope="module")
def noisy_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A study that makes Ray talk: one configuration raises in every attempt (Ray logs each
    failure with its traceback), and every trial process prints a warning."""
    folder = tmp_path_factory.mktemp("noisy")
    document = small_study(name="noisy", budget={"num_samples": 3, "max_concurrent": 2, "max_failures": 1})
    document["model"] = {"name": "study_models:WarningFragileMLP"}
    document["search_space"] = {"width": {"type": "choice", "values": [8, 13, 21]}}
    document["searcher"] = {"name": "grid"}
    document["scheduler"] = "none"
    (folder / "noisy.yaml").write_text(yaml.safe_dump(document))
    # As a user runs it: no PYTHONWARNINGS=ignore. Trial processes import the test models.
    tests = str(REPO / "tests")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")]))}
    environment.pop("PYTHONWARNINGS", None)
    done = subprocess.run(
        [sys.executable, "-m", "tunelab.cli", "run", "noisy.yaml", "--storage", "store"],
        cwd=folder, capture_output=True, text=True, timeout=600, env=environment,
    )
    return Run(StudyPaths.of(folder / "store", "noisy"), done.stdout, done.stderr, done.returncode)


def test_the_terminal_holds_only_tunelabs_lines(noisy_run: Run) -> None:
    assert noisy_run.returncode == 0, noisy_run.stdout + noisy_run.stderr
    lines = [line for line in (noisy_run.stdout + noisy_run.stderr).splitlines() if line.strip()]
    foreign = [line for line in lines if not any(re.fullmatch(pattern, line) for pattern in TUNELAB_LINES)]
    assert foreign == [], "lines that are not tunelab's reached the terminal"
    assert noisy_run.stderr == ""
    assert "3/3 done" in noisy_run.stdout and "results: " in noisy_run.stdout


def test_a_failing_trial_is_one_line_each_time_that_points_to_the_log(noisy_run: Run) -> None:
    log = noisy_run.paths.root / "ray.log"
    error = "RuntimeError: width 13 is unlucky"
    retry = re.search(rf"^trial (\d+) failed, retrying from its saved state: {error} \(traceback in (\S+)\)$",
                      noisy_run.stdout, re.MULTILINE)
    assert retry is not None, noisy_run.stdout
    assert retry.group(2) == str(log)
    assert f"\ntrial {retry.group(1)} error: {error} (traceback in {log})\n" in noisy_run.stdout


def test_rays_lines_are_in_the_log_file_in_the_study_folder(noisy_run: Run) -> None:
    log = (noisy_run.paths.root / "ray.log").read_text()
    assert "ERROR ray.tune" in log and "Trial task failed" in log, "Ray's own log lines"
    assert 'raise RuntimeError("width 13 is unlucky")' in log, "the failed trial's traceback"
    assert "UserWarning: a library in the trial process warns about width" in log, "what trial processes print"
