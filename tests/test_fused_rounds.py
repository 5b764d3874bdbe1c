"""`tunelab biasvar` rounds as one fused cohort: each round's model is the one its round trains
alone (bootstrap: its own resampled rows; seeds: its own initialisation and shuffling)."""

from __future__ import annotations

import numpy as np
import pytest

from tunelab.biasvar.engine import fixed_length, train_round
from tunelab.datasets import Splits, load_splits
from tunelab.fusion.rounds import fused_round_outputs
from tunelab.training.knobs import TRAINING_KNOBS
from tunelab.training.plan import TrainingRules, TrialPlan
from tunelab_models import resolve_params

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("method", ["bootstrap", "seeds"])
def test_fused_rounds_are_the_rounds_trained_alone(method: str) -> None:
    data: Splits = load_splits("digits", {}, 0.2, 0.2, seed=0, max_train_samples=400)
    rules = TrainingRules(max_epochs=3, objective="val_loss", objective_mode="min", patience=2, min_delta=0.0,
                          monitor="val_loss", monitor_mode="min", seed=0)
    plan = fixed_length(TrialPlan("mlp", {"width": 32, "batch_norm": True},
                                  resolve_params(TRAINING_KNOBS, {"optimizer": "sgd", "learning_rate": 0.02, "momentum": 0.5,
                                                                  "batch_size": 32}), rules), 3)
    fused = fused_round_outputs(plan, data, method, rounds=3)
    assert len(fused) == 3 and fused[0].shape == (len(data.test_y), 10)
    for index, outputs in enumerate(fused):
        assert outputs == pytest.approx(train_round(plan, data, method, index), rel=1e-3, abs=1e-4), index
    assert not np.allclose(fused[0], fused[1]), "the rounds differ, as the method means them to"
