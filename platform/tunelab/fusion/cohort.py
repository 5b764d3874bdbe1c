"""Many trials of one architecture trained as one: a fused cohort (issue 21, its core).

Members share the model's shapes, the batch size and the study's seed, so they share the
initial weights' shapes and every minibatch's rows. Their parameters are stacked
(`torch.func.stack_module_state`) and one `vmap(functional_call)` runs every member's forward
and backward on the same minibatch; each member keeps its own learning rate, momentum, weight
decay and L1 as tensors, and its own optimiser state. Each member follows, step for step, the
training `tunelab.training.loop.train_trial` gives it alone (tested to float tolerance).

Not fused (a trial trains alone, the reason said by `fusion_refusal`): dropout (vmap would draw
other masks than a trial alone), batch norm, learning-rate schedules, gradient clipping, and
optimisers other than SGD and Adam.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch

from tunelab.datasets import Splits
from tunelab.training.loop import prefixed, to_device
from tunelab.training.plan import TrialPlan
from tunelab.training.tasks import TASKS

FUSED_OPTIMIZERS = ("sgd", "adam")
# Adam's constants, as torch.optim.Adam has them.
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
# Rows per fused forward pass when measuring a whole split.
EVAL_CHUNK = 4096


def fusion_refusal(plan: TrialPlan) -> str | None:
    """Why this trial cannot be a member of a fused cohort, or None when it can."""
    knobs, params = plan.knobs, plan.model_params
    if knobs["optimizer"] not in FUSED_OPTIMIZERS:
        return f"optimizer {knobs['optimizer']!r} is not fused (only {', '.join(FUSED_OPTIMIZERS)})"
    if params.get("dropout", 0) > 0:
        return "dropout: fused members would draw other masks than the trial alone"
    if params.get("batch_norm"):
        return "batch norm keeps running statistics per member, which fusion does not yet"
    if knobs["lr_schedule"] != "none":
        return f"learning-rate schedule {knobs['lr_schedule']!r} is not fused"
    if knobs["grad_clip_norm"] > 0:
        return "gradient clipping is not fused"
    return None


def cohort_key(plan: TrialPlan) -> tuple[Any, ...]:
    """Trials with the same key can be fused: the same model and shapes, batch size and seed."""
    shape_params = {name: value for name, value in plan.model_params.items() if name != "init_std"}
    return (plan.model_name, tuple(sorted(shape_params.items())), plan.knobs["batch_size"], plan.rules.seed,
            plan.knobs["optimizer"])


@dataclass
class MemberEpoch:
    """One member's figures for one epoch, as the training loop reports them."""

    member: int
    metrics: dict[str, float]


def train_cohort(plans: list[TrialPlan], data: Splits, on_epoch: Callable[[MemberEpoch], None]) -> None:
    """Train every plan's model for its max_epochs as members of one fused cohort."""
    from torch.func import functional_call, stack_module_state, vmap
    from tunelab_models import build_model, model_signature

    first = plans[0]
    for plan in plans:
        reason = fusion_refusal(plan)
        if reason is not None:
            raise ValueError(f"cannot fuse: {reason}")
        if cohort_key(plan) != cohort_key(first):
            raise ValueError("cannot fuse members of different shapes, batch sizes, seeds or optimisers")
    device = torch.device(first.device)
    signature = model_signature(first.model_name, data.input_shape, data.task, data.num_outputs)
    task = TASKS[signature.task]
    models = []
    for plan in plans:
        torch.manual_seed(plan.rules.seed)  # as train_trial does: a member starts where the trial alone would
        models.append(build_model(plan.model_name, plan.model_params, signature).to(device))
    params, buffers = stack_module_state(models)
    params = {name: value.detach().clone() for name, value in params.items()}
    base = copy.deepcopy(models[0]).to("meta")
    penalised = {name for name, value in models[0].named_parameters() if value.dim() > 1}  # weights, not biases

    train_x, train_y = to_device(data.train_x, data.train_y, task, device)
    val_x, val_y = to_device(data.val_x, data.val_y, task, device)
    members = len(plans)
    knobs = [plan.knobs for plan in plans]
    lr = _column(knobs, "learning_rate", device)
    weight_decay = _column(knobs, "weight_decay", device)
    l1 = _column(knobs, "l1", device)
    optimizer = _FusedOptimizer(first.knobs["optimizer"], knobs, params, device)

    for value in params.values():
        value.requires_grad_(True)
    forward = vmap(lambda p, b, x: functional_call(base, (p, b), (x,)), in_dims=(0, 0, None))

    def gradients(x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every member's gradient in one backward pass: members share no parameter, so the
        gradient of the sum of their losses is each one's own."""
        out = forward(params, buffers, x)  # (members, batch, ...)
        # The task's mean loss over every member's rows is the mean of the members' own losses
        # (each has the same rows): times the members, it is their sum.
        total = task.loss(out.flatten(0, 1), y.repeat(members, *([1] * (y.dim() - 1)))) * members
        if penalised:
            total = total + (l1 * sum(params[name].abs().flatten(1).sum(dim=1) for name in penalised)).sum()
        names = list(params)
        return dict(zip(names, torch.autograd.grad(total, [params[name] for name in names])))

    def outputs(x: torch.Tensor) -> torch.Tensor:
        call = vmap(lambda p, b, chunk: functional_call(base, (p, b), (chunk,)), in_dims=(0, 0, None))
        with torch.no_grad():
            return torch.cat([call(params, buffers, x[start:start + EVAL_CHUNK]) for start in range(0, len(x), EVAL_CHUNK)], dim=1)

    n_train = train_x.shape[0]
    batch_size = n_train if first.knobs["batch_size"] == "full" else min(first.knobs["batch_size"], n_train)
    n_used = n_train - 1 if batch_size > 1 and n_train % batch_size == 1 else n_train
    shuffle = torch.Generator(device="cpu").manual_seed(first.rules.seed)
    max_epochs = max(plan.rules.max_epochs for plan in plans)
    for epoch in range(1, max_epochs + 1):
        base.train()
        order = torch.randperm(n_train, generator=shuffle).to(device)
        for start in range(0, n_used, batch_size):
            batch = order[start:start + batch_size]
            grads = gradients(train_x[batch], train_y[batch])
            optimizer.step(params, grads, lr, weight_decay)
        base.eval()
        train_out, val_out = outputs(train_x), outputs(val_x)
        for member in range(members):
            if epoch > plans[member].rules.max_epochs:
                continue
            metrics = {"epoch": epoch, "lr": float(lr[member])}
            metrics.update(prefixed("train", task.metrics(train_out[member], train_y)))
            metrics.update(prefixed("val", task.metrics(val_out[member], val_y)))
            on_epoch(MemberEpoch(member, metrics))


def _column(knobs: list[Mapping[str, Any]], name: str, device: torch.device) -> torch.Tensor:
    return torch.tensor([float(k[name]) for k in knobs], dtype=torch.float32, device=device)


def _per_member(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(members,) → broadcastable against a stacked parameter of shape (members, ...)."""
    return values.reshape(-1, *([1] * (like.dim() - 1)))


class _FusedOptimizer:
    """SGD (momentum, Nesterov, L2 weight decay) or Adam (L2 weight decay), each member with
    its own hyperparameters, written as torch.optim's single-tensor updates are."""

    def __init__(self, kind: str, knobs: list[Mapping[str, Any]], params: dict[str, torch.Tensor], device: torch.device) -> None:
        self.kind = kind
        self.momentum = _column(knobs, "momentum", device)
        self.nesterov = torch.tensor([bool(k["nesterov"]) and float(k["momentum"]) > 0 for k in knobs], device=device)
        self.steps = 0
        self.first = {name: torch.zeros_like(value) for name, value in params.items()}  # momentum buffer / Adam m
        self.second = {name: torch.zeros_like(value) for name, value in params.items()}  # Adam v

    @torch.no_grad()
    def step(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], lr: torch.Tensor, weight_decay: torch.Tensor) -> None:
        self.steps += 1
        for name, value in params.items():
            gradient = grads[name] + _per_member(weight_decay, value) * value
            rate = _per_member(lr, value)
            if self.kind == "sgd":
                momentum = _per_member(self.momentum, value)
                buffer = self.first[name]
                # torch.optim.SGD: the first step's buffer is the gradient itself.
                buffer.copy_(gradient if self.steps == 1 else momentum * buffer + gradient)
                nesterov = _per_member(self.nesterov, value)
                update = torch.where(momentum > 0, torch.where(nesterov, gradient + momentum * buffer, buffer), gradient)
                value -= rate * update
            else:
                beta1, beta2 = ADAM_BETAS
                self.first[name].mul_(beta1).add_(gradient, alpha=1 - beta1)
                self.second[name].mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
                correction1 = 1 - beta1 ** self.steps
                correction2 = 1 - beta2 ** self.steps
                denominator = (self.second[name].sqrt() / math.sqrt(correction2)).add_(ADAM_EPS)
                value -= (rate / correction1) * self.first[name] / denominator
