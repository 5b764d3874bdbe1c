"""A fusion host as a process of its own, for a fused study that runs no Ray
(`tunelab.tune.host_pools.LocalHostPool` starts it: `python -m tunelab.fusion.host_process
REQUESTS_FD ANSWERS_FD`).

It imports what a host needs at once (PyTorch, the engine), while the driver is still loading
the data; becomes the host at its first call (OPEN, with the study's data and setup, in memory
the driver shares with all its hosts: `shared_payload`); then answers the driver's calls in
order, each answer (True, return value) or (False, the error it raised), until the driver hangs
up. A process of its own, not a `multiprocessing` child: those
import the driver's main script again, which runs a user's unguarded `tunelab.run(...)` script
once more in every host.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from tunelab.fusion.shared_payload import SharedPayload

# The first call: become the host, with the study's data and setup (`_become_host`'s arguments).
OPEN = "open"


def serve(requests: Connection, answers: Connection) -> None:
    # Ctrl-C in a terminal reaches every process of its group: the driver's to handle (it ends
    # the study resumable, then stops its hosts), not a reason for a host to die mid-epoch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):  # and a driver killed outright takes its hosts with it
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    from tunelab.fusion.host import FusionHost  # PyTorch and the engine, before the data comes

    host: Any = None
    while True:
        try:
            method, args = requests.recv()
        except EOFError:
            return
        try:
            if method == OPEN:
                host = _become_host(FusionHost, *args)
            answer: tuple[bool, Any] = (True, None if method == OPEN else getattr(host, method)(*args))
        except Exception as error:
            if method == OPEN:  # every later call says why the host could not start
                host = _Unstarted(error)
            answer = (False, error)
        try:
            answers.send(answer)
        except (pickle.PicklingError, TypeError, AttributeError):  # an error that does not pickle: its words do
            answers.send((False, RuntimeError("".join(traceback.format_exception_only(answer[1])).strip())))


@dataclass
class _Unstarted:
    error: Exception

    def __getattr__(self, method: str) -> Any:
        raise self.error


def _become_host(host_class: type, shared: SharedPayload, threads: int, max_members: int, log: str) -> Any:
    data, setup = shared.load()
    output = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for stream in (1, 2):  # as Ray keeps its workers' output in the study's log
        os.dup2(output, stream)
    os.close(output)
    return host_class(data, setup, threads, max_members, "cpu")


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False))
