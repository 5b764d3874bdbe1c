"""Overview: the best trial, how the search improved, and every trial in a filterable table."""

from __future__ import annotations

import io

import streamlit as st

from tunelab import analysis, summary
from tunelab_dashboard import charts, session, views

name, tables = session.open_chosen_study()
session.study_header(f"Overview — {name}", tables)
metric = str(tables.study.get("objective_metric"))

if tables.trials.empty:
    st.info("No trials yet: they appear here as soon as the study starts them.")
    st.stop()

best = analysis.best_trial(tables)
st.subheader("Best trial")
if best is None:
    st.info("No trial has reached a finite objective yet.")
else:
    with st.container(border=True):
        figures = st.columns(4)
        figures[0].metric(f"Trial {int(best['trial_number'])} · {metric}", views.format_value(best["objective"]))
        figures[1].metric("Best epoch", views.format_value(best.get("best_epoch")))
        figures[2].metric("Epochs trained", views.format_value(best.get("epochs")))
        figures[3].metric("How it ended", views.status_label(best["status"]).replace("stopped by ", "by "))
        left, right = st.columns(2)
        left.dataframe(views.key_value_table(best, "param_", "parameter"), hide_index=True)
        right.dataframe(views.key_value_table(best, "final_", "metric at the best epoch"), hide_index=True)

st.subheader("Optimisation history")
st.plotly_chart(charts.optimisation_history(analysis.optimisation_history(tables), metric))

st.subheader("Trials")
table = analysis.trial_table(tables)
statuses = sorted(table["status"].dropna().unique())
chosen_statuses = st.multiselect("Status", statuses, default=statuses, format_func=views.status_label)
ranges: dict[str, tuple[float, float]] = {}
with st.expander("Filter by parameter ranges"):
    for param, (low, high) in views.numeric_ranges(table).items():
        picked = st.slider(param, min_value=low, max_value=high, value=(low, high), format="%.4g")
        if picked != (low, high):  # untouched: keep the trials a condition left without this param
            ranges[param] = picked
shown = analysis.filter_trials(table, chosen_statuses, ranges)
fusion = summary.fusion_summary(tables.trials)
if fusion is not None:
    st.caption(fusion.capitalize())
st.caption(f"{len(shown)} of {len(table)} trials · click a column header to sort")
st.dataframe(views.displayable(shown), hide_index=True, column_config={"trial_id": None})

parquet = io.BytesIO()
views.displayable(shown).to_parquet(parquet, index=False)
downloads = st.columns(2)
downloads[0].download_button("Download CSV", shown.to_csv(index=False), file_name=f"{name}-trials.csv", mime="text/csv")
downloads[1].download_button(
    "Download Parquet", parquet.getvalue(), file_name=f"{name}-trials.parquet", mime="application/vnd.apache.parquet"
)
