"""What one trial trains: the study's fixed settings merged with the sampled config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from tunelab_models import get_model, resolve_params

from tunelab.metrics import Mode
from tunelab.training.knobs import TRAINING_KNOBS


@dataclass(frozen=True)
class TrainingRules:
    """How long every trial of a study trains and what makes it stop, the same for all."""

    max_epochs: int
    objective: str
    objective_mode: Mode
    patience: int | None  # epochs without an improvement of `min_delta` in `monitor`
    min_delta: float
    monitor: str
    monitor_mode: Mode
    seed: int  # model initialisation and shuffling: the same for every trial
    checkpoint_interval_s: float = 0.0  # 0: a checkpoint every epoch
    goal: float | None = None  # an objective this good ends the trial (and the study)
    # A multi-objective study's objectives, (metric, mode), the primary among them; empty for
    # one objective. The trial reports each one's value when it ends (`costs.objective_values`).
    objectives: tuple[tuple[str, Mode], ...] = ()


@dataclass(frozen=True)
class TrialPlan:
    model_name: str
    model_params: dict[str, Any]
    knobs: dict[str, Any]  # optimizer, learning_rate, batch_size, ... (resolved)
    rules: TrainingRules
    device: str = "cpu"


@dataclass(frozen=True)
class StudySetup:
    """The fixed half of every trial's plan, shipped once to the trial actors."""

    model_name: str
    fixed_model_params: dict[str, Any]
    fixed_knobs: dict[str, Any]
    rules: TrainingRules
    cpus_per_trial: float
    gpus_per_trial: float
    rung_epochs: frozenset[int] = frozenset()  # epochs the scheduler judges: reported at once

    def plan_for(self, config: Mapping[str, Any], device: str = "cpu") -> TrialPlan:
        model_param_names = {p.name for p in get_model(self.model_name).hyperparameters}
        model_params = {**self.fixed_model_params, **{k: v for k, v in config.items() if k in model_param_names}}
        knob_values = {**self.fixed_knobs, **{k: v for k, v in config.items() if k not in model_param_names}}
        return TrialPlan(
            model_name=self.model_name,
            model_params=model_params,
            knobs=resolve_params(TRAINING_KNOBS, knob_values),
            rules=self.rules,
            device=device,
        )
