"""bench/fused.py in smoke mode: the same trials three ways, every figure printed (no
assertion on time: figures from a shared machine mean nothing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_bench import run_bench, table_rows


@pytest.mark.ray  # `tunelab run` studies in subprocesses
def test_fused_bench_prints_the_same_trials_three_ways(tmp_path: Path) -> None:
    output = run_bench("fused.py", tmp_path, "--studies", "digits-mlp")
    assert output.startswith("machine: ")
    rows = [line.split() for line in output.splitlines() if line.startswith("digits-mlp ")]
    assert [row[1] for row in rows] == ["unfused", "fused", "inprocess"]
    for row in rows:
        wall, member_epochs_per_s = float(row[2]), float(row[4])
        # 4 trials × 2 epochs over the wall, which is printed to 0.1 s: within what its rounding allows.
        assert wall > 0 and 8 / (wall + 0.05) - 0.06 <= member_epochs_per_s <= 8 / max(wall - 0.05, 0.01) + 0.06
    walls = {row[1]: float(row[2]) for row in rows}
    # The speed-up is printed from the unrounded walls: within what rounding each wall to 0.1 s allows.
    unfused, fused = walls["unfused"], walls["fused"]
    assert (unfused - 0.05) / (fused + 0.05) - 0.005 <= float(rows[1][5].removesuffix("×")) \
        <= (unfused + 0.05) / (fused - 0.05) + 0.005
    assert rows[2][3] == "—", "the in-process way has no study of its own"
    studies = {row[1]: float(row[3]) for row in rows[:2]}
    # A smoke study fused lasts about 0.1 s, printed to 0.1 s: the same bounds, wider.
    unfused, fused = studies["unfused"], studies["fused"]
    assert (unfused - 0.05) / (fused + 0.05) - 0.005 <= float(rows[1][6].removesuffix("×")) \
        <= (unfused + 0.05) / max(fused - 0.05, 0.001) + 0.005
    assert table_rows(output, {"load"})
