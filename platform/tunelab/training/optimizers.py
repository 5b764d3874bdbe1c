"""Optimisers by name. Each builder takes the model's parameters and the resolved knobs."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import torch

Params = Iterable[torch.nn.Parameter]
OptimizerBuilder = Callable[[Params, Mapping[str, Any]], torch.optim.Optimizer]


def _sgd(params: Params, knobs: Mapping[str, Any]) -> torch.optim.Optimizer:
    # Nesterov needs momentum; with momentum 0 it is plain SGD, so a searched momentum of
    # 0 does not turn into a failed trial.
    return torch.optim.SGD(
        params,
        lr=knobs["learning_rate"],
        momentum=knobs["momentum"],
        nesterov=knobs["nesterov"] and knobs["momentum"] > 0,
        weight_decay=knobs["weight_decay"],
    )


def _adam(params: Params, knobs: Mapping[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=knobs["learning_rate"], weight_decay=knobs["weight_decay"])


def _adamw(params: Params, knobs: Mapping[str, Any]) -> torch.optim.Optimizer:
    # AdamW's weight decay is decoupled from the gradient (not an L2 term in the loss).
    return torch.optim.AdamW(params, lr=knobs["learning_rate"], weight_decay=knobs["weight_decay"])


def _rmsprop(params: Params, knobs: Mapping[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(
        params, lr=knobs["learning_rate"], momentum=knobs["momentum"], weight_decay=knobs["weight_decay"]
    )


def _adagrad(params: Params, knobs: Mapping[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(params, lr=knobs["learning_rate"], weight_decay=knobs["weight_decay"])


OPTIMIZERS: dict[str, OptimizerBuilder] = {
    "sgd": _sgd,
    "adam": _adam,
    "adamw": _adamw,
    "rmsprop": _rmsprop,
    "adagrad": _adagrad,
}


def build_optimizer(params: Params, knobs: Mapping[str, Any]) -> torch.optim.Optimizer:
    return OPTIMIZERS[knobs["optimizer"]](params, knobs)
