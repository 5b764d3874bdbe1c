"""The driver keeps a multi-objective study's Pareto front current: each time a trial finishes,
every trial's `pareto` flag is recomputed and the finished trial gets the front's hypervolume
(see `analysis.objectives` for the columns). Called from the store callback; no Ray in here."""

from __future__ import annotations

import json

import pandas as pd

from tunelab.analysis.objectives import (
    HYPERVOLUME, PARETO, REFERENCE, Objectives, front_flags, front_hypervolume, hypervolume_by_trial, reference_for,
)
from tunelab.store import StudyWriter


def refresh_front(writer: StudyWriter, objectives: Objectives, finished_trial_id: str) -> None:
    trials = pd.DataFrame(writer.trials())
    for trial_id, flag in zip(trials["trial_id"], front_flags(trials, objectives)):
        if writer.trial(trial_id).get(PARETO) != bool(flag):
            writer.update_trial(trial_id, **{PARETO: bool(flag)})
    reference = reference_for(trials, objectives)
    if reference is None:  # no trial has finished with values yet: no volume to measure
        return
    if json.dumps(reference) == writer.study().get(REFERENCE):
        # The latest trial to finish: the front of every finished trial is its hypervolume.
        writer.update_trial(finished_trial_id, **{HYPERVOLUME: front_hypervolume(trials, objectives, reference)})
        return
    # A trial worse than all before it moved the reference: the whole history again, at the new one.
    writer.update_study(**{REFERENCE: json.dumps(reference)})
    for trial_id, volume in hypervolume_by_trial(trials, objectives, reference).items():
        writer.update_trial(trial_id, **{HYPERVOLUME: volume})
