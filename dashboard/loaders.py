"""Cached reads of the results store, shared by every page.

A study's cache key includes its *revision* (the names and modification times of its files):
the writer replaces a table or adds an epoch part by renaming a new file in, so the next rerun
after a write reads fresh rows, and an unchanged study is read once. The TTLs bound memory and
keep the studies list (with the running durations) current.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from tunelab import analysis
from tunelab.errors import StoreError
from tunelab.store import StudyPaths, StudyTables, read_study
from tunelab.store.layout import AUDIT_TABLE, CONFIRM_TABLE
from tunelab.trust import report as trust

Revision = tuple[tuple[str, int], ...]

STUDIES_TTL_SECONDS = 5
STUDY_TTL_SECONDS = 120


def study_revision(storage: Path, name: str) -> Revision:
    paths = StudyPaths.of(storage, name)
    stamps: list[tuple[str, int]] = []
    side_tables = (paths.root / name for name in ("biasvar.parquet", CONFIRM_TABLE, AUDIT_TABLE))
    for path in (paths.study, paths.trials, *side_tables, *paths.epoch_parts()):
        try:
            stamps.append((path.name, path.stat().st_mtime_ns))
        except FileNotFoundError:
            continue  # not written yet, or an epoch part merged away just now
    return tuple(stamps)


@st.cache_data(ttl=STUDIES_TTL_SECONDS, show_spinner=False)
def study_summaries(storage: Path) -> pd.DataFrame:
    return analysis.study_summaries(storage)


@st.cache_data(ttl=STUDY_TTL_SECONDS, max_entries=32, show_spinner=False)
def study_status(storage: Path, name: str, revision: Revision) -> str | None:
    """The study's status as last written (None when its study table cannot be read)."""
    try:
        return str(read_study(StudyPaths.of(storage, name)).get("status"))
    except StoreError:
        return None


@st.cache_data(ttl=STUDY_TTL_SECONDS, max_entries=8, show_spinner="Reading the study…")
def study_tables(storage: Path, name: str, revision: Revision) -> StudyTables:
    return analysis.load_study(storage, name)


@st.cache_data(ttl=STUDY_TTL_SECONDS, max_entries=16, show_spinner="Computing parameter importance…")
def param_importance(storage: Path, name: str, revision: Revision, method: str) -> pd.DataFrame:
    return analysis.param_importance(study_tables(storage, name, revision), method)


@st.cache_data(ttl=STUDY_TTL_SECONDS, max_entries=8, show_spinner=False)
def decomposition(storage: Path, name: str, revision: Revision) -> pd.DataFrame | None:
    return analysis.decomposition(StudyPaths.of(storage, name).root)


@st.cache_data(ttl=STUDY_TTL_SECONDS, max_entries=8, show_spinner=False)
def learning_curves(storage: Path, name: str, revision: Revision) -> pd.DataFrame | None:
    return analysis.learning_curves(StudyPaths.of(storage, name).root)


@st.cache_data(ttl=STUDY_TTL_SECONDS, max_entries=8, show_spinner="Computing the leaderboard…")
def confirmation(storage: Path, name: str, revision: Revision) -> trust.Confirmation | None:
    return trust.confirmation(StudyPaths.of(storage, name))


@st.cache_data(ttl=STUDY_TTL_SECONDS, max_entries=8, show_spinner=False)
def audit(storage: Path, name: str, revision: Revision, top_k: int) -> tuple[analysis.trust.AuditReport, pd.DataFrame] | None:
    return trust.audit(StudyPaths.of(storage, name), top_k)
