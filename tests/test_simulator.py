"""Studies on replayed learning curves (tunelab.tune.simulator): the real searcher, scheduler and
store callback of `tunelab run`, no Ray process, a simulated clock. Curves are chosen here, so
each assertion knows what every trial would have done (issue 20)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import pytest
import yaml
from optuna.trial import TrialState

from conftest import small_study
from tunelab.from_spec import rung_epochs
from tunelab.spec import Spec, parse_spec
from tunelab.store import read_epochs, read_study, read_trials
from tunelab.tune.simulator import simulate_study

MAX_EPOCHS = 8


def quality(config: Mapping[str, Any]) -> float:
    """The accuracy a configuration converges to: higher for larger learning rates, below 0.95."""
    return 0.35 + 0.6 * (math.log10(config["learning_rate"]) + 5) / 5


def curve(config: Mapping[str, Any]) -> list[dict[str, float]]:
    q = quality(config)
    return [{"train_loss": 2.0 - q * (1 - 0.6**e), "val_loss": 2.1 - q * (1 - 0.6**e),
             "train_acc": q * (1 - 0.6**e) + 0.01, "val_acc": q * (1 - 0.6**e), "epoch_seconds": 1.0 + q,
             "test_acc": q - 0.02, "test_loss": 2.2 - q} for e in range(1, MAX_EPOCHS + 1)]


def spec_of(**changes: Any) -> Spec:
    given = {"objective": {"metric": "val_acc"}, "train": {"max_epochs": MAX_EPOCHS, "early_stopping": {"patience": None}},
             "budget": {"num_samples": 16, "max_concurrent": 2}, **changes}
    document = small_study(name="replayed", **given)
    return parse_spec(yaml.safe_dump(document), "replayed.yaml")


def test_asha_stops_trials_at_its_rungs_and_the_store_holds_exactly_the_replayed_epochs(tmp_path: Path) -> None:
    spec = spec_of()
    simulation = simulate_study(spec, tmp_path, curve)
    trials, epochs = read_trials(simulation.paths), read_epochs(simulation.paths)
    assert len(trials) == 16 and set(trials["status"]) == {"completed", "stopped_early"}
    stopped, completed = trials[trials["status"] == "stopped_early"], trials[trials["status"] == "completed"]
    assert set(stopped["stop_epoch"]) <= set(rung_epochs(spec)) and len(stopped) >= 4
    assert (completed["epochs"] == MAX_EPOCHS).all()
    # The scheduler stops the weaker: every stopped trial converges lower than the best finished one.
    qualities = {row["trial_id"]: quality(simulation_config(simulation, row["trial_id"])) for _, row in trials.iterrows()}
    assert max(qualities[t] for t in stopped["trial_id"]) < max(qualities[t] for t in completed["trial_id"])
    for _, trial in trials.iterrows():
        replayed = curve(simulation_config(simulation, trial["trial_id"]))
        stored = epochs[epochs["trial_id"] == trial["trial_id"]]
        assert stored["epoch"].tolist() == list(range(1, int(trial["stop_epoch"]) + 1))
        assert stored["val_acc"].tolist() == pytest.approx([row["val_acc"] for row in replayed[: len(stored)]])
    assert read_study(simulation.paths)["status"] == "completed"


def simulation_config(simulation: Any, trial_id: str) -> dict[str, Any]:
    return next(trial.config for trial in simulation.trials if trial.trial_id == trial_id)


def test_optuna_is_told_pruned_with_every_epoch_for_stopped_trials_and_complete_for_finished(tmp_path: Path) -> None:
    simulation = simulate_study(spec_of(), tmp_path, curve)
    search = simulation.parts.search
    optuna_trials = search._ot_study.get_trials(deepcopy=False)
    for _, row in read_trials(simulation.paths).iterrows():
        told = optuna_trials[search._ot_trials[row["trial_id"]].number]
        values = [epoch["val_acc"] for epoch in curve(simulation_config(simulation, row["trial_id"]))]
        assert told.intermediate_values == pytest.approx(dict(enumerate(values[: int(row["stop_epoch"])], start=1)))
        if row["status"] == "stopped_early":
            assert told.state == TrialState.PRUNED
        else:
            assert told.state == TrialState.COMPLETE and told.value == pytest.approx(max(values))


def test_a_replayed_trial_ends_by_its_own_rules_patience_and_divergence(tmp_path: Path) -> None:
    def plateau_or_explode(config: Mapping[str, Any]) -> list[dict[str, float]]:
        rows = curve(config)
        if config["learning_rate"] > 0.03:  # explodes at epoch 3
            rows[2] = {**rows[2], "train_loss": math.nan, "val_loss": math.nan}
        else:  # stops improving after epoch 2
            rows = [rows[min(epoch, 1)] for epoch in range(MAX_EPOCHS)]
        return rows

    spec = spec_of(scheduler="none", train={"max_epochs": MAX_EPOCHS, "early_stopping": {"patience": 3}})
    simulation = simulate_study(spec, tmp_path, plateau_or_explode)
    for _, row in read_trials(simulation.paths).iterrows():
        exploding = simulation_config(simulation, row["trial_id"])["learning_rate"] > 0.03
        if exploding:
            assert (row["status"], row["stop_epoch"]) == ("diverged", 3)
        else:  # best at epoch 2, then 3 epochs without improvement
            assert (row["status"], row["stop_epoch"], row["best_epoch"]) == ("early_stopped_patience", 5, 2)


def test_a_goal_ends_the_study_at_the_first_trial_that_reaches_it(tmp_path: Path) -> None:
    spec = spec_of(scheduler="none", objective={"metric": "val_acc", "goal": 0.75})
    simulation = simulate_study(spec, tmp_path, curve)
    trials = read_trials(simulation.paths).sort_values("trial_number")
    (winner,) = trials[trials["status"] == "reached_goal"].itertuples()
    assert set(trials["status"]) <= {"reached_goal", "completed", "interrupted"}
    assert trials["trial_number"].max() <= winner.trial_number + 1, "no trial starts after the goal"
    reached = [epoch["val_acc"] >= 0.75 for epoch in curve(simulation_config(simulation, winner.trial_id))]
    assert winner.stop_epoch == reached.index(True) + 1
