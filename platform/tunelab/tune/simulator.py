"""A study without a Ray process: the searcher, scheduler and driver callbacks `tunelab run` builds
(`tuner.begin_study`), fed by a trainable that replays learning curves, on a simulated clock.

syne-tune's simulator backend is the example: what decides a study (Optuna's suggestions, ASHA's
stops at its rungs, what Optuna is told about them, the rows the store keeps, the progress line)
runs in one process in milliseconds, on curves a test chooses. A replayed trial ends by the rule a
real one does (`training.epoch_end.judge_epoch`: patience, the goal, divergence, max_epochs).

Calls follow Ray Tune's order (`study_events`); a trial that ends frees its slot for the next.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from tunelab.errors import BadInputError
from tunelab.from_spec import load_study_data, study_setup
from tunelab.metrics import EPOCH_ROWS, TRIAL_END, epoch_row
from tunelab.spec import Spec
from tunelab.store import StudyPaths, StudyWriter
from tunelab.store.schema import STUDY_COMPLETED
from tunelab.training.epoch_end import BestTracker, judge_epoch
from tunelab.training.plan import TrainingRules
from tunelab.tune.store_callback import now
from tunelab.tune.study_events import StudyEvents
from tunelab.tune.tuner import StudyParts, begin_study

# A configuration's epochs as it would train them, first to last: each epoch's metrics
# (train_loss, val_loss, val_acc, ...; epoch_seconds: how long it lasts on the simulated clock).
# The test metrics of its best epoch are what the trial reports when it ends on its own.
LearningCurve = Callable[[Mapping[str, Any]], Sequence[Mapping[str, float]]]


@dataclass
class ReplayedTrial:
    """What Ray Tune's scheduler, searcher and callbacks read of a trial, and where its replay is."""

    trial_id: str
    config: dict[str, Any]
    curve: Sequence[Mapping[str, float]]
    started_at: float
    objective: BestTracker
    patience: BestTracker
    epoch: int = 0
    last_result: dict[str, Any] = field(default_factory=dict)
    error_file: str | None = None

    def next_epoch(self, rules: TrainingRules, ended_at: float) -> dict[str, Any]:
        """The next epoch's report, judged as a trial trained alone would judge it."""
        self.epoch += 1
        row = self.curve[self.epoch - 1]
        metrics: dict[str, Any] = {name: value for name, value in row.items() if not name.startswith("test_")}
        metrics.update(epoch=self.epoch, lr=row.get("lr", 0.0))
        verdict = judge_epoch(metrics, self.epoch, rules, self.objective, self.patience)
        if verdict.end and verdict.end != "diverged":
            best = self.curve[self.objective.best_epoch - 1]
            metrics.update({name: value for name, value in best.items() if name.startswith("test_")})
        if verdict.end:
            metrics[TRIAL_END] = verdict.end
        return {**metrics, EPOCH_ROWS: [epoch_row(metrics)], "training_iteration": self.epoch,
                "time_total_s": ended_at - self.started_at, "trial_id": self.trial_id}


@dataclass(frozen=True)
class Simulation:
    paths: StudyPaths
    parts: StudyParts  # the searcher, scheduler and callbacks, as they ended: inspect them
    trials: list[ReplayedTrial]
    seconds: float  # on the simulated clock


def simulate_study(spec: Spec, storage: Path, curve: LearningCurve, echo: Callable[[str], None] = lambda line: None
                   ) -> Simulation:
    """Run `spec` as `tunelab run` would, each trial replaying `curve(config)`; write its store."""
    paths = StudyPaths.of(storage, spec.name)
    if paths.root.exists():
        raise BadInputError(f"study {spec.name!r} already exists in {paths.root.parent}")
    parts = begin_study(spec, load_study_data(spec), paths, echo)
    rules = study_setup(spec).rules
    budget = spec.budget.time_budget_s or float("inf")
    trials: list[ReplayedTrial] = []
    events = StudyEvents(parts, trials)
    ending: list[tuple[float, int, ReplayedTrial]] = []  # (when its next epoch ends, order, trial)
    order = itertools.count()
    events.begin()

    def start(at: float) -> bool:
        trial_id = f"sim{len(trials):05d}"
        config = events.suggest(trial_id)
        if config is None:
            return False
        trial = ReplayedTrial(trial_id, config, curve(config), at, BestTracker(rules.objective_mode),
                              BestTracker(rules.monitor_mode, rules.min_delta))
        trials.append(trial)
        events.started(trial)
        heapq.heappush(ending, (at + trial.curve[0].get("epoch_seconds", 1.0), next(order), trial))
        return True

    clock = 0.0
    while len(trials) < parts.num_samples and len(ending) < parts.max_concurrent and start(clock):
        pass
    while ending:
        clock, _, trial = heapq.heappop(ending)
        if clock > budget:
            break
        if not events.result(trial, trial.next_epoch(rules, clock)):
            next_end = clock + trial.curve[trial.epoch].get("epoch_seconds", 1.0)
            heapq.heappush(ending, (next_end, next(order), trial))
            continue
        if events.completed(trial):
            break  # the study's goal: the study ends, as GoalStopper ends it
        if len(trials) < parts.num_samples:
            start(clock)
    events.end()
    StudyWriter(paths).update_study(status=STUDY_COMPLETED, finished_at=now())
    return Simulation(paths, parts, trials, clock)
