"""What `tunelab confirm`, `tunelab audit`, `tunelab results --confirmed` and the dashboard's
Trust page show, read from the store: no Ray, no torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from tunelab.analysis.trust import AuditReport, audit_report, confirm_sentence, leaderboard, paired_comparisons
from tunelab.store import StudyPaths, read_epochs, read_study, read_trials
from tunelab.store.layout import AUDIT_EPOCHS_TABLE, AUDIT_TABLE, CONFIRM_TABLE
from tunelab.store.side_tables import read_side_table


@dataclass
class Confirmation:
    board: pd.DataFrame  # the leaderboard (see analysis.trust.leaderboard)
    comparisons: pd.DataFrame  # the search's winner against each runner-up, paired by seed
    reference: str  # the search's winner among the confirmed configurations
    replicates: pd.DataFrame
    sentence: str
    metric: str


def confirmation(paths: StudyPaths) -> Confirmation | None:
    """The study's noise-aware leaderboard, or None before `tunelab confirm` has run on it."""
    replicates = read_side_table(paths, CONFIRM_TABLE)
    if replicates.empty:
        return None
    study, trials = read_study(paths), read_trials(paths)
    mode, metric = str(study["objective_mode"]), str(study["objective_metric"])
    board = leaderboard(replicates, trials, mode)
    confirmed = trials[trials["trial_id"].isin(board["trial_id"])]
    winner = confirmed.loc[confirmed["objective"].idxmax() if mode == "max" else confirmed["objective"].idxmin(), "trial_id"]
    comparisons = paired_comparisons(replicates, winner, mode)
    return Confirmation(board, comparisons, winner, replicates, confirm_sentence(board, comparisons, winner, metric), metric)


def audit(paths: StudyPaths, top_k: int = 5) -> tuple[AuditReport, pd.DataFrame] | None:
    """The audit of the study's early stopping and the continued curves, or None before
    `tunelab audit` has run on it."""
    audited = read_side_table(paths, AUDIT_TABLE)
    if audited.empty:
        return None
    study = read_study(paths)
    curves = read_side_table(paths, AUDIT_EPOCHS_TABLE)
    rungs = [int(r) for r in (study.get("rung_epochs") if study.get("rung_epochs") is not None else [])]
    report = audit_report(read_trials(paths), read_epochs(paths), audited, curves, rungs,
                          str(study["objective_metric"]), str(study["objective_mode"]), top_k)
    return report, curves


def leaderboard_table(found: Confirmation) -> pd.DataFrame:
    """The leaderboard as people read it, best mean first."""
    board = found.board
    columns: dict[str, Any] = {
        "trial": board["trial_number"],
        "seeds": board["replicates"],
        f"search {found.metric}": board["search_score"],
        "mean": board["mean"],
        "std": board["std"],
        "95% interval": [f"{low:.4g} – {high:.4g}" for low, high in zip(board["low"], board["high"])],
        "P(best)": board["p_best"],
        "rank by mean": board["rank_mean"],
        "rank by bound": board["rank_bound"],
        "optimism": board["optimism"],
    }
    if "test_mean" in board:
        columns[str(board["test_metric"].iloc[0]) + " mean"] = board["test_mean"]
    return pd.DataFrame(columns)
