"""One fused epoch over whichever members are present (issue 21).

Members share the model's shapes and the batch size. Every member's parameters sit in one
flat (members, P) tensor (`flat_optimizer`): the optimiser step is a handful of ops on it.
Forward and backward run every member at once: through directly batched layers (`stacked`:
batched matrix products, grouped convolutions) where the model's layers are all known, else
through `vmap(functional_call)`. Each member keeps everything else its own, as its trial alone
would: its learning rate, momentum, weight decay and L1, its optimiser state and step count,
and its shuffling generator, so its minibatches are the rows its trial alone would draw.
Members may therefore be at different epochs, and may join and leave a cohort between any two
epochs: each epoch stacks whoever is present.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch

from tunelab.datasets import Splits
from tunelab.fusion.flat_optimizer import FLAT_RULES, CohortOptimizer, FlatLayout, StepHyperparameters
from tunelab.fusion.member_dropout import dropout_rates, replace_dropout
from tunelab.fusion.member_schedule import MemberSchedule
from tunelab.fusion.stacked import stacked_model
from tunelab.training.costs import count_parameters
from tunelab.training.loop import prefixed, to_device
from tunelab.training.plan import TrialPlan
from tunelab.training.tasks import TASKS

# Member-rows per fused forward pass when measuring a whole split (128 rows at 16 members):
# measured on the MNIST-1D CNN, activations that stay in cache beat fewer, larger ops (a
# 64-member epoch's measuring took 1.8 s in chunks of 256 rows, 0.6 s in chunks of 32).
EVAL_MEMBER_ROWS = 2048

Tensors = dict[str, torch.Tensor]
# (stacked params, stacked buffers, inputs (members, batch, ...)) → outputs (members, batch, ...)
CohortForward = Callable[[Tensors, Tensors, torch.Tensor], torch.Tensor]


@dataclass
class MemberTraining:
    """One member's training state between fused epochs."""

    plan: TrialPlan
    params: Tensors
    buffers: Tensors
    first_moment: Tensors  # the momentum buffer (SGD, RMSprop), Adam's m
    second_moment: Tensors  # Adam's v, RMSprop's square average, Adagrad's sum of squares
    steps: int  # optimiser steps taken: Adam's bias correction
    shuffle: torch.Generator  # the minibatch order, as the trial alone draws it
    dropout: dict[str, float]  # its own dropout rates, by MemberDropout buffer
    rows: torch.Tensor | None = None  # its own training rows (a bootstrap resample), or every row
    schedule: MemberSchedule | None = None  # its learning-rate schedule; None: a constant rate
    epoch_lr: float = 0.0  # the rate of the epoch it trained last, as its trial alone reports it

    def weights(self) -> Tensors:
        """The member's model state, as `model.state_dict()` of its trial alone names it."""
        return _cloned({**self.params, **self.buffers})

    def state(self) -> dict[str, Any]:
        return {"weights": self.weights(), "first_moment": _cloned(self.first_moment),
                "second_moment": _cloned(self.second_moment), "steps": self.steps,
                "shuffle_rng": self.shuffle.get_state(),
                "schedule": self.schedule.state() if self.schedule is not None else None}

    def epoch_hyperparameters(self, steps: int) -> list[StepHyperparameters]:
        """Its hyperparameters for each of the next epoch's steps: its schedule's, else its knobs'."""
        if self.schedule is not None:
            return self.schedule.epoch(steps)
        knobs = self.plan.knobs
        return [StepHyperparameters(lr=float(knobs["learning_rate"]), momentum=float(knobs["momentum"]))] * steps


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
        self.num_parameters = count_parameters(self.template)  # one member's: its report's, and its memory's
        self.buffer_names = [name for name, _ in self.template.named_buffers()]
        self.penalised = [name for name, value in self.template.named_parameters() if value.dim() > 1]  # weights, not biases
        self.skeleton = copy.deepcopy(self.template).to("meta")  # shapes only: each member's tensors are filled in
        self.rate_names = replace_dropout(self.skeleton)
        self.stacked = stacked_model(self.skeleton)  # None: a layer it does not know; vmap runs the model
        self.layout = FlatLayout.of(dict(self.template.named_parameters()),
                                    self.stacked.transposed_parameters() if self.stacked is not None else frozenset())
        self.train_x, self.train_y = to_device(data.train_x, data.train_y, self.task, self.device)
        self.val_x, self.val_y = to_device(data.val_x, data.val_y, self.task, self.device)
        n_train = self.train_x.shape[0]
        self.batch_size = n_train if plan.knobs["batch_size"] == "full" else min(plan.knobs["batch_size"], n_train)
        # As train_trial: a trailing batch of one example would break batch norm; it rejoins next epoch.
        self.rows_used = n_train - 1 if self.batch_size > 1 and n_train % self.batch_size == 1 else n_train
        self.steps_per_epoch = math.ceil(self.rows_used / self.batch_size)

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
        member.schedule = MemberSchedule.of(plan, self.steps_per_epoch, resume.get("schedule") if resume else None)
        if resume is not None:
            member.first_moment = _on(resume["first_moment"], self.device)
            member.second_moment = _on(resume["second_moment"], self.device)
            member.steps = int(resume["steps"])
            member.shuffle.set_state(resume["shuffle_rng"])
        return member

    def train_epoch(self, members: list[MemberTraining]) -> None:
        """One pass over the training split for every member, in each one's own minibatches."""
        # Each optimiser's members one block of rows (`CohortOptimizer`); the order is this epoch's only.
        members = sorted(members, key=lambda member: str(member.plan.knobs["optimizer"]))
        count, layout = len(members), self.layout
        flat = torch.stack([layout.flatten(m.params) for m in members])
        # Leaf views of the flat tensor: the optimiser's in-place steps on `flat` are what the
        # next forward pass sees.
        params = {name: view.requires_grad_() for name, view in layout.views(flat).items()}
        leaves = list(params.values())
        buffers = self._stacked_buffers(members)
        second_moment = any(FLAT_RULES[member.plan.knobs["optimizer"]].second_moment for member in members)
        # (members × steps): each member's schedule stepped through the epoch, as its trial alone's.
        hyperparameters = [member.epoch_hyperparameters(self.steps_per_epoch) for member in members]
        per_batch = any(member.schedule is not None and member.schedule.per_batch for member in members)
        for member, own in zip(members, hyperparameters):
            member.epoch_lr = own[0].lr
        optimizer = CohortOptimizer(
            [m.plan.knobs for m in members], [own[0] for own in hyperparameters], [m.steps for m in members], layout,
            torch.stack([layout.flatten(m.first_moment) for m in members]),
            torch.stack([layout.flatten(m.second_moment) for m in members]) if second_moment else None, self.penalised)
        forward = self._forward(training=True)
        orders = torch.stack([self._order(m) for m in members])
        for step, start in enumerate(range(0, self.rows_used, self.batch_size)):
            if per_batch and step > 0:
                optimizer.set_hyperparameters([own[step] for own in hyperparameters])
            rows = orders[:, start:start + self.batch_size]  # (members, batch): each member's own rows
            outputs = forward(params, buffers, self.train_x[rows])
            # The task's mean loss over every member's rows is the mean of the members' own
            # losses (each has as many rows): times the members, their sum. Members share no
            # parameter, so the gradient of the sum is each member's own gradient.
            total = self.task.loss(outputs.flatten(0, 1), self.train_y[rows].flatten(0, 1)) * count
            optimizer.step(leaves, torch.autograd.grad(total, leaves))
        for index, member in enumerate(members):
            member.params = layout.views(flat[index].detach())
            member.buffers = {name: buffers[name][index] for name in self.buffer_names}
            member.first_moment = layout.views(optimizer.first_moment[index])
            if optimizer.second_moment is not None:
                member.second_moment = layout.views(optimizer.second_moment[index])
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
        count = len(members)
        params = {name: torch.stack([m.params[name] for m in members]) for name in self.layout.names}
        buffers = self._stacked_buffers(members)
        forward = self._forward(training=False)
        chunk = max(1, EVAL_MEMBER_ROWS // count)
        return torch.cat([forward(params, buffers, x[start:start + chunk].expand(count, *x[start:start + chunk].shape))
                          for start in range(0, len(x), chunk)], dim=1)

    def _forward(self, training: bool) -> CohortForward:
        """The cohort's forward pass, in training or eval mode: stacked layers, else vmap."""
        self.skeleton.train(training)
        if self.stacked is not None:
            self.stacked.train(training)
            return self.stacked
        from torch.func import functional_call, vmap

        # randomness="different": each member draws its own dropout masks.
        return vmap(lambda p, b, x: functional_call(self.skeleton, (p, b), (x,)), randomness="different")

    def _stacked_buffers(self, members: list[MemberTraining]) -> Tensors:
        """The models' own buffers, and each member's dropout rates, stacked."""
        buffers = {name: torch.stack([m.buffers[name] for m in members]) for name in self.buffer_names}
        for name in self.rate_names:
            buffers[name] = torch.tensor([m.dropout[name] for m in members], device=self.device)
        return buffers


def _zeros_like(tensors: Tensors) -> Tensors:
    return {name: torch.zeros_like(value) for name, value in tensors.items()}


def _cloned(tensors: Tensors) -> Tensors:
    # Contiguous, as a model's own tensors are: a member's are views into the cohort's flat
    # tensor, a Linear weight's transposed in memory (`FlatLayout.transposed`).
    return {name: value.detach().clone(memory_format=torch.contiguous_format) for name, value in tensors.items()}


def _on(tensors: Mapping[str, torch.Tensor], device: torch.device) -> Tensors:
    return {name: value.to(device) for name, value in tensors.items()}
