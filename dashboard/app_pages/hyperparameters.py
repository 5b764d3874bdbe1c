"""Hyperparameters: which mattered (fANOVA / PED-ANOVA), how the good trials' values line up
(parallel coordinates), and the objective against each parameter alone (slices)."""

from __future__ import annotations

import streamlit as st

from tunelab import analysis
from tunelab_dashboard import charts, loaders, session

METHODS = {"fanova": "fANOVA", "ped_anova": "PED-ANOVA"}

name, tables = session.open_chosen_study()
session.study_header(f"Hyperparameters — {name}", tables)
storage = session.storage_root()
metric = str(tables.study.get("objective_metric"))
mode = str(tables.study.get("objective_mode"))

st.subheader("Importance")
method = st.segmented_control("Method", list(METHODS), default="fanova", format_func=METHODS.__getitem__, key="importance_method") or "fanova"
importance = loaders.param_importance(storage, name, loaders.study_revision(storage, name), method)
if importance.empty:
    st.info("Importance needs at least 3 trials with a finite objective.")
else:
    st.plotly_chart(charts.importance(importance, METHODS[method]))
    st.caption("Parameters that only some trials have (momentum only for SGD) count through the parameter they depend on.")

st.subheader("Parallel coordinates")
parallel = analysis.parallel_coordinates(tables)
if parallel.empty:
    st.info("No trial has a finite objective yet.")
else:
    st.plotly_chart(charts.parallel_coordinates(parallel, metric, mode))
    st.caption("One line per trial, coloured by its objective (brightest = best). Drag along an axis to filter.")

st.subheader("Slices")
params = [column for column in parallel.columns if column not in ("trial_number", "objective")]
columns = st.columns(2)
for index, param in enumerate(params):
    points = analysis.slice_points(tables, param)
    with columns[index % 2]:
        if points.empty:
            st.caption(f"{param}: no trial with this parameter has a finite objective yet.")
        else:
            st.plotly_chart(charts.slice_plot(points, param, metric), key=f"slice_{param}")
