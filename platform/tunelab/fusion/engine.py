"""One fused epoch over whichever members are present (issue 21).

Members share the model's shapes and the batch size. Their parameters are stacked
(`torch.stack` per parameter, as `torch.func.stack_module_state` does) and one
`vmap(functional_call)` runs every member's forward and backward at once. Each member keeps
everything else its own, as its trial alone would: its learning rate, momentum, weight decay
and L1, its optimiser state and step count, and its shuffling generator, so its minibatches
are the rows its trial alone would draw. Members may therefore be at different epochs, and
may join and leave a cohort between any two epochs: each epoch stacks whoever is present.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch

from tunelab.datasets import Splits
from tunelab.fusion.member_dropout import dropout_rates, replace_dropout
from tunelab.training.loop import prefixed, to_device
from tunelab.training.plan import TrialPlan
from tunelab.training.tasks import TASKS

# Adam's constants, as torch.optim.Adam has them.
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
# Rows per fused forward pass when measuring a whole split.
EVAL_CHUNK = 4096

Tensors = dict[str, torch.Tensor]


@dataclass
class MemberTraining:
    """One member's training state between fused epochs."""

    plan: TrialPlan
    params: Tensors
    buffers: Tensors
    first_moment: Tensors  # SGD's momentum buffer, Adam's m
    second_moment: Tensors  # Adam's v
    steps: int  # optimiser steps taken: Adam's bias correction
    shuffle: torch.Generator  # the minibatch order, as the trial alone draws it
    dropout: dict[str, float]  # its own dropout rates, by MemberDropout buffer
    rows: torch.Tensor | None = None  # its own training rows (a bootstrap resample), or every row

    def weights(self) -> Tensors:
        """The member's model state, as `model.state_dict()` of its trial alone names it."""
        return {name: value.detach().clone() for name, value in {**self.params, **self.buffers}.items()}

    def state(self) -> dict[str, Any]:
        return {"weights": self.weights(), "first_moment": _cloned(self.first_moment),
                "second_moment": _cloned(self.second_moment), "steps": self.steps,
                "shuffle_rng": self.shuffle.get_state()}


class FusedArchitecture:
    """What a cohort's members share: the model's skeleton, the task, the data on the device."""

    def __init__(self, plan: TrialPlan, data: Splits) -> None:
        from tunelab_models import build_model, model_signature

        self.device = torch.device(plan.device)
        signature = model_signature(plan.model_name, data.input_shape, data.task, data.num_outputs)
        self.task = TASKS[signature.task]
        self._build = lambda member_plan: build_model(member_plan.model_name, member_plan.model_params, signature)
        # A real model to evaluate one member's weights at its end (tunelab's final evaluation).
        self.template = self._build(plan).to(self.device)
        self.param_names = [name for name, _ in self.template.named_parameters()]
        self.buffer_names = [name for name, _ in self.template.named_buffers()]
        self.penalised = [name for name, value in self.template.named_parameters() if value.dim() > 1]  # weights, not biases
        self.skeleton = copy.deepcopy(self.template).to("meta")  # shapes only: functional_call fills in each member
        self.rate_names = replace_dropout(self.skeleton)
        self.train_x, self.train_y = to_device(data.train_x, data.train_y, self.task, self.device)
        self.val_x, self.val_y = to_device(data.val_x, data.val_y, self.task, self.device)
        n_train = self.train_x.shape[0]
        self.batch_size = n_train if plan.knobs["batch_size"] == "full" else min(plan.knobs["batch_size"], n_train)
        # As train_trial: a trailing batch of one example would break batch norm; it rejoins next epoch.
        self.rows_used = n_train - 1 if self.batch_size > 1 and n_train % self.batch_size == 1 else n_train

    def new_member(self, plan: TrialPlan, resume: Mapping[str, Any] | None = None,
                   rows: torch.Tensor | None = None) -> MemberTraining:
        """A member as its trial alone starts (its seed draws its initial weights), or as a
        saved `MemberTraining.state` left it. `rows`: it trains on these rows of the training
        split (as many as the split has, e.g. a bootstrap resample) as its trial alone would on
        `train_x[rows]`."""
        torch.manual_seed(plan.rules.seed)
        model = self._build(plan).to(self.device)
        if resume is not None:
            model.load_state_dict(resume["weights"])
        params = {name: value.detach() for name, value in model.named_parameters()}
        buffers = {name: value.detach() for name, value in model.named_buffers()}
        shuffle = torch.Generator(device="cpu").manual_seed(plan.rules.seed)
        member = MemberTraining(plan, params, buffers, _zeros_like(params), _zeros_like(params), 0, shuffle,
                                dropout_rates(model), None if rows is None else rows.to(self.device))
        if resume is not None:
            member.first_moment = _on(resume["first_moment"], self.device)
            member.second_moment = _on(resume["second_moment"], self.device)
            member.steps = int(resume["steps"])
            member.shuffle.set_state(resume["shuffle_rng"])
        return member

    def train_epoch(self, members: list[MemberTraining]) -> None:
        """One pass over the training split for every member, in each one's own minibatches."""
        from torch.func import functional_call, vmap

        params = {name: torch.stack([m.params[name] for m in members]).requires_grad_(True) for name in self.param_names}
        buffers = self._stacked_buffers(members)
        optimizer = _FusedOptimizer(members, self.device)
        l1 = _column([m.plan.knobs for m in members], "l1", self.device)
        # randomness="different": each member draws its own dropout masks.
        forward = vmap(lambda p, b, x: functional_call(self.skeleton, (p, b), (x,)), randomness="different")
        count = len(members)
        orders = torch.stack([self._order(m) for m in members])
        self.skeleton.train()
        for start in range(0, self.rows_used, self.batch_size):
            rows = orders[:, start:start + self.batch_size]  # (members, batch): each member's own rows
            targets = self.train_y[rows]
            outputs = forward(params, buffers, self.train_x[rows])
            # The task's mean loss over every member's rows is the mean of the members' own
            # losses (each has as many rows): times the members, their sum. Members share no
            # parameter, so the gradient of the sum is each member's own gradient.
            total = self.task.loss(outputs.flatten(0, 1), targets.flatten(0, 1)) * count
            if self.penalised:
                total = total + (l1 * sum(params[name].abs().flatten(1).sum(dim=1) for name in self.penalised)).sum()
            gradients = torch.autograd.grad(total, [params[name] for name in self.param_names])
            optimizer.step(params, dict(zip(self.param_names, gradients)))
        for index, member in enumerate(members):
            member.params = {name: value[index].detach() for name, value in params.items()}
            member.buffers = {name: buffers[name][index] for name in self.buffer_names}
            member.first_moment = {name: value[index] for name, value in optimizer.first_moment.items()}
            member.second_moment = {name: value[index] for name, value in optimizer.second_moment.items()}
            member.steps = optimizer.steps[index]

    def measure(self, members: list[MemberTraining]) -> list[dict[str, float]]:
        """Every member's train and validation metrics, in eval mode, as train_trial measures them."""
        train_out, val_out = self.outputs(members, self.train_x), self.outputs(members, self.val_x)
        return [{**prefixed("train", self.task.metrics(train_out[index], self.train_y)),
                 **prefixed("val", self.task.metrics(val_out[index], self.val_y))} for index in range(len(members))]

    def _order(self, member: MemberTraining) -> torch.Tensor:
        """The member's rows of the training split in this epoch's shuffled order."""
        order = torch.randperm(self.train_x.shape[0], generator=member.shuffle).to(self.device)
        return order if member.rows is None else member.rows[order]

    @torch.no_grad()
    def outputs(self, members: list[MemberTraining], x: torch.Tensor) -> torch.Tensor:
        """Every member's outputs for `x`, in eval mode: (members, rows, ...)."""
        from torch.func import functional_call, vmap

        params = {name: torch.stack([m.params[name] for m in members]) for name in self.param_names}
        buffers = self._stacked_buffers(members)
        call = vmap(lambda p, b, chunk: functional_call(self.skeleton, (p, b), (chunk,)), in_dims=(0, 0, None))
        self.skeleton.eval()
        return torch.cat([call(params, buffers, x[start:start + EVAL_CHUNK]) for start in range(0, len(x), EVAL_CHUNK)], dim=1)

    def _stacked_buffers(self, members: list[MemberTraining]) -> Tensors:
        """The models' own buffers, and each member's dropout rates, stacked."""
        buffers = {name: torch.stack([m.buffers[name] for m in members]) for name in self.buffer_names}
        for name in self.rate_names:
            buffers[name] = torch.tensor([m.dropout[name] for m in members], device=self.device)
        return buffers


class _FusedOptimizer:
    """SGD (momentum, Nesterov, L2 weight decay) or Adam (L2 weight decay) over stacked
    members, each with its own hyperparameters and step count, written as torch.optim's
    single-tensor updates are."""

    def __init__(self, members: list[MemberTraining], device: torch.device) -> None:
        knobs = [m.plan.knobs for m in members]
        self.kind = knobs[0]["optimizer"]
        self.lr = _column(knobs, "learning_rate", device)
        self.weight_decay = _column(knobs, "weight_decay", device)
        self.momentum = _column(knobs, "momentum", device)
        self.nesterov = torch.tensor([bool(k["nesterov"]) and float(k["momentum"]) > 0 for k in knobs], device=device)
        self.steps = [m.steps for m in members]
        names = list(members[0].params)
        self.first_moment = {name: torch.stack([m.first_moment[name] for m in members]) for name in names}
        self.second_moment = {name: torch.stack([m.second_moment[name] for m in members]) for name in names}

    @torch.no_grad()
    def step(self, params: Tensors, gradients: Tensors) -> None:
        self.steps = [steps + 1 for steps in self.steps]
        beta1, beta2 = ADAM_BETAS
        device = self.lr.device
        correction1 = torch.tensor([1 - beta1 ** steps for steps in self.steps], device=device)
        correction2_sqrt = torch.tensor([math.sqrt(1 - beta2 ** steps) for steps in self.steps], device=device)
        for name, value in params.items():
            gradient = gradients[name] + _per_member(self.weight_decay, value) * value
            rate = _per_member(self.lr, value)
            first = self.first_moment[name]
            if self.kind == "sgd":
                momentum = _per_member(self.momentum, value)
                # torch.optim.SGD's first buffer is the gradient itself: momentum × 0 + gradient.
                first.mul_(momentum).add_(gradient)
                nesterov = _per_member(self.nesterov, value)
                update = torch.where(momentum > 0, torch.where(nesterov, gradient + momentum * first, first), gradient)
                value -= rate * update
            else:
                second = self.second_moment[name]
                first.mul_(beta1).add_(gradient, alpha=1 - beta1)
                second.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
                denominator = (second.sqrt() / _per_member(correction2_sqrt, value)).add_(ADAM_EPS)
                value -= (rate / _per_member(correction1, value)) * first / denominator


def _column(knobs: list[Mapping[str, Any]], name: str, device: torch.device) -> torch.Tensor:
    return torch.tensor([float(k[name]) for k in knobs], dtype=torch.float32, device=device)


def _per_member(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(members,) → broadcastable against a stacked parameter of shape (members, ...)."""
    return values.reshape(-1, *([1] * (like.dim() - 1)))


def _zeros_like(tensors: Tensors) -> Tensors:
    return {name: torch.zeros_like(value) for name, value in tensors.items()}


def _cloned(tensors: Tensors) -> Tensors:
    return {name: value.detach().clone() for name, value in tensors.items()}


def _on(tensors: Mapping[str, torch.Tensor], device: torch.device) -> Tensors:
    return {name: value.to(device) for name, value in tensors.items()}
