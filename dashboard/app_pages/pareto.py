"""Pareto: a multi-objective study's trade-offs — two objectives against each other with the
front highlighted (a click opens that trial's curves), and the hypervolume as trials finished."""

from __future__ import annotations

import streamlit as st

from tunelab import analysis
from tunelab.analysis import objectives as pareto
from tunelab_dashboard import charts, pareto_charts, session, views

name, tables = session.open_chosen_study()
session.study_header(f"Pareto — {name}", tables)
objectives = pareto.study_objectives(tables.study)
if len(objectives) < 2:
    st.info(f"This study has one objective ({objectives[0][0]}, {objectives[0][1]}imised): it has a best trial, "
            "not a Pareto front. A study trades objectives off when its experiment file lists several under "
            "`objective:`.")
    st.stop()

metrics = [metric for metric, _ in objectives]
modes = dict(objectives)
points = pareto.pareto_points(tables.trials, objectives)
st.caption("Objectives: " + " · ".join(f"{m} ({'lower' if modes[m] == 'min' else 'higher'} is better)" for m in metrics)
           + f" · primary (the scheduler's, and each trial's best epoch's): {tables.study.get('objective_metric')}")
if points.empty:
    st.info("No trial has ended on its own yet: the front appears as trials finish.")
    st.stop()

axes = st.columns(2)
x = axes[0].selectbox("x axis", metrics, index=0, key="pareto_x")
y = axes[1].selectbox("y axis", [metric for metric in metrics if metric != x], key="pareto_y")  # never x again
front = points[points["pareto"]]
clicked = st.plotly_chart(pareto_charts.front_scatter(points, x, y, connect=len(objectives) == 2),
                          on_select="rerun", selection_mode="points", key="pareto_scatter")
# With three or more objectives a front member may look beaten in the two shown: say why.
over_all = "" if len(objectives) == 2 else f" (in all {len(objectives)} objectives, so some may look beaten in these two)"
st.caption(f"{len(front)} of {len(points)} trials that ran to their own end are on the front: no other is at least "
           f"as good in every objective and better in one{over_all}. Trials the scheduler stopped have no final "
           "values and are not shown. Click a point for its curves.")

selected = [point.get("customdata") for point in (clicked.selection.points if clicked else []) if point.get("customdata")]
if selected:
    st.session_state["pareto_trial"] = selected[0]
labels = {row["trial_id"]: views.trial_choice_label(row) + (" — on the front" if row["pareto"] else "")
          for row in points.sort_values("pareto", ascending=False, kind="stable").to_dict("records")}
trial_id = st.selectbox("Trial", list(labels), format_func=labels.__getitem__, key="pareto_trial")
kinds = analysis.available_kinds(tables)
if kinds:
    kind = st.segmented_control("Curves", kinds, default=kinds[0], key="pareto_kind") or kinds[0]
    curves, best_epoch = analysis.train_val_curves(tables, trial_id, kind)
    stop_epoch = tables.trials.set_index("trial_id").at[trial_id, "stop_epoch"]
    st.plotly_chart(charts.train_val(curves, kind, best_epoch, stop_epoch), key="pareto_curves")

st.subheader("Hypervolume")
history = pareto.hypervolume_history(tables.trials)
if history.empty:
    st.info("No hypervolume yet.")
else:
    st.plotly_chart(pareto_charts.hypervolume_history(history))
    reference = tables.study.get(pareto.REFERENCE)
    st.caption(f"The volume of objective space the front dominates, up to the reference point {reference} "
               f"({', '.join(metrics)}): each objective's worst finished value, a tenth of the range further. "
               "The whole history is measured at one reference, so it never falls.")
