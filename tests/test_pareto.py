"""The Pareto front and hypervolume (tunelab.analysis.pareto) against brute force, without Ray."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunelab.analysis.pareto import hypervolume, non_dominated, reference_point

SMALL = st.integers(min_value=0, max_value=6)


def points(dimensions: int, least: int = 0) -> st.SearchStrategy[list[list[int]]]:
    return st.lists(st.lists(SMALL, min_size=dimensions, max_size=dimensions), min_size=least, max_size=12)


def brute_force_front(rows: list[list[float]], modes: list[str]) -> list[bool]:
    """Each row is on the front unless some other row is at least as good everywhere and better
    somewhere; rows with a value that is not finite are off it."""
    def better_or_equal(a: float, b: float, mode: str) -> bool:
        return a <= b if mode == "min" else a >= b

    front = []
    for row in rows:
        if not all(math.isfinite(v) for v in row):
            front.append(False)
            continue
        dominated = any(
            all(math.isfinite(v) for v in other)
            and all(better_or_equal(o, r, m) for o, r, m in zip(other, row, modes))
            and any(o != r for o, r in zip(other, row))
            for other in rows
        )
        front.append(not dominated)
    return front


def brute_force_volume(rows: list[list[int]], reference: list[int]) -> int:
    """Minimisation, integer points: the unit cells [c, c+1) some point is at or below."""
    return sum(
        any(all(p <= c for p, c in zip(point, cell)) for point in rows)
        for cell in itertools.product(*(range(0, bound) for bound in reference))
    )


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=4).flatmap(lambda d: st.tuples(points(d), st.lists(
    st.sampled_from(["min", "max"]), min_size=d, max_size=d))))
def test_the_front_is_the_brute_force_non_dominated_filter(case: tuple[list[list[int]], list[str]]) -> None:
    rows, modes = case
    values = np.array(rows, dtype=float).reshape(-1, len(modes))
    assert non_dominated(values, modes).tolist() == brute_force_front(values.tolist(), modes)


def test_rows_that_are_not_finite_are_never_on_the_front_and_dominate_nothing() -> None:
    values = np.array([[0.9, 100.0], [math.inf, 1.0], [0.5, math.nan], [0.8, 50.0]])
    assert non_dominated(values, ["max", "min"]).tolist() == [True, False, False, True]


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=3).flatmap(lambda d: st.tuples(points(d), st.lists(
    st.integers(min_value=1, max_value=7), min_size=d, max_size=d))))
def test_hypervolume_equals_the_count_of_dominated_unit_cells(case: tuple[list[list[int]], list[int]]) -> None:
    rows, reference = case
    values = np.array(rows, dtype=float).reshape(-1, len(reference))
    assert hypervolume(values, ["min"] * len(reference), reference) == brute_force_volume(rows, reference)


@settings(max_examples=100, deadline=None)
@given(points(3, least=1), st.lists(st.integers(min_value=0, max_value=6), min_size=3, max_size=3))
def test_a_maximised_objective_is_the_mirror_of_a_minimised_one(rows: list[list[int]], reference: list[int]) -> None:
    values = np.array(rows, dtype=float)
    mirrored = values * [-1, 1, 1]
    assert hypervolume(mirrored, ["max", "min", "min"], [-reference[0], *reference[1:]]) == pytest.approx(
        hypervolume(values, ["min", "min", "min"], reference))


@settings(max_examples=100, deadline=None)
@given(points(3, least=1))
def test_with_one_reference_the_hypervolume_never_falls_as_trials_finish(rows: list[list[int]]) -> None:
    modes = ["max", "min", "min"]
    reference = reference_point(np.array(rows, dtype=float), modes)
    history = [hypervolume(np.array(rows[:count], dtype=float), modes, reference) for count in range(1, len(rows) + 1)]
    assert all(later >= earlier for earlier, later in itertools.pairwise(history))
    assert history[0] > 0, "the reference lies beyond every row: each one adds volume"


def test_the_reference_point_is_the_worst_value_made_worse_by_a_tenth_of_the_range() -> None:
    values = np.array([[0.9, 12_000, 0.25], [0.5, 2_000, 0.25], [math.nan, 1.0, 1.0], [0.7, 100_000, 0.25]])
    reference = reference_point(values, ["max", "min", "min"])
    assert reference.tolist() == pytest.approx([0.5 - 0.04, 100_000 + 9_800, 0.25 + 0.025]), "rows not finite left out"
    assert reference_point(np.array([[0.0]]), ["min"]).tolist() == [1.0]
