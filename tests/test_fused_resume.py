"""A fused study's failures: its driver killed (SIGKILL) or stopped (Ctrl-C) mid-study, then
`tunelab resume`; a fusion host killed mid-study. Members continue from their own state files in
a new fusion host; nothing lost, no epoch stored twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import small_study
from test_api import interrupt
from test_resume import FINISHED, kill_session, tunelab_process, wait_for_a_finished_and_a_well_started_trial
from tunelab.store import StudyPaths, read_epochs, read_study, read_trials

pytestmark = pytest.mark.ray
# Long enough that a kill or Ctrl-C lands mid-training: the trials table the test watches lags
# the training by up to the store's flush interval, a dozen fused epochs here.
MAX_EPOCHS = 100


def write_member_study(folder: Path, name: str, num_samples: int, fuse: int, **train: object) -> StudyPaths:
    """A digits MLP study of `num_samples` members searched on the learning rate alone, long
    enough to be caught mid-way, written as `<name>.yaml`; its store will be `store/<name>`."""
    document = small_study(name=name, budget={"num_samples": num_samples, "max_concurrent": fuse},
                           train={"max_epochs": MAX_EPOCHS, "batch_size": 8, "optimizer": "sgd", "fuse": fuse,
                                  "early_stopping": {"patience": None}, **train},
                           model={"width": 128})
    document["search_space"] = {"learning_rate": {"type": "loguniform", "low": 1e-3, "high": 0.05}}
    document["scheduler"] = "none"
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(document))
    return StudyPaths.of(folder / "store", name)


def trained_epochs(paths: StudyPaths, at_least: int) -> bool:
    """Whether some trial of the (running) study has trained this many epochs."""
    trials = read_trials(paths) if paths.trials.exists() else pd.DataFrame()
    return "epochs" in trials and bool((trials["epochs"].fillna(0) >= at_least).any())


def test_a_killed_fused_study_resumes_every_member_from_its_state(tmp_path: Path) -> None:
    paths = write_member_study(tmp_path, "fusedcrash", 6, 3, checkpoint_interval_s=0)

    driver = tunelab_process("run", "fusedcrash.yaml", "--storage", "store", cwd=tmp_path)
    wait_for_a_finished_and_a_well_started_trial(paths, driver)  # the first cohort ended, the second runs
    kill_session(driver.pid)
    driver.wait(timeout=30)
    before = read_trials(paths).set_index("trial_id")
    finished_before = before[before["status"].isin(FINISHED)]
    running_before = before[before["status"] == "running"]

    resumed = subprocess.run([sys.executable, "-m", "tunelab.cli", "resume", "fusedcrash", "--storage", "store"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=600, start_new_session=True)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    after = read_trials(paths).set_index("trial_id")
    assert read_study(paths)["status"] == "completed"
    completed = after[after["status"] == "completed"]
    assert len(completed) == 6 and (completed["fusion"] == "fused").all()
    # A trial the killed driver started after Ray's last snapshot may be left interrupted (as unfused).
    assert set(after["status"]) <= {"completed", "interrupted"}
    for trial_id, row in finished_before.iterrows():
        assert after.loc[trial_id, "finished_at"] == row["finished_at"], "a finished member ran again"
    continued = running_before[running_before.index.isin(completed.index)]
    assert len(continued) > 0, "no interrupted member was continued"
    for trial_id, row in continued.iterrows():
        reruns = after.loc[trial_id].get("rerun_epochs")
        assert pd.isna(reruns) or reruns < row["epochs"], "the member started over instead of resuming"
    epochs = read_epochs(paths)
    for trial_id, trial in after.iterrows():
        rows = epochs[epochs["trial_id"] == trial_id]
        assert list(rows["epoch"]) == list(range(1, int(trial["epochs"]) + 1)), trial_id
    assert (completed["epochs"] == MAX_EPOCHS).all()


def fusion_hosts_of(session_id: int) -> list[int]:
    """The PIDs of the study's fusion hosts: Ray names an actor's process after its class; a
    host of a study without Ray is a `tunelab.fusion.host_process` process of the driver's."""
    # -ww: whole command lines, whatever COLUMNS says.
    listing = subprocess.run(["ps", "-ww", "-eo", "pid=,sid=,args="], capture_output=True, text=True).stdout.splitlines()
    return [int(line.split()[0]) for line in listing
            if int(line.split()[1]) == session_id
            and ("ray::FusionHost" in line or "tunelab.fusion.host_process" in line)]


# A program that started Ray itself keeps it, and its fused study's hosts are Ray actors.
ITS_OWN_RAY = ("import sys; from tunelab.tune.local_ray import start_ray; start_ray(); "
               "from tunelab.cli import main; main(sys.argv[1:])")


@pytest.mark.parametrize("hosts", ["processes", "ray actors"])
def test_a_killed_fusion_host_is_replaced_and_its_members_continue_from_their_states(hosts: str, tmp_path: Path
                                                                                      ) -> None:
    """SIGKILL of a fusion host's process (the OOM killer's way): the study goes on, its members
    start again in a new host from their state files, each counted as a retry."""
    paths = write_member_study(tmp_path, "hostcrash", 4, 4, checkpoint_interval_s=0)
    command = ["-c", ITS_OWN_RAY] if hosts == "ray actors" else ["-m", "tunelab.cli"]
    driver = subprocess.Popen([sys.executable, *command, "run", "hostcrash.yaml", "--storage", "store"], cwd=tmp_path,
                              start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            if trained_epochs(paths, 3) and fusion_hosts_of(driver.pid):
                break
            assert driver.poll() is None and time.monotonic() < deadline, "the study never got going"
            time.sleep(0.3)
        killed = fusion_hosts_of(driver.pid)
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        output, _ = driver.communicate(timeout=600)
    finally:
        kill_session(driver.pid)
    assert driver.returncode == 0, output[-3000:]
    assert ("Ray start-up" in output) == (hosts == "ray actors"), output[-3000:]
    trials = read_trials(paths)
    assert read_study(paths)["status"] == "completed"
    assert list(trials["status"]) == ["completed"] * 4 and (trials["fusion"] == "fused").all()
    assert (trials["retries"] == 1).all(), "every member of the killed hosts started again, once"
    assert trials["error"].str.startswith("tunelab.tune.host_pools.HostDied: the fusion host's").all()
    assert trials["error"].str.contains("died", regex=False).all()
    epochs = read_epochs(paths)
    for trial in trials.to_dict("records"):
        rows = epochs[epochs["trial_id"] == trial["trial_id"]]
        assert list(rows["epoch"]) == list(range(1, MAX_EPOCHS + 1)), "continued, nothing stored twice"
        assert pd.isna(trial.get("rerun_epochs")) or trial["rerun_epochs"] <= 1, "continued from its last state"


def test_ctrl_c_ends_a_fused_study_as_interrupted_and_it_resumes(tmp_path: Path) -> None:
    paths = write_member_study(tmp_path, "fusedstop", 4, 4)
    driver = subprocess.Popen([sys.executable, "-m", "tunelab.cli", "run", "fusedstop.yaml", "--storage", "store"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    out, err = interrupt(driver, when=lambda: trained_epochs(paths, 2))
    assert driver.returncode == 130, out + err
    assert "fused: 2 fusion host(s), 1 CPU each, up to 4 members per cohort on a host" in out, "one host per CPU here"
    assert err.strip().splitlines()[-1] == ("tunelab: study 'fusedstop' was interrupted; "
                                           "continue it with `tunelab resume fusedstop`")
    assert read_study(paths)["status"] == "interrupted"
    assert set(read_trials(paths)["status"]) == {"interrupted"}

    resumed = subprocess.run([sys.executable, "-m", "tunelab.cli", "resume", "fusedstop", "--storage", "store"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=600, start_new_session=True)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    trials = read_trials(paths)
    assert read_study(paths)["status"] == "completed"
    assert list(trials["status"]) == ["completed"] * 4
    epochs = read_epochs(paths)
    for trial_id in trials["trial_id"]:
        assert list(epochs.loc[epochs["trial_id"] == trial_id, "epoch"]) == list(range(1, MAX_EPOCHS + 1))
