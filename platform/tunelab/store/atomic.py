"""Write a file so that a reader sees the old file or the new one, never half."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tunelab.store.driver_lock import take_lock


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(_arrow_safe(frame), preserve_index=False)
    with _replacing(path) as sink:
        pq.write_table(table, sink)


def write_text_atomic(text: str, path: Path) -> None:
    with _replacing(path) as sink:
        sink.write(text.encode("utf-8"))


@contextmanager
def _replacing(path: Path) -> Iterator[BinaryIO]:
    """A file to write that takes `path`'s place, whole, once the block ends without error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600 files; a dashboard running as another user must read them.
        os.chmod(temporary, 0o644)
        with os.fdopen(handle, "wb") as sink:
            yield sink
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def one_updater(path: Path) -> Iterator[None]:
    """Hold the block while others who update `path` wait: a read-merge-write of two processes
    at once (two `tunelab biasvar` runs ending together) would otherwise keep one's rows only.
    On a file system without locks the update runs unguarded."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a", encoding="utf-8") as handle:
        take_lock(handle, wait=True)
        yield  # the lock goes when the file closes


def _arrow_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns of mixed Python types (a choice of 32 or 'full') become text, not an error."""
    converted = {}
    for column in frame.columns:
        if frame[column].dtype == object:
            try:
                pa.array(frame[column], from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                converted[column] = frame[column].map(lambda v: None if v is None else str(v))
    return frame.assign(**converted) if converted else frame
