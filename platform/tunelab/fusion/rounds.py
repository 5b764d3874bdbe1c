"""`tunelab biasvar` rounds of one configuration, trained as one fused cohort: the rounds share
the model's shapes and batch size, and differ only in what a member keeps its own (its seed, for
`seeds`; its resampled training rows, for `bootstrap`). Each round's model is the one
`biasvar.engine.train_round` trains alone (tested to float tolerance)."""

from __future__ import annotations

import numpy as np
import torch

from tunelab.training.replicates import BIASVAR_METHODS
from tunelab.datasets import Splits
from tunelab.fusion.cohort import fusion_refusal
from tunelab.fusion.engine import FusedArchitecture
from tunelab.training.plan import TrialPlan


def rounds_fuse(plan: TrialPlan) -> bool:
    """Whether a configuration's rounds can be fused (else each trains alone, as before)."""
    return fusion_refusal(plan) is None


def fused_round_outputs(plan: TrialPlan, data: Splits, method: str, rounds: int) -> list[np.ndarray]:
    """The test-split outputs of each round's model, rounds 0 … rounds-1, as `train_round` gives them."""
    architecture = FusedArchitecture(plan, data)
    varied = BIASVAR_METHODS[method]
    members = []
    for index in range(rounds):
        rows = varied.training_rows(len(data.train_y), index)
        members.append(architecture.new_member(varied.round_plan(plan, index),
                                               rows=None if rows is None else torch.as_tensor(rows)))
    for _ in range(plan.rules.max_epochs):  # biasvar trains a fixed length: no end but the last epoch
        architecture.train_epoch(members)
    test_x = torch.tensor(data.test_x, dtype=torch.float32, device=architecture.device)
    return [outputs.cpu().numpy().astype(np.float64) for outputs in architecture.outputs(members, test_x)]
