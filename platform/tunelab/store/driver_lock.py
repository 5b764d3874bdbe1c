"""One driver per study: a lock held on a file in the study's folder while a driver runs it.

A second driver on the same study (a `tunelab resume` while the first still runs, two
`tunelab run`s of one new name started together) would write the same tables and restore
Ray's experiment state under a live tuner. The lock is the operating system's (`flock`): it
goes with the process that holds it, so a killed driver leaves no stale lock behind, and
`tunelab resume` after a crash never needs a flag to break it.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from tunelab.errors import BadInputError

LOCK_FILE = "driver.lock"


@contextmanager
def driver_lock(folder: Path, study_name: str) -> Iterator[None]:
    """Hold the study's driver lock for the block, or refuse at once if another driver has it."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a+", encoding="utf-8") as handle:
        if take_lock(handle):
            # Who holds it, for the message of a driver refused while this one runs.
            handle.truncate(0)
            handle.write(f"driver pid {os.getpid()} on {socket.gethostname()}\n")
            handle.flush()
        else:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise BadInputError(
                f"study {study_name!r} in {folder.parent} is running now ({holder}); "
                "wait for that driver to end or stop it, then `tunelab resume` continues the study"
            )
        yield  # the lock goes when the file closes


def take_lock(handle: IO[str], wait: bool = False) -> bool:
    """False if another process holds the lock (with `wait`, once it lets go: always True).
    A file system without locks (some FUSE mounts) counts as taken: the work runs unguarded,
    as it did before the lock."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        pass
    return True
