"""Arrays decoded once and kept on disk, and the stamps that tell when a source changed.

Generating MNIST-1D or decoding a folder of images takes seconds to minutes; the arrays are
kept under `$TUNELAB_CACHE_DIR` (default ~/.cache/tunelab) in a file named after a hash of
what produced them, so the second study on the same data starts at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

CACHE_DIR_ENV = "TUNELAB_CACHE_DIR"
CACHE_FILE_MODE = 0o644


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_DIR_ENV)
    root = Path(configured).expanduser() if configured else Path.home() / ".cache" / "tunelab"
    return root / "datasets"


def cache_path(prefix: str, key: Any) -> Path:
    """The cache file for `key` (any JSON-able description of what produced the arrays)."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return cache_dir() / f"{prefix}-{digest}.npz"


def read_arrays(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays stored at `path`, or None when there is no usable file (then: regenerate)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {name: stored[name] for name in stored.files}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        # Writes are atomic, so this is a damaged file, not a half-written one: regenerate.
        return None


def write_arrays(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename: a concurrent reader sees no file or a whole one.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); a shared cache must be readable by others.
        os.fchmod(handle, CACHE_FILE_MODE)
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **arrays)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def file_listing(folder: Path) -> list[tuple[str, int, int]]:
    """(path relative to `folder`, size, modification time in ns) of every file below it,
    sorted: what a cache of the folder's decoded contents is keyed on."""
    listing = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            info = path.stat()
            listing.append((str(path.relative_to(folder)), info.st_size, info.st_mtime_ns))
    return listing


def source_stamp(path: str) -> Any:
    """What changes when a data file or folder changes: sizes and modification times."""
    source = Path(path)
    try:
        if source.is_dir():
            return (path, tuple(file_listing(source)))
        info = source.stat()
        return (path, info.st_size, info.st_mtime_ns)
    except OSError:
        return (path, None)  # reading it will say what is wrong
