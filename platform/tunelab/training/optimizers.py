"""Optimisers by name. Each builds a torch optimiser from the model's parameters and the knobs."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Mapping

from tunelab.strategy import NameRegistry, Strategy

if TYPE_CHECKING:
    import torch


class Optimizer(Strategy):
    # Whether it has a momentum (or Adam's beta1) for a schedule that cycles one (onecycle).
    has_momentum: ClassVar[bool] = True

    @abstractmethod
    def build(self, *, params: Iterable[torch.nn.Parameter], knobs: Mapping[str, Any]) -> torch.optim.Optimizer:
        """The torch optimiser (torch is imported here, not when the name is checked)."""


class SGD(Optimizer):
    name = "sgd"

    def build(self, *, params, knobs):  # type: ignore[no-untyped-def]
        import torch

        # Nesterov needs momentum; with momentum 0 it is plain SGD, so a searched momentum of
        # 0 does not turn into a failed trial.
        return torch.optim.SGD(
            params,
            lr=knobs["learning_rate"],
            momentum=knobs["momentum"],
            nesterov=knobs["nesterov"] and knobs["momentum"] > 0,
            weight_decay=knobs["weight_decay"],
        )


class Adam(Optimizer):
    name = "adam"

    def build(self, *, params, knobs):  # type: ignore[no-untyped-def]
        import torch

        return torch.optim.Adam(params, lr=knobs["learning_rate"], weight_decay=knobs["weight_decay"])


class AdamW(Optimizer):
    """Adam whose weight decay is decoupled from the gradient (not an L2 term in the loss)."""

    name = "adamw"

    def build(self, *, params, knobs):  # type: ignore[no-untyped-def]
        import torch

        return torch.optim.AdamW(params, lr=knobs["learning_rate"], weight_decay=knobs["weight_decay"])


class RMSprop(Optimizer):
    name = "rmsprop"

    def build(self, *, params, knobs):  # type: ignore[no-untyped-def]
        import torch

        return torch.optim.RMSprop(
            params, lr=knobs["learning_rate"], momentum=knobs["momentum"], weight_decay=knobs["weight_decay"]
        )


class Adagrad(Optimizer):
    name = "adagrad"
    has_momentum = False

    def build(self, *, params, knobs):  # type: ignore[no-untyped-def]
        import torch

        return torch.optim.Adagrad(params, lr=knobs["learning_rate"], weight_decay=knobs["weight_decay"])


OPTIMIZERS: NameRegistry[Optimizer] = NameRegistry("optimizer")
for _optimizer in (SGD(), Adam(), AdamW(), RMSprop(), Adagrad()):
    OPTIMIZERS.register(_optimizer)


def build_optimizer(params: Iterable[torch.nn.Parameter], knobs: Mapping[str, Any]) -> torch.optim.Optimizer:
    return OPTIMIZERS[knobs["optimizer"]].build(params=params, knobs=knobs)
