"""Kill a study's driver with SIGKILL mid-study, then `tunelab resume` it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import small_study
from tunelab.errors import StoreError
from tunelab.store import StudyPaths, StudyWriter, read_epochs, read_study, read_trials
from tunelab.tune.store_callback import LOST_REASON

pytestmark = pytest.mark.ray
FINISHED = {"completed", "stopped_early", "early_stopped_patience", "diverged", "errored"}
LOST_TRIAL = "feedbeef"


def tunelab_process(*args: str, cwd: Path) -> subprocess.Popen[str]:
    # Its own session: killing "the driver" takes Ray's helper processes with it, and
    # nothing else on the machine.
    # Ray saves its experiment state every second here instead of every ~10 s, so the trial
    # running at the kill is one the resumed run knows and continues; a trial started after
    # Ray's last save is what the test leaves in the store itself (see LOST_TRIAL).
    return subprocess.Popen([sys.executable, "-m", "tunelab.cli", *args], cwd=cwd, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "1"})


def kill_session(session_id: int) -> None:
    listing = subprocess.run(["ps", "-eo", "pid=,sid="], capture_output=True, text=True).stdout.split()
    for pid, sid in zip(listing[::2], listing[1::2]):
        if int(sid) == session_id:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def trials_now(paths: StudyPaths) -> pd.DataFrame:
    try:
        return read_trials(paths)
    except (StoreError, FileNotFoundError):
        return pd.DataFrame()


def wait_for_a_finished_and_a_well_started_trial(paths: StudyPaths, driver: subprocess.Popen[str]) -> None:
    """The moment to kill a study's driver: one trial has finished, another has 3 epochs or more."""
    deadline = time.monotonic() + 300
    while True:
        trials = trials_now(paths)
        if "epochs" in trials and trials["status"].isin(FINISHED).any() and (
                (trials["status"] == "running") & (trials["epochs"].fillna(0) >= 3)).any():
            return
        assert driver.poll() is None, f"the study ended before it could be killed:\n{driver.stdout.read() if driver.stdout else ''}"
        assert time.monotonic() < deadline, "no moment with a finished and a well-started trial"
        time.sleep(0.5)


def test_a_killed_study_resumes_from_its_checkpoints_and_ends_with_every_trial(tmp_path: Path) -> None:
    document = small_study(name="crash", budget={"num_samples": 6, "max_concurrent": 2},
                           train={"max_epochs": 30, "batch_size": 8, "early_stopping": {"patience": None},
                                  "checkpoint_interval_s": 0},
                           model={"width": 256})
    document["scheduler"] = "none"
    (tmp_path / "crash.yaml").write_text(yaml.safe_dump(document))
    paths = StudyPaths.of(tmp_path / "store", "crash")

    driver = tunelab_process("run", "crash.yaml", "--storage", "store", cwd=tmp_path)
    wait_for_a_finished_and_a_well_started_trial(paths, driver)
    # A resume while the driver still runs would write the same tables: refused, and the
    # running study goes on untouched.
    early = subprocess.run([sys.executable, "-m", "tunelab.cli", "resume", "crash", "--storage", "store"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120, start_new_session=True)
    assert early.returncode == 2, early.stdout[-3000:] + early.stderr[-3000:]
    assert early.stderr.strip() == (
        f"tunelab: error: study 'crash' in {paths.root.parent} is running now (driver pid {driver.pid} on "
        f"{os.uname().nodename}); wait for that driver to end or stop it, then `tunelab resume` continues the study"
    )
    assert driver.poll() is None and read_study(paths)["status"] == "running"
    kill_session(driver.pid)
    driver.wait(timeout=30)
    before = read_trials(paths).set_index("trial_id")
    finished_before = before[before["status"].isin(FINISHED)]
    running_before = before[before["status"] == "running"]
    assert read_study(paths)["status"] == "running", "a killed driver leaves the study marked running"

    # A trial the driver started after Ray's last state snapshot is unknown to the resumed
    # run. Killing at the right instant cannot be arranged, so leave in the store what such a
    # trial leaves there: a started trial with two epochs.
    # Appended to the killed driver's own logs, which the resume must take in as they are.
    paths.epochs.mkdir(parents=True, exist_ok=True)
    with open(paths.trials_log, "a") as log:
        started = {"__datetime__": pd.Timestamp.now(tz="UTC").isoformat()}
        log.write(json.dumps({"trial_id": LOST_TRIAL, "trial_number": len(before) + 1, "status": "running",
                              "started_at": started}) + "\n")
    with open(paths.epochs_log, "a") as log:
        for epoch in (1, 2):
            log.write(json.dumps({"trial_id": LOST_TRIAL, "epoch": epoch, "val_loss": 1.0 / epoch}) + "\n")

    resumed = subprocess.run([sys.executable, "-m", "tunelab.cli", "resume", "crash", "--storage", "store"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=600, start_new_session=True)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"resuming study crash: {len(finished_before)} of 6 trials finished before" in resumed.stdout
    # Ray's own lines (what the restore logs) went to the study's log, not to the terminal.
    assert (paths.root / "ray.log").exists()
    ray_line = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\s+(DEBUG|INFO|WARNING|ERROR)", re.MULTILINE)
    assert not ray_line.search(resumed.stdout + resumed.stderr), resumed.stdout[-3000:] + resumed.stderr[-3000:]

    after = read_trials(paths).set_index("trial_id")
    assert read_study(paths)["status"] == "completed"
    planned = after[after["status"] == "completed"]
    assert len(planned) == 6, "exactly the planned number of trials"
    # Lost trials (the one left above, any the kill made) keep their rows, marked for what they are.
    lost_trials = after[after["status"] != "completed"]
    assert LOST_TRIAL in lost_trials.index
    assert set(lost_trials["status"]) == {"interrupted"} and set(lost_trials["stop_reason"]) == {LOST_REASON}
    assert after.loc[LOST_TRIAL, "stop_epoch"] == 2 and after.loc[LOST_TRIAL, "epochs"] == 2
    # Finished trials were not run again.
    for trial_id, row in finished_before.iterrows():
        assert after.loc[trial_id, "finished_at"] == row["finished_at"]
    # Interrupted trials continued from their checkpoints: they reached epoch 30 without
    # starting over (Ray's last state snapshot may lag a few epochs behind).
    continued = running_before.drop(index=lost_trials.index, errors="ignore")
    assert len(continued) > 0, "no interrupted trial was continued"
    for trial_id, row in continued.iterrows():
        assert after.loc[trial_id, "epochs"] == 30
        reruns = after.loc[trial_id].get("rerun_epochs")
        assert pd.isna(reruns) or reruns < row["epochs"], "the trial started over instead of resuming"
    # The store has one row per trial and epoch: nothing missing, nothing twice.
    epochs = read_epochs(paths)
    assert set(epochs["trial_id"]) <= set(after.index)
    for trial_id, trial in after.iterrows():
        rows = epochs[epochs["trial_id"] == trial_id]
        assert list(rows["epoch"]) == list(range(1, int(trial["epochs"]) + 1)), trial_id
    assert (planned["epochs"] == 30).all()


def test_resume_refuses_what_it_cannot_resume(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tunelab.cli", "resume", "nothing", "--storage", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip() == f"tunelab: error: no study 'nothing' in {tmp_path}"


def test_resume_refuses_a_study_folder_others_can_write_to(tmp_path: Path) -> None:
    study = tmp_path / "shared"
    study.mkdir()
    (study / "tuner.pkl").write_bytes(b"not to be unpickled")
    StudyWriter(StudyPaths.of(tmp_path, "shared")).update_study(name="shared", status="running", spec_yaml="")
    (study / "tuner.pkl").chmod(0o666)
    done = subprocess.run([sys.executable, "-m", "tunelab.cli", "resume", "shared", "--storage", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"tunelab: error: refusing to resume from {study / 'tuner.pkl'}: it is writable by every user, "
        "and resuming unpickles what is there; resume only from your own storage"
    )
