"""Charts of the Pareto page: two objectives against each other, and the hypervolume history."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from tunelab_dashboard.charts import styled

FRONT_COLOUR = "#d62728"
OTHERS_COLOUR = "#9e9e9e"


def front_scatter(points: pd.DataFrame, x: str, y: str, connect: bool) -> go.Figure:
    """Every trial with finished values at (x, y), the front highlighted (and, with two
    objectives, joined in order of x). Each point carries its trial id, for the page to follow
    a click to that trial's curves."""
    figure = go.Figure()
    for on_front, name, colour, size in ((False, "other trials", OTHERS_COLOUR, 8), (True, "Pareto front", FRONT_COLOUR, 12)):
        part = points[points["pareto"] == on_front].sort_values(x)
        figure.add_trace(go.Scatter(
            x=part[x], y=part[y], name=name, customdata=part["trial_id"], text=[f"trial {n}" for n in part["trial_number"]],
            mode="lines+markers" if on_front and connect else "markers",
            marker={"color": colour, "size": size}, line={"color": colour, "width": 1, "shape": "linear"},
            hovertemplate="%{text}<br>" + x + " %{x:.4g}<br>" + y + " %{y:.4g}<extra>" + name + "</extra>",
        ))
    return styled(figure, x, y, height=460)


def hypervolume_history(history: pd.DataFrame) -> go.Figure:
    finished = list(range(1, len(history) + 1))
    figure = go.Figure(go.Scatter(
        x=finished, y=history["hypervolume"], mode="lines+markers", line={"shape": "hv", "color": FRONT_COLOUR},
        text=[f"trial {int(n)}" for n in history["trial_number"]],
        hovertemplate="%{x} finished (last: %{text})<br>hypervolume %{y:.4g}<extra></extra>",
    ))
    return styled(figure, "trials finished", "hypervolume", height=320)
