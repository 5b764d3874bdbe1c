"""Stores of real studies, recorded by the real writer and kept in tests/recorded/ (a few hundred
kilobytes), for the tests that only read a study: analysis, the dashboard (AppTest and the
browser), fit. They run without Ray, in `make test-fast`.

A recording is what `run_study` wrote (study, trials and epoch tables, preprocessing), without
Ray's experiment state or the trials' weights, which no reader needs. When the writer changes
what it writes, tests/test_store_schema.py fails until the recordings are made again:

    .venv/bin/python tests/recorded_stores.py      # runs the studies below (about a minute)
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent
RECORDED = TESTS / "recorded"
# What a recording keeps of a study's folder: the tunelab store, nothing of Ray's.
KEPT = ("study.parquet", "trials.parquet", "preprocessing.json", "epochs/part-*.parquet")


def documents() -> dict[str, list[dict[str, Any]]]:
    """Each recorded store's experiment files (they live beside the tests that read them)."""
    from conftest import fit_study_document, small_study
    from test_analysis import CLASSIFIER, regression_study
    from test_dashboard_apptest import STUDY

    return {
        "dashboard": [small_study(name=STUDY, train={"max_epochs": 12}, budget={"num_samples": 12})],
        "analysis": [small_study(name=CLASSIFIER), regression_study()],
        "fit": [fit_study_document()],
    }


def copy_recorded(store: str, target: Path) -> Path:
    """A fresh copy of a recorded store (tests may write to it): its storage root."""
    source = RECORDED / store
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is missing: run `python tests/recorded_stores.py`")
    shutil.copytree(source, target)
    return target


def keep_store_tables(study_folder: Path, target: Path) -> None:
    for pattern in KEPT:
        for path in study_folder.glob(pattern):
            kept = target / path.relative_to(study_folder)
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, kept)


def record(store: str, files: list[dict[str, Any]]) -> None:
    import yaml

    from tunelab.spec import parse_spec
    from tunelab.study import run_study

    with tempfile.TemporaryDirectory(prefix=f"tunelab-record-{store}-") as scratch:
        for document in files:
            run_study(parse_spec(yaml.safe_dump(document), f"{document['name']}.yaml"), Path(scratch), echo=print)
        shutil.rmtree(RECORDED / store, ignore_errors=True)
        for document in files:
            keep_store_tables(Path(scratch) / document["name"], RECORDED / store / document["name"])


def main() -> None:
    import os

    sys.path.insert(0, str(TESTS))
    # Trial processes import the tests' models by path, as under pytest (conftest's ray_runtime).
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    for store, files in documents().items():
        record(store, files)
        print(f"recorded {store}: {', '.join(document['name'] for document in files)} → {RECORDED / store}")


if __name__ == "__main__":
    main()
