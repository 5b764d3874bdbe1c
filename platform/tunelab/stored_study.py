"""`Study`: a stored study as a Python object — its trials, the best one, and its trained models.

Everything is read from the results store on each access, so a `Study` of a running study
shows its newest rows. Nothing here imports Ray.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab.datasets.preprocessing import Preprocessing
from tunelab.errors import BadInputError
from tunelab.store import StudyPaths, read_epochs, read_study, read_trials
from tunelab.store.layout import DEFAULT_STORAGE, PARAM_PREFIX
from tunelab.store.schema import WITH_A_FINAL_RESULT
from tunelab.tuned_model import TunedModel, build_tuned_model

# Trials that ran to their own end: their saved state holds the weights of their best epoch.


class Study:
    """A study in a results store (`tunelab.load_study`, or what `tunelab.run` returns)."""

    def __init__(self, paths: StudyPaths) -> None:
        if not paths.exists():
            raise BadInputError(f"no study {paths.name!r} in {paths.root.parent}")
        self.paths = paths
        self._models: dict[str, TunedModel] = {}

    @classmethod
    def load(cls, name: str, storage: str | Path | None = None) -> Study:
        return cls(StudyPaths.of(storage if storage is not None else DEFAULT_STORAGE, name))

    def __repr__(self) -> str:
        return f"<Study {self.name!r}: {self.status}, {len(self.trials)} trials, {self.paths.root}>"

    @property
    def name(self) -> str:
        return self.paths.name

    @property
    def info(self) -> dict[str, Any]:
        """The study's row: its spec, objective, searcher, status, times."""
        return read_study(self.paths)

    @property
    def status(self) -> str:
        return str(self.info["status"])

    @property
    def trials(self) -> pd.DataFrame:
        """One row per trial: status, objective, epochs, final and test metrics, `param_*`."""
        trials = read_trials(self.paths)
        return trials.sort_values("trial_number").reset_index(drop=True) if "trial_number" in trials else trials

    @property
    def epochs(self) -> pd.DataFrame:
        """One row per trial and epoch: losses, accuracies or R², learning rate, seconds."""
        return read_epochs(self.paths)

    @property
    def objectives(self) -> list[tuple[str, str]]:
        """(metric, mode) of each objective, in the experiment file's order; one for most studies."""
        from tunelab.analysis.objectives import study_objectives

        return study_objectives(self.info)

    @property
    def pareto_front(self) -> pd.DataFrame:
        """A multi-objective study's Pareto front: the trials that ended on their own and no other
        such trial beats in every objective, best primary objective first. Each objective's value
        is in `objective_<metric>` (at the primary's best epoch)."""
        from tunelab.analysis.objectives import PARETO, pareto_table, primary_objective

        info = self.info
        if len(self.objectives) < 2:
            raise BadInputError(f"study {self.name!r} has one objective ({info['objective_metric']}): "
                                "no Pareto front; its best trial is `best_trial`")
        table = pareto_table(self.trials, self.objectives, primary_objective(info))
        return table[table[PARETO]].reset_index(drop=True) if not table.empty else table

    @property
    def best_trial(self) -> pd.Series:
        """The trial with the best objective among those that have one (in a multi-objective
        study, the primary objective's best; see `pareto_front` for the trade-offs)."""
        trials = self.trials
        scored = trials[trials["objective"].notna()] if "objective" in trials else trials.iloc[0:0]
        if scored.empty:
            raise BadInputError(f"study {self.name!r} has no trial with an objective yet")
        minimise = self.info["objective_mode"] == "min"
        return scored.loc[scored["objective"].idxmin() if minimise else scored["objective"].idxmax()]

    @property
    def best_params(self) -> dict[str, Any]:
        return trial_params(self.best_trial)

    @property
    def best_value(self) -> float:
        return float(self.best_trial["objective"])

    @property
    def preprocessing(self) -> Preprocessing:
        """What the study fitted on its training rows (read back, or refitted for a study
        stored before tunelab kept it: the split is seeded, so the refit is the same)."""
        if self.paths.preprocessing.is_file():
            return Preprocessing.from_json(self.paths.preprocessing.read_text())
        splits_preprocessing = self.splits().preprocessing
        assert splits_preprocessing is not None
        return splits_preprocessing

    def splits(self) -> Any:
        """The study's own train / validation / test splits (`tunelab.datasets.Splits`), read
        again from its data set: the same rows, in the same parts, scaled the same way."""
        from tunelab.datasets import load_splits

        spec = self._spec(read_data=True)
        return load_splits(spec.dataset.name, spec.dataset.options(), spec.dataset.validation_fraction,
                           spec.dataset.test_fraction, spec.dataset.seed, spec.dataset.max_train_samples)

    def tuned_model(self, trial: int | str | None = None, device: str = "cpu") -> TunedModel:
        """The trial's model (default: the best trial's) with the weights of its best epoch,
        and the study's preprocessing."""
        row = self._trial(trial)
        key = f"{row['trial_id']}@{device}"
        if key not in self._models:
            self._models[key] = self._load_model(row, device)
        return self._models[key]

    def best_model(self, trial: int | str | None = None, device: str = "cpu") -> Any:
        """A `torch.nn.Module` in eval mode with the weights of the trial's best epoch."""
        return self.tuned_model(trial, device).module

    def predict(self, x: Any, trial: int | str | None = None) -> np.ndarray:
        """Raw inputs in (as the data set holds them), the study's preprocessing applied;
        class names (or indices) out for classification, values in the target's units for regression."""
        return self.tuned_model(trial).predict(x)

    def predict_proba(self, x: Any, trial: int | str | None = None) -> pd.DataFrame:
        return self.tuned_model(trial).predict_proba(x)

    def export(self, folder: str | Path, trial: int | str | None = None) -> Path:
        """A self-contained bundle of the trial's model (see `tunelab.tuned_model`)."""
        return self.tuned_model(trial).save(folder)

    def _spec(self, read_data: bool) -> Any:
        from tunelab.spec import parse_spec

        return parse_spec(str(self.info["spec_yaml"]), f"{self.paths.study} (spec_yaml)", read_data=read_data)

    def _trial(self, trial: int | str | None) -> pd.Series:
        if trial is None:
            return self.best_trial
        trials = self.trials
        if isinstance(trial, (int, np.integer)) and not isinstance(trial, bool):
            chosen = trials[trials["trial_number"] == int(trial)]
        else:
            chosen = trials[trials["trial_id"] == str(trial)]
        if chosen.empty:
            numbers = trials["trial_number"].astype(int)
            raise BadInputError(f"study {self.name!r} has no trial {trial!r}; expected a trial number "
                                f"{numbers.min()}–{numbers.max()} or a trial id" if len(numbers) else
                                f"study {self.name!r} has no trials yet")
        return chosen.iloc[0]

    def _load_model(self, row: pd.Series, device: str) -> TunedModel:
        from tunelab.training.trial_state import BEST_MODEL_FILE, load_state, trial_folder
        from tunelab_models import get_model

        number = int(row["trial_number"])
        saved = load_state(trial_folder(self.paths.root, str(row["trial_id"])) / BEST_MODEL_FILE)
        if saved is None:
            raise BadInputError(
                f"trial {number} of study {self.name!r} has no saved model: it ended {row.get('status')} at epoch "
                f"{_int_or_none(row.get('stop_epoch'))}; choose a trial that ran to its own end "
                f"({', '.join(WITH_A_FINAL_RESULT)})"
            )
        saved_best = int(saved["best_epoch"])
        spec = self._spec(read_data=False)
        declared = {param.name for param in get_model(spec.model.name).hyperparameters}
        params = {**spec.model.options(), **{k: v for k, v in trial_params(row).items() if k in declared}}
        metrics = {name.removeprefix("final_"): float(value) for name, value in row.items()
                   if str(name).startswith("final_") and isinstance(value, (int, float)) and math.isfinite(value)}
        about = {"study": self.name, "number": number, "trial_id": str(row["trial_id"]), "best_epoch": saved_best,
                 "objective": spec.primary_objective.metric, "objective_value": _float_or_none(row.get("objective"))}
        return build_tuned_model(spec.model.name, params, self.preprocessing, saved["best_model"], device,
                                 trial=about, metrics=metrics)


def trial_params(row: pd.Series) -> dict[str, Any]:
    """A trial's searched parameters without the column prefix; conditional ones it did not
    have (NaN) left out."""
    params = {}
    for column, value in row.items():
        if not str(column).startswith(PARAM_PREFIX) or value is None:
            continue
        if isinstance(value, float) and math.isnan(value):
            continue
        if isinstance(value, np.generic):
            value = value.item()
        params[str(column).removeprefix(PARAM_PREFIX)] = value
    return params


def _int_or_none(value: Any) -> int | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)


def _float_or_none(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
