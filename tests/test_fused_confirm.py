"""`tunelab confirm` of a fused study (issue 21): each configuration's replicates train as one
fused cohort, in one Ray task, and store what the same confirm stores unfused; a configuration
the fusion refuses, and every `--resplit` replicate, still trains alone. Real studies on real
Ray and PyTorch, tiny."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from conftest import small_study
from tunelab.spec import Spec, parse_spec
from tunelab.store import StudyPaths
from tunelab.study import run_study

SEEDS = 3


def confirmed_study(name: str, fuse: Any, storage: Path, said: list[str]) -> tuple[Spec, pd.DataFrame]:
    """Four trials (a constant learning rate and a one-cycle schedule, at two learning rates), each
    confirmed with SEEDS seeds at the end of the study; its confirm.parquet."""
    document = small_study(name=name, dataset={"max_train_samples": 400}, scheduler="none",
                           # Patience 1 and a large min_delta: replicates end at epochs of their own.
                           train={"max_epochs": 4, "fuse": fuse, "early_stopping": {"patience": 1, "min_delta": 0.02}},
                           searcher={"name": "grid", "seed": 0}, budget={"num_samples": 4, "max_concurrent": 4})
    document["search_space"] = {"lr_schedule": {"type": "choice", "values": ["none", "onecycle"]},
                                "learning_rate": {"type": "choice", "values": [0.005, 0.05]}}
    del document["searcher"]["n_startup_trials"]
    document["confirm"] = {"top": 4, "seeds": SEEDS}
    spec = parse_spec(yaml.safe_dump(document), f"{name}.yaml")
    run_study(spec, storage, echo=said.append)
    return spec, pd.read_parquet(StudyPaths.of(storage, name).root / "confirm.parquet")


@pytest.fixture(scope="module")
def confirmed(ray_runtime: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    storage = tmp_path_factory.mktemp("fused-confirm")
    said: list[str] = []
    return {"storage": storage, "said": said, "fused": confirmed_study("fused", 4, storage, said),
            "unfused": confirmed_study("unfused", "off", storage, [])}


def by_configuration(rows: pd.DataFrame, storage: Path, study: str) -> pd.DataFrame:
    """The replicates keyed by their trial's configuration and their replicate number."""
    trials = pd.read_parquet(StudyPaths.of(storage, study).root / "trials.parquet").set_index("trial_id")
    keys = trials["param_lr_schedule"] + "@" + trials["param_learning_rate"].astype(str)
    return rows.assign(configuration=rows["trial_id"].map(keys)).set_index(["configuration", "replicate"]).sort_index()


@pytest.mark.ray
def test_a_fused_studys_confirm_stores_what_the_same_confirm_unfused_stores(confirmed: dict[str, Any]) -> None:
    storage = confirmed["storage"]
    spec, fused_rows = confirmed["fused"]
    fused = by_configuration(fused_rows, storage, "fused")
    plain = by_configuration(confirmed["unfused"][1], storage, "unfused")
    assert len(fused) == len(plain) == 4 * SEEDS
    assert set(fused.columns) - set(plain.columns) == {"fusion"}, "only the column that says how they trained"
    # Each configuration's replicates trained as one cohort, in one Ray task.
    assert (fused["fusion"] == "fused").all()
    assert any(line.endswith("→ 4 Ray tasks (4 configuration(s) fused)") for line in confirmed["said"])

    assert plain["epochs"].nunique() > 1, "replicates ended at epochs of their own"
    for column in plain.columns.drop(["trial_id", "trial_number", "created_at"]):
        if pd.api.types.is_float_dtype(plain[column]):
            assert fused[column].to_numpy() == pytest.approx(plain[column].to_numpy(), rel=1e-3, abs=1e-4), column
        else:
            assert fused[column].tolist() == plain[column].tolist(), column


@pytest.mark.ray
def test_resplit_replicates_of_a_fused_study_train_alone_and_say_why(confirmed: dict[str, Any]) -> None:
    from tunelab.trust.runners import RESPLIT_NOT_FUSED, run_confirm

    said: list[str] = []
    rows = run_confirm(confirmed["storage"], "fused", top=1, seeds=2, resplit=True, echo=said.append)
    assert rows["resplit"].all() and (rows["fusion"] == RESPLIT_NOT_FUSED).all()
    assert said[0].endswith("→ 2 Ray tasks"), said
