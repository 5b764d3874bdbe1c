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


def reference_point(values: np.ndarray, modes: Sequence[Mode]) -> np.ndarray:
    """The hypervolume's reference point, in the objectives' own units: each objective's worst
    finite value made worse by a tenth of the values' range (of the value itself where they
    are all equal; by 1 where that is 0), so that every trial, the worst included, adds volume.

    It moves only when a trial is worse than all before it in some objective; the store then
    recomputes the whole history with it, so the history (at one reference) never falls.
    """
    points = to_minimise(values, modes)
    points = points[np.isfinite(points).all(axis=1)]
    worst, best = points.max(axis=0), points.min(axis=0)
    spread = np.where(worst > best, worst - best, np.abs(worst))
    margin = np.where(spread > 0, 0.1 * spread, 1.0)
    return to_minimise(worst + margin, modes)[0] + 0.0  # negated back to the objectives' signs (+0.0: no -0.0)


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
