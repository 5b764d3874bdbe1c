"""Checks shared by the data sets that read a user's files, and how a path is shown."""

from __future__ import annotations

import os
from pathlib import Path

from tunelab.errors import DataError


def shown(path: Path) -> str:
    """A path as the user would write it: relative to the working folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def existing_file(path: str, option: str, suffixes: tuple[str, ...]) -> Path:
    """`path` as a readable, non-empty file with one of `suffixes`, or a DataError saying why not."""
    file = Path(path)
    if not file.exists():
        raise DataError(option, f"no such file {shown(file)}")
    if file.is_dir():
        raise DataError(option, f"{shown(file)} is a folder; expected a {' or '.join(suffixes)} file")
    if file.suffix.lower() not in suffixes:
        raise DataError(option, f"{shown(file)}: expected a {' or '.join(suffixes)} file")
    if not os.access(file, os.R_OK):
        raise DataError(option, f"cannot read {shown(file)}: permission denied")
    if file.stat().st_size == 0:
        raise DataError(option, f"{shown(file)} is empty")
    return file


def existing_folder(path: str, option: str) -> Path:
    folder = Path(path)
    if not folder.exists():
        raise DataError(option, f"no such folder {shown(folder)}")
    if not folder.is_dir():
        raise DataError(option, f"{shown(folder)} is a file; expected a folder")
    return folder
