"""The store's schema is defined once (tunelab.store.schema): the README's table says what it says,
and the tables a real study writes hold only its columns and status words (issue 20)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from tunelab.store import schema
from tunelab.store.layout import PARAM_PREFIX

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_table_is_the_schemas() -> None:
    text = README.read_text(encoding="utf-8")
    assert schema.readme_table() in text, "README's Results store table differs: paste `python -m tunelab.store.schema`"


def test_patterns_expand_to_every_column_they_name() -> None:
    names = schema.TRIALS.column_names()
    assert {"final_train_loss", "final_test_r2", "final_val_auc", "final_test_auc"} <= names
    assert not any(name.startswith(PARAM_PREFIX) for name in names)
    assert schema.EPOCHS.column_names() >= {"train_acc", "val_r2", "epoch", "time_total_s"}
    assert schema.TRIALS.holds("param_learning_rate") and schema.TRIALS.holds("objective_num_parameters")
    assert not schema.TRIALS.holds("learning_rate")


def test_status_groups_are_made_of_the_status_words() -> None:
    assert set(schema.FINISHED) < set(schema.TRIAL_STATUSES)
    assert set(schema.WITH_A_FINAL_RESULT) < set(schema.ENDED_ON_THEIR_OWN) < set(schema.FINISHED)
    assert schema.INTERRUPTED not in schema.FINISHED and schema.RUNNING not in schema.TRIAL_STATUSES


def tables_of(storage: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    from tunelab.store import StudyPaths, list_study_names, read_epochs, read_study, read_trials

    (name,) = list_study_names(storage)
    paths = StudyPaths.of(storage, name)
    return read_study(paths), read_trials(paths), read_epochs(paths)


@pytest.fixture(scope="module")
def live_fit_study(ray_runtime: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recorded fit study's experiment file, run now by the writer as it is."""
    from conftest import fit_study_document
    from tunelab.spec import parse_spec
    from tunelab.study import run_study

    storage = tmp_path_factory.mktemp("live-fit")
    run_study(parse_spec(yaml.safe_dump(fit_study_document()), "fit.yaml"), storage, echo=lambda line: None)
    return storage


def test_a_real_studys_tables_hold_only_the_schemas_columns_and_words(live_fit_study: Path) -> None:
    study, trials, epochs = tables_of(live_fit_study)
    assert set(study) <= schema.STUDY.column_names() and study["status"] in schema.STUDY_STATUSES
    assert [column for column in trials.columns if not schema.TRIALS.holds(column)] == []
    assert set(trials["status"]) <= set(schema.TRIAL_STATUSES)
    assert [column for column in epochs.columns if not schema.EPOCHS.holds(column)] == []


def test_the_recorded_stores_are_what_the_writer_writes_now(live_fit_study: Path, fit_study: Path) -> None:
    """Tests that only read a study read a recording (tests/recorded_stores.py): it must hold the
    tables and columns a study writes today, or those tests test yesterday's store."""
    live, recorded = tables_of(live_fit_study), tables_of(fit_study)
    hint = "the writer changed: run `python tests/recorded_stores.py` to record the stores again"
    assert set(recorded[0]) == set(live[0]), hint
    assert set(recorded[1].columns) == set(live[1].columns), hint
    assert set(recorded[2].columns) == set(live[2].columns), hint
