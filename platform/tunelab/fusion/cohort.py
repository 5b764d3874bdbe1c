"""Many trials of one architecture trained as one: a fused cohort (issue 21, its core).

Members share the model's shapes, the batch size and the study's seed; one
fused epoch (`tunelab.fusion.engine`) trains them all at once. Each member follows, step for
step, the training `tunelab.training.loop.train_trial` gives it alone (tested to float tolerance).

Not fused (a trial trains alone, the reason said by `fusion_refusal`): model families other than
FUSED_MODELS, an optimiser without a flat rule
(`flat_optimizer.FLAT_RULES`: all of tunelab's have one: SGD, Adam, AdamW, RMSprop, Adagrad),
and studies that minimise `train_seconds` (a member's fused epochs are its cohort's time).
With `train.fuse: auto` a trial also trains alone where a fused cohort measured slower than its
members one at a time (`fusion_choice`); `fuse: N` still fuses it.
Batch norm is fused with each member's own running statistics (stacked buffers, updated member
by member). Dropout is fused (nn.Dropout, and a recurrent layer's between its layers), each member at
its own rate with its own masks (`member_dropout`): equal to the trial alone in distribution,
not bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from tunelab.datasets import Splits
from tunelab.fusion.engine import FusedArchitecture
from tunelab.fusion.flat_optimizer import FLAT_RULES
from tunelab.training.plan import TrialPlan

FUSED_OPTIMIZERS = tuple(FLAT_RULES)
# Model families whose layers the engine batches (`fusion.stacked`: MLP, CNN, ResNet, and the
# RNN's recurrences written out in `fusion.stacked_recurrent`, as torch's recurrent layers have
# no batching rule for vmap; vmap for what it does not know: the autoencoder, whose forward
# reshapes to the input's shape; tested member by member in tests/test_fusion.py).
FUSED_MODELS = ("mlp", "cnn", "resnet", "autoencoder", "rnn")


def fusion_refusal(plan: TrialPlan) -> str | None:
    """Why this trial cannot be a member of a fused cohort, or None when it can."""
    knobs = plan.knobs
    if plan.model_name not in FUSED_MODELS:
        return f"model {plan.model_name!r} is not fused (only {', '.join(FUSED_MODELS)})"
    if knobs["optimizer"] not in FUSED_OPTIMIZERS:
        return f"optimizer {knobs['optimizer']!r} is not fused (only {', '.join(FUSED_OPTIMIZERS)})"
    if any(metric == "train_seconds" for metric, _ in plan.rules.objectives):
        return "train_seconds is an objective: a fused member's training time is its whole cohort's"
    return None


# An LSTM alone runs torch's own LSTM kernel (oneDNN on a CPU), which the written-out recurrence
# of a fused cohort does not beat from 64 units: 16 members on one thread, fused against one at a
# time, 1.06× at 16 units, 1.30× at 32, 0.81× at 64 (the default), 0.72× at 128
# (bench/fused_engine.py). A GRU or an Elman RNN alone has no such kernel: 1.7× at 64 units.
LSTM_FUSED_BELOW_UNITS = 64


def fusion_choice(plan: TrialPlan, fuse: str | int) -> str | None:
    """Why this trial of a study with `train.fuse: fuse` trains alone, or None when it is fused:
    what cannot be fused (`fusion_refusal`), and with `auto` what trains faster alone."""
    refusal = fusion_refusal(plan)
    if refusal is not None or fuse != "auto":
        return refusal
    params = plan.model_params
    if plan.model_name == "rnn" and params.get("cell") == "lstm" and params["hidden_size"] >= LSTM_FUSED_BELOW_UNITS:
        return (f"an LSTM of {LSTM_FUSED_BELOW_UNITS} or more units trains faster alone (torch's own kernel); "
                "fuse: N fuses it")
    return None


def cohort_key(plan: TrialPlan) -> tuple[Any, ...]:
    """Trials with the same key can be fused: the same model and shapes, batch size and seed.

    Structural parameters (width, depth, ...) split cohorts; continuous ones never do: the
    initial weights' scale and the dropout rate are each member's own (only whether there is
    dropout at all changes the model's layers). Nor does the optimiser: each one's members
    step as a block of their own (`flat_optimizer.CohortOptimizer`)."""
    shape_params = {name: value for name, value in plan.model_params.items() if name not in ("init_std", "dropout")}
    shape_params["dropout"] = plan.model_params.get("dropout", 0) > 0
    return (plan.model_name, tuple(sorted(shape_params.items())), plan.knobs["batch_size"], plan.rules.seed)


def cohort_label(plan: TrialPlan) -> str:
    """The cohort key in words, for the trials table: `mlp depth=2 dropout width=128, batch 32`
    (a switch such as dropout is named when on)."""
    model, shapes, batch_size, _seed = cohort_key(plan)
    words = [name if value is True else f"{name}={value}" for name, value in shapes if value is not False]
    return " ".join([model, *words]) + f", batch {batch_size}"


@dataclass
class MemberEpoch:
    """One member's figures for one epoch, as the training loop reports them."""

    member: int
    metrics: dict[str, float]


def train_cohort(plans: list[TrialPlan], data: Splits, on_epoch: Callable[[MemberEpoch], None]) -> None:
    """Train every plan's model for its max_epochs as members of one fused cohort."""
    first = plans[0]
    for plan in plans:
        reason = fusion_refusal(plan)
        if reason is not None:
            raise ValueError(f"cannot fuse: {reason}")
        if cohort_key(plan) != cohort_key(first):
            raise ValueError("cannot fuse members of different shapes, batch sizes or seeds")
    architecture = FusedArchitecture(first, data)
    members = [architecture.new_member(plan) for plan in plans]
    for epoch in range(1, max(plan.rules.max_epochs for plan in plans) + 1):
        present = [index for index, plan in enumerate(plans) if epoch <= plan.rules.max_epochs]
        architecture.train_epoch([members[index] for index in present])
        measured = architecture.measure([members[index] for index in present])
        for index, metrics in zip(present, measured):
            on_epoch(MemberEpoch(index, {"epoch": epoch, "lr": members[index].epoch_lr, **metrics}))
