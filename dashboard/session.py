"""The chosen study: kept in st.session_state, mirrored in the URL (`?study=NAME`), picked in
the sidebar or on the Studies page, and loaded for the page being shown."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from tunelab.errors import StoreError
from tunelab.store import StudyTables, schema
from tunelab_dashboard import loaders
from tunelab_dashboard.settings import REFRESH_SECONDS, current_storage_root

STUDY_KEY = "study"  # session state and query parameter
PICKER_KEY = "study_picker"
URL_READ_KEY = "study_url_read"


def storage_root() -> Path:
    return current_storage_root()


def choose_study(name: str) -> None:
    st.session_state[STUDY_KEY] = name


def chosen_study() -> str | None:
    return st.session_state.get(STUDY_KEY)


def study_picker(summaries: pd.DataFrame) -> str | None:
    """Sidebar chooser. The URL names the study when a session starts; after that the session
    drives the URL, so a page opened from a shared link shows the same study."""
    names = summaries["name"].tolist()
    if URL_READ_KEY not in st.session_state:
        st.session_state[URL_READ_KEY] = True
        wanted = st.query_params.get(STUDY_KEY)
        if wanted in names:
            choose_study(wanted)
        elif wanted:
            st.sidebar.warning(f"No study {wanted!r} in this storage.")
    if chosen_study() not in names:
        if not names:
            st.session_state.pop(STUDY_KEY, None)
            st.query_params.pop(STUDY_KEY, None)
            return None
        choose_study(_most_recent(summaries))
    # A widget of its own, synced from the session each run: the choice survives the list of
    # options changing when a new study appears.
    st.session_state[PICKER_KEY] = chosen_study()
    labels = dict(zip(names, _status_labels(summaries)))
    st.sidebar.selectbox(
        "Study",
        names,
        key=PICKER_KEY,
        format_func=lambda name: f"{name} ({labels[name]})",
        on_change=lambda: choose_study(st.session_state[PICKER_KEY]),
    )
    st.query_params[STUDY_KEY] = chosen_study()
    return chosen_study()


def open_chosen_study() -> tuple[str, StudyTables]:
    """The chosen study's tables, or a note (and the page stops) when there is none to show."""
    name = chosen_study()
    storage = storage_root()
    if name is None:
        st.info(f"No study to show: {storage} holds none yet. Start one with `tunelab run FILE --storage {storage}`.")
        st.stop()
    try:
        tables = loaders.study_tables(storage, name, loaders.study_revision(storage, name))
    except StoreError as exc:
        st.error(f"Study **{name}** cannot be read: {exc}")
        st.stop()
    return name, tables


def study_header(title: str, tables: StudyTables) -> None:
    study = tables.study
    st.title(title)
    st.caption(
        f"Study **{study.get('name')}** · {study.get('status')} · {study.get('model')} on {study.get('dataset')} · "
        f"{study.get('searcher')} + {study.get('scheduler')} · objective {study.get('objective_metric')} "
        f"({study.get('objective_mode')})"
    )


def keep_fresh(storage: Path) -> None:
    """While the chosen study runs, rerun the page whenever the writer adds rows. The status
    is read at the study's current revision, not from the studies list, whose cache may still
    say "running" for a few seconds after the study ends."""
    name = chosen_study()
    if name is None:
        return
    revision = loaders.study_revision(storage, name)
    if loaders.study_status(storage, name, revision) != schema.STUDY_RUNNING:
        return
    with st.sidebar:
        _watch_store(storage, name, revision)


@st.fragment(run_every=REFRESH_SECONDS)
def _watch_store(storage: Path, name: str, revision_shown: loaders.Revision) -> None:
    # A fragment rerun is cheap (a few stat calls); the whole page reruns only on new data.
    st.caption(f":green[●] live: study running, checking for new results every {REFRESH_SECONDS} s")
    if loaders.study_revision(storage, name) != revision_shown:
        st.rerun()


def _most_recent(summaries: pd.DataFrame) -> str:
    started = pd.to_datetime(summaries["started_at"], utc=True, errors="coerce")
    if started.notna().any():
        return str(summaries.loc[started.idxmax(), "name"])
    return str(summaries["name"].iloc[0])


def _status_labels(summaries: pd.DataFrame) -> list[str]:
    return [
        "unreadable" if isinstance(error, str) else str(status)
        for status, error in zip(summaries["status"], summaries["error"])
    ]
