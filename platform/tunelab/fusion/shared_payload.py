"""What a fused study hands each of its local fusion hosts (its data and setup), put once in
memory the hosts map rather than pickled through every host's pipe: N hosts of a data set of
several GB would otherwise each wait for their copy and hold it, N copies in all.

Pickle protocol 5 lifts the arrays' bytes out of the pickle (`buffer_callback`). The driver
writes them into one anonymous in-memory file (a memfd, Linux) that it keeps open while its
hosts live; a host opens that file through `/proc/<driver>/fd/<n>`, maps it read-only and
unpickles with views of it as the arrays' buffers. So every host's arrays are the same pages, as
they are in Ray's object store for Ray's hosts, and read-only like them: training never writes
to its data (`training.loop.to_device`). When the driver closes the file and its hosts end, the
kernel frees it; nothing is left on disk, even after a SIGKILL.

Where there is no memfd, the payload carries the whole pickle, a copy per host as before.
"""

from __future__ import annotations

import mmap
import os
import pickle
import weakref
from dataclasses import dataclass
from typing import Any

# Each array's bytes start on a boundary that suits any dtype (and SIMD loads).
ALIGNMENT = 64


@dataclass(frozen=True)
class SharedPayload:
    """A value as a host receives it: the pickle without its arrays' bytes, and where those are."""

    pickled: bytes
    spans: tuple[tuple[int, int], ...] = ()  # each lifted buffer: its offset and length in the file
    path: str | None = None  # the driver's memfd, as another process of its user opens it
    size: int = 0

    def load(self) -> Any:
        """The value, its arrays views of the shared file (read-only); or unpickled whole."""
        if self.path is None:
            return pickle.loads(self.pickled)
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            mapped = mmap.mmap(descriptor, self.size, prot=mmap.PROT_READ)
        finally:
            os.close(descriptor)  # the mapping keeps the file
        whole = memoryview(mapped)
        return pickle.loads(self.pickled, buffers=[whole[offset : offset + length] for offset, length in self.spans])


class SharedValue:
    """The driver's side: the value written once into a memfd, open until `close` (or until this
    object is collected)."""

    def __init__(self, value: Any) -> None:
        if not hasattr(os, "memfd_create"):
            self.payload = SharedPayload(pickle.dumps(value, protocol=5))
            self.close = lambda: None
            return
        buffers: list[pickle.PickleBuffer] = []
        pickled = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
        raws = [buffer.raw() for buffer in buffers]
        spans, size = [], 0
        for raw in raws:
            spans.append((size, raw.nbytes))
            size += -(-raw.nbytes // ALIGNMENT) * ALIGNMENT
        descriptor = os.memfd_create("tunelab-study-data", os.MFD_CLOEXEC)  # hosts open it by path, not inherit it
        self.close = weakref.finalize(self, os.close, descriptor)
        os.ftruncate(descriptor, max(size, 1))
        with mmap.mmap(descriptor, max(size, 1)) as mapped:
            for (offset, length), raw in zip(spans, raws):
                mapped[offset : offset + length] = raw.cast("B")
        self.payload = SharedPayload(pickled, tuple(spans), f"/proc/{os.getpid()}/fd/{descriptor}", max(size, 1))
