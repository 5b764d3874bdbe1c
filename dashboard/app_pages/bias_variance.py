"""Bias & variance: where each trial sits between underfitting and overfitting, what to do
about it, a validation curve per hyperparameter, and the decomposition where one exists."""

from __future__ import annotations

import streamlit as st

from tunelab import analysis
from tunelab.errors import StoreError
from tunelab_dashboard import charts, loaders, session, views

name, tables = session.open_chosen_study()
session.study_header(f"Bias & variance — {name}", tables)
storage = session.storage_root()

st.subheader("Fit per trial")
st.caption(analysis.FIT_RULE)
with st.expander("Thresholds"):
    st.caption(
        "By default a trial has high bias when its training error exceeds the lowest validation error of a judged "
        "trial, and high variance when its gap does (relative to what the best trial achieved). Set your own "
        "to judge against a target error."
    )
    custom = st.toggle("Use my own thresholds", key="custom_thresholds")
    columns = st.columns(2)
    bias_threshold = columns[0].number_input("Training error above", min_value=0.0, value=0.05, format="%.4f", disabled=not custom)
    variance_threshold = columns[1].number_input("Gap above", min_value=0.0, value=0.05, format="%.4f", disabled=not custom)
thresholds = (bias_threshold, variance_threshold) if custom else None
diagnosis = analysis.fit_diagnosis(tables, *(thresholds or (None, None)))
judged = diagnosis[diagnosis["judged"].astype(bool)]
if diagnosis.empty:
    st.info("No trial has a training and validation error yet: this fills in after the first epochs.")
else:
    st.markdown(analysis.fit_summary(diagnosis))
    if judged.empty:
        st.info("No trial has run to its own end yet: fit is judged once one has.")
    else:
        st.plotly_chart(charts.fit_map(judged, thresholds))
        st.dataframe(views.regions_table(judged, analysis.REMEDIES), hide_index=True)
    groups = analysis.fit_groups(diagnosis)
    if not groups.empty:
        st.markdown("**Not judged**")
        st.dataframe(groups, hide_index=True)
        with st.expander("Trials not judged"):
            st.dataframe(views.not_judged_table(diagnosis), hide_index=True)

st.subheader("Validation curve")
params = [column.removeprefix("param_") for column in tables.trials.columns if column.startswith("param_")]
if not params:
    st.info("This study has no searched parameters yet.")
else:
    param = st.selectbox("Hyperparameter", params, key="validation_curve_param")
    curve = analysis.validation_curve(tables, param)
    if curve.empty:
        st.info(f"No trial with a value of {param} has run to its own end yet.")
    else:
        st.plotly_chart(charts.validation_curve(curve, param))
        st.caption(
            "Mean error at the best epoch of each trial whose fit is judged (the rule above); many distinct values "
            "are grouped into quantile bins."
        )

st.subheader("Bias–variance decomposition")
revision = loaders.study_revision(storage, name)
try:
    table = loaders.decomposition(storage, name, revision)
    curves = loaders.learning_curves(storage, name, revision)
except StoreError as exc:
    st.error(str(exc))
else:
    if table is None or table.empty:
        st.info(
            f"No decomposition for this study yet: `tunelab biasvar {name}` retrains its best trials and splits "
            "their test error into bias (what every retrained model gets wrong) and variance (what depends on the run)."
        )
    else:
        st.plotly_chart(charts.decomposition_bars(table))
        st.dataframe(views.decomposition_table(table), hide_index=True)
        st.caption("Expected test loss over the retrained rounds = bias + (net) variance; see the README for how to read it.")
    if curves is not None and not curves.empty:
        st.subheader("Learning curves")
        st.plotly_chart(charts.learning_curves(curves))
        st.caption("Both errors high and flat: a bias problem. A gap that closes with more data: a variance problem.")
