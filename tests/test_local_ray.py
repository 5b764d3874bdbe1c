"""The embedded Ray at the end of a command: the command's output is the last thing printed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.ray

# A worker that talks until it is stopped: what it prints while Ray shuts down stands in for
# the "SystemExit: 1" traceback a worker caught mid-teardown prints (a race, ~1 run in 10).
SCRIPT = textwrap.dedent(
    """
    import sys, time
    import ray
    from tunelab.tune.local_ray import start_ray

    @ray.remote(num_cpus=0)
    class Talker:
        def talk(self):
            while True:
                print("worker line", file=sys.stderr, flush=True)
                time.sleep(0.05)

    start_ray()
    talker = Talker.remote()
    talker.talk.remote()
    time.sleep(4)  # long enough for worker lines to reach this terminal
    # Printed between two of Ray's batches of worker lines: a batch Ray was printing as the
    # marker printed would straddle it (seen once in a loaded CI run), which is not the stop's doing.
    from ray._private.ray_logging import global_worker_stdstream_dispatcher
    with global_worker_stdstream_dispatcher._lock:
        print("COMMAND OUTPUT ENDS", file=sys.stderr, flush=True)
    if sys.argv[1] == "quiet":
        from tunelab.tune.local_ray import stop_ray_quietly
        stop_ray_quietly()
    """
)


def worker_lines_before_and_after_the_end(mode: str, tmp_path: Path) -> tuple[int, int]:
    script = tmp_path / "talker.py"
    script.write_text(SCRIPT)
    finished = subprocess.run(
        [sys.executable, str(script), mode, str(tmp_path)], capture_output=True, text=True, timeout=180,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert finished.returncode == 0, finished.stderr
    before, _, after = finished.stderr.partition("COMMAND OUTPUT ENDS")
    assert after, finished.stderr
    return before.count("worker line"), after.count("worker line")


def test_a_quiet_stop_prints_no_worker_output_after_the_commands_own(tmp_path: Path) -> None:
    before, after = worker_lines_before_and_after_the_end("quiet", tmp_path)
    assert before > 5, "worker lines reach the terminal while the command runs"
    assert after == 0


def test_without_the_quiet_stop_worker_lines_follow_the_output(tmp_path: Path) -> None:
    """The control: Ray's own shutdown at interpreter exit prints workers' last lines."""
    _, after = worker_lines_before_and_after_the_end("plain", tmp_path)
    assert after > 0


def test_a_command_stops_the_ray_it_started_and_only_that(tmp_path: Path) -> None:
    script = tmp_path / "command.py"
    script.write_text(textwrap.dedent(
        """
        import sys
        import ray
        import tunelab.cli
        from tunelab.cli import main
        from tunelab.tune.local_ray import start_ray

        if sys.argv[1] == "caller's own":
            start_ray()
        # A command that starts Ray, as `tunelab run` does.
        tunelab.cli.app.command("starts-ray")(start_ray)
        main(["starts-ray"])
        print("ray still up:", ray.is_initialized())
        """
    ))

    def ray_after_the_command(ray_before: str) -> str:
        finished = subprocess.run([sys.executable, str(script), ray_before], capture_output=True, text=True, timeout=180)
        assert finished.returncode == 0, finished.stderr
        return finished.stdout.strip().splitlines()[-1]

    assert ray_after_the_command("none") == "ray still up: False"
    assert ray_after_the_command("caller's own") == "ray still up: True"
