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
from typing import Any, Callable, ClassVar, Mapping

import torch

# The constants torch.optim's defaults have (tunelab's optimisers build them so).
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
RMSPROP_ALPHA = 0.99
RMSPROP_EPS = 1e-8
ADAGRAD_EPS = 1e-10


@dataclass(frozen=True)
class StepHyperparameters:
    """One member's hyperparameters for one optimiser step: its knobs', or as its learning-rate
    schedule sets them (a one-cycle schedule cycles momentum, or Adam's beta1, with the rate)."""

    lr: float
    momentum: float
    beta1: float = ADAM_BETAS[0]


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
    """One optimiser (`FLAT_RULES`: SGD, Adam, AdamW, RMSprop, Adagrad) over every member's flat
    parameters, with L2 weight decay, L1 on the weights and the gradient's norm clipped; each
    member its own hyperparameters and step count, written as torch.optim's single-tensor
    updates and `clip_grad_norm_` are.

    The step runs parameter by parameter on views of the flat tensors, with autograd's
    gradients as they come: gathering them into one flat gradient first costs a pass over
    memory, and memory, not arithmetic, bounds these element-wise updates (measured: with 64
    members of a 26k-parameter MLP a step's passes over the (members, P) tensors dominate)."""

    def __init__(self, knobs: list[Mapping[str, Any]], hyperparameters: list[StepHyperparameters], steps: list[int],
                 layout: FlatLayout, first_moment: torch.Tensor, second_moment: torch.Tensor | None,
                 penalised: list[str]) -> None:
        """`hyperparameters`: each member's for the epoch's first step (`set_hyperparameters`
        changes them for a later one)."""
        self.device = device = first_moment.device
        self.knobs = knobs
        self.weight_decay = _unless_zero(_column(knobs, "weight_decay", device))
        self.l1 = _unless_zero(_column(knobs, "l1", device))
        self.clip_norm = _unless_zero(_column(knobs, "grad_clip_norm", device))  # 0: a member's is not clipped
        self._set_columns(hyperparameters)
        self.steps = list(steps)
        self.first_moment, self.second_moment = first_moment, second_moment
        self.penalised = [name in penalised for name in layout.names]
        self.first_views = list(layout.views(first_moment).values())
        self.second_views = list(layout.views(second_moment).values()) if second_moment is not None else []
        # Where a step writes its intermediate gradients: a fresh tensor of this size each step
        # comes from the kernel as zeroed pages (several times the cost of the arithmetic).
        self.scratch = list(layout.views(torch.empty_like(first_moment)).values())
        self.rule = FLAT_RULES[knobs[0]["optimizer"]](self)

    def set_hyperparameters(self, hyperparameters: list[StepHyperparameters]) -> None:
        """Each member's for the next step."""
        self._set_columns(hyperparameters)
        self.rule.hyperparameters_changed()

    def _set_columns(self, hyperparameters: list[StepHyperparameters]) -> None:
        device = self.device
        self.hyperparameters = hyperparameters
        self.lr = torch.tensor([h.lr for h in hyperparameters], dtype=torch.float32, device=device).unsqueeze(1)
        self.momentum = torch.tensor([h.momentum for h in hyperparameters], dtype=torch.float32, device=device).unsqueeze(1)

    @torch.no_grad()
    def step(self, params: list[torch.Tensor], gradients: tuple[torch.Tensor, ...]) -> None:
        """One step of every member: `params` the flat tensor's views (changed in place),
        `gradients` theirs (left as they are)."""
        self.steps = [steps + 1 for steps in self.steps]
        self.rule.begin_step()
        if self.l1 is not None:
            # The L1 term is part of the loss a trial alone differentiates: clipping sees it.
            gradients = tuple(
                torch.addcmul(gradient, torch.sign(value, out=scratch), _per_member(self.l1, value), out=scratch)
                if penalised else gradient
                for value, gradient, scratch, penalised in zip(params, gradients, self.scratch, self.penalised))
        if self.clip_norm is not None:
            gradients = self._clipped(gradients)
        for index, (value, gradient) in enumerate(zip(params, gradients)):
            def per_member(column: torch.Tensor) -> torch.Tensor:
                return _per_member(column, value)

            scratch = self.scratch[index]
            if self.weight_decay is not None and not self.rule.decoupled_weight_decay:
                gradient = torch.addcmul(gradient, value, per_member(self.weight_decay), out=scratch)
            second = self.second_views[index] if self.second_views else None
            self.rule.update(value, gradient, self.first_views[index], second, scratch, per_member)

    def _clipped(self, gradients: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """Each member's gradients scaled as `clip_grad_norm_` scales its trial's: by
        min(1, max_norm / (norm + 1e-6)), the norm over all of its parameters' gradients."""
        members = self.lr.shape[0]
        norms = torch.stack([torch.linalg.vector_norm(gradient.reshape(members, -1), dim=1) for gradient in gradients],
                            dim=1)
        total = torch.linalg.vector_norm(norms, dim=1, keepdim=True)
        scale = torch.where(self.clip_norm > 0, torch.clamp(self.clip_norm / (total + 1e-6), max=1.0), 1.0)
        return tuple(torch.mul(gradient, _per_member(scale, gradient), out=scratch)
                     for gradient, scratch in zip(gradients, self.scratch))


class CohortOptimizer:
    """A cohort whose members use several optimisers: each optimiser's members are a contiguous
    block of rows (the caller orders them so), stepped by a FlatOptimizer of their own over
    views of those rows. One optimiser is one block: a FlatOptimizer and nothing more."""

    def __init__(self, knobs: list[Mapping[str, Any]], hyperparameters: list[StepHyperparameters], steps: list[int],
                 layout: FlatLayout, first_moment: torch.Tensor, second_moment: torch.Tensor | None,
                 penalised: list[str]) -> None:
        """`second_moment`: every member's, or None when no member's optimiser keeps one."""
        self.first_moment, self.second_moment = first_moment, second_moment
        self.blocks: list[tuple[slice, FlatOptimizer]] = []
        kinds = [k["optimizer"] for k in knobs]
        start = 0
        while start < len(kinds):
            stop = start + 1
            while stop < len(kinds) and kinds[stop] == kinds[start]:
                stop += 1
            rows = slice(start, stop)
            if kinds[start] in kinds[:start]:
                raise ValueError("members of one optimiser must be one block of rows")
            second = second_moment[rows] if FLAT_RULES[kinds[start]].second_moment else None
            self.blocks.append((rows, FlatOptimizer(knobs[rows], hyperparameters[rows], steps[rows], layout,
                                                    first_moment[rows], second, penalised)))
            start = stop

    @property
    def steps(self) -> list[int]:
        return [steps for _, block in self.blocks for steps in block.steps]

    def set_hyperparameters(self, hyperparameters: list[StepHyperparameters]) -> None:
        for rows, block in self.blocks:
            block.set_hyperparameters(hyperparameters[rows])

    @torch.no_grad()
    def step(self, params: list[torch.Tensor], gradients: tuple[torch.Tensor, ...]) -> None:
        for rows, block in self.blocks:
            block.step([value[rows] for value in params], tuple(gradient[rows] for gradient in gradients))


PerMember = Callable[[torch.Tensor], torch.Tensor]  # a (members, 1) column, shaped to broadcast over a view


class FlatRule:
    """One optimiser's update of a parameter's (members, ...) view, as its torch.optim
    single-tensor step writes it; one per FlatOptimizer (an epoch of a cohort). The gradient
    comes with L1 added, and L2 weight decay too unless the rule decouples it (AdamW)."""

    name: ClassVar[str]
    second_moment: ClassVar[bool] = False  # whether it keeps a second buffer per parameter
    decoupled_weight_decay: ClassVar[bool] = False

    def __init__(self, optimizer: FlatOptimizer) -> None:
        self.optimizer = optimizer
        self.hyperparameters_changed()

    def begin_step(self) -> None:
        """Per-member columns of this step (bias corrections)."""

    def hyperparameters_changed(self) -> None:
        """Per-member columns that follow the step's hyperparameters (the learning rate, beta1)."""

    def update(self, value: torch.Tensor, gradient: torch.Tensor, first: torch.Tensor, second: torch.Tensor | None,
               scratch: torch.Tensor, per_member: PerMember) -> None:
        raise NotImplementedError


class FlatSGD(FlatRule):
    """Momentum and Nesterov as torch.optim.SGD."""

    name = "sgd"

    def __init__(self, optimizer: FlatOptimizer) -> None:
        super().__init__(optimizer)
        nesterov = [bool(k["nesterov"]) and float(k["momentum"]) > 0 for k in optimizer.knobs]
        # None: no member is Nesterov's; True: every one is; else a (members, 1) mask.
        self.nesterov: bool | torch.Tensor | None = (
            None if not any(nesterov) else True if all(nesterov)
            else torch.tensor(nesterov, device=optimizer.lr.device).unsqueeze(1))

    def update(self, value, gradient, first, second, scratch, per_member):  # type: ignore[no-untyped-def]
        momentum = per_member(self.optimizer.momentum)
        # torch.optim.SGD's first buffer is the gradient itself: momentum × 0 + gradient;
        # with momentum 0 the buffer is the gradient, and so is the update. One pass over
        # memory where mul_ then add_ take two; it rounds as they do (a product, then a sum).
        torch.addcmul(gradient, first, momentum, out=first)
        if self.nesterov is None:
            update = first
        elif self.nesterov is True:
            update = torch.addcmul(gradient, first, momentum, out=scratch)
        else:
            update = torch.where(per_member(self.nesterov), torch.addcmul(gradient, first, momentum, out=scratch), first)
        value.addcmul_(update, per_member(self.optimizer.lr), value=-1)


class FlatAdam(FlatRule):
    """torch.optim.Adam with its default betas and eps; beta1 each member's own (its knob's
    default, unless a one-cycle schedule cycles it)."""

    name = "adam"
    second_moment = True

    def hyperparameters_changed(self) -> None:
        self.first_weight = torch.tensor([1 - h.beta1 for h in self.optimizer.hyperparameters],
                                         device=self.optimizer.lr.device).unsqueeze(1)

    def begin_step(self) -> None:
        optimizer = self.optimizer
        beta2 = ADAM_BETAS[1]
        device = optimizer.lr.device
        # torch's bias correction takes the step's own beta1.
        correction1 = torch.tensor([1 - h.beta1 ** steps for h, steps in zip(optimizer.hyperparameters, optimizer.steps)],
                                   device=device).unsqueeze(1)
        self.correction2_sqrt = torch.tensor([math.sqrt(1 - beta2 ** steps) for steps in optimizer.steps],
                                             device=device).unsqueeze(1)
        self.step_size = optimizer.lr / correction1

    def update(self, value, gradient, first, second, scratch, per_member):  # type: ignore[no-untyped-def]
        beta2 = ADAM_BETAS[1]
        first.lerp_(gradient, per_member(self.first_weight))
        second.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
        denominator = (second.sqrt() / per_member(self.correction2_sqrt)).add_(ADAM_EPS)
        value.sub_(per_member(self.step_size) * first / denominator)


class FlatAdamW(FlatAdam):
    """torch.optim.AdamW: Adam whose weight decay shrinks the weights before the step instead
    of joining the gradient."""

    name = "adamw"
    decoupled_weight_decay = True

    def hyperparameters_changed(self) -> None:
        super().hyperparameters_changed()
        optimizer = self.optimizer
        # 1 - lr × weight_decay in double, as torch computes it, then in the weights' precision.
        self.decay_factor = torch.tensor([1 - h.lr * float(k["weight_decay"])
                                          for h, k in zip(optimizer.hyperparameters, optimizer.knobs)],
                                         dtype=torch.float64).to(torch.float32).to(optimizer.lr.device).unsqueeze(1)

    def update(self, value, gradient, first, second, scratch, per_member):  # type: ignore[no-untyped-def]
        if self.optimizer.weight_decay is not None:
            value.mul_(per_member(self.decay_factor))
        super().update(value, gradient, first, second, scratch, per_member)


class FlatRMSprop(FlatRule):
    """torch.optim.RMSprop (alpha 0.99, eps 1e-8, not centred) with each member's momentum.

    The momentum buffer is kept for every member: with momentum 0 it is the step itself, the
    same numbers torch's step without a buffer computes."""

    name = "rmsprop"
    second_moment = True

    def update(self, value, gradient, first, second, scratch, per_member):  # type: ignore[no-untyped-def]
        second.mul_(RMSPROP_ALPHA).addcmul_(gradient, gradient, value=1 - RMSPROP_ALPHA)
        average = second.sqrt().add_(RMSPROP_EPS)
        first.mul_(per_member(self.optimizer.momentum)).addcdiv_(gradient, average)
        value.addcmul_(first, per_member(self.optimizer.lr), value=-1)


class FlatAdagrad(FlatRule):
    """torch.optim.Adagrad (no learning-rate decay, accumulator from 0, eps 1e-10): the sum of
    squared gradients is the second buffer."""

    name = "adagrad"
    second_moment = True

    def update(self, value, gradient, first, second, scratch, per_member):  # type: ignore[no-untyped-def]
        second.addcmul_(gradient, gradient, value=1)
        deviation = second.sqrt().add_(ADAGRAD_EPS)
        value.addcmul_(gradient / deviation, per_member(self.optimizer.lr), value=-1)


FLAT_RULES: dict[str, type[FlatRule]] = {rule.name: rule for rule in (FlatSGD, FlatAdam, FlatAdamW, FlatRMSprop, FlatAdagrad)}


def _per_member(column: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (members, 1) column shaped to broadcast over a (members, ...) view."""
    return column.view(-1, *([1] * (like.dim() - 1)))


def _column(knobs: list[Mapping[str, Any]], name: str, device: torch.device) -> torch.Tensor:
    """(members, 1): one knob of every member."""
    return torch.tensor([float(k[name]) for k in knobs], dtype=torch.float32, device=device).unsqueeze(1)


def _unless_zero(column: torch.Tensor) -> torch.Tensor | None:
    """None when every member's value is 0: its term is skipped."""
    return column if bool((column != 0).any()) else None
