"""Retrainings of one configuration trained as one fused cohort: `tunelab biasvar` rounds and
`tunelab confirm` replicates. They share the model's shapes and batch size, and differ only in
what a member keeps its own (its seed; for bootstrap rounds, its resampled training rows).
Each member's result is the one its retraining alone gives (tested to float tolerance):
`biasvar.engine.train_round`'s test outputs, or `train_trial`'s last report.

A cohort holds at most the members the device's free memory fits, as a study's cohorts do:
more retrainings than that train as several cohorts, one after another (members never
interact, so the split changes no result)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from tunelab.training.replicates import BIASVAR_METHODS
from tunelab.datasets import Splits
from tunelab.fusion.cohort import fusion_choice
from tunelab.fusion.engine import FusedArchitecture
from tunelab.fusion.member import FusedMember, timed_epoch
from tunelab.fusion.memory import free_memory_bytes, members_that_fit
from tunelab.metrics import TRIAL_END
from tunelab.training.plan import TrialPlan


def rounds_fuse(plan: TrialPlan, fuse: str | int) -> bool:
    """Whether a configuration's rounds are fused in a study with `train.fuse: fuse` (else each
    trains alone, as before)."""
    return fuse != "off" and fusion_choice(plan, fuse) is None


def fused_round_outputs(plan: TrialPlan, data: Splits, method: str, rounds: int) -> list[np.ndarray]:
    """The test-split outputs of each round's model, rounds 0 … rounds-1, as `train_round` gives them."""
    architecture = FusedArchitecture(plan, data)
    varied = BIASVAR_METHODS[method]
    test_x = torch.tensor(data.test_x, dtype=torch.float32, device=architecture.device)
    round_outputs: list[np.ndarray] = []
    for cohort in cohorts_that_fit(architecture, rounds):
        members = []
        for index in cohort:
            rows = varied.training_rows(len(data.train_y), index)
            members.append(architecture.new_member(varied.round_plan(plan, index),
                                                   rows=None if rows is None else torch.as_tensor(rows)))
        for _ in range(plan.rules.max_epochs):  # biasvar trains a fixed length: no end but the last epoch
            architecture.train_epoch(members)
        round_outputs += [outputs.cpu().numpy().astype(np.float64) for outputs in architecture.outputs(members, test_x)]
    return round_outputs


def fused_trial_ends(plans: list[TrialPlan], data: Splits) -> list[dict[str, Any]]:
    """Train every plan (one configuration, members differing by seed) as members of one fused
    cohort, each to its own end: max_epochs, its patience, its goal or divergence. Each one's
    last report as `train_trial` gives it (epoch, best_epoch, best_objective, trial_end and its
    best weights' test metrics)."""
    architecture = FusedArchitecture(plans[0], data)
    last_reports: dict[int, dict[str, Any]] = {}
    for cohort in cohorts_that_fit(architecture, len(plans)):
        members = {index: FusedMember.start(architecture, plans[index]) for index in cohort}
        while members:
            # A member that ended leaves; the others go on without it.
            present = list(members)
            measured, training_seconds = timed_epoch(architecture, [members[index] for index in present])
            for index, figures in zip(present, measured):
                report = members[index].judged(architecture, data, figures, training_seconds)
                if TRIAL_END in report:
                    last_reports[index] = report
                    del members[index]
    return [last_reports[index] for index in range(len(plans))]


def cohorts_that_fit(architecture: FusedArchitecture, count: int) -> list[range]:
    """Members 0 … count-1 in consecutive cohorts of at most what the device's free memory fits."""
    size = members_that_fit(architecture.num_parameters, free_memory_bytes(architecture.device), count)
    return [range(start, min(start + size, count)) for start in range(0, count, size)]
