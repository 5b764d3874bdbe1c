"""The store's schema is defined once (tunelab.store.schema): the README's table says what it says,
and the tables a real study writes hold only its columns and status words (issue 20)."""

from __future__ import annotations

from pathlib import Path

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


def test_a_real_studys_tables_hold_only_the_schemas_columns_and_words(fit_study: Path) -> None:
    from tunelab.store import StudyPaths, list_study_names, read_epochs, read_study, read_trials

    (name,) = list_study_names(fit_study)
    paths = StudyPaths.of(fit_study, name)
    study, trials, epochs = read_study(paths), read_trials(paths), read_epochs(paths)
    assert set(study) <= schema.STUDY.column_names() and study["status"] in schema.STUDY_STATUSES
    assert [column for column in trials.columns if not schema.TRIALS.holds(column)] == []
    assert set(trials["status"]) <= set(schema.TRIAL_STATUSES)
    assert [column for column in epochs.columns if not schema.EPOCHS.holds(column)] == []
