"""The driver keeps a multi-objective study's Pareto front current: each time a trial finishes,
every trial's `pareto` flag is recomputed and the finished trial gets the front's hypervolume
(see `analysis.objectives` for the columns). Called from the store callback; no Ray in here."""

from __future__ import annotations

import json

import pandas as pd

from tunelab.analysis.objectives import (
    HYPERVOLUME, PARETO, REFERENCE, Objectives, front_flags, front_hypervolume, reference_for,
)
from tunelab.store import StudyWriter


def refresh_front(writer: StudyWriter, objectives: Objectives, finished_trial_id: str) -> None:
    trials = pd.DataFrame(writer.trials())
    for trial_id, flag in zip(trials["trial_id"], front_flags(trials, objectives)):
        if writer.trial(trial_id).get(PARETO) != bool(flag):
            writer.update_trial(trial_id, **{PARETO: bool(flag)})
    stored = writer.study().get(REFERENCE)
    reference = reference_for(trials, objectives, stored)
    if reference is None:  # no trial has finished with values yet: no volume to measure
        return
    if not stored:
        # Fixed from now on, so that the history never falls (see `pareto.reference_point`).
        writer.update_study(**{REFERENCE: json.dumps(reference)})
    writer.update_trial(finished_trial_id, **{HYPERVOLUME: front_hypervolume(trials, objectives, reference)})
