"""bench/search.py in smoke mode, the two ways that run studies (a file of their own: the longest
benchmark tests, which `make test` runs beside the others)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from test_bench import run_bench


@pytest.mark.ray  # Ray Tune studies in a subprocess
def test_search_prints_each_method_on_both_data_sets(tmp_path: Path) -> None:
    output = run_bench("search.py", tmp_path)
    methods = ("tpe+asha", "bohb+asha", "random+asha", "random", "optuna", "fused-tpe+asha")
    rows = [line.split() for line in output.splitlines() if line.split()[:1] in (["digits"], ["mnist1d"])]
    runs = {(fields[0], fields[1]): fields for fields in rows if len(fields) == 9}
    assert set(runs) == {(d, m) for d in ("digits", "mnist1d") for m in methods}
    for (dataset, method), fields in runs.items():
        to_target, best_val, test_acc, epochs, stopped = fields[3], float(fields[4]), float(fields[5]), int(fields[6]), int(fields[7])
        assert to_target == "never" or float(to_target) >= 0
        assert 0 < best_val <= 1 and (math.isnan(test_acc) or 0 <= test_acc <= 1)
        # 4 trials of up to 4 epochs (a diverging one ends early); random search stops none.
        assert 0 < epochs <= 16 and 0 <= stopped <= 4
        if method == "random":
            assert stopped == 0
    assert output.count("median over seeds:") == 2
    for method in methods:
        assert output.count(f"  {method:<14} to target") == 2
    for dataset in ("digits", "mnist1d"):
        # Each early-stopping method is set against random search whenever random search
        # reached the target (smoke targets are low, but a tiny run may still miss one).
        if runs[(dataset, "random")][3] != "never":
            section = output.split(f"{dataset}: ", 1)[1].split("\n\n", 1)[0]
            for method in ("tpe+asha", "bohb+asha", "random+asha"):
                assert f"  {method} vs random: " in section and "× the time to target" in section
        if runs[(dataset, "tpe+asha")][3] != "never":  # and the fused study against the same one unfused
            section = output.split(f"{dataset}: ", 1)[1].split("\n\n", 1)[0]
            assert "  fused-tpe+asha vs tpe+asha: " in section
        # Whole studies also give their time to the data set's other targets, every method's.
        section = output.split(f"{dataset}: ", 1)[1].split("\n\n", 1)[0]
        (sweep,) = [line for line in section.splitlines() if line.startswith(("  0.3: ", "  0.15: "))]
        assert [cell.split()[0] for cell in sweep.split(": ", 1)[1].split(" · ")] == list(methods)
    from tunelab.store import StudyPaths, read_trials

    fused = read_trials(StudyPaths.of(tmp_path / "tunelab-results", "digits-fused-tpe-asha-0"))
    assert (fused["fusion"] == "fused").all(), "the fused method's trials trained as members of fused cohorts"

    # The kept random-search curves replay under ASHA with the default settings: one row per
    # setting and data set; settings whose grace period is not below the 4 smoke epochs are
    # named as skipped, with the reason `tunelab run` would give.
    replayed = subprocess.run([sys.executable, str(REPO / "bench" / "asha_replay.py"), str(tmp_path), "--smoke", "--seconds"],
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ, "TUNELAB_CACHE_DIR": str(tmp_path / "cache")})
    print(replayed.stdout + replayed.stderr)
    assert replayed.returncode == 0 and "Traceback" not in replayed.stderr
    lines = [line.split() for line in replayed.stdout.splitlines()]
    settings = [fields for fields in lines if fields[:2] in (["auto", "2"], ["3", "3"])]
    assert len(settings) == 8, "two usable settings on each of two data sets, rungs in epochs and in seconds"
    assert [fields[2] == "seconds" for fields in settings] == [False, True] * 4
    for fields in settings:
        share, kept = float(fields[3]), int(fields[4])
        assert 0 < share <= 1 and kept in (0, 1) and fields[5:7] == ["of", "1"]
    skipped = [" ".join(fields) for fields in lines if fields[2:3] == ["skipped:"]]
    assert sorted(line.split()[0] for line in skipped) == ["10", "10", "5", "5"]
    assert all("expected fewer than train.max_epochs (4)" in line for line in skipped)


@pytest.mark.ray  # Ray Tune studies in a subprocess
def test_search_to_target_ends_each_study_at_its_first_trial_above_the_target(tmp_path: Path) -> None:
    from tunelab.store import StudyPaths, read_trials

    # A target the tiny smoke trials reach (the best of four reaches about 0.37).
    output = run_bench("search.py", tmp_path, "--datasets", "digits", "--methods", "random,tpe+asha,optuna", "--to-target",
                       "--target", "0.2")
    assert "each study ended when a trial reached the target (objective.goal)" in output
    rows = {fields[1]: fields for fields in (line.split() for line in output.splitlines())
            if fields[:1] == ["digits"] and len(fields) == 9}
    assert set(rows) == {"random", "tpe+asha", "optuna"}
    assert "test acc" not in output.split("median over seeds:", 1)[1].split("vs random:", 1)[-1]
    for method in ("random", "tpe+asha"):  # tunelab's studies are kept; Optuna's lives in memory
        trials = read_trials(StudyPaths.of(tmp_path / "tunelab-results", f"digits-{method.replace('+', '-')}-0"))
        assert rows[method][3] != "never", rows[method]
        winner = trials[trials["status"] == "reached_goal"].iloc[0]
        assert winner["objective"] >= 0.2
        assert (trials["started_at"] <= winner["finished_at"]).all(), "no trial starts after the goal"
