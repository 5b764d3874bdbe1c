"""Experiment files: valid ones load; each bad one is one clear line, exit code 2, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from conftest import REPO, SMALL_STUDY, assert_run_refused, run_cli, small_study
from tunelab.errors import SpecError
from tunelab.spec import load_spec, parse_spec

ALIAS_BOMB = """
a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
name: bomb
"""


# SMALL_STUDY as text with `train.max_epochs` written a second time two lines further down.
STUDY_TEXT = yaml.safe_dump(small_study(), sort_keys=False)
MAX_EPOCHS_LINE = STUDY_TEXT.splitlines().index("  max_epochs: 6") + 1
KEY_GIVEN_TWICE = STUDY_TEXT.replace("  max_epochs: 6\n", "  max_epochs: 6\n  seed: 0\n  max_epochs: 12\n")


def replaced(**sections: Any) -> dict[str, Any]:
    """SMALL_STUDY with whole sections replaced (small_study merges into them)."""
    return {**small_study(), **sections}


def without(section: str) -> dict[str, Any]:
    study = small_study()
    del study[section]
    return study


def space_with(**entries: Any) -> dict[str, Any]:
    return small_study(search_space={**SMALL_STUDY["search_space"], **entries})


# (case id, document, field the message must name, words the message must contain)
BAD_FILES: list[tuple[str, Any, str, str]] = [
    ("malformed yaml", "name: x\nmodel: {name: mlp\n", "", "invalid YAML"),
    ("top level is a list", "- name: x\n", "", "expected a mapping"),
    ("empty file", "", "", "an empty file"),
    ("alias bomb", ALIAS_BOMB, "", "more than 10000 values"),
    ("unknown top-level key", {**small_study(), "serach_space": {}}, "serach_space", "did you mean 'search_space'"),
    ("missing section", without("model"), "model", "required field is missing"),
    ("wrong type", small_study(train={"max_epochs": "ten"}), "train.max_epochs", "expected a valid integer, got 'ten'"),
    ("unknown key in train", small_study(train={"max_epoch": 5}), "train.max_epoch", "did you mean 'max_epochs'"),
    ("unsafe study name", small_study(name="../x"), "name", "string should match pattern"),
    ("unknown model", small_study(model={"name": "mpl"}), "model.name", "did you mean 'mlp'"),
    ("unknown model option", small_study(model={"widht": 3}), "model.widht", "did you mean 'width'"),
    ("bad model option value", small_study(model={"activation": "swish"}), "model.activation", "expected one of"),
    ("model cannot take the inputs", replaced(model={"name": "rnn"}, search_space={"learning_rate": {"type": "loguniform", "low": 1e-3, "high": 0.1}}), "model.name", "cannot take digits's inputs (1, 8, 8): rnn needs sequence"),
    ("unknown data set", small_study(dataset={"name": "digts"}), "dataset.name", "did you mean 'digits'"),
    ("bad data set option", small_study(dataset={"name": "moons", "noise": -1}), "dataset.noise", "expected a number >= 0"),
    ("fractions leave no training data", small_study(dataset={"validation_fraction": 0.5, "test_fraction": 0.45}), "dataset", "below 0.9"),
    ("unknown searcher", small_study(searcher={"name": "tpee"}), "searcher.name", "did you mean 'tpe'"),
    ("unknown scheduler", small_study(scheduler={"name": "ashaa"}), "scheduler.name", "did you mean 'asha'"),
    ("grace period beyond max epochs", small_study(scheduler={"grace_period": 10}), "scheduler.grace_period", "fewer than train.max_epochs (6)"),
    ("unknown distribution type", space_with(depth={"type": "integer", "low": 1, "high": 3}), "search_space.depth.type", "expected one of loguniform, uniform, int, choice"),
    ("loguniform low not positive", space_with(learning_rate={"type": "loguniform", "low": 0, "high": 0.1}), "search_space.learning_rate.low", "expected greater than 0"),
    ("low above high", space_with(depth={"type": "int", "low": 4, "high": 1}), "search_space.depth", "low (4) must be below high (1)"),
    ("empty choices", space_with(optimizer={"type": "choice", "values": []}), "search_space.optimizer.values", "at least 1 item"),
    ("searched name unknown", space_with(learnig_rate={"type": "loguniform", "low": 1e-3, "high": 0.1}), "search_space.learnig_rate", "did you mean 'learning_rate'"),
    ("range outside declaration", space_with(dropout={"type": "uniform", "low": 0.0, "high": 1.5}), "search_space.dropout", "in [0, 1)"),
    ("float range for an integer", space_with(depth={"type": "uniform", "low": 1, "high": 3}), "search_space.depth.type", "expected type 'int' or 'choice'"),
    ("searched and fixed", small_study(model={"depth": 2}), "search_space.depth", "also set as a fixed value"),
    ("condition on unknown parameter", space_with(momentum={"type": "uniform", "low": 0, "high": 0.9, "when": {"optimiser": "sgd"}}), "search_space.momentum.when.optimiser", "did you mean 'optimizer'"),
    ("condition value not a choice", space_with(momentum={"type": "uniform", "low": 0, "high": 0.9, "when": {"optimizer": "rmsprop"}}), "search_space.momentum.when.optimizer", "'rmsprop' is not one of"),
    ("unknown objective metric", small_study(objective={"metric": "val_accuracy"}), "objective.metric", "did you mean 'val_acc'"),
    ("accuracy on regression data", small_study(dataset={"name": "regression"}, objective={"metric": "val_acc"}), "objective.metric", "for regression"),
    ("loss maximised", small_study(objective={"metric": "val_loss", "mode": "max"}), "objective.mode", "expected 'min'"),
    ("grid smaller than budget", replaced(searcher={"name": "grid", "resolution": 2}, search_space={"depth": {"type": "int", "low": 1, "high": 2}}), "budget.num_samples", "expected at most 2, got 8"),
    ("grid too large to list", replaced(searcher={"name": "grid", "resolution": 1000}, search_space={name: {"type": "uniform", "low": 0.0, "high": 0.5} for name in ("dropout", "weight_decay", "l1")}), "search_space", "has 1,000,000,000 configurations; expected at most 1,000,000"),
    ("negative patience", small_study(train={"early_stopping": {"patience": 0}}), "train.early_stopping.patience", "greater than or equal to 1"),
    ("accuracy goal above 1", small_study(objective={"metric": "val_acc", "goal": 96}), "objective.goal", "expected a goal in that range, got 96"),
    ("negative loss goal", small_study(objective={"metric": "val_loss", "goal": -0.1}), "objective.goal", "expected a goal of at least 0, got -0.1"),
    ("goal not a number", small_study(objective={"metric": "val_acc", "goal": "high"}), "objective.goal", "valid number"),
    ("key given twice", KEY_GIVEN_TWICE, "train.max_epochs", f"given twice (lines {MAX_EPOCHS_LINE} and {MAX_EPOCHS_LINE + 2}); expected it once"),
    ("tag that cannot read its value", STUDY_TEXT.replace("max_epochs: 6", "max_epochs: !!int six"), "", "cannot read 'six' as !!int"),
    ("nesting deeper than any study", STUDY_TEXT.replace("description: test study", "description: " + "[" * 3000 + "]" * 3000), "", "nested deeper than 50 levels"),
    ("a choice value that is a mapping", space_with(optimizer={"type": "choice", "values": ["sgd", {"adam": 1}]}), "search_space.optimizer.values.1", "expected a number, text, true/false or null, got a mapping"),
    ("one-cycle with an optimiser without momentum", replaced(search_space={"learning_rate": {"type": "loguniform", "low": 1e-3, "high": 0.1}}, train={"max_epochs": 6, "optimizer": "adagrad", "lr_schedule": "onecycle"}), "train.lr_schedule", "'onecycle' cycles momentum, which optimizer 'adagrad' has none of"),
    ("one-cycle searched with a searched optimiser without momentum", space_with(optimizer={"type": "choice", "values": ["sgd", "adagrad"]}, lr_schedule={"type": "choice", "values": ["none", "onecycle"]}), "search_space.lr_schedule", "expected it only with sgd, adam, adamw, rmsprop"),
]


@pytest.mark.parametrize("document,field,words", [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES])
def test_bad_file_is_one_line_naming_file_and_field_exit_2_and_nothing_written(
    document: Any, field: str, words: str, write_spec: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_run_refused(write_spec(document), field, words, tmp_path / "store", capsys)


def test_there_are_at_least_twenty_distinct_bad_files() -> None:
    assert len({case[0] for case in BAD_FILES}) >= 20


def test_a_condition_that_keeps_one_cycle_from_adagrad_is_accepted() -> None:
    document = space_with(optimizer={"type": "choice", "values": ["sgd", "adagrad"]},
                          lr_schedule={"type": "choice", "values": ["none", "onecycle"], "when": {"optimizer": "sgd"}})
    spec = parse_spec(yaml.safe_dump(document), "kept-apart.yaml")
    assert spec.search_space["lr_schedule"].condition_values() == {"optimizer": ["sgd"]}


def test_validate_reports_the_same_error(write_spec: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    path = write_spec(small_study(model={"name": "mpl"}))
    code, _, err = run_cli(["validate", str(path)], capsys)
    assert code == 2
    assert "model.name: unknown model 'mpl' (did you mean 'mlp'?)" in err


def test_shipped_experiment_files_validate(capsys: pytest.CaptureFixture[str]) -> None:
    files = sorted((REPO / "search_spaces").glob("*.yaml"))
    assert REPO / "search_spaces" / "quickstart.yaml" in files
    for path in files:
        code, out, _ = run_cli(["validate", str(path)], capsys)
        assert code == 0
        assert out.startswith(f"{path}: ok")


def test_quickstart_searches_the_five_classic_knobs_with_tpe_and_asha() -> None:
    spec = load_spec(REPO / "search_spaces" / "quickstart.yaml")
    assert {"learning_rate", "batch_size", "momentum", "depth", "dropout"} <= set(spec.search_space)
    assert spec.search_space["learning_rate"].type == "loguniform"
    assert spec.search_space["momentum"].condition_values() == {"optimizer": ["sgd"]}
    assert (spec.searcher.name, spec.scheduler.name, spec.dataset.name) == ("tpe", "asha", "digits")


def test_defaults_are_resolved(write_spec: Callable[..., Path]) -> None:
    study = small_study()
    del study["budget"], study["objective"]
    spec = load_spec(write_spec(study))
    assert spec.objective.metric == "val_loss" and spec.objective_mode == "min"
    assert spec.budget.num_samples == 20


def test_grid_searcher_defaults_to_its_grid_size(write_spec: Callable[..., Path]) -> None:
    study = replaced(
        searcher={"name": "grid"},
        search_space={"depth": {"type": "int", "low": 1, "high": 3}, "optimizer": {"type": "choice", "values": ["sgd", "adam"]}},
    )
    del study["budget"]
    assert load_spec(write_spec(study)).budget.num_samples == 6


def test_a_grid_counts_a_conditional_parameter_only_where_it_exists(write_spec: Callable[..., Path]) -> None:
    study = replaced(
        searcher={"name": "grid", "resolution": 4},
        search_space={
            "optimizer": {"type": "choice", "values": ["sgd", "adam", "rmsprop"]},
            "momentum": {"type": "uniform", "low": 0.0, "high": 0.9, "when": {"optimizer": ["sgd", "rmsprop"]}},
        },
    )
    del study["budget"]
    # sgd and rmsprop with 4 momentum values each, adam once: not 3 x 4.
    assert load_spec(write_spec(study)).budget.num_samples == 4 + 1 + 4


def test_shorthand_names_and_condition_lists(write_spec: Callable[..., Path]) -> None:
    spec = load_spec(
        write_spec(space_with(momentum={"type": "uniform", "low": 0, "high": 0.9, "when": {"optimizer": ["sgd"]}}) | {"scheduler": "none"})
    )
    assert spec.scheduler.name == "none"
    assert spec.search_space["momentum"].condition_values() == {"optimizer": ["sgd"]}


def test_python_tags_are_refused(write_spec: Callable[..., Path]) -> None:
    path = write_spec("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SpecError, match="invalid YAML"):
        load_spec(path)


@pytest.mark.parametrize(
    "argv,words",
    [
        (["run", "{spec}", "--num-samples", "0"], "--num-samples"),
        (["run", "{spec}", "--bogus"], "No such option: --bogus"),
        (["run", "{missing}"], "no such file"),
        (["run", "{spec}", "--storage", "{file}"], "is not a writable folder"),
        (["run", "{spec}", "--storage", "s3://bucket/results"], "object-store URIs are not supported yet"),
        (["results", "nothing", "--storage", "{dir}"], "no study 'nothing'"),
        (["results", "nothing", "--format", "xml"], "--format"),
    ],
)
def test_bad_command_line_is_one_line_and_exit_2(
    argv: list[str], words: str, write_spec: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(small_study())
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    values = {"spec": spec, "missing": tmp_path / "missing.yaml", "file": a_file, "dir": tmp_path}
    code, _, err = run_cli([arg.format(**values) for arg in argv], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert words in err


def test_existing_study_is_refused_before_anything_runs(
    write_spec: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "store" / "small").mkdir(parents=True)
    code, _, err = run_cli(["run", str(write_spec(small_study())), "--storage", str(tmp_path / "store")], capsys)
    assert code == 2
    assert "study 'small' already exists" in err and "--name" in err
    assert list((tmp_path / "store" / "small").iterdir()) == []


def test_real_process_exit_code_and_no_traceback(write_spec: Callable[..., Path], tmp_path: Path) -> None:
    path = write_spec(space_with(depth={"type": "int", "low": 4, "high": 1}))
    done = subprocess.run(
        [sys.executable, "-m", "tunelab.cli", "run", str(path), "--storage", str(tmp_path / "store")],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"tunelab: error: {path}: search_space.depth: low (4) must be below high (1)"
    assert not (tmp_path / "store").exists()
