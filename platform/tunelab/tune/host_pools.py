"""Where a fused study's fusion hosts run: Ray actors, or processes of this machine.

Ray hosts a fused study wherever Ray is up (`local_ray.study_needs_ray`): on a cluster, with
GPUs (Ray gives each host its own), in a program that started Ray itself. A fused study on this
machine's CPUs starts no Ray: its hosts are processes the driver spawns (`LocalHostPool`).

A pool starts hosts and calls their methods (`fusion.host.FusionHost`'s), one call at a time per
host, in the order they were made. A call is pending until its answer is read; reading the answer
of a host whose process died raises HostDied, and what the host's method raised is raised as is.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import socket
import subprocess
import sys
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.datasets import Splits
from tunelab.training.plan import StudySetup
from tunelab.tune.fusion_wiring import HostLayout, local_host_layout, members_per_cohort, ray_host_layout

from tunelab.fusion.host_process import OPEN
from tunelab.fusion.shared_payload import SharedValue

if TYPE_CHECKING:
    from tunelab.spec import Spec


class HostDied(Exception):
    """A fusion host's process ended under it: killed, out of memory, or its node lost."""


class HostPool(ABC):
    """The fusion hosts of one study. `start_host` returns a handle the other methods take."""

    def __init__(self, spec: Spec, layout: HostLayout) -> None:
        self.layout = layout
        self.max_members = members_per_cohort(spec)

    @abstractmethod
    def start_host(self) -> Any: ...

    @abstractmethod
    def placement(self, host: Any) -> dict[str, str]:
        """Where the host trains: its node and GPUs, as a trial's row in the store names them."""

    @abstractmethod
    def call(self, host: Any, method: str, *args: Any) -> Any:
        """Call the host's method; the pending answer."""

    @abstractmethod
    def wait(self, pending: list[Any], timeout: float) -> list[Any]:
        """Those of `pending` answered within `timeout` seconds (at least one when any is)."""

    @abstractmethod
    def answer(self, pending: Any) -> Any:
        """The answer of a call: its method's return value."""

    @abstractmethod
    def room_for_a_host(self) -> bool:
        """Whether a host can start now, in place of one that died."""

    @abstractmethod
    def stop(self, host: Any) -> None:
        """End the host now, whatever it is doing."""

    def close(self) -> None:
        """Let go of what the pool keeps for its hosts, once they are stopped."""


class RayHostPool(HostPool):
    """Each host a Ray actor owning its CPUs or GPU, spread over the cluster's nodes."""

    # How long a dead host's resources may take to come back before its members join the other hosts.
    RELEASE_WAIT_S = 5.0

    def __init__(self, spec: Spec, data: Splits, setup: StudySetup) -> None:
        import ray

        super().__init__(spec, ray_host_layout(spec))
        self.shared = (ray.put(data), ray.put(setup))  # once, for every host

    def start_host(self) -> Any:
        import ray

        from tunelab.fusion.host import FusionHost

        layout = self.layout
        return (
            ray.remote(FusionHost)
            .options(num_cpus=layout.cpus, num_gpus=layout.gpus, scheduling_strategy="SPREAD")
            .remote(*self.shared, threads=max(1, int(layout.cpus)), max_members=self.max_members,
                    device="cuda" if layout.gpus else "cpu")
        )

    def placement(self, host: Any) -> dict[str, str]:
        return self.answer(host.placement.remote())

    def call(self, host: Any, method: str, *args: Any) -> Any:
        return getattr(host, method).remote(*args)

    def wait(self, pending: list[Any], timeout: float) -> list[Any]:
        import ray

        done, _ = ray.wait(pending, num_returns=1, timeout=timeout)
        return done

    def answer(self, pending: Any) -> Any:
        import ray

        try:
            return ray.get(pending)
        except ray.exceptions.RayActorError as error:  # its words on one line: the trials table shows the last
            raise HostDied("the fusion host's Ray actor died (killed, out of memory, or its node lost): "
                           + " ".join(str(error).split())) from error

    def room_for_a_host(self) -> bool:
        """Ray frees a dead actor's CPUs and GPU a moment after it died: wait for them that long,
        so a host killed with the others (which the driver has not heard of yet) does not take in
        its members."""
        import time

        import ray

        deadline = time.monotonic() + self.RELEASE_WAIT_S
        while True:
            available = ray.available_resources()
            if available.get("CPU", 0) >= self.layout.cpus and available.get("GPU", 0) >= self.layout.gpus:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)

    def stop(self, host: Any) -> None:
        import ray

        ray.kill(host)


class LocalHost:
    """A host's process and the driver's two pipes to it. Calls are sent by a thread of their own
    (a call with a member's saved state can outgrow the pipe while the host is mid-epoch) and
    answered in the order they were sent: a thread reads the answers as they come. The driver
    keeps no copy of the host's end of the answers pipe, so a host that dies, even halfway through
    an answer, is an end of file there: every call it has not answered raises HostDied."""

    def __init__(self) -> None:
        requests, self._requests = multiprocessing.Pipe(duplex=False)
        self._answers, answers = multiprocessing.Pipe(duplex=False)
        ends = (requests.fileno(), answers.fileno())
        # The driver's import path, as the host's (a program may have added to sys.path).
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
        self.process = subprocess.Popen([sys.executable, "-m", "tunelab.fusion.host_process", *map(str, ends)],
                                        pass_fds=ends, env=environment, stdin=subprocess.DEVNULL)
        requests.close()
        answers.close()
        self._lock = threading.Lock()
        self._unanswered: deque[Future] = deque()
        self._died: HostDied | None = None
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._send, daemon=True).start()
        threading.Thread(target=self._receive, daemon=True).start()

    def call(self, method: str, args: tuple[Any, ...]) -> Future:
        future: Future = Future()
        with self._lock:
            if self._died is not None:
                future.set_exception(self._died)
                return future
            self._unanswered.append(future)
        self._outbox.put((method, args))
        return future

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        self._outbox.put(None)

    def _send(self) -> None:
        while (request := self._outbox.get()) is not None:
            try:
                self._requests.send(request)
            except OSError:
                return  # it died: `_receive` says so

    def _receive(self) -> None:
        while True:
            try:
                message = self._answers.recv_bytes()
            except (EOFError, OSError):
                break
            try:
                succeeded, value = pickle.loads(message)
            except Exception as error:  # e.g. an error class the driver cannot import: the call fails, not the host
                succeeded, value = False, RuntimeError(f"a fusion host's answer could not be read: {error!r}")
            with self._lock:
                future = self._unanswered.popleft()
            if succeeded:
                future.set_result(value)
            else:
                future.set_exception(value)
        exit_code = self.process.wait()
        with self._lock:
            self._died = HostDied(f"the fusion host's process died (killed, or out of memory; exit code "
                                  f"{exit_code})")
            unanswered, self._unanswered = self._unanswered, deque()
        self._outbox.put(None)
        for future in unanswered:
            future.set_exception(self._died)


class LocalHostPool(HostPool):
    """Each host a process of this machine (`fusion.host_process`) running one `FusionHost`.
    The study's data is in memory all its hosts map (`shared_payload`), as Ray's object store
    holds it for Ray's hosts. What a host prints goes to `log`."""

    def __init__(self, spec: Spec, data: Splits, setup: StudySetup, log: Path) -> None:
        super().__init__(spec, local_host_layout(spec))
        self.shared = SharedValue((data, setup))
        self.start_args = (self.shared.payload, max(1, int(self.layout.cpus)), self.max_members, str(log))

    def start_host(self) -> LocalHost:
        host = _WARM.pop() if _WARM else LocalHost()
        host.call(OPEN, self.start_args)  # a host that could not open says why at its next answer
        return host

    def placement(self, host: LocalHost) -> dict[str, str]:
        return {"node_id": socket.gethostname(), "gpu_ids": ""}

    def call(self, host: LocalHost, method: str, *args: Any) -> Future:
        return host.call(method, args)

    def wait(self, pending: list[Any], timeout: float) -> list[Any]:
        done, _ = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
        return list(done)

    def answer(self, pending: Future) -> Any:
        return pending.result()

    def room_for_a_host(self) -> bool:
        return True  # a dead process's CPUs are free at once

    def stop(self, host: LocalHost) -> None:
        host.stop()  # not waiting for the call it is in: a host mid-epoch would hold up the study's end

    def close(self) -> None:
        self.shared.close()


def host_pool(spec: Spec, data: Splits, setup: StudySetup, log: Path) -> HostPool:
    """Ray's actors where Ray is up, else this machine's processes."""
    from tunelab.tune.local_ray import ray_is_up

    return RayHostPool(spec, data, setup) if ray_is_up() else LocalHostPool(spec, data, setup, log)


# Host processes started before their study's pool (`hosts_started_early`), taken by its first hosts.
_WARM: list[LocalHost] = []


@contextmanager
def hosts_started_early(spec: Spec) -> Iterator[None]:
    """Around a study's start: a study that will host its fused cohorts in local processes
    spawns them now, so they import PyTorch while the driver loads the data and imports the
    rest (a second of a `tunelab run` here). Those its pool did not take are stopped at the end."""
    from tunelab.tune.local_ray import study_needs_ray

    if not study_needs_ray(spec):
        _WARM.extend(LocalHost() for _ in range(local_host_layout(spec).hosts))
    try:
        yield
    finally:
        while _WARM:
            _WARM.pop().stop()
