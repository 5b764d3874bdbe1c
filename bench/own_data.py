"""What a large table of a user's costs: reading it, and the time to a study's first trial.

Writes a CSV of the asked size (numeric columns, two text columns, a text target), then, each
in a fresh process on the same machine, one after the other:

  pandas       `pandas.read_csv` and `to_numpy(float64)`, as a hand-written loader would:
               the baseline for memory.
  tunelab      `load_spec` (which reads and splits the table: what `tunelab validate` and
               `tunelab run` do before anything else).
  study        `tunelab run` of a 2-trial, 1-epoch MLP study on the table: the time from the
               command's start to the first epoch row of the first trial in the store, and the
               driver's peak memory (VmHWM) by then.

Reading is measured after each process's imports (tunelab's include PyTorch): the memory
figure is the process's high-water mark minus its size once imported. The study's figure is
the driver's whole high-water mark (VmHWM), imports and Ray included.

    python bench/own_data.py                    # a 1 GB CSV (about 5 minutes here)
    python bench/own_data.py --gigabytes 0.25   # smaller
    python bench/own_data.py --smoke            # a 2 MB table: prints every figure in seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

NUMERIC_COLUMNS = 40
STUDY = """
name: {name}
dataset: {{name: table, path: {path}, target: label}}
model: {{name: mlp, width: 32, depth: 1}}
search_space:
  learning_rate: {{type: loguniform, low: 0.001, high: 0.01}}
train: {{max_epochs: 1, batch_size: 4096, early_stopping: {{patience: null}}, checkpoint_interval_s: 600}}
searcher: {{name: random, seed: 0}}
scheduler: none
budget: {{num_samples: 2, max_concurrent: 2}}
"""


def write_table(path: Path, target_bytes: int) -> tuple[int, int]:
    """A CSV of about `target_bytes`; returns (rows, bytes)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(0)
    chunk_rows = 100_000 if target_bytes >= 50_000_000 else 5_000
    rows = 0
    with pacsv.CSVWriter(path, _schema(pa)) as writer:
        while not path.exists() or path.stat().st_size < target_bytes:
            numbers = rng.normal(size=(chunk_rows, NUMERIC_COLUMNS)).astype(np.float32).round(4)
            columns = {f"x{i}": numbers[:, i] for i in range(NUMERIC_COLUMNS)}
            columns["region"] = rng.choice(["north", "south", "east", "west"], size=chunk_rows)
            columns["plan"] = rng.choice(["basic", "plus", "pro"], size=chunk_rows)
            columns["label"] = np.where(numbers[:, 0] + numbers[:, 1] > 0, "churned", "stayed")
            writer.write_table(pa.table(columns, schema=_schema(pa)))
            rows += chunk_rows
    return rows, path.stat().st_size


def _schema(pa):  # type: ignore[no-untyped-def]
    fields = [pa.field(f"x{i}", pa.float32()) for i in range(NUMERIC_COLUMNS)]
    return pa.schema([*fields, pa.field("region", pa.string()), pa.field("plan", pa.string()), pa.field("label", pa.string())])


def child(way: str, path: str) -> None:
    """Runs in a fresh process: load the table one way, print seconds and the memory it took
    above the process's size after its imports (its peak minus that), as JSON."""
    import pandas as pd

    from tunelab.datasets import load_splits

    before = _rss()
    started = time.perf_counter()
    if way == "pandas":
        frame = pd.read_csv(path)
        features = pd.get_dummies(frame.drop(columns=["label"]), dtype=np.float64).to_numpy(np.float64)
        rows = len(features)
    else:
        splits = load_splits("table", {"path": path, "target": "label"}, 0.2, 0.2, 0)
        rows = sum(splits.sizes().values())
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_bytes": peak - before, "rows": rows}))


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def measure(way: str, path: Path) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--child", way, str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{way} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def time_to_first_trial(path: Path, folder: Path) -> dict[str, float]:
    """`tunelab run` on the table: seconds to the first epoch row, and the driver's VmHWM then."""
    spec = folder / "study.yaml"
    spec.write_text(STUDY.format(name="big-table", path=path))
    storage = folder / "store"
    log = folder / "run.log"
    tunelab = str(Path(sys.executable).with_name("tunelab"))
    started = time.perf_counter()
    with open(log, "w") as output:
        process = subprocess.Popen([tunelab, "run", str(spec), "--storage", str(storage)], stdout=output, stderr=output)
    first_row = storage / "big-table" / "epochs" / "pending.jsonl"
    peak = 0
    first = None
    while process.poll() is None:
        peak = max(peak, _vm_hwm(process.pid))
        if first is None and first_row.exists() and first_row.stat().st_size > 0:
            first = time.perf_counter() - started
        time.sleep(0.05)
    if process.returncode != 0:
        raise SystemExit(f"tunelab run failed; see {log}")
    total = time.perf_counter() - started
    parts = sorted((storage / "big-table" / "epochs").glob("part-*.parquet"))
    if first is None and parts:  # the run ended between two polls
        first = total
    return {"first_trial_seconds": first if first is not None else float("nan"), "total_seconds": total,
            "driver_peak_bytes": peak}


def _vm_hwm(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gigabytes", type=float, default=1.0, help="size of the CSV to write (default 1)")
    parser.add_argument("--smoke", action="store_true", help="a 2 MB table: every figure in seconds")
    parser.add_argument("--keep", type=Path, help="write the table and the study here and keep them")
    parser.add_argument("--child", nargs=2, metavar=("WAY", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    target = 2_000_000 if args.smoke else int(args.gigabytes * 1e9)
    with tempfile.TemporaryDirectory(prefix="tunelab-bench-own-data-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "big.csv"
        started = time.perf_counter()
        rows, size = write_table(path, target)
        print(f"machine: {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}")
        print(f"table: {size / 1e9:.3f} GB CSV, {rows} rows × {NUMERIC_COLUMNS + 3} columns "
              f"({NUMERIC_COLUMNS} numeric, 2 text, a text target); written in {time.perf_counter() - started:.1f} s")
        float32_bytes = rows * (NUMERIC_COLUMNS + 7) * 4  # one-hot: 4 regions + 3 plans
        print(f"the model's inputs as float32: {float32_bytes / 1e9:.3f} GB")
        for way in ("pandas", "tunelab"):
            result = measure(way, path)
            print(f"{way:8s} read: {result['seconds']:6.1f} s, memory at its peak {result['peak_bytes'] / 1e9:.2f} GB "
                  f"above the imports ({result['peak_bytes'] / size:.2f}× the file)")
        study = time_to_first_trial(path, folder)
        print(f"study    first trial's first epoch stored {study['first_trial_seconds']:.1f} s after `tunelab run` "
              f"started (whole study {study['total_seconds']:.1f} s); driver peak memory "
              f"{study['driver_peak_bytes'] / 1e9:.2f} GB ({study['driver_peak_bytes'] / size:.2f}× the file)")


if __name__ == "__main__":
    main()
