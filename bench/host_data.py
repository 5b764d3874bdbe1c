"""How a fused study's local fusion hosts get its data: pickled through each host's pipe (a copy
per host), against once into memory they all map (`tunelab.fusion.shared_payload`, what
`tunelab run` does).

For each data-set size: the seconds until every host holds the data and is ready to train, and
the memory the hosts hold privately for it (the growth of their unique set sizes). The shared
way holds one more copy, in the shared file, whatever the number of hosts. Figures in the same run, side by side; the hosts are real host processes.

    python bench/host_data.py                 # 256 MB and 1 GB of training inputs, 2 hosts
    python bench/host_data.py --hosts 8       # as a larger machine would start
    python bench/host_data.py --smoke         # 8 MB: every figure, in seconds
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import time
from dataclasses import replace
from pathlib import Path
import numpy as np
import yaml

from tunelab.datasets import Splits
from tunelab.from_spec import load_study_data, study_setup
from tunelab.fusion.host_process import OPEN
from tunelab.fusion.shared_payload import SharedPayload, SharedValue
from tunelab.spec import parse_spec
from tunelab.training.plan import StudySetup
from tunelab.tune.host_pools import LocalHost

MB = 2**20
EXPERIMENT = {
    "name": "host-data",
    "dataset": {"name": "digits"},
    "model": {"name": "mlp"},
    "search_space": {"learning_rate": {"type": "loguniform", "low": 1e-3, "high": 1e-1}},
    "objective": {"metric": "val_acc"},
    "train": {"max_epochs": 1, "fuse": 16},
}


def unique_kb(pid: int) -> int:
    """The process's private memory (what it alone holds), in kB."""
    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    return sum(int(line.split()[1]) for line in rollup if line.startswith(("Private_Clean:", "Private_Dirty:")))


def hand_to_hosts(payload: SharedPayload, no_data: SharedPayload, hosts: int, log: Path) -> tuple[float, float]:
    """Start `hosts` host processes and open each with the payload: the seconds until all are
    ready (from when the data was ready in the driver), and the MB the hosts hold for it in all."""
    started = [LocalHost() for _ in range(hosts)]
    try:
        for future in [host.call(OPEN, (no_data, 1, 16, str(log))) for host in started]:
            future.result()  # every host up and idle, so only the hand-off is timed
        before = [unique_kb(host.process.pid) for host in started]
        began = time.perf_counter()
        for future in [host.call(OPEN, (payload, 1, 16, str(log))) for host in started]:
            future.result()
        seconds = time.perf_counter() - began
        after = [unique_kb(host.process.pid) for host in started]
        return seconds, sum(max(0, used - base) for used, base in zip(after, before)) / 1024
    finally:
        for host in started:
            host.stop()


def study_data() -> tuple[Splits, StudySetup]:
    spec = parse_spec(yaml.safe_dump(EXPERIMENT), "host-data.yaml")
    return load_study_data(spec), study_setup(spec)


def sized(data: Splits, megabytes: int) -> Splits:
    """The data set's training rows repeated to `megabytes` of inputs."""
    rows = int(megabytes * MB // data.train_x[0].nbytes)
    chosen = np.arange(rows) % len(data.train_y)
    return replace(data, train_x=data.train_x[chosen], train_y=data.train_y[chosen])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--sizes", default="256,1024", help="training inputs in MB, comma-separated")
    parser.add_argument("--smoke", action="store_true", help="8 MB only")
    parser.add_argument("--keep", type=Path, help="write the hosts' log here")
    args = parser.parse_args()
    sizes = [8] if args.smoke else [int(size) for size in args.sizes.split(",")]
    log = (args.keep or Path("/tmp")) / "host-data.log"
    print(f"machine: {os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}; "
          f"{args.hosts} host processes")
    print(f"{'data MB':>8} {'way':<8} {'ready s':>8} {'MB the hosts hold for it':>25}")
    data, setup = study_data()
    no_data = SharedPayload(pickle.dumps((sized(data, 0), setup), protocol=5))
    for megabytes in sizes:
        value = (sized(data, megabytes), setup)
        began = time.perf_counter()
        shared = SharedValue(value)
        written = time.perf_counter() - began
        ways = {"pickled": SharedPayload(pickle.dumps(value, protocol=5)), "shared": shared.payload}
        for way, payload in ways.items():
            seconds, held = hand_to_hosts(payload, no_data, args.hosts, log)
            seconds += written if way == "shared" else 0.0  # its one write counts against it
            print(f"{megabytes:8d} {way:<8} {seconds:8.2f} {held:25.0f}")
        shared.close()


if __name__ == "__main__":
    main()
