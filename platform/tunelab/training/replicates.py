"""How the rounds of a bias-variance decomposition (and other retrainings of one configuration)
differ from one another: the data each trains on, and its seed."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import replace

import numpy as np

from tunelab.datasets import Splits
from tunelab.strategy import NameRegistry, Strategy
from tunelab.training.plan import TrialPlan


class BiasVarMethod(Strategy):
    summary: str  # what the variance is over, for --help and the README

    @abstractmethod
    def round_plan(self, plan: TrialPlan, round_index: int) -> TrialPlan:
        """The configuration round `round_index` trains."""

    def training_rows(self, rows: int, round_index: int) -> np.ndarray | None:
        """Which of the training split's `rows` round `round_index` trains on; None: all, in order."""
        return None

    def round_data(self, data: Splits, round_index: int) -> Splits:
        """The splits round `round_index` trains on."""
        chosen = self.training_rows(len(data.train_y), round_index)
        if chosen is None:
            return data
        return replace(data, train_x=data.train_x[chosen], train_y=data.train_y[chosen])


class Bootstrap(BiasVarMethod):
    """Each round trains on a resample (with replacement) of the training split, the
    initialisation seed fixed."""

    name = "bootstrap"
    summary = "resampled training sets (the variance over training sets)"

    def training_rows(self, rows: int, round_index: int) -> np.ndarray | None:
        return np.random.RandomState(round_index).randint(0, rows, size=rows)

    def round_plan(self, plan: TrialPlan, round_index: int) -> TrialPlan:
        return plan


class Seeds(BiasVarMethod):
    """The same training split every round, a different seed (initialisation and shuffling)
    each round."""

    name = "seeds"
    summary = "one training set, new seeds (the variance of the optimiser and the initialisation)"

    def round_plan(self, plan: TrialPlan, round_index: int) -> TrialPlan:
        return replace(plan, rules=replace(plan.rules, seed=plan.rules.seed + 1 + round_index))


BIASVAR_METHODS: NameRegistry[BiasVarMethod] = NameRegistry("bias-variance method")
for _method in (Bootstrap(), Seeds()):
    BIASVAR_METHODS.register(_method)
