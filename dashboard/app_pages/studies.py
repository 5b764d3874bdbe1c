"""Studies: every study in the storage, how far it got, and which one the other pages show."""

from __future__ import annotations

import streamlit as st

from tunelab_dashboard import loaders, session, views

TABLE_KEY = "studies_table"

storage = session.storage_root()
st.title("Studies")
st.caption(f"Storage `{storage}`")
summaries = loaders.study_summaries(storage)

if not storage.is_dir():
    st.warning(f"There is no folder {storage}. Point the dashboard at a results folder with `--storage DIR`.")
    st.stop()
if summaries.empty:
    st.info(f"No studies in {storage} yet. Start one with `tunelab run FILE --storage {storage}`; it appears here as soon as it starts.")
    st.stop()

names = summaries["name"].tolist()


def pick_selected_row() -> None:
    rows = st.session_state[TABLE_KEY].selection.rows
    if rows:
        session.choose_study(names[rows[0]])


chosen = session.chosen_study()
st.dataframe(
    views.studies_view(summaries),
    hide_index=True,
    key=TABLE_KEY,
    on_select=pick_selected_row,
    selection_mode="single-row",
    selection_default={"selection": {"rows": [names.index(chosen)] if chosen in names else []}},
)
st.caption("Select a row (or use the sidebar) to choose the study the other pages show.")

for name, error in zip(summaries["name"], summaries["error"]):
    if isinstance(error, str):
        st.error(f"Study **{name}** cannot be read: {error}")

if chosen is not None:
    st.subheader(f"Chosen: {chosen}")
    columns = st.columns(5)
    for column, (path, label) in zip(
        columns,
        [
            ("app_pages/overview.py", "Overview"),
            ("app_pages/early_stopping.py", "Early stopping"),
            ("app_pages/bias_variance.py", "Bias & variance"),
            ("app_pages/hyperparameters.py", "Hyperparameters"),
            ("app_pages/compare.py", "Compare"),
        ],
    ):
        column.page_link(path, label=label, query_params={session.STUDY_KEY: chosen})
