"""SIGKILL a fused study's driver mid-study, then `tunelab resume` it: members continue from
their own state files in a new fusion host; nothing lost, no epoch stored twice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import small_study
from test_resume import FINISHED, kill_session, tunelab_process, wait_for_a_finished_and_a_well_started_trial
from tunelab.store import StudyPaths, read_epochs, read_study, read_trials

pytestmark = pytest.mark.ray
MAX_EPOCHS = 30


def test_a_killed_fused_study_resumes_every_member_from_its_state(tmp_path: Path) -> None:
    document = small_study(name="fusedcrash", budget={"num_samples": 6, "max_concurrent": 3},
                           train={"max_epochs": MAX_EPOCHS, "batch_size": 8, "optimizer": "sgd", "fuse": 3,
                                  "early_stopping": {"patience": None}, "checkpoint_interval_s": 0},
                           model={"width": 128})
    document["search_space"] = {"learning_rate": {"type": "loguniform", "low": 1e-3, "high": 0.05}}
    document["scheduler"] = "none"
    (tmp_path / "fusedcrash.yaml").write_text(yaml.safe_dump(document))
    paths = StudyPaths.of(tmp_path / "store", "fusedcrash")

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
