"""Where the dashboard reads from. Plain Python, so it can be checked without Streamlit."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from tunelab.store.layout import DEFAULT_STORAGE

STORAGE_ENV = "TUNELAB_STORAGE"
# A running study's pages look for new rows this often; the writer flushes at least every 2 s.
REFRESH_SECONDS = 5


def storage_root(argv: Sequence[str], environ: Mapping[str, str]) -> Path:
    """`--storage DIR` after `streamlit run app.py --`, else $TUNELAB_STORAGE, else the default.

    Unknown arguments are ignored: under AppTest the arguments are pytest's.
    """
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--storage", default=None)
    given, _ = parser.parse_known_args(list(argv))
    chosen = given.storage or environ.get(STORAGE_ENV) or DEFAULT_STORAGE
    return Path(chosen).expanduser().resolve()


def current_storage_root() -> Path:
    import sys

    return storage_root(sys.argv[1:], os.environ)
