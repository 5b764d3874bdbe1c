"""Shared fixtures: experiment files built from one small valid study, and a real Ray."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]

# A study that trains in seconds on two cores: digits, a small MLP, TPE + ASHA.
SMALL_STUDY: dict[str, Any] = {
    "name": "small",
    "description": "test study",
    "dataset": {"name": "digits", "validation_fraction": 0.2, "test_fraction": 0.2, "seed": 0},
    "model": {"name": "mlp", "width": 32},
    "search_space": {
        "learning_rate": {"type": "loguniform", "low": 1e-5, "high": 0.3},
        "optimizer": {"type": "choice", "values": ["sgd", "adam"]},
        "momentum": {"type": "uniform", "low": 0.0, "high": 0.9, "when": {"optimizer": "sgd"}},
        "depth": {"type": "int", "low": 1, "high": 3},
        "dropout": {"type": "uniform", "low": 0.0, "high": 0.5},
    },
    "objective": {"metric": "val_loss"},
    "train": {"max_epochs": 6, "batch_size": 64, "early_stopping": {"patience": 3}},
    "searcher": {"name": "tpe", "seed": 0, "n_startup_trials": 4},
    "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 2},
    "budget": {"num_samples": 8, "max_concurrent": 2},
    "resources": {"cpu": 1},
}


def small_study(**changes: Any) -> dict[str, Any]:
    """SMALL_STUDY with top-level sections replaced or (for dicts) updated."""
    study = copy.deepcopy(SMALL_STUDY)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(study.get(key), dict):
            study[key].update(value)
        else:
            study[key] = value
    return study


def fit_study_document() -> dict[str, Any]:
    """A study whose fit diagnosis must tell a cut trial from a too-small model: an MLP on
    MNIST-1D, depth 0 (logistic regression: it cannot fit MNIST-1D, published accuracy 32 %)
    or 2, each with a learning rate that learns (0.01) or barely moves (1e-5). ASHA stops the
    barely-moving trials at its first rung, where their training error is as high as it gets.

    One trial at a time and grid seed 4, whose first configuration is depth 0 at 0.01: the
    first trial to reach each rung is never stopped there (nothing to compare it with), so the
    too-small model runs to its own end and is judged.
    """
    study = small_study(
        name="fit",
        dataset={"name": "mnist1d", "num_samples": 4000},
        model={"name": "mlp", "width": 128},
        objective={"metric": "val_acc"},
        train={"max_epochs": 20, "optimizer": "adam", "early_stopping": {"patience": 4}},
        searcher={"name": "grid", "seed": 4},
        budget={"num_samples": 4, "max_concurrent": 1},
    )
    del study["searcher"]["n_startup_trials"]
    study["search_space"] = {
        "depth": {"type": "choice", "values": [0, 2]},
        "learning_rate": {"type": "choice", "values": [0.01, 1e-5]},
    }
    return study


@pytest.fixture(scope="session")
def fit_study(ray_runtime: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The storage root holding the real study of `fit_study_document`, run once per session."""
    from tunelab.spec import parse_spec
    from tunelab.study import run_study

    storage = tmp_path_factory.mktemp("fit-store")
    run_study(parse_spec(yaml.safe_dump(fit_study_document()), "fit.yaml"), storage, echo=lambda line: None)
    return storage


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    def write(document: Any, name: str = "study.yaml") -> Path:
        path = tmp_path / name
        path.write_text(document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False))
        return path

    return write


@pytest.fixture(scope="session")
def ray_runtime() -> Iterator[None]:
    """One embedded Ray for the session's in-process studies; shut down only if we started it."""
    import ray

    from tunelab.local_ray import start_ray

    # Trial processes import test models by path (`study_models:FragileMLP`).
    tests_dir = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))
    started_here = not ray.is_initialized()
    start_ray()
    yield
    if started_here:
        ray.shutdown()


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """PyTorch on one thread: small models train faster, and steadier, on a busy 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the CLI in-process, as the console script does; return (exit code, stdout, stderr)."""
    from tunelab.cli import main

    code = 0
    try:
        main(argv)
    except SystemExit as exited:
        code = int(exited.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
