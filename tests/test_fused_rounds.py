"""`tunelab biasvar` rounds and `tunelab confirm` replicates as one fused cohort: each round's
model is the one its round trains alone (bootstrap: its own resampled rows; seeds: its own
initialisation and shuffling), each replicate ends as it does alone."""

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


def test_fused_replicates_are_the_replicates_trained_alone_each_to_its_own_end() -> None:
    from tunelab.trust.retrain import fused_replicates, replicate

    data: Splits = load_splits("digits", {}, 0.2, 0.2, seed=0, max_train_samples=400)
    # Patience 1 with a large min_delta: replicates stop early, at epochs of their own.
    rules = TrainingRules(max_epochs=8, objective="val_acc", objective_mode="max", patience=1, min_delta=0.02,
                          monitor="val_loss", monitor_mode="min", seed=0)
    # No batch norm with Adam: the bias before a batch norm has a gradient of float noise, which
    # Adam scales up to full steps (fused or alone, different noise), and eval mode's running
    # mean carries it into the outputs.
    plan = TrialPlan("mlp", {"width": 32},
                     resolve_params(TRAINING_KNOBS, {"optimizer": "adam", "learning_rate": 0.01, "batch_size": 32}), rules)
    fused = fused_replicates(data, plan, 4, threads=1, gpu=False)
    alone = [replicate(data, plan, index, resplit=False, threads=1, gpu=False) for index in range(4)]
    assert [row["replicate"] for row in fused] == [0, 1, 2, 3]
    for together, by_itself in zip(fused, alone):
        assert set(together) == set(by_itself)
        for name, value in by_itself.items():
            if isinstance(value, float):
                assert together[name] == pytest.approx(value, rel=1e-3, abs=1e-4), name
            else:
                assert together[name] == value, name
    assert len({row["epochs"] for row in alone}) > 1, "the replicates end at epochs of their own"


def test_retrainings_beyond_free_memory_train_as_several_cohorts_with_the_same_results(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A device whose free memory holds two members: five rounds train as cohorts of 2, 2 and 1,
    four replicates as 2 and 2, and each still gets what it gets alone. The free memory is mocked
    (this machine's would hold every member); the cohorts and the training are real."""
    from tunelab.fusion import rounds
    from tunelab.fusion.engine import FusedArchitecture
    from tunelab.fusion.memory import COPIES_PER_MEMBER, SHARE_OF_FREE_MEMORY
    from tunelab.training.costs import count_parameters
    from tunelab.trust.retrain import fused_replicates, replicate

    data: Splits = load_splits("digits", {}, 0.2, 0.2, seed=0, max_train_samples=300)
    rules = TrainingRules(max_epochs=2, objective="val_loss", objective_mode="min", patience=5, min_delta=0.0,
                          monitor="val_loss", monitor_mode="min", seed=0)
    plan = fixed_length(TrialPlan("mlp", {"width": 16},
                                  resolve_params(TRAINING_KNOBS, {"optimizer": "sgd", "learning_rate": 0.05, "momentum": 0.5,
                                                                  "batch_size": 32}), rules), 2)
    parameters = count_parameters(FusedArchitecture(plan, data).template)
    two_members = int(2 * parameters * 4 * COPIES_PER_MEMBER / SHARE_OF_FREE_MEMORY)
    monkeypatch.setattr(rounds, "free_memory_bytes", lambda device: two_members)
    cohort_sizes: list[int] = []
    train_epoch = FusedArchitecture.train_epoch

    def counted(self: FusedArchitecture, members: list) -> None:
        cohort_sizes.append(len(members))
        train_epoch(self, members)

    monkeypatch.setattr(FusedArchitecture, "train_epoch", counted)

    fused = rounds.fused_round_outputs(plan, data, "seeds", rounds=5)
    assert cohort_sizes == [2, 2, 2, 2, 1, 1], "two epochs for each cohort of at most two rounds"
    for index, outputs in enumerate(fused):
        assert outputs == pytest.approx(train_round(plan, data, "seeds", index), rel=1e-3, abs=1e-4), index

    cohort_sizes.clear()
    together = fused_replicates(data, plan, 4, threads=1, gpu=False)
    assert cohort_sizes == [2, 2, 2, 2]
    for fused_row, index in zip(together, range(4)):
        alone = replicate(data, plan, index, resplit=False, threads=1, gpu=False)
        assert fused_row["replicate"] == index
        assert fused_row["objective"] == pytest.approx(alone["objective"], rel=1e-4), index
