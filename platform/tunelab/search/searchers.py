"""Searchers: each wraps one Optuna sampler behind the same small interface."""

from __future__ import annotations

import warnings
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

from tunelab_models.params import Param

from tunelab.strategy import NameRegistry, Strategy

if TYPE_CHECKING:  # the spec imports this registry: a runtime import would be circular
    import optuna

    from tunelab.search.space import _Distribution


class Searcher(Strategy):
    # Whether its sampler handles a study of several objectives (Optuna's directions list).
    multi_objective: ClassVar[bool] = False

    @abstractmethod
    def build(
        self, *, space: Mapping[str, _Distribution], seed: int | None, options: Mapping[str, Any], budgets: Sequence[int]
    ) -> optuna.samplers.BaseSampler:
        """The Optuna sampler (Optuna is imported here, not when the name is checked).

        `budgets`: the epochs at which the study compares trials (the scheduler's rungs and
        max_epochs), for searchers that model results by how far trials got."""

    def planned_trials(self, space: Mapping[str, _Distribution], options: Mapping[str, Any]) -> int | None:
        """How many trials this searcher needs to finish its job, where it knows (grid)."""
        return None


class TPESearcher(Searcher):
    name = "tpe"
    multi_objective = True  # Optuna's TPE splits multi-objective trials by non-domination rank
    options = (Param("n_startup_trials", int, 10, "random trials before TPE models the space", low=0, high=100_000),)

    def build(self, *, space, seed, options, budgets):  # type: ignore[no-untyped-def]
        import optuna

        # group=True lets multivariate TPE model conditional parameters (momentum only with
        # SGD) as separate subspaces instead of falling back to independent sampling.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=options["n_startup_trials"], multivariate=True, group=True, constant_liar=True
            )


class BohbSearcher(Searcher):
    """TPE fitted on the trials' results at the deepest rung enough trials reached (BOHB's
    rule); see `rung_tpe.py`. Made for a rung scheduler (asha, median); with none it is TPE on
    final results that counts running trials as bad ones."""

    name = "bohb"
    options = (
        Param("n_startup_trials", int, "auto", "trials that must reach the first rung before TPE models the "
              "space; auto: one more than the searched parameters (BOHB's rule)", low=1, high=100_000,
              also=("auto",)),
    )

    @staticmethod
    def startup_trials(space: Mapping[str, _Distribution], options: Mapping[str, Any]) -> int:
        given = options["n_startup_trials"]
        return len(space) + 1 if given == "auto" else int(given)

    def build(self, *, space, seed, options, budgets):  # type: ignore[no-untyped-def]
        from tunelab.search.rung_tpe import RungTPESampler

        return RungTPESampler(budgets, self.startup_trials(space, options), seed=seed)


class RandomSearcher(Searcher):
    name = "random"
    multi_objective = True

    def build(self, *, space, seed, options, budgets):  # type: ignore[no-untyped-def]
        import optuna

        return optuna.samplers.RandomSampler(seed=seed)


class NSGAIISearcher(Searcher):
    """NSGA-II, Optuna's genetic algorithm for Pareto fronts: a first generation at random, then
    children of the best non-dominated trials. Also takes a single objective."""

    name = "nsga2"
    multi_objective = True
    options = (
        Param("population_size", int, 20, "trials per generation (the first at random)", low=2, high=100_000),
        Param("crossover_prob", float, 0.9, "chance a child mixes two parents' parameters", low=0.0, high=1.0),
    )

    def build(self, *, space, seed, options, budgets):  # type: ignore[no-untyped-def]
        from tunelab.search.nsga2 import PicklableNSGAIISampler  # Ray pickles the sampler to resume

        return PicklableNSGAIISampler(
            population_size=options["population_size"], crossover_prob=options["crossover_prob"], seed=seed
        )


class CmaEsSearcher(Searcher):
    name = "cmaes"
    options = (Param("n_startup_trials", int, 1, "random trials before CMA-ES starts", low=0, high=100_000),)

    def build(self, *, space, seed, options, budgets):  # type: ignore[no-untyped-def]
        import optuna

        # CMA-ES covers numeric parameters; choices are drawn at random (Optuna's design).
        return optuna.samplers.CmaEsSampler(
            seed=seed, n_startup_trials=options["n_startup_trials"], warn_independent_sampling=False
        )


class QMCSearcher(Searcher):
    name = "qmc"
    options = (Param("qmc_type", str, "sobol", "low-discrepancy sequence", choices=("sobol", "halton")),)

    def build(self, *, space, seed, options, budgets):  # type: ignore[no-untyped-def]
        import optuna

        return optuna.samplers.QMCSampler(
            qmc_type=options["qmc_type"], scramble=True, seed=seed, warn_independent_sampling=False,
            warn_asynchronous_seeding=False,
        )


class GridSearcher(Searcher):
    """Every configuration once: a conditional parameter is crossed only with the values
    of its parents under which it exists."""

    name = "grid"
    options = (Param("resolution", int, 5, "grid points per continuous parameter", low=2, high=1000),)

    def grid(self, space: Mapping[str, _Distribution], options: Mapping[str, Any]) -> dict[str, list[Any]]:
        return {name: dist.grid_values(options["resolution"]) for name, dist in space.items()}

    def build(self, *, space, seed, options, budgets):  # type: ignore[no-untyped-def]
        from tunelab.search.conditional_grid import ConditionalGridSampler  # imports the spec: see above

        return ConditionalGridSampler(space, self.grid(space, options), seed=seed)

    def planned_trials(self, space, options):  # type: ignore[no-untyped-def]
        from tunelab.search.conditional_grid import count_configurations  # imports the spec: see above

        return count_configurations(space, self.grid(space, options))


SEARCHERS: NameRegistry[Searcher] = NameRegistry("searcher")
for _searcher in (TPESearcher(), BohbSearcher(), RandomSearcher(), NSGAIISearcher(), CmaEsSearcher(), QMCSearcher(),
                  GridSearcher()):
    SEARCHERS.register(_searcher)


