"""The experiment file's structure. `checks.py` adds the rules that need the registries."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from tunelab.datasets.base import check_fractions
from tunelab.errors import BadInputError
from tunelab.metrics import Mode
from tunelab.search.space import Distribution
from tunelab.strict import ComponentModel, OptionsModel, StrictModel

# A study name becomes a folder name: no separators, no leading dot, nothing like `../x`.
STUDY_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
# NumPy and Optuna take seeds in [0, 2**32): a seed beyond would pass here and fail once the
# study runs. The training seed stays below 2**31, leaving room for the seeds derived from it
# (one per bias/variance round or replicate).
SEED_LIMIT = 2**32
TRAIN_SEED_LIMIT = 2**31


def _name_shorthand(value: Any) -> Any:
    """`scheduler: none` is short for `scheduler: {name: none}`."""
    return {"name": value} if isinstance(value, str) else value


class DatasetSpec(ComponentModel):
    validation_fraction: float = Field(default=0.2, gt=0, lt=1)
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    seed: int = Field(default=0, ge=0, lt=SEED_LIMIT)
    # Train on a seeded random subset of the training split (validation/test unchanged),
    # e.g. to show what dropout does for a small training set.
    max_train_samples: int | None = Field(default=None, ge=2)

    @model_validator(mode="after")
    def _leave_data_to_train_on(self) -> DatasetSpec:
        # The data sets' own rule, which every split checks; here it fails as the file is read.
        try:
            check_fractions(self.validation_fraction, self.test_fraction)
        except BadInputError as exc:
            raise ValueError(str(exc)) from None
        return self


class ModelSpec(ComponentModel):
    pass


class SearcherSpec(ComponentModel):
    name: str = "tpe"
    seed: int | None = Field(default=0, ge=0, lt=SEED_LIMIT)


class SchedulerSpec(ComponentModel):
    name: str = "asha"


class Objective(StrictModel):
    metric: str = "val_loss"
    # Inferred from the metric when absent (losses are minimised, accuracies maximised).
    mode: Mode | None = None
    # Good enough: once a trial's objective reaches this value the trial ends (with its test
    # evaluation), no further trials start and running ones are interrupted.
    goal: float | None = Field(default=None, allow_inf_nan=False)
    # In a list of objectives: the one the scheduler judges and the trial's best epoch is
    # chosen by (default: the first). Meaningless, and harmless, on a single objective.
    primary: bool = False


def _objective_shape(value: Any) -> str:
    return "several" if isinstance(value, list) else "one"


# `objective:` is one mapping, or a list of them (a multi-objective study). The tag names the
# shape in pydantic's error locations; the loader drops it from the field it reports.
Objectives = Annotated[
    Union[Annotated[Objective, Tag("one")], Annotated[list[Objective], Tag("several")]],
    Discriminator(_objective_shape),
]
OBJECTIVE_SHAPES = ("one", "several")


class EarlyStopping(StrictModel):
    # Stop a trial after `patience` epochs without an improvement larger than `min_delta`
    # in `monitor` (the objective metric unless set). `patience: null` turns it off.
    patience: int | None = Field(default=5, ge=1)
    min_delta: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    monitor: str | None = None


def fuse_setting(value: Any) -> str | int:
    """`train.fuse` as written: auto, off (YAML reads a bare off/on as false/true), or a whole
    number of members of at least 2."""
    if value is False or value is True:
        return "off" if value is False else "auto"
    if value in ("auto", "off") or (isinstance(value, int) and value >= 2):
        return value
    raise ValueError(f"expected auto, off or a number of members per cohort of at least 2, got {value!r}")


class TrainSpec(OptionsModel):
    """Training loop settings; the extra keys are fixed training knobs (optimizer, ...)."""

    max_epochs: int = Field(default=20, ge=1, le=100_000)
    early_stopping: EarlyStopping = EarlyStopping()
    seed: int = Field(default=0, ge=0, lt=TRAIN_SEED_LIMIT)
    # A trial saves a checkpoint once this much training time has passed since its last one,
    # and always when it ends: a crash loses at most this long of work per trial, and short
    # epochs do not pay for a checkpoint each. 0: every epoch.
    checkpoint_interval_s: float = Field(default=10.0, ge=0, allow_inf_nan=False)
    # Train trials whose models share shapes and batch size as members of fused cohorts, each
    # still its own trial (tunelab.fusion): auto, off, or at most N members per cohort.
    fuse: Literal["auto", "off"] | int = "off"

    _fuse_setting = field_validator("fuse", mode="before")(fuse_setting)


class Budget(StrictModel):
    # None: the searcher decides (a grid's size) or 20.
    num_samples: int | None = Field(default=None, ge=1, le=1_000_000)
    # None: as many as the machine's CPUs and GPUs allow.
    max_concurrent: int | None = Field(default=None, ge=1)
    time_budget_s: float | None = Field(default=None, gt=0)
    # A trial that raises is restarted from its last checkpoint this many times before it is
    # recorded as errored (a diverged trial ended on its own and is never retried).
    max_failures: int = Field(default=1, ge=0, le=100)


class BiasVarSpec(StrictModel):
    """Run `tunelab biasvar` on the best trials when the study ends."""

    top: int = Field(default=3, ge=1)
    rounds: int = Field(default=10, ge=2, le=1000)
    method: str = "bootstrap"  # a name in BIASVAR_METHODS
    learning_curve: bool = True

    @field_validator("method")
    @classmethod
    def _known_method(cls, method: str) -> str:
        from tunelab.training.replicates import BIASVAR_METHODS

        BIASVAR_METHODS[method]  # raises, naming the known ones
        return method


class ConfirmSpec(StrictModel):
    """Run `tunelab confirm` on the best configurations when the study ends."""

    top: int = Field(default=3, ge=1)
    seeds: int = Field(default=5, ge=2, le=1000)
    resplit: bool = False


class AuditSpec(StrictModel):
    """Run `tunelab audit` on trials the scheduler stopped when the study ends."""

    sample: int | None = Field(default=None, ge=1)  # None: about 10 % of them, at least 4
    all: bool = False
    top: int = Field(default=5, ge=1)


class MlflowSpec(StrictModel):
    tracking_uri: str = Field(min_length=1)  # e.g. file:///shared/mlruns, or an MLflow server's URL
    experiment: str | None = None  # default: the study's name


class LoggingSpec(StrictModel):
    """The study's trials written to other tools when it ends (the store stays the truth)."""

    tensorboard: bool = False  # event files under STUDY/tensorboard/, one folder per trial
    mlflow: MlflowSpec | None = None  # one parent run per study, a child run per trial


class Resources(StrictModel):
    cpu: float = Field(default=1, gt=0, allow_inf_nan=False)
    gpu: float = Field(default=0, ge=0, allow_inf_nan=False)


class Spec(StrictModel):
    name: str = Field(pattern=STUDY_NAME_PATTERN)
    description: str = ""
    dataset: DatasetSpec
    model: ModelSpec
    search_space: dict[str, Distribution] = Field(min_length=1)
    objective: Objectives = Objective()
    train: TrainSpec = TrainSpec()
    searcher: SearcherSpec = SearcherSpec()
    scheduler: SchedulerSpec = SchedulerSpec()
    budget: Budget = Budget()
    resources: Resources = Resources()
    biasvar: BiasVarSpec | None = None
    confirm: ConfirmSpec | None = None
    audit: AuditSpec | None = None
    logging: LoggingSpec = LoggingSpec()

    _shorthand = field_validator("dataset", "model", "searcher", "scheduler", mode="before")(_name_shorthand)

    @property
    def objectives(self) -> list[Objective]:
        """Every objective, in the file's order: one for a single-objective study."""
        return list(self.objective) if isinstance(self.objective, list) else [self.objective]

    @property
    def primary_objective(self) -> Objective:
        """The objective the scheduler judges and each trial's best epoch is chosen by: the one
        marked `primary`, else the first."""
        objectives = self.objectives
        return next((objective for objective in objectives if objective.primary), objectives[0])

    @property
    def is_multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def objective_mode(self) -> Mode:
        """The primary objective's; resolved by `checks.validate_spec`, always set on a loaded Spec."""
        mode = self.primary_objective.mode
        assert mode is not None
        return mode

    @property
    def monitor_metric(self) -> str:
        return self.train.early_stopping.monitor or self.primary_objective.metric
