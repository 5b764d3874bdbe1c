"""Trust: can the winner be trusted? The leaderboard `tunelab confirm` measured with seed
replicates, and the audit of the scheduler's cuts from `tunelab audit`."""

from __future__ import annotations

import streamlit as st

from tunelab.trust.report import leaderboard_table
from tunelab_dashboard import loaders, session, trust_charts

name, tables = session.open_chosen_study()
session.study_header(f"Trust — {name}", tables)
storage = session.storage_root()
revision = loaders.study_revision(storage, name)
metric = str(tables.study.get("objective_metric"))

st.subheader("Is the winner the best configuration, or the luckiest?")
confirmed = loaders.confirmation(storage, name, revision)
if confirmed is None:
    st.info(f"Not confirmed yet: `tunelab confirm {name}` retrains the best configurations with new seeds "
            "(or add `confirm: {top: 3, seeds: 5}` to the experiment file).")
else:
    st.markdown(f"**{confirmed.sentence[0].upper()}{confirmed.sentence[1:]}.**")
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(trust_charts.leaderboard(confirmed.board, metric), key="trust_leaderboard")
    with right:
        st.plotly_chart(trust_charts.best_probability(confirmed.board), key="trust_p_best")
    st.dataframe(leaderboard_table(confirmed), hide_index=True)
    st.caption("Replicates are paired by seed: replicate r of every configuration trained with the same seed. "
               "The interval is Student's t at 95 %; P(best) resamples the seeds (paired bootstrap); "
               "optimism is the search score minus the replicate mean (positive: the search flattered it).")

st.subheader("Did early stopping kill a would-be winner?")
top_k = st.number_input("Judge the cuts against the study's top", min_value=1, max_value=50, value=5, key="trust_top_k")
audited = loaders.audit(storage, name, revision, int(top_k))
if audited is None:
    st.info(f"Not audited yet: `tunelab audit {name}` continues a sample of the trials the scheduler stopped "
            "to their own end (or add `audit: {}` to the experiment file).")
    st.stop()
report, curves = audited
for sentence in report.sentences:
    st.markdown(f"- {sentence}")
left, right = st.columns(2)
with left:
    st.plotly_chart(trust_charts.rung_scatter(report.points, metric), key="trust_rungs")
with right:
    stops = report.audited.set_index("trial_id")
    st.plotly_chart(trust_charts.continued_curves(curves, stops, metric), key="trust_continued")
st.dataframe(report.per_rung, hide_index=True)
st.caption(f"Rank correlation between each rung's {metric} and the final one, over the trials that ran on and the "
           f"audited ones; a would-be top-{report.top_k} trial beats the study's {report.top_k}th best "
           f"({report.threshold:.4g}).")
if not report.baseline.empty:
    st.markdown("**Stop every trial at epoch i and keep the best there** (the same curves):")
    st.dataframe(report.baseline.drop(columns="pick"), hide_index=True)
