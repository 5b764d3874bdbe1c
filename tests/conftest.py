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
