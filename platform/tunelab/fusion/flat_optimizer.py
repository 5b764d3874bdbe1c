"""A cohort's parameters as one (members, P) tensor, and the optimiser step on it.

One flat tensor holds every member's parameters (and one each their optimiser moments), with a
view per parameter: stacking the members at an epoch's start and handing each its own again
at its end is one op, and the forward pass reads the views. Each member's learning rate,
momentum, weight decay and L1 is a (members, 1) column. The L1 penalty's gradient
(l1 × sign(w), on weights, not biases) is added here rather than through autograd: the same
value, fewer ops in the graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch

# Adam's constants, as torch.optim.Adam has them.
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


@dataclass(frozen=True)
class FlatLayout:
    """Where each of a model's parameters sits in a member's flat row of P numbers.

    A parameter named in `transposed` is stored with its last two dimensions swapped, and its
    view shows it in its own shape: a stacked Linear multiplies by the weight's transpose, and
    autograd then hands back the gradient in that transposed memory; stored so, the weight,
    its gradient and its moments share one layout, and the optimiser's passes over them run
    straight through memory."""

    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]
    offsets: tuple[int, ...]
    size: int
    transposed: frozenset[str] = frozenset()

    @classmethod
    def of(cls, params: Mapping[str, torch.Tensor], transposed: frozenset[str] = frozenset()) -> FlatLayout:
        offsets, size = [], 0
        for value in params.values():
            offsets.append(size)
            size += value.numel()
        return cls(tuple(params), tuple(value.shape for value in params.values()), tuple(offsets), size, transposed)

    def flatten(self, tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """One member's tensors (by parameter name) as its flat row."""
        return torch.cat([(tensors[name].transpose(-1, -2) if name in self.transposed else tensors[name]).reshape(-1)
                          for name in self.names])

    def views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each parameter's view, in its own shape, into a flat row (P,) or rows (members, P)."""
        lead = flat.shape[:-1]
        views = {}
        for name, shape, offset in zip(self.names, self.shapes, self.offsets):
            block = flat[..., offset:offset + shape.numel()]
            if name in self.transposed:
                views[name] = block.view(*lead, *shape[:-2], shape[-1], shape[-2]).transpose(-1, -2)
            else:
                views[name] = block.view(*lead, *shape)
        return views


class FlatOptimizer:
    """SGD (momentum, Nesterov, L2 weight decay) or Adam (L2 weight decay), with L1 on the
    weights, over every member's flat parameters; each member its own hyperparameters and step
    count, written as torch.optim's single-tensor updates are.

    The step runs parameter by parameter on views of the flat tensors, with autograd's
    gradients as they come: gathering them into one flat gradient first costs a pass over
    memory, and memory, not arithmetic, bounds these element-wise updates (measured: with 64
    members of a 26k-parameter MLP a step's passes over the (members, P) tensors dominate)."""

    def __init__(self, knobs: list[Mapping[str, Any]], steps: list[int], layout: FlatLayout, first_moment: torch.Tensor,
                 second_moment: torch.Tensor | None, penalised: list[str]) -> None:
        device = first_moment.device
        self.kind = knobs[0]["optimizer"]
        self.lr = _column(knobs, "learning_rate", device)
        self.weight_decay = _unless_zero(_column(knobs, "weight_decay", device))
        self.l1 = _unless_zero(_column(knobs, "l1", device))
        self.momentum = _column(knobs, "momentum", device)
        nesterov = [bool(k["nesterov"]) and float(k["momentum"]) > 0 for k in knobs]
        # None: no member is Nesterov's; True: every one is; else a (members, 1) mask.
        self.nesterov: bool | torch.Tensor | None = (
            None if not any(nesterov) else True if all(nesterov) else torch.tensor(nesterov, device=device).unsqueeze(1))
        self.steps = list(steps)
        self.first_moment, self.second_moment = first_moment, second_moment
        self.penalised = [name in penalised for name in layout.names]
        self.first_views = list(layout.views(first_moment).values())
        self.second_views = list(layout.views(second_moment).values()) if second_moment is not None else []
        # Where a step writes its intermediate gradients: a fresh tensor of this size each step
        # comes from the kernel as zeroed pages (several times the cost of the arithmetic).
        self.scratch = list(layout.views(torch.empty_like(first_moment)).values())

    @torch.no_grad()
    def step(self, params: list[torch.Tensor], gradients: tuple[torch.Tensor, ...]) -> None:
        """One step of every member: `params` the flat tensor's views (changed in place),
        `gradients` theirs (left as they are)."""
        self.steps = [steps + 1 for steps in self.steps]
        if self.kind == "adam":
            beta1, beta2 = ADAM_BETAS
            device = self.lr.device
            correction1 = torch.tensor([1 - beta1 ** steps for steps in self.steps], device=device).unsqueeze(1)
            correction2_sqrt = torch.tensor([math.sqrt(1 - beta2 ** steps) for steps in self.steps],
                                            device=device).unsqueeze(1)
            step_size = self.lr / correction1
        for index, (value, gradient) in enumerate(zip(params, gradients)):
            def per_member(column: torch.Tensor) -> torch.Tensor:
                return column.view(-1, *([1] * (value.dim() - 1)))

            scratch = self.scratch[index]
            if self.l1 is not None and self.penalised[index]:
                gradient = torch.addcmul(gradient, torch.sign(value, out=scratch), per_member(self.l1), out=scratch)
            if self.weight_decay is not None:
                gradient = torch.addcmul(gradient, value, per_member(self.weight_decay), out=scratch)
            first = self.first_views[index]
            if self.kind == "sgd":
                momentum = per_member(self.momentum)
                # torch.optim.SGD's first buffer is the gradient itself: momentum × 0 + gradient;
                # with momentum 0 the buffer is the gradient, and so is the update. One pass over
                # memory where mul_ then add_ take two; it rounds as they do (a product, then a sum).
                torch.addcmul(gradient, first, momentum, out=first)
                if self.nesterov is None:
                    update = first
                elif self.nesterov is True:
                    update = torch.addcmul(gradient, first, momentum, out=scratch)
                else:
                    update = torch.where(per_member(self.nesterov), torch.addcmul(gradient, first, momentum, out=scratch),
                                         first)
                value.addcmul_(update, per_member(self.lr), value=-1)
            else:
                second = self.second_views[index]
                first.mul_(beta1).add_(gradient, alpha=1 - beta1)
                second.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
                denominator = (second.sqrt() / per_member(correction2_sqrt)).add_(ADAM_EPS)
                value.sub_(per_member(step_size) * first / denominator)


def _column(knobs: list[Mapping[str, Any]], name: str, device: torch.device) -> torch.Tensor:
    """(members, 1): one knob of every member."""
    return torch.tensor([float(k[name]) for k in knobs], dtype=torch.float32, device=device).unsqueeze(1)


def _unless_zero(column: torch.Tensor) -> torch.Tensor | None:
    """None when every member's value is 0: its term is skipped."""
    return column if bool((column != 0).any()) else None
