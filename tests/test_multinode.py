"""A study on a head plus two worker nodes with logical GPUs, all on this machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import small_study
from tunelab.store import StudyPaths, read_study, read_trials

pytestmark = pytest.mark.ray


def overlaps(trials: pd.DataFrame) -> int:
    """The largest number of trials running at the same moment."""
    events = sorted([(t, 1) for t in trials["started_at"]] + [(t, -1) for t in trials["finished_at"]])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def run_on_three_nodes(tmp_path: Path, name: str, *options: str, **changes: object) -> subprocess.CompletedProcess[str]:
    # A GPU is mocked here: the workers declare logical GPUs, which Ray schedules and
    # assigns ids for exactly as for real ones; trials then train on the CPU.
    document = small_study(name=name, **changes)
    document["scheduler"] = "none"
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(yaml.safe_dump(document))
    return subprocess.run(
        [sys.executable, str(Path(__file__).with_name("multinode_study.py")), str(spec), str(tmp_path / "store"), *options],
        capture_output=True, text=True, timeout=600, start_new_session=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))},
    )


def test_half_gpu_trials_spread_over_both_workers_up_to_the_gpu_slots(tmp_path: Path) -> None:
    done = run_on_three_nodes(tmp_path, "multinode", train={"max_epochs": 30, "early_stopping": {"patience": None}},
                              budget={"num_samples": 8, "max_concurrent": 8}, resources={"cpu": 0.5, "gpu": 0.5})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    paths = StudyPaths.of(tmp_path / "store", "multinode")
    trials = read_trials(paths)
    assert read_study(paths)["status"] == "completed" and len(trials) == 8
    assert trials["node_id"].nunique() == 2, "trials ran on both worker nodes"
    assert (trials["gpu_ids"].str.split(",").map(len) == 1).all(), "each trial sees exactly one GPU id"
    # Two GPUs at 0.5 each: at most four trials at once, and more than one node's worth at a time.
    assert 2 < overlaps(trials) <= 4


def test_a_lost_worker_node_costs_its_trials_a_restart_not_the_study(tmp_path: Path) -> None:
    done = run_on_three_nodes(
        tmp_path, "lost-node", "--remove-a-worker",
        train={"max_epochs": 40, "batch_size": 16, "early_stopping": {"patience": None}},
        budget={"num_samples": 6, "max_concurrent": 4, "max_failures": 3}, resources={"cpu": 1, "gpu": 0.5},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "removed a worker node" in done.stdout

    paths = StudyPaths.of(tmp_path / "store", "lost-node")
    trials = read_trials(paths)
    assert read_study(paths)["status"] == "completed"
    assert len(trials) == 6 and set(trials["status"]) == {"completed"}
    assert trials["retries"].fillna(0).sum() >= 1, "the trials on the lost node were restarted"


def test_a_fused_study_has_a_fusion_host_per_gpu_and_survives_losing_a_node(tmp_path: Path) -> None:
    """One fusion host per (logical) GPU, spread over both workers; when a worker node goes, its
    host's members continue on the other host from their state files."""
    done = run_on_three_nodes(
        tmp_path, "fused-nodes", "--remove-a-worker",
        train={"max_epochs": 40, "batch_size": 16, "fuse": 4, "checkpoint_interval_s": 0,
               "early_stopping": {"patience": None}},
        budget={"num_samples": 8, "max_concurrent": None, "max_failures": 3}, resources={"cpu": 1, "gpu": 1},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "removed a worker node" in done.stdout
    paths = StudyPaths.of(tmp_path / "store", "fused-nodes")
    trials = read_trials(paths)
    assert read_study(paths)["status"] == "completed" and read_study(paths)["max_concurrent"] == 8, "4 members × 2 hosts"
    # Searched depth makes several cohorts (the optimisers share them); a member may diverge, none is lost.
    assert len(trials) == 8 and set(trials["status"]) <= {"completed", "diverged"} and (trials["fusion"] == "fused").all()
    lost = trials[trials["retries"].fillna(0) >= 1]
    assert len(lost) >= 1, "the members on the lost node were restarted"
    assert trials["node_id"].nunique() == 2 and (trials["gpu_ids"].str.split(",").map(len) == 1).all(), "a host per GPU"
    assert (trials.loc[trials["status"] == "completed", "epochs"] == 40).all()
