"""`objective:` as a list (a multi-objective study): what loads, and each bad file as one line
naming the file and the field, exit code 2, nothing written."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from conftest import assert_run_refused, run_cli, small_study
from tunelab.search.schedulers import SCHEDULERS, Scheduler
from tunelab.spec import parse_spec

ACC_AND_SIZE = [{"metric": "val_acc"}, {"metric": "num_parameters"}]


def several(objectives: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    return small_study(objective=objectives, **changes)


BAD_FILES: list[tuple[str, Any, str, str]] = [
    ("unknown metric", several([{"metric": "val_acc"}, {"metric": "num_params"}]), "objective.1.metric",
     "unknown metric 'num_params' for classification, or a trial's cost (did you mean 'num_parameters'?)"),
    ("same metric twice", several([{"metric": "val_acc"}, {"metric": "val_acc"}]), "objective.1.metric",
     "val_acc is already objective 0; expected each metric once"),
    ("a goal among several", several([{"metric": "val_acc", "goal": 0.9}, {"metric": "num_parameters"}]), "objective.0.goal",
     "expected no goal with several objectives"),
    ("a cost as the primary", several([{"metric": "num_parameters"}, {"metric": "val_acc"}]), "objective.0.metric",
     "num_parameters cannot be the primary objective"),
    ("two primaries", several([{"metric": "val_acc", "primary": True}, {"metric": "val_loss", "primary": True}]),
     "objective.1.primary", "objective 0 is primary already; expected one primary"),
    ("a cost maximised", several([{"metric": "val_acc"}, {"metric": "inference_ms", "mode": "max"}]), "objective.1.mode",
     "inference_ms is better when lower; expected 'min'"),
    ("a cost as the single objective", small_study(objective={"metric": "train_seconds"}), "objective.metric",
     "unknown metric 'train_seconds' for classification"),
    ("unknown key in a listed objective", several([{"metric": "val_acc", "mdoe": "max"}, {"metric": "num_parameters"}]),
     "objective.0.mdoe", "did you mean 'mode'"),
    ("an empty list", small_study(objective=[]), "objective", "expected an objective (a mapping) or a list of at least two"),
    ("a searcher of one objective", several(ACC_AND_SIZE, searcher={"name": "cmaes"}), "searcher.name",
     "the cmaes searcher optimises one objective; with several objectives expected one of tpe, random, nsga2"),
    ("the rung-TPE searcher", several(ACC_AND_SIZE, searcher={"name": "bohb"}), "searcher.name",
     "the bohb searcher optimises one objective"),
    ("a grid", {**several(ACC_AND_SIZE), "searcher": {"name": "grid"}}, "searcher.name", "the grid searcher optimises one objective"),
]


@pytest.mark.parametrize("document,field,words", [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES])
def test_a_bad_objective_list_is_one_line_exit_2_and_nothing_written(
    document: Any, field: str, words: str, write_spec: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert_run_refused(write_spec(document), field, words, tmp_path / "store", capsys)


def test_a_scheduler_that_cannot_judge_a_primary_refuses_a_list(
    monkeypatch: pytest.MonkeyPatch, write_spec: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The three built-in schedulers judge the primary objective; one registered without that
    ability (as a population-based one would be) refuses a list and names those that take it."""

    class EveryObjectiveScheduler(Scheduler):
        name = "pbt"

        def build(self, *, max_epochs, options):  # type: ignore[no-untyped-def]
            raise AssertionError("validation builds nothing")

    # Registered for this test only (the registry has no way to take an entry back).
    monkeypatch.setitem(SCHEDULERS._entries, "pbt", EveryObjectiveScheduler())
    path = write_spec({**several(ACC_AND_SIZE), "scheduler": {"name": "pbt"}})
    code, _, err = run_cli(["validate", str(path)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert (f"{path}: scheduler.name: the pbt scheduler cannot judge trials by one of several objectives; "
            "with several objectives expected one of asha, median, none") in err
    single = write_spec({**small_study(), "scheduler": {"name": "pbt"}}, "single.yaml")
    assert run_cli(["validate", str(single)], capsys)[0] == 0, "one objective: nothing to refuse"


def test_objectives_and_the_primary_resolve_with_their_modes() -> None:
    spec = parse_spec(yaml.safe_dump(several([{"metric": "val_loss"}, {"metric": "val_acc", "primary": True},
                                              {"metric": "train_seconds"}])))
    assert spec.is_multi_objective
    assert [(o.metric, o.mode) for o in spec.objectives] == [("val_loss", "min"), ("val_acc", "max"), ("train_seconds", "min")]
    assert spec.primary_objective.metric == "val_acc" and spec.objective_mode == "max"
    assert spec.monitor_metric == "val_acc", "patience watches the primary unless told otherwise"
    first = parse_spec(yaml.safe_dump(several(ACC_AND_SIZE)))
    assert first.primary_objective.metric == "val_acc", "the first objective is primary by default"


def test_a_single_mapping_and_a_list_of_one_are_the_same_single_objective_study() -> None:
    mapping = parse_spec(yaml.safe_dump(small_study(objective={"metric": "val_acc"})))
    listed = parse_spec(yaml.safe_dump(small_study(objective=[{"metric": "val_acc"}])))
    assert mapping == listed and not listed.is_multi_objective
    assert [o.metric for o in listed.objectives] == ["val_acc"]


def test_the_stored_spec_reads_back_as_the_same_multi_objective_study() -> None:
    spec = parse_spec(yaml.safe_dump({**several(ACC_AND_SIZE), "searcher": {"name": "nsga2", "population_size": 4}}))
    again = parse_spec(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    assert again == spec


def test_validate_names_every_objective_and_the_one_the_scheduler_judges(
    write_spec: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_spec({**several([{"metric": "val_acc"}, {"metric": "inference_ms"}]), "searcher": {"name": "nsga2"}})
    code, out, _ = run_cli(["validate", str(path)], capsys)
    assert code == 0
    assert "searched by nsga2 with asha, objectives val_acc (max), inference_ms (min); the scheduler judges val_acc" in out
