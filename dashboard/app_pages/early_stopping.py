"""Early stopping: every trial's curve, how and where each ended, the scheduler's rungs, and
one trial's training against validation curve."""

from __future__ import annotations

import streamlit as st

from tunelab import analysis
from tunelab_dashboard import charts, session, views

name, tables = session.open_chosen_study()
session.study_header(f"Early stopping — {name}", tables)

kinds = analysis.available_kinds(tables)
if not kinds:
    st.info("No epoch has been reported yet: curves appear after each trial's first epoch.")
    st.stop()

controls = st.columns([2, 2, 1])
kind = controls[0].segmented_control("Metric", kinds, default=kinds[0], key="curve_kind") or kinds[0]
split = controls[1].segmented_control(
    "Split", ["val", "train"], default="val", key="curve_split",
    format_func=lambda s: "validation" if s == "val" else "training",
) or "val"
log_y = controls[2].toggle("Log scale", value=kind == "loss", key=f"log_{kind}")
metric = f"{split}_{kind}"

curves = analysis.epoch_curves(tables, metric)
stops = analysis.stop_points(tables, metric)
rungs = analysis.rung_epochs(tables)
if curves.empty:
    st.info(f"No finite {metric} values recorded yet.")
else:
    st.plotly_chart(charts.epoch_curves(curves, stops, rungs, metric, log_y))
    rung_text = f"the scheduler's rungs at epochs {', '.join(map(str, rungs))} (dotted)" if rungs else "no scheduler rungs"
    st.caption(f"Colour: how each trial ended · ×: where it stopped · {rung_text}.")

counts = tables.trials["status"].value_counts()
st.markdown(" · ".join(f"**{count}** {views.status_label(status)}" for status, count in counts.items()))

st.subheader("One trial: training vs validation")
trials = tables.trials.sort_values("trial_number")
best = analysis.best_trial(tables)
trial_ids = trials["trial_id"].tolist()
labels = {row.trial_id: views.trial_choice_label(row._asdict()) for row in trials.itertuples()}
default_index = trial_ids.index(best["trial_id"]) if best is not None else 0
trial_id = st.selectbox("Trial", trial_ids, index=default_index, format_func=labels.__getitem__, key="curve_trial")
trial_curves, best_epoch = analysis.train_val_curves(tables, trial_id, kind)
if trial_curves.empty:
    st.info("This trial has not reported an epoch yet.")
else:
    stop_epoch = trials.set_index("trial_id").at[trial_id, "stop_epoch"] if "stop_epoch" in trials else None
    st.plotly_chart(charts.train_val(trial_curves, kind, best_epoch, stop_epoch))
