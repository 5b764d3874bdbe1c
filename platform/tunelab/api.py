"""tunelab from Python: `run` a study, `load_study` a stored one, `load_model` an exported model.

The command line is a thin layer on these: `tunelab run` is `run(...)` plus a printed summary.
Library code raises `BadInputError` (the message the CLI prints) and never exits.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

from tunelab.errors import BadInputError
from tunelab.store.layout import DEFAULT_STORAGE
from tunelab.stored_study import Study
from tunelab.tuned_model import TunedModel, load_model

# Keyword overrides and the experiment-file fields they set (the CLI's options).
OVERRIDES = {
    "num_samples": "budget.num_samples",
    "max_concurrent": "budget.max_concurrent",
    "time_budget_s": "budget.time_budget_s",
    "seed": "searcher.seed",
    "max_epochs": "train.max_epochs",
    "fuse": "train.fuse",
}

__all__ = ["OVERRIDES", "Study", "TunedModel", "load_model", "load_study", "run", "run_experiment"]


def run(
    experiment: str | Path | dict[str, Any] | Any,
    *,
    storage: str | Path | None = None,
    name: str | None = None,
    data: Any = None,
    quiet: bool = False,
    echo: Callable[[str], None] | None = None,
    **overrides: Any,
) -> Study:
    """Run a study on this machine and return it.

    `experiment` is an experiment file's path, a dict with the file's structure, or a `Spec`.
    `data` (optional): `(x, y)` or `tunelab.Data(train=(x, y), validation=..., test=...)`,
    arrays or a DataFrame with its target as a Series, instead of the experiment's data set.
    `overrides`: num_samples, max_concurrent, time_budget_s, seed, max_epochs, fuse ("auto",
    "off" or the most members per cohort).
    Progress lines go to `echo` (default: print; `quiet=True`: none). Ctrl-C ends the study
    as interrupted, resumable with `tunelab resume`, and raises KeyboardInterrupt
    (`tunelab.errors.StudyInterrupted`).
    """
    say = (lambda line: None) if quiet else (echo or print)
    outcome = run_experiment(experiment, storage=storage, name=name, data=data, echo=say, **overrides)
    return Study(outcome.paths)


def run_experiment(
    experiment: str | Path | dict[str, Any] | Any,
    *,
    storage: str | Path | None = None,
    name: str | None = None,
    data: Any = None,
    echo: Callable[[str], None] = print,
    **overrides: Any,
) -> Any:
    """`run`, returning the run's outcome (its timings too): what `tunelab run` prints from."""
    from tunelab.study import run_study

    storage_path = Path(storage if storage is not None else DEFAULT_STORAGE)
    changes = _overrides(name, overrides)
    document, source, base = _document(experiment)
    written = None
    if data is not None:
        from tunelab.inline_data import dataset_section

        declared = document.get("dataset") if isinstance(document.get("dataset"), dict) else None
        document["dataset"], written = dataset_section(data, storage_path.expanduser().resolve(), declared)
    try:
        spec = _validated(document, source, base, changes)
    except BadInputError:
        if written is not None:  # bad input leaves nothing behind
            written.unlink(missing_ok=True)
        raise
    return run_study(spec, storage_path, echo=echo)


def load_study(name: str, storage: str | Path | None = None) -> Study:
    """A stored study (also while it runs: each access reads the newest rows)."""
    return Study.load(name, storage)


def _overrides(name: str | None, overrides: dict[str, Any]) -> dict[str, Any]:
    unknown = [key for key in overrides if key not in OVERRIDES]
    if unknown:
        raise BadInputError(f"run(): unknown option {unknown[0]!r}; expected one of {', '.join(OVERRIDES)}")
    changes = {OVERRIDES[key]: value for key, value in overrides.items() if value is not None}
    if name is not None:
        changes["name"] = name
    return changes


def _document(experiment: Any) -> tuple[dict[str, Any], str, Path | None]:
    """The experiment as a plain document, the name errors give its source, and the folder
    its relative paths are relative to."""
    from tunelab.spec import Spec
    from tunelab.spec.loader import parse_document, read_experiment_text

    if isinstance(experiment, (str, Path)):
        path = Path(experiment)
        return parse_document(read_experiment_text(path), str(path)), str(path), path.resolve().parent
    if isinstance(experiment, Spec):
        return experiment.model_dump(mode="json"), "<experiment spec>", None
    if isinstance(experiment, dict):
        return copy.deepcopy(experiment), "<experiment dict>", None
    raise BadInputError(f"experiment: expected a file path, a dict or a Spec, got {type(experiment).__name__}")


def _validated(document: dict[str, Any], source: str, base: Path | None, changes: dict[str, Any]) -> Any:
    from tunelab.spec.loader import validate_document

    return validate_document(document, source, changes, base)
