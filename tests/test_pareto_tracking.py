"""The driver's upkeep of a multi-objective study's front (`pareto_tracking.refresh_front`) on a
real store, trial by trial as they would finish, without Ray."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from test_pareto import brute_force_front
from tunelab.analysis.pareto import hypervolume
from tunelab.pareto_tracking import refresh_front
from tunelab.store import StudyPaths, StudyWriter, read_study, read_trials

OBJECTIVES = [("val_acc", "max"), ("num_parameters", "min")]
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
# (status, val_acc, num_parameters) in the order the trials finish. The fourth is the first
# larger model: it moves the hypervolume's reference point.
FINISHING = [
    ("completed", 0.80, 1_000),
    ("stopped_early", 0.30, 200),
    ("completed", 0.85, 1_500),
    ("completed", 0.95, 9_000),
    ("early_stopped_patience", 0.70, 400),
    ("completed", 0.82, 2_000),
    ("diverged", float("-inf"), float("inf")),
]


def finish(writer: StudyWriter, number: int, status: str, accuracy: float, size: float) -> None:
    trial_id = f"t{number}"
    writer.update_trial(trial_id, trial_number=number, status=status, finished_at=START + timedelta(seconds=number),
                        objective_val_acc=accuracy, objective_num_parameters=size)
    refresh_front(writer, OBJECTIVES, trial_id)


def test_the_front_and_the_hypervolume_history_follow_the_trials_as_they_finish(tmp_path: Path) -> None:
    paths = StudyPaths.of(tmp_path, "study")
    writer = StudyWriter(paths)
    writer.update_study(name="study", objective_metric="val_acc", objective_mode="max")
    references = []
    for number, (status, accuracy, size) in enumerate(FINISHING, start=1):
        finish(writer, number, status, accuracy, size)
        references.append(writer.study().get("hypervolume_reference"))
        trials = {row["trial_id"]: row for row in writer.trials()}
        history = [trials[f"t{n}"]["hypervolume"] for n in range(1, number + 1)]
        assert all(later >= earlier for earlier, later in zip(history, history[1:])), (number, history)

        counted = [(f"t{n}", a, s) for n, (st, a, s) in enumerate(FINISHING[:number], start=1)
                   if st in ("completed", "early_stopped_patience")]
        expected = dict(zip([c[0] for c in counted], brute_force_front([[a, s] for _, a, s in counted], ["max", "min"])))
        assert {t: bool(row["pareto"]) for t, row in trials.items()} == {t: expected.get(t, False) for t in trials}
        reference = json.loads(references[-1])
        for upto in range(1, number + 1):  # the whole history at the reference of now
            prefix = [[a, s] for t, a, s in counted if int(t[1:]) <= upto]
            assert history[upto - 1] == pytest.approx(hypervolume(prefix, ["max", "min"], reference)), (number, upto)
    assert len(set(references)) > 1, "a larger model moved the reference point, and the history was measured again"
    writer.flush()

    stored = read_trials(paths).set_index("trial_id")
    assert bool(stored.at["t4", "pareto"]) and not bool(stored.at["t2", "pareto"]), "a stopped trial never counts"
    assert not bool(stored.at["t7", "pareto"]), "nor a diverged one"
    assert json.loads(read_study(paths)["hypervolume_reference"]) == json.loads(references[-1])
