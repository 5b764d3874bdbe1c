"""`tunelab run` as a user types it, shared by the benchmarks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def tunelab_run(spec_file: Path, storage: Path, log: Path) -> str:
    """Run the study through the console script next to this Python; keep its output in
    `log`; return its standard output. A failed run ends the benchmark, naming the log."""
    command = [str(Path(sys.executable).with_name("tunelab")), "run", str(spec_file), "--storage", str(storage)]
    finished = subprocess.run(command, capture_output=True, text=True)
    log.write_text(finished.stdout + finished.stderr)
    if finished.returncode != 0:
        raise SystemExit(f"tunelab run failed ({finished.returncode}); see {log}")
    return finished.stdout


def exit_without_teardown() -> None:
    """End a benchmark's run process once its record is written, skipping the interpreter's
    teardown: there pyarrow's reader threads now and then abort the process ("terminate called
    without an active exception"; apache/arrow#34314, about one run in 80 here), which would fail
    a run that succeeded."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
