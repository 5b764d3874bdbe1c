"""bench/fused_engine.py in smoke mode: both models, each member count, trained one at a time
and as one fused cohort, every figure printed (no assertion on time: figures from a shared
machine mean nothing)."""

from __future__ import annotations

from pathlib import Path

from test_bench import run_bench


def test_fused_engine_bench_prints_both_ways_for_each_model_and_member_count(tmp_path: Path) -> None:
    output = run_bench("fused_engine.py", tmp_path)
    assert output.startswith("machine: ")
    assert next(line for line in output.splitlines() if line.startswith("model")).split() == [
        "model", "members", "alone", "s", "fused", "s", "speed-up"]
    rows = [line.split() for line in output.splitlines() if line.split()[:1] in (["cnn"], ["mlp"])]
    assert [(row[0], row[1]) for row in rows] == [("cnn", "2"), ("cnn", "4"), ("mlp", "2"), ("mlp", "4")]
    for row in rows:
        alone, fused, speed_up = float(row[2]), float(row[3]), float(row[4].removesuffix("×"))
        assert alone > 0 and fused > 0
        # The speed-up comes from the unrounded seconds, which are printed to 0.01 s.
        assert (alone - 0.005) / (fused + 0.005) - 0.006 <= speed_up <= (alone + 0.005) / max(fused - 0.005, 1e-3) + 0.006
    assert output.rstrip().splitlines()[-1].startswith("load average")
