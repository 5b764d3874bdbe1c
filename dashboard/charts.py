"""Plotly figures for the pages: trials over time and over epochs, fit, importance, comparisons.

Each function takes a frame from `tunelab.analysis` as it is and only draws it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from tunelab_dashboard.views import STATUS_LABELS, status_label

STATUS_COLOURS = {
    "completed": "#2ca02c",
    "stopped_early": "#ff7f0e",
    "early_stopped_patience": "#1f77b4",
    "diverged": "#d62728",
    "errored": "#7f7f7f",
    "reached_goal": "#bcbd22",
    "interrupted": "#9467bd",
    "running": "#17becf",
}
REGION_COLOURS = {
    "good fit": "#2ca02c",
    "high bias": "#ff7f0e",
    "high variance": "#9467bd",
    "high bias and variance": "#d62728",
}
TRIAL_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"]
# A positive parameter spanning more than this factor reads better on a log axis (learning rates).
LOG_AXIS_SPAN = 20.0


def status_colour(status: Any) -> str:
    return STATUS_COLOURS.get(str(status), "#8c564b")


def styled(figure: go.Figure, x_title: str, y_title: str, height: int = 420) -> go.Figure:
    """Every chart's axes titles, height, margins and legend (the Trust page's charts too)."""
    figure.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis_title=x_title,
        yaxis_title=y_title,
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        hovermode="closest",
    )
    return figure


def wants_log_axis(values: pd.Series) -> bool:
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    return bool(len(numbers) > 1 and numbers.min() > 0 and numbers.max() / numbers.min() > LOG_AXIS_SPAN)


def optimisation_history(history: pd.DataFrame, metric: str) -> go.Figure:
    figure = go.Figure()
    for status, points in history.groupby("status", sort=False):
        figure.add_trace(
            go.Scatter(
                x=points["trial_number"], y=points["objective"], mode="markers", name=status_label(status),
                marker={"color": status_colour(status), "size": 9},
                hovertemplate="trial %{x}<br>" + metric + " %{y:.4g}<extra>" + status_label(status) + "</extra>",
            )
        )
    figure.add_trace(
        go.Scatter(
            x=history["trial_number"], y=history["running_best"], mode="lines", name="best so far",
            line={"color": "black", "shape": "hv", "width": 2},
        )
    )
    return styled(figure, "trial", metric)


def _joined_lines(curves: pd.DataFrame) -> tuple[list[Any], list[Any], list[Any]]:
    """One trace for many trials: each trial's points, then a gap (None) before the next.
    Hundreds of trials draw fast this way; one trace per trial does not."""
    xs: list[Any] = []
    ys: list[Any] = []
    trial_numbers: list[Any] = []
    for trial_number, points in curves.groupby("trial_number", sort=True):
        xs += points["epoch"].tolist() + [None]
        ys += points["value"].tolist() + [None]
        trial_numbers += [int(trial_number)] * len(points) + [None]
    return xs, ys, trial_numbers


def epoch_curves(curves: pd.DataFrame, stops: pd.DataFrame, rungs: list[int], metric: str, log_y: bool) -> go.Figure:
    """Every trial's metric per epoch, coloured by how it ended, an × where it stopped, and the
    scheduler's rungs (the epochs where it may stop a trial) as dotted lines."""
    figure = go.Figure()
    order = [status for status in STATUS_LABELS if status in set(curves["status"])]
    for status in order:
        xs, ys, numbers = _joined_lines(curves[curves["status"] == status])
        figure.add_trace(
            go.Scatter(
                x=xs, y=ys, customdata=numbers, mode="lines", name=status_label(status), legendgroup=status,
                line={"color": status_colour(status), "width": 1.5}, opacity=0.75, connectgaps=False,
                hovertemplate="trial %{customdata}<br>epoch %{x}<br>" + metric + " %{y:.4g}<extra></extra>",
            )
        )
    stopped = stops.dropna(subset=["value"])
    for status, points in stopped.groupby("status", sort=False):
        figure.add_trace(
            go.Scatter(
                x=points["stop_epoch"], y=points["value"], customdata=points["trial_number"], mode="markers",
                name=f"stop ({status_label(status)})", legendgroup=status, showlegend=False,
                marker={"color": status_colour(status), "symbol": "x", "size": 10, "line": {"width": 1}},
                hovertemplate="trial %{customdata} stopped at epoch %{x}<extra>" + status_label(status) + "</extra>",
            )
        )
    for rung in rungs:
        figure.add_vline(
            x=rung, line={"dash": "dot", "color": "#555", "width": 1},
            annotation_text=f"rung {rung}", annotation_position="top", annotation_font_size=10,
        )
    figure.update_yaxes(type="log" if log_y else "linear")
    return styled(figure, "epoch", metric, height=480)


def train_val(curves: pd.DataFrame, kind: str, best_epoch: int, stop_epoch: Any) -> go.Figure:
    figure = go.Figure()
    styles = {"train": {"color": "#1f77b4", "dash": "dash"}, "val": {"color": "#d62728", "dash": "solid"}}
    names = {"train": f"training {kind}", "val": f"validation {kind}"}
    for split, points in curves.groupby("split", sort=False):
        figure.add_trace(
            go.Scatter(x=points["epoch"], y=points["value"], mode="lines+markers", name=names[split], line=styles[split])
        )
    if best_epoch > 0:
        figure.add_vline(
            x=best_epoch, line={"color": "#2ca02c", "width": 2},
            annotation_text=f"best epoch {best_epoch}", annotation_position="top left",
        )
    if stop_epoch is not None and not (isinstance(stop_epoch, float) and math.isnan(stop_epoch)) and stop_epoch != best_epoch:
        figure.add_vline(
            x=int(stop_epoch), line={"color": "#555", "dash": "dot"},
            annotation_text=f"stopped {int(stop_epoch)}", annotation_position="top right",
        )
    return styled(figure, "epoch", kind, height=380)


def fit_map(diagnosis: pd.DataFrame, thresholds: tuple[float, float] | None) -> go.Figure:
    """Training error (bias) against the validation−training gap (variance), one point per trial;
    with explicit thresholds, the four regions are shaded."""
    figure = go.Figure()
    if thresholds is not None:
        _shade_regions(figure, diagnosis, *thresholds)
    for region, points in diagnosis.groupby("region", sort=False):
        figure.add_trace(
            go.Scatter(
                x=points["train_error"], y=points["gap"], mode="markers", name=str(region),
                customdata=np.stack([points["trial_number"], points["status"].map(status_label), points["val_error"]], axis=-1),
                marker={"color": REGION_COLOURS.get(str(region), "#8c564b"), "size": 10, "line": {"width": 1, "color": "white"}},
                hovertemplate=(
                    "trial %{customdata[0]} (%{customdata[1]})<br>training error %{x:.4g}<br>"
                    "gap %{y:.4g}<br>validation error %{customdata[2]:.4g}<extra>" + str(region) + "</extra>"
                ),
            )
        )
    return styled(figure, "training error at best epoch (bias)", "validation − training error (variance)", height=460)


def _shade_regions(figure: go.Figure, diagnosis: pd.DataFrame, bias: float, variance: float) -> None:
    x_high = max(float(diagnosis["train_error"].max()), bias) * 1.1
    y_low = min(float(diagnosis["gap"].min()), 0.0) - 0.01
    y_high = max(float(diagnosis["gap"].max()), variance) * 1.1
    quadrants = {
        "good fit": (0, bias, y_low, variance),
        "high bias": (bias, x_high, y_low, variance),
        "high variance": (0, bias, variance, y_high),
        "high bias and variance": (bias, x_high, variance, y_high),
    }
    for region, (x0, x1, y0, y1) in quadrants.items():
        figure.add_shape(
            type="rect", x0=x0, x1=x1, y0=y0, y1=y1, fillcolor=REGION_COLOURS[region], opacity=0.08,
            line={"width": 0}, layer="below",
        )
        figure.add_annotation(x=(x0 + x1) / 2, y=y1, text=region, showarrow=False, yanchor="top", font={"size": 11})


def validation_curve(curve: pd.DataFrame, param: str) -> go.Figure:
    figure = go.Figure()
    for column, name, colour in (("train_error", "training error", "#1f77b4"), ("val_error", "validation error", "#d62728")):
        figure.add_trace(
            go.Scatter(
                x=curve["value"], y=curve[column], mode="lines+markers", name=name, line={"color": colour},
                customdata=curve["n_trials"], hovertemplate="%{x}: %{y:.4g} (mean of %{customdata} trials)<extra></extra>",
            )
        )
    if wants_log_axis(curve["value"]):
        figure.update_xaxes(type="log")
    return styled(figure, param, "error at best epoch", height=380)


def importance(frame: pd.DataFrame, method: str) -> go.Figure:
    ordered = frame.sort_values("importance")
    figure = go.Figure(
        go.Bar(x=ordered["importance"], y=ordered["param"], orientation="h", marker={"color": "#1f77b4"},
               hovertemplate="%{y}: %{x:.1%}<extra></extra>")
    )
    figure.update_xaxes(tickformat=".0%")
    return styled(figure, f"share of the objective's variation ({method})", "", height=max(240, 60 + 40 * len(frame)))


def parallel_coordinates(frame: pd.DataFrame, metric: str, mode: str) -> go.Figure:
    params = [column for column in frame.columns if column not in ("trial_number", "objective")]
    dimensions = [_dimension(frame[name], name) for name in params]
    dimensions.append({"label": metric, "values": frame["objective"]})
    figure = go.Figure(
        go.Parcoords(
            dimensions=dimensions,
            # the best trials in the brightest colour, whichever direction is better
            line={"color": frame["objective"], "colorscale": "Viridis", "reversescale": mode == "min",
                  "showscale": True, "colorbar": {"title": {"text": metric}}},
        )
    )
    figure.update_layout(height=460, margin={"l": 60, "r": 60, "t": 60, "b": 20})
    return figure


def _dimension(values: pd.Series, name: str) -> dict[str, Any]:
    """A parallel-coordinates axis. Categories become codes with their names as ticks; a
    parameter absent from some trials (a condition did not hold) gets an "n/a" tick below the
    others, since Plotly drops a line with any missing value."""
    numbers = pd.to_numeric(values, errors="coerce")
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        label = name
        if wants_log_axis(numbers):
            numbers, label = np.log10(numbers), f"log10({name})"
        if numbers.isna().any():
            present = numbers.dropna()
            span = float(present.max() - present.min()) if len(present) else 1.0
            missing_at = float(present.min() if len(present) else 0.0) - 0.15 * (span or 1.0)
            ticks = list(np.linspace(present.min(), present.max(), 4)) if len(present) else []
            return {
                "label": label, "values": numbers.fillna(missing_at),
                "tickvals": [missing_at, *ticks], "ticktext": ["n/a", *[f"{t:.3g}" for t in ticks]],
            }
        return {"label": label, "values": numbers}
    text = values.map(lambda v: "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    categories = sorted(text.unique())
    codes = text.map({category: index for index, category in enumerate(categories)})
    return {"label": name, "values": codes, "tickvals": list(range(len(categories))), "ticktext": categories}


def slice_plot(points: pd.DataFrame, param: str, metric: str) -> go.Figure:
    figure = go.Figure()
    categorical = not pd.api.types.is_numeric_dtype(points["value"]) or pd.api.types.is_bool_dtype(points["value"])
    for status, group in points.groupby("status", sort=False):
        figure.add_trace(
            go.Scatter(
                x=group["value"].astype(str) if categorical else group["value"], y=group["objective"], mode="markers",
                name=status_label(status), marker={"color": status_colour(status), "size": 8},
                customdata=group["trial_number"], hovertemplate="trial %{customdata}<br>%{x}: %{y:.4g}<extra></extra>",
            )
        )
    if not categorical and wants_log_axis(points["value"]):
        figure.update_xaxes(type="log")
    figure.update_layout(showlegend=False)
    return styled(figure, param, metric, height=300)


def compared_curves(curves: pd.DataFrame, kind: str, labels: dict[str, str]) -> go.Figure:
    """The chosen trials' curves, one colour per trial; validation solid, training dashed."""
    figure = go.Figure()
    for index, (trial_id, label) in enumerate(labels.items()):
        colour = TRIAL_COLOURS[index % len(TRIAL_COLOURS)]
        for split, dash in (("val", "solid"), ("train", "dash")):
            points = curves[(curves["trial_id"] == trial_id) & (curves["split"] == split)]
            if points.empty:
                continue
            figure.add_trace(
                go.Scatter(
                    x=points["epoch"], y=points["value"], mode="lines", name=f"{label} {split}",
                    line={"color": colour, "dash": dash}, legendgroup=label,
                )
            )
    return styled(figure, "epoch", kind, height=400)


def confusion(matrix: np.ndarray, class_names: list[str] | None = None) -> go.Figure:
    classes = class_names if class_names and len(class_names) == matrix.shape[0] else [str(i) for i in range(matrix.shape[0])]
    figure = go.Figure(
        go.Heatmap(
            z=matrix, x=classes, y=classes, colorscale="Blues", showscale=False, text=matrix, texttemplate="%{text}",
            hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>",
        )
    )
    # every class labelled: Plotly would thin out the ticks of a 10-class matrix
    figure.update_xaxes(tickmode="array", tickvals=classes)
    figure.update_yaxes(autorange="reversed", tickmode="array", tickvals=classes)
    return styled(figure, "predicted class", "true class", height=360)


def decomposition_bars(table: pd.DataFrame) -> go.Figure:
    """Each decomposed trial's expected test loss split into its parts, stacked."""
    rows = table.sort_values("trial_number")
    labels = [f"trial {n} ({m})" for n, m in zip(rows["trial_number"], rows["method"])]
    zero_one = str(rows["loss"].iloc[0]) == "zero_one"
    has_noise = not zero_one and "noise" in rows and rows["noise"].notna().all()
    parts = (
        [("bias", "bias", "#ff7f0e"), ("net_variance", "net variance", "#1f77b4")] if zero_one
        else [("bias_clean", "bias²", "#ff7f0e"), ("variance", "variance", "#1f77b4"), ("noise", "noise", "#7f7f7f")] if has_noise
        else [("bias", "bias²", "#ff7f0e"), ("variance", "variance", "#1f77b4")]
    )
    figure = go.Figure()
    for column, name, colour in parts:
        figure.add_trace(go.Bar(x=labels, y=rows[column], name=name, marker_color=colour))
    figure.add_trace(go.Scatter(x=labels, y=rows["expected_loss"], mode="markers", name="expected loss",
                                marker={"symbol": "diamond", "size": 12, "color": "black"}))
    figure.update_layout(barmode="relative")  # net variance can be negative: it stacks below zero
    return styled(figure, "", "0-1 loss" if zero_one else "squared error", height=380)


def learning_curves(curves: pd.DataFrame) -> go.Figure:
    """Training and validation error against training-set size, one pair of lines per trial."""
    figure = go.Figure()
    for number, trial in curves.sort_values("train_samples").groupby("trial_number"):
        for column, name, dash in (("train_error", "training", "dash"), ("val_error", "validation", "solid")):
            figure.add_trace(go.Scatter(x=trial["train_samples"], y=trial[column], mode="lines+markers",
                                        name=f"trial {number} {name}", line={"dash": dash}))
    return styled(figure, "training examples", "error", height=380)
