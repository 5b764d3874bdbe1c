"""Errors a user can cause. The CLI prints their message on one line, without a traceback."""

from __future__ import annotations


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
        super().__init__(where + message)


class StoreError(TunelabError):
    """A results table that cannot be read (missing, truncated, corrupt)."""
