"""How fast commands that train nothing answer: `tunelab --help`, `studies`, `results`,
`validate`, each set against `python -c "import pandas"` on the same machine in the same run.

Each command runs in a fresh process, `--repeat` times; the median wall time is printed with
its ratio to the pandas import (the floor for a tool that reads Parquet). Target: within 2.5×.

    python bench/startup.py              # 5 repetitions each (about a minute)
    python bench/startup.py --smoke      # 1 repetition: every figure in seconds
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 2.5


def wall(command: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}")
    return statistics.median(times)


def stored_study(storage: Path) -> str:
    """A study row and a trials table: what `studies` and `results` read, written directly so
    the benchmark needs no Ray."""
    import pandas as pd

    from tunelab.store import StudyPaths, StudyWriter

    paths = StudyPaths.of(storage, "stored")
    writer = StudyWriter(paths)
    writer.update_study(name="stored", status="completed", objective_metric="val_acc", objective_mode="max",
                        num_samples=20, started_at=pd.Timestamp.now(tz="UTC"), finished_at=pd.Timestamp.now(tz="UTC"),
                        spec_yaml="", rung_epochs=[5, 10])
    for number in range(1, 21):
        writer.update_trial(f"t{number}", trial_number=number, status="completed", objective=0.9 + number / 1000,
                            best_epoch=10, epochs=20, stop_epoch=20, param_learning_rate=0.01 * number)
    writer.flush()
    return "stored"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="one repetition of each")
    parser.add_argument("--keep", type=Path, help="keep the benchmark's storage folder here")
    args = parser.parse_args()
    repeat = 1 if args.smoke else args.repeat
    tunelab = str(Path(sys.executable).with_name("tunelab"))
    with tempfile.TemporaryDirectory(prefix="tunelab-bench-startup-") as scratch:
        storage = args.keep or Path(scratch)
        study = stored_study(storage)
        floor = wall([sys.executable, "-c", "import pandas"], repeat)
        print(f"machine: {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}; "
              f"median of {repeat} fresh process(es) each")
        floor_label = 'python -c "import pandas"'
        print(f"{floor_label:42s} {floor:6.2f} s   1.00×")
        commands = {
            "tunelab --help": ["--help"],
            "tunelab studies": ["studies", "--storage", str(storage)],
            "tunelab results": ["results", study, "--storage", str(storage)],
            "tunelab validate quickstart.yaml": ["validate", str(REPO / "search_spaces" / "quickstart.yaml")],
        }
        for label, argv in commands.items():
            seconds = wall([tunelab, *argv], repeat)
            ratio = seconds / floor
            verdict = "within" if ratio <= TARGET_RATIO else "over"
            print(f"{label:42s} {seconds:6.2f} s {ratio:6.2f}×  ({verdict} {TARGET_RATIO}×)")


if __name__ == "__main__":
    main()
