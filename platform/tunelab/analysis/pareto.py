"""Pareto fronts and hypervolume over a study's objective values. NumPy only: no pandas, no Ray.

Values are one row per trial, one column per objective, each objective with its mode ("min"
or "max"). Internally every objective is turned into one to minimise (a "max" column negated).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tunelab.metrics import Mode


def to_minimise(values: np.ndarray, modes: Sequence[Mode]) -> np.ndarray:
    """The values with every objective as one to minimise (maximised columns negated)."""
    signs = np.array([-1.0 if mode == "max" else 1.0 for mode in modes])
    return np.asarray(values, dtype=float).reshape(-1, len(modes)) * signs


def non_dominated(values: np.ndarray, modes: Sequence[Mode]) -> np.ndarray:
    """For each row, whether no other row dominates it (at least as good in every objective and
    better in one). A row with a value that is not finite (a diverged trial's ±inf, a NaN) is
    never on the front and dominates nothing. Equal rows do not dominate each other."""
    points = to_minimise(values, modes)
    finite = np.isfinite(points).all(axis=1)
    front = finite.copy()
    candidates = points[finite]
    for index in np.flatnonzero(finite):
        point = points[index]
        at_least_as_good = (candidates <= point).all(axis=1)
        better_somewhere = (candidates < point).any(axis=1)
        front[index] = not (at_least_as_good & better_somewhere).any()
    return front


def reference_point(first_values: Sequence[float], modes: Sequence[Mode]) -> np.ndarray:
    """The hypervolume's reference point, in the objectives' own units, from the first trial
    with finite values: each objective made worse by its own size (twice a cost or a loss; an
    accuracy or R² of 0 when the first was positive), or by 1 where the value is 0.

    Fixed once, a reference point keeps the hypervolume history non-decreasing: a new trial
    can only add to the dominated region. Trials worse than it in some objective add nothing.
    """
    first = to_minimise(np.asarray(first_values, dtype=float), modes)[0]
    worse = first + np.where(first == 0, 1.0, np.abs(first))
    return to_minimise(worse, modes)[0] + 0.0  # negated back to the objectives' signs (+0.0: no -0.0)


def hypervolume(values: np.ndarray, modes: Sequence[Mode], reference: Sequence[float]) -> float:
    """The volume of objective space the rows dominate, bounded by `reference` (in the
    objectives' own units). Rows not finite, or not better than the reference in every
    objective, add nothing."""
    points = to_minimise(values, modes)
    bound = to_minimise(np.asarray(reference, dtype=float), modes)[0]
    inside = np.isfinite(points).all(axis=1) & (points < bound).all(axis=1)
    points = points[inside]
    if len(points) == 0:
        return 0.0
    points = points[non_dominated(points, ["min"] * points.shape[1])]
    return float(_volume(np.unique(points, axis=0), bound))


def _volume(points: np.ndarray, bound: np.ndarray) -> float:
    """Hypervolume of mutually non-dominated minimisation points, all below `bound`: slices
    along the last objective, each the (d-1)-dimensional volume of the points below it."""
    dimensions = points.shape[1]
    if dimensions == 1:
        return float(bound[0] - points[:, 0].min())
    if dimensions == 2:
        ordered = points[np.argsort(points[:, 0], kind="stable")]
        area, lowest_y = 0.0, bound[1]
        for x, y in ordered:
            if y < lowest_y:
                area += (bound[0] - x) * (lowest_y - y)
                lowest_y = y
        return area
    ordered = points[np.argsort(points[:, -1], kind="stable")]
    tops = np.append(ordered[1:, -1], bound[-1])
    volume = 0.0
    for count in range(1, len(ordered) + 1):
        depth = tops[count - 1] - ordered[count - 1, -1]
        if depth > 0:
            below = ordered[:count, :-1]
            volume += depth * _volume(below[non_dominated(below, ["min"] * below.shape[1])], bound[:-1])
    return volume
