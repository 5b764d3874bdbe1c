"""A grid over a search space with conditions: each configuration a trial can have, once.

Optuna's GridSampler crosses every parameter with every other. With `when:` conditions that
repeats trials: five momentum values crossed with adam, which has no momentum, are five
identical adam trials. The grid here lists the configurations trials actually get.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import optuna
from optuna.samplers._lazy_random_state import LazyRandomState

from tunelab.search.space import _Distribution, evaluation_order

GridValues = Mapping[str, Sequence[Any]]


def count_configurations(space: Mapping[str, _Distribution], values: GridValues) -> int:
    """How many configurations `grid_configurations` lists, without listing them: only the
    parameters a condition refers to are walked value by value, so a grid too large to
    list is still counted at once."""
    order = evaluation_order(space)
    parents = {parent for dist in space.values() for parent in dist.condition_values()}

    def count(position: int, chosen: dict[str, Any]) -> int:
        if position == len(order):
            return 1
        name = order[position]
        if not space[name].applies(chosen):
            return count(position + 1, chosen)
        if name not in parents:
            return len(values[name]) * count(position + 1, chosen)
        return sum(count(position + 1, {**chosen, name: value}) for value in values[name])

    return count(0, {})


def grid_configurations(space: Mapping[str, _Distribution], values: GridValues) -> list[dict[str, int]]:
    """Every configuration as {parameter: index into its grid values}; a parameter whose
    condition does not hold is absent. Ordered as `itertools.product` over the sorted
    names would order them, so a space without conditions gets Optuna's grid, point for point."""
    configurations: list[dict[str, int]] = [{}]
    for name in evaluation_order(space):
        grown: list[dict[str, int]] = []
        for configuration in configurations:
            chosen = {parent: values[parent][index] for parent, index in configuration.items()}
            if space[name].applies(chosen):
                grown.extend({**configuration, name: index} for index in range(len(values[name])))
            else:
                grown.append(configuration)
        configurations = grown
    names = sorted(space)
    return sorted(configurations, key=lambda configuration: tuple(configuration.get(name, -1) for name in names))


class ConditionalGridSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler over the listed configurations instead of the full product.

    GridSampler's bookkeeping (the grid point each trial takes, visited points, the study's
    stop once all are tried) works on the attributes set here; only the list of points
    differs. An absent parameter's slot holds a placeholder that is never asked for.
    """

    def __init__(self, space: Mapping[str, _Distribution], values: GridValues, seed: int | None = None) -> None:
        for name, name_values in values.items():
            for value in name_values:
                self._check_value(name, value)
        self._param_names = sorted(values)
        self._search_space = {name: list(values[name]) for name in self._param_names}
        self._all_grids = [
            tuple(self._search_space[name][configuration.get(name, 0)] for name in self._param_names)
            for configuration in grid_configurations(space, values)
        ]
        self._n_min_trials = len(self._all_grids)
        self._rng = LazyRandomState(seed or 0)
        self._rng.rng.shuffle(self._all_grids)  # type: ignore[arg-type]
