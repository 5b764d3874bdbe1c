"""Can I trust the winner? The statistics on simulated replicates (no Ray), then `tunelab
confirm` and `tunelab audit` on real studies."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import run_cli, small_study
from tunelab.analysis.trust import audit_report, best_probability, leaderboard, mean_interval, paired_comparisons
from tunelab.store import StudyPaths, StudyWriter, read_trials

# --- the statistics, on simulated replicates ------------------------------------------------


def simulated_accuracies(rng: np.random.Generator, mean: float, replicates: int, test_rows: int = 300) -> np.ndarray:
    """Test accuracies of `replicates` retrained models on a data set with known label noise:
    each of `test_rows` predictions is right with probability `mean` (the noise-free ceiling)."""
    return rng.binomial(test_rows, mean, size=replicates) / test_rows


def test_the_95_percent_interval_covers_the_true_mean_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(0)
    truth, simulations = 0.8, 4000
    covered = normal_covered = 0
    for _ in range(simulations):
        values = simulated_accuracies(rng, truth, replicates=5)
        _, low, high = mean_interval(values)
        covered += low <= truth <= high
        half = 1.96 * values.std(ddof=1) / math.sqrt(len(values))
        normal_covered += values.mean() - half <= truth <= values.mean() + half
    # 4000 simulations: the coverage's standard error is 0.0034; ±0.02 is ±6 of them.
    assert 0.93 <= covered / simulations <= 0.97
    # A normal interval with five replicates is too narrow: this test tells the two apart.
    assert normal_covered / simulations < 0.92


def test_configurations_alike_up_to_the_seed_are_told_apart_only_by_chance() -> None:
    rng = np.random.default_rng(1)
    trials = 1000
    apart = 0
    for _ in range(trials):
        shared = rng.normal(0, 0.004, size=5)  # what a seed does to both (paired)
        rows = replicate_rows({"a": 0.9 + shared + rng.normal(0, 0.004, 5), "b": 0.9 + shared + rng.normal(0, 0.004, 5)})
        apart += bool(paired_comparisons(rows, "a", "max")["distinguishable"].iloc[0])
    assert apart / trials <= 0.08  # 5 % expected


def test_a_clearly_better_configuration_is_told_apart_and_most_likely_best() -> None:
    rng = np.random.default_rng(2)
    rows = replicate_rows({"good": 0.95 + rng.normal(0, 0.004, 5), "worse": 0.93 + rng.normal(0, 0.004, 5)})
    compared = paired_comparisons(rows, "good", "max").iloc[0]
    assert compared["distinguishable"] and compared["better"] == "reference"
    assert best_probability(rows.pivot(index="replicate", columns="trial_id", values="objective"), maximise=True)["good"] > 0.99


def test_the_leaderboard_ranks_by_mean_and_by_bound_and_measures_the_searchs_optimism() -> None:
    rows = replicate_rows({"steady": [0.90, 0.901, 0.899, 0.90], "lucky": [0.92, 0.86, 0.95, 0.88]})
    trials = pd.DataFrame({"trial_id": ["steady", "lucky"], "objective": [0.905, 0.97]})
    board = leaderboard(rows, trials, "max").set_index("trial_id")
    assert board.loc["lucky", "rank_mean"] == 1 and board.loc["steady", "rank_mean"] == 2  # 0.9025 > 0.9
    assert board.loc["steady", "rank_bound"] == 1  # but its interval's low end is higher
    assert board.loc["lucky", "optimism"] == pytest.approx(0.97 - 0.9025)
    assert board["p_best"].sum() == pytest.approx(1.0)


def test_rank_correlations_per_rung() -> None:
    # Four trials that ran to the end and one the scheduler stopped at epoch 2, audited.
    trials = pd.DataFrame({
        "trial_id": list("abcde"), "trial_number": [1, 2, 3, 4, 5],
        "status": ["completed"] * 4 + ["stopped_early"], "objective": [0.9, 0.8, 0.7, 0.6, 0.5],
        "epochs": [4, 4, 4, 4, 2], "stop_epoch": [4, 4, 4, 4, 2],
    })
    at_two = {"a": 0.5, "b": 0.6, "c": 0.7, "d": 0.8, "e": 0.4}  # the finished ones in reverse order
    epochs = pd.DataFrame([{"trial_id": t, "epoch": 2, "val_acc": v} for t, v in at_two.items() if t != "e"])
    audit = pd.DataFrame({"trial_id": ["e"], "trial_number": [5], "stop_epoch": [2], "best_objective": [0.95], "epochs": [4]})
    audit_epochs = pd.DataFrame({"trial_id": ["e", "e"], "epoch": [2, 4], "val_acc": [0.4, 0.95]})
    report = audit_report(trials, epochs, audit, audit_epochs, [2], "val_acc", "max", top_k=2)
    rung = report.per_rung.iloc[0]
    # Values at epoch 2: a .5 b .6 c .7 d .8 e .4; finals: .9 .8 .7 .6 .95. Ranks (1 = lowest):
    # at 2: 2 3 4 5 1, final: 4 3 2 1 5 → Σd² = 4+0+4+16+16 = 40, ρ = 1 − 6·40/(5·24) = −1.
    assert rung["pairs"] == 5 and rung["spearman"] == pytest.approx(-1.0)
    assert rung["kendall"] == pytest.approx(-1.0)
    assert report.audited["would_be_top"].tolist() == [True]
    assert "rung 2 killed 1 of 1 audited trials there that would have made the top 2" in report.sentences[1]


# --- real studies ---------------------------------------------------------------------------


def replicate_rows(values: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame([{"trial_id": trial_id, "trial_number": number + 1, "replicate": index, "objective": float(value)}
                         for number, (trial_id, series) in enumerate(values.items()) for index, value in enumerate(series)])


@pytest.fixture(scope="module")
def searched(ray_runtime: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small digits study: two learning rates that learn, one that does not."""
    from tunelab.spec import parse_spec
    from tunelab.study import run_study

    storage = tmp_path_factory.mktemp("trust")
    document = small_study(name="searched", objective={"metric": "val_acc"}, train={"max_epochs": 6, "optimizer": "adam"},
                           scheduler="none")
    document["budget"] = {"max_concurrent": 2}  # the grid decides the number of trials
    document["search_space"] = {"learning_rate": {"type": "choice", "values": [0.01, 0.003, 0.00001]}}
    document["searcher"] = {"name": "grid", "seed": 0}
    document["confirm"] = {"top": 1, "seeds": 2}  # at the end of the study; the tests then confirm more
    said: list[str] = []
    run_study(parse_spec(yaml.safe_dump(document), "searched.yaml"), storage, echo=said.append)
    assert any("was the only configuration confirmed (2 seeds)" in line for line in said)
    return storage


@pytest.mark.ray
def test_confirm_retrains_the_best_configurations_and_prints_the_leaderboard(
    searched: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["confirm", "searched", "--storage", str(searched), "--top", "3", "--seeds", "3"], capsys)
    assert code == 0, err
    rows = pd.read_parquet(searched / "searched" / "confirm.parquet")
    assert len(rows) == 9 and sorted(rows["replicate"].unique()) == [0, 1, 2]
    assert rows.groupby("trial_id")["seed"].apply(list).map(tuple).nunique() == 1  # paired: the same seeds
    assert {"objective", "test_acc", "best_epoch", "end"} <= set(rows.columns)
    trials = read_trials(StudyPaths.of(searched, "searched")).set_index("param_learning_rate")
    hopeless = trials.loc[0.00001, "trial_number"]
    assert rows.loc[rows["trial_number"] == hopeless, "objective"].max() < rows["objective"].max() - 0.3
    lines = out.strip().splitlines()
    assert "confirmed by 3 seeds" in out and "P(best)" in out
    verdict = lines[-1].split(";")[0]
    assert "is better than trial" in verdict and str(hopeless) in verdict.split("better than")[1]
    assert "search score was" in lines[-1] and ("optimistic" in lines[-1] or "pessimistic" in lines[-1])

    code, again, err = run_cli(["results", "searched", "--storage", str(searched), "--confirmed"], capsys)
    assert code == 0, err
    assert again.strip().splitlines()[-1] == lines[-1]


@pytest.mark.ray
def test_confirm_with_resplit_draws_new_validation_rows(searched: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tunelab.trust.runners import run_confirm

    plain = run_confirm(searched, "searched", top=1, seeds=2, echo=lambda line: None)
    moved = run_confirm(searched, "searched", top=1, seeds=2, resplit=True, echo=lambda line: None)
    assert moved["resplit"].all() and not plain["resplit"].any()
    assert not np.allclose(plain["objective"], moved["objective"])  # other validation rows, other scores


@pytest.mark.ray
@pytest.mark.parametrize(
    "argv,message",
    [
        (["confirm", "searched", "--top", "9"], "has 3 trial(s) with a result; expected at least --top 9"),
        (["audit", "searched"], "has no trial the scheduler stopped; nothing to audit"),
        (["confirm", "nope"], "no study 'nope'"),
        (["results", "fresh", "--confirmed"], "has no confirmed configurations; run `tunelab confirm fresh` first"),
        (["audit", "searched", "--sample", "2", "--all"], "either --sample or --all"),
    ],
)
def test_confirm_and_audit_refuse_bad_input_in_one_line(
    searched: Path, tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    if not (searched / "fresh").exists():
        shutil.copytree(searched / "searched", searched / "fresh", ignore=shutil.ignore_patterns("confirm.parquet"))
    code, _, err = run_cli([*argv, "--storage", str(searched)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err


@pytest.mark.ray
def test_a_running_study_is_not_confirmed(searched: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    shutil.copytree(searched / "searched", tmp_path / "searched")
    StudyWriter(StudyPaths.of(tmp_path, "searched")).update_study(status="running")
    code, _, err = run_cli(["confirm", "searched", "--storage", str(tmp_path)], capsys)
    assert code == 2 and "is still running" in err


SLOW_STUDY: dict[str, Any] = {
    "name": "slow",
    "dataset": {"name": "moons", "n_samples": 600},
    "model": {"name": "trust_models:SlowStarter"},
    "search_space": {"slow": {"type": "choice", "values": [False, True]}, "width": {"type": "choice", "values": [16, 32]}},
    "objective": {"metric": "val_loss"},
    "train": {"max_epochs": 16, "optimizer": "adam", "learning_rate": 0.02, "batch_size": 16, "early_stopping": {"patience": None}},
    # Seed 4 orders the grid fast, fast, slow, slow: ASHA has the fast ones' results at its first
    # rung when the slow starters get there, and stops them.
    "searcher": {"name": "grid", "seed": 4},
    "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 2},
    "budget": {"max_concurrent": 1},
}


@pytest.mark.ray
def test_audit_finds_the_slow_starter_the_scheduler_stopped_and_continues_it_exactly(
    ray_runtime: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tunelab.spec import parse_spec
    from tunelab.store import read_epochs
    from tunelab.study import run_study

    said: list[str] = []
    # The experiment file asks for the audit at the end of the study.
    run_study(parse_spec(yaml.safe_dump({**SLOW_STUDY, "audit": {"all": True, "top": 2}}), "slow.yaml"), tmp_path, echo=said.append)
    assert any(line.startswith("rung 1 killed 2 of 2") for line in said)
    paths = StudyPaths.of(tmp_path, "slow")
    trials = read_trials(paths)
    stopped = trials[trials["status"] == "stopped_early"]
    assert set(stopped["param_slow"]) == {True}, "the scheduler stopped the slow starters"

    code, out, err = run_cli(["audit", "slow", "--storage", str(tmp_path), "--all", "--top", "2"], capsys)
    assert code == 0, err
    audited = pd.read_parquet(paths.root / "audit.parquet")
    assert set(audited["trial_id"]) == set(stopped["trial_id"])
    assert (audited["best_objective"] < trials["objective"].min()).all(), "continued, each beats every trial of the study"
    assert out.strip().splitlines()[-1].startswith("rung 1 killed 2 of 2 audited trials there that would have made the top 2")

    # The continuation is the trial itself: its first epochs are the stored ones, to the last digit.
    continued = pd.read_parquet(paths.root / "audit_epochs.parquet")
    stored = read_epochs(paths)
    for trial in stopped.itertuples():
        mine = continued[continued["trial_id"] == trial.trial_id].set_index("epoch")
        theirs = stored[stored["trial_id"] == trial.trial_id].set_index("epoch")
        assert list(theirs.index) == list(range(1, int(trial.stop_epoch) + 1))
        np.testing.assert_array_equal(mine.loc[theirs.index, "val_loss"], theirs["val_loss"])
        assert mine.index.max() == 16, "on to max_epochs, as it would have run"

    from test_dashboard_apptest import figures, open_app

    app = open_app(tmp_path, monkeypatch)
    app.switch_page("app_pages/trust.py").run()
    assert not app.exception, [e.value for e in app.exception]
    text = "\n".join(str(element.value) for element in app.markdown)
    assert "rung 1 killed 2 of 2" in text
    charts = figures(app)
    scatter, continued_chart = charts[0], charts[1]
    assert any("audited" in (trace.name or "") for trace in scatter.data)
    assert any("continued" in (trace.name or "") for trace in continued_chart.data)
