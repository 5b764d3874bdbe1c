"""Errors a user can cause. The CLI prints their message on one line, without a traceback."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first non-empty line (for one-line errors)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


# What str.splitlines() breaks a line at: a message holding one would print as several lines.
_LINE_BREAKS = {ord(char): repr(char)[1:-1] for char in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}
MAX_MESSAGE_CHARS = 1000


def one_line(text: str) -> str:
    """`text` with its line breaks written as escapes (`\\n`) and cut at MAX_MESSAGE_CHARS: a
    key or a path from a file can hold a line break, a value can be a megabyte long, and the
    message that quotes them must still print as one readable line."""
    return _cut(text.translate(_LINE_BREAKS), MAX_MESSAGE_CHARS)


def shown_value(value: object, limit: int = 60) -> str:
    """A value from a file as a message quotes it: its repr, cut short."""
    return _cut(repr(value), limit)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class TunelabError(Exception):
    """Something went wrong that the user can act on; the message says what to change."""

    exit_code = 1


class BadInputError(TunelabError):
    """Bad input (experiment file, CLI argument, storage path): exit code 2, nothing written."""

    exit_code = 2


class SpecError(BadInputError):
    """An experiment file that does not validate. Names the file and the field path."""

    def __init__(self, source: str, field: str, message: str) -> None:
        self.source = source
        self.field = field
        self.message = message
        where = f"{source}: {field}: " if field else f"{source}: "
        super().__init__(one_line(where + message))


class StoreError(TunelabError):
    """A results table that cannot be read (missing, truncated, corrupt)."""


class DataError(BadInputError):
    """A data set that cannot be read as the experiment file declares it. `option` is the
    `dataset.` option to change (path, target, ...); the message names the data file."""

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        self.message = message
        super().__init__(message)


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C ended a study: it is stored as `interrupted`, and `tunelab resume` continues it."""

    def __init__(self, study: str) -> None:
        super().__init__(f"study {study!r} was interrupted; continue it with `tunelab resume {study}`")
        self.study = study
