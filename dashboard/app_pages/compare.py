"""Compare: two to five trials side by side — parameters, curves, final metrics, confusion matrices."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from tunelab import analysis
from tunelab_dashboard import charts, session, views

MAX_TRIALS = 5

name, tables = session.open_chosen_study()
session.study_header(f"Compare — {name}", tables)

if len(tables.trials) < 2:
    st.info("Comparing needs at least two trials.")
    st.stop()

ranked = analysis.trial_table(tables)
labels = {row["trial_id"]: views.trial_choice_label({"trial_number": row["trial"], "status": row["status"]}) for _, row in ranked.iterrows()}
chosen = st.multiselect(
    "Trials (best first)", list(labels), default=list(labels)[:3], format_func=labels.__getitem__,
    max_selections=MAX_TRIALS, key="compared_trials",
)
if len(chosen) < 2:
    st.info(f"Choose 2 to {MAX_TRIALS} trials.")
    st.stop()

left, right = st.columns(2)
left.markdown("**Parameters**")
left.dataframe(views.displayable(analysis.compare_params(tables, chosen)))
right.markdown("**Outcome and final metrics**")
right.dataframe(views.displayable(analysis.compare_metrics(tables, chosen)))

kinds = analysis.available_kinds(tables)
if kinds:
    kind = st.segmented_control("Curves", kinds, default=kinds[0], key="compare_kind") or kinds[0]
    curves = pd.concat(
        [analysis.train_val_curves(tables, trial_id, kind)[0].assign(trial_id=trial_id) for trial_id in chosen],
        ignore_index=True,
    )
    short_labels = {trial_id: labels[trial_id].split(" — ")[0] for trial_id in chosen}
    st.plotly_chart(charts.compared_curves(curves, kind, short_labels))
    st.caption("Validation solid, training dashed.")

st.markdown("**Test confusion matrices** (rows: true class)")
columns = st.columns(len(chosen))
for column, trial_id in zip(columns, chosen):
    matrix = analysis.confusion_matrix(tables, trial_id)
    with column:
        st.caption(labels[trial_id])
        if matrix is None:
            st.caption("none stored (not a classifier, or stopped before its test evaluation)")
        else:
            st.plotly_chart(charts.confusion(matrix, analysis.class_names(tables)), key=f"confusion_{trial_id}")
