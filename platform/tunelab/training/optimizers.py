"""Optimisers by name. Each builder takes the model's parameters and the resolved knobs."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import torch

OptimizerBuilder = Callable[[Iterable[torch.nn.Parameter], Mapping[str, Any]], torch.optim.Optimizer]


def _sgd(params: Iterable[torch.nn.Parameter], knobs: Mapping[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        params, lr=knobs["learning_rate"], momentum=knobs["momentum"], weight_decay=knobs["weight_decay"]
    )


def _adam(params: Iterable[torch.nn.Parameter], knobs: Mapping[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=knobs["learning_rate"], weight_decay=knobs["weight_decay"])


OPTIMIZERS: dict[str, OptimizerBuilder] = {"sgd": _sgd, "adam": _adam}


def build_optimizer(params: Iterable[torch.nn.Parameter], knobs: Mapping[str, Any]) -> torch.optim.Optimizer:
    return OPTIMIZERS[knobs["optimizer"]](params, knobs)
