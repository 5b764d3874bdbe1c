"""Charts of the Trust page: the confirmed leaderboard and the audit of early stopping."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from tunelab_dashboard.charts import styled


def leaderboard(board: pd.DataFrame, metric: str) -> go.Figure:
    """Each confirmed configuration's replicate mean with its 95 % interval, and its search score."""
    labels = [f"trial {n}" for n in board["trial_number"]]
    figure = go.Figure()
    figure.add_trace(go.Scatter(
        x=board["mean"], y=labels, mode="markers", name="replicate mean (95 % interval)",
        error_x={"type": "data", "symmetric": False, "array": board["high"] - board["mean"], "arrayminus": board["mean"] - board["low"]},
        hovertemplate="%{y}: mean %{x:.4g}<extra></extra>",
    ))
    figure.add_trace(go.Scatter(x=board["search_score"], y=labels, mode="markers", name="search score",
                                marker={"symbol": "x", "size": 10}, hovertemplate="%{y}: searched %{x:.4g}<extra></extra>"))
    figure.update_yaxes(autorange="reversed")
    return styled(figure, metric, "configuration", height=160 + 40 * len(board))


def best_probability(board: pd.DataFrame) -> go.Figure:
    figure = go.Figure(go.Bar(x=[f"trial {n}" for n in board["trial_number"]], y=board["p_best"],
                              hovertemplate="%{x}: %{y:.2f}<extra></extra>"))
    figure.update_yaxes(range=[0, 1])
    return styled(figure, "configuration", "probability of being the best", height=320)


def rung_scatter(points: pd.DataFrame, metric: str) -> go.Figure:
    """Value at each rung against the final value: ran on (circles) and continued by the audit (×)."""
    figure = go.Figure()
    for (rung, audited), rows in points.groupby(["rung", "audited"]):
        figure.add_trace(go.Scatter(
            x=rows["at_rung"], y=rows["final"], mode="markers", name=f"epoch {rung}, {'audited' if audited else 'ran on'}",
            marker={"symbol": "x" if audited else "circle", "size": 9},
            text=[f"trial {n}" for n in rows["trial_number"]], hovertemplate="%{text}: %{x:.4g} → %{y:.4g}<extra></extra>",
        ))
    return styled(figure, f"{metric} at the rung", f"final {metric}", height=420)


def continued_curves(curves: pd.DataFrame, stops: pd.DataFrame, metric: str) -> go.Figure:
    """Each audited trial's curve: solid up to the scheduler's stop (×), dotted after it."""
    figure = go.Figure()
    for trial_id, rows in curves.groupby("trial_id"):
        stop = int(stops.loc[trial_id, "stop_epoch"])
        label = f"trial {int(stops.loc[trial_id, 'trial_number'])}"
        before, after = rows[rows["epoch"] <= stop], rows[rows["epoch"] >= stop]
        figure.add_trace(go.Scatter(x=before["epoch"], y=before[metric], mode="lines", name=label, legendgroup=label))
        figure.add_trace(go.Scatter(x=after["epoch"], y=after[metric], mode="lines", line={"dash": "dot"},
                                    name=f"{label}, continued", legendgroup=label, showlegend=False))
        at_stop = before[before["epoch"] == stop]
        figure.add_trace(go.Scatter(x=at_stop["epoch"], y=at_stop[metric], mode="markers", marker={"symbol": "x", "size": 10},
                                    legendgroup=label, showlegend=False, hovertemplate=f"{label} stopped at epoch %{{x}}<extra></extra>"))
    return styled(figure, "epoch", metric, height=420)
