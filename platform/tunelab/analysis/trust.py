"""Can I trust the winner? Figures from `tunelab confirm` (seed replicates of the best
configurations) and `tunelab audit` (stopped trials continued to their end). Plain
pandas/numpy/scipy: no Ray, no Streamlit, no torch.

Replicates are paired by seed: replicate r of every configuration trained with the same seed
(and, with `--resplit`, the same train/validation split), so a configuration is compared with
another on the same draws of chance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tunelab.store.schema import STOPPED_EARLY, WITH_A_FINAL_RESULT

LEVEL = 0.95
BOOTSTRAP_DRAWS = 4000
# Status words of trials that ran to their own end: their objective is a finished result.


def mean_interval(values: np.ndarray | list[float], level: float = LEVEL) -> tuple[float, float, float]:
    """Mean and Student-t interval: with 3-10 replicates, a normal interval would be too narrow."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return mean, mean - half, mean + half


def leaderboard(replicates: pd.DataFrame, trials: pd.DataFrame, mode: str, seed: int = 0) -> pd.DataFrame:
    """One row per confirmed configuration: its replicates' mean, standard deviation and 95 %
    interval, its ranks by the mean and by the pessimistic bound (the lower one when higher is
    better), the probability it is the best (paired bootstrap over seeds), its search-time score
    and the search's optimism (how much better the search score looked than the replicates)."""
    maximise = mode == "max"
    matrix = _by_seed(replicates)
    search = trials.set_index("trial_id")["objective"]
    rows = []
    for trial_id, values in matrix.items():
        present = values.dropna().to_numpy()
        mean, low, high = mean_interval(present)
        score = float(search.get(trial_id, math.nan))
        rows.append({
            "trial_id": trial_id,
            "trial_number": int(replicates.loc[replicates["trial_id"] == trial_id, "trial_number"].iloc[0]),
            "replicates": len(present),
            "search_score": score,
            "mean": mean,
            "std": float(present.std(ddof=1)) if len(present) > 1 else math.nan,
            "low": low,
            "high": high,
            "pessimistic": low if maximise else high,
            "optimism": (score - mean) if maximise else (mean - score),
            **_test_summary(replicates[replicates["trial_id"] == trial_id]),
        })
    board = pd.DataFrame(rows)
    if board.empty:
        return board
    board["p_best"] = board["trial_id"].map(best_probability(matrix, maximise, seed))
    board["rank_mean"] = board["mean"].rank(ascending=not maximise, method="min").astype(int)
    board["rank_bound"] = board["pessimistic"].rank(ascending=not maximise, method="min").astype(int)
    return board.sort_values(["rank_mean", "trial_number"]).reset_index(drop=True)


def best_probability(matrix: pd.DataFrame, maximise: bool, seed: int = 0, draws: int = BOOTSTRAP_DRAWS) -> dict[str, float]:
    """How often each configuration has the best mean when the seeds are drawn again (with
    replacement, the same draws for every configuration: paired). Ties share the win."""
    complete = matrix.dropna()
    if complete.empty:
        return {trial_id: math.nan for trial_id in matrix.columns}
    values = complete.to_numpy()  # seeds × configurations
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(draws, len(values)))
    means = values[picks].mean(axis=1)  # draws × configurations
    best = means.max(axis=1, keepdims=True) if maximise else means.min(axis=1, keepdims=True)
    winners = np.isclose(means, best, rtol=0, atol=1e-12)
    shares = (winners / winners.sum(axis=1, keepdims=True)).mean(axis=0)
    return dict(zip(complete.columns, shares.tolist()))


def paired_comparisons(replicates: pd.DataFrame, reference: str, mode: str) -> pd.DataFrame:
    """Each other configuration against `reference` (the search's winner), seed by seed: the
    mean difference (positive: the reference is better) with its 95 % interval; told apart when
    the interval leaves out zero."""
    matrix = _by_seed(replicates)
    sign = 1.0 if mode == "max" else -1.0
    numbers = replicates.drop_duplicates("trial_id").set_index("trial_id")["trial_number"]
    rows = []
    for other in matrix.columns:
        if other == reference:
            continue
        pairs = matrix[[reference, other]].dropna()
        differences = sign * (pairs[reference] - pairs[other]).to_numpy()
        mean, low, high = mean_interval(differences)
        exact = len(differences) > 1 and np.all(differences == differences[0])
        if exact:  # no spread at all (the same configuration): the interval is the point
            low = high = mean
        apart = bool(len(differences) > 1 and (low > 0 or high < 0))
        rows.append({"trial_id": other, "trial_number": int(numbers[other]), "pairs": len(differences),
                     "difference": mean, "low": low, "high": high, "distinguishable": apart,
                     "better": "reference" if apart and mean > 0 else ("other" if apart else "neither")})
    return pd.DataFrame(rows)


def confirm_sentence(board: pd.DataFrame, comparisons: pd.DataFrame, reference: str, metric: str) -> str:
    """The leaderboard's verdict in one plain sentence."""
    if board.empty:
        return "nothing confirmed yet"
    row = board.set_index("trial_id").loc[reference]
    number, seeds = int(row["trial_number"]), int(row["replicates"])
    tied = comparisons[~comparisons["distinguishable"]]["trial_number"].tolist() if not comparisons.empty else []
    better = comparisons[comparisons["better"] == "other"]["trial_number"].tolist() if not comparisons.empty else []
    worse = comparisons[comparisons["better"] == "reference"]["trial_number"].tolist() if not comparisons.empty else []
    if better:
        verdict = (f"{_trials(better)} {'is' if len(better) == 1 else 'are'} better than trial {number}, the search's "
                   f"winner, with {seeds} seeds")
    elif tied:
        verdict = f"trials {_listed([number, *tied])} cannot be told apart with {seeds} seeds"
        if worse:
            verdict += f", and trial {number} is better than {_trials(worse)}"
    elif worse:
        verdict = (f"trial {number} is better than {_trials(worse)} with {seeds} seeds "
                   f"(probability of being the best {row['p_best']:.2f})")
    else:
        verdict = f"trial {number} was the only configuration confirmed ({seeds} seeds)"
    optimism = float(row["optimism"])
    how = "optimistic" if optimism > 0 else "pessimistic"
    return (f"{verdict}; trial {number}'s search score was {format_amount(abs(optimism), metric)} {how} "
            f"({metric} {row['search_score']:.4g} in the search, {row['mean']:.4g} ± {(row['high'] - row['low']) / 2:.2g} over {seeds} seeds)")


def format_amount(amount: float, metric: str) -> str:
    """An accuracy difference in percentage points (0.006 → '0.6 %'), others as numbers."""
    return f"{amount * 100:.2g} %" if metric.endswith(("_acc", "_auc")) else f"{amount:.3g}"


def _trials(numbers: list[int]) -> str:
    return f"trial{'s' if len(numbers) > 1 else ''} {_listed(numbers)}"


def _listed(numbers: list[int]) -> str:
    text = [str(n) for n in numbers]
    return text[0] if len(text) == 1 else ", ".join(text[:-1]) + " and " + text[-1]


def _by_seed(replicates: pd.DataFrame) -> pd.DataFrame:
    """Objective values as seeds × configurations, in the order the configurations came."""
    order = list(dict.fromkeys(replicates["trial_id"]))
    return replicates.pivot_table(index="replicate", columns="trial_id", values="objective", aggfunc="last")[order]


def _test_summary(rows: pd.DataFrame) -> dict[str, float]:
    for metric in ("test_acc", "test_r2", "test_loss"):
        if metric in rows and rows[metric].notna().any():
            return {"test_metric": metric, "test_mean": float(rows[metric].mean()), "test_std": float(rows[metric].std(ddof=1))}
    return {}


# --- the audit of early stopping -------------------------------------------------------------


@dataclass
class AuditReport:
    per_rung: pd.DataFrame  # rung, pairs, spearman, kendall, stopped, audited, would_be_top
    audited: pd.DataFrame  # one row per continued trial: its stop, its value there, its end, top-k entry
    baseline: pd.DataFrame  # "stop everything at epoch i": the pick, its final value, regret, epochs
    top_k: int
    threshold: float  # the study's k-th best finished objective
    saved_epochs: float  # epochs the scheduler saved (estimated for all stopped trials)
    study_epochs: float
    regret: float  # how much better the best would have been without the scheduler (>= 0)
    points: pd.DataFrame = field(default_factory=pd.DataFrame)  # rung, trial, value there, final, audited
    sentences: list[str] = field(default_factory=list)


def audit_report(
    trials: pd.DataFrame, epochs: pd.DataFrame, audit: pd.DataFrame, audit_epochs: pd.DataFrame,
    rungs: list[int], metric: str, mode: str, top_k: int = 5,
) -> AuditReport:
    """How well the scheduler's cuts agree with where the stopped trials would have ended."""
    from scipy import stats

    maximise = mode == "max"
    better = (lambda a, b: a > b) if maximise else (lambda a, b: a < b)
    finished = trials[trials["status"].isin(WITH_A_FINAL_RESULT) & trials["objective"].notna()]
    # The study's top k as `tunelab results` ranks it: every trial with a result.
    ranked = trials.loc[trials["objective"].notna(), "objective"].astype(float).sort_values(ascending=not maximise)
    k = min(top_k, len(ranked))
    threshold = float(ranked.iloc[k - 1]) if k else math.nan

    curves = _curves(epochs[epochs["trial_id"].isin(finished["trial_id"])], metric)
    curves.update(_curves(audit_epochs, metric))
    finals = {**dict(zip(finished["trial_id"], finished["objective"])), **dict(zip(audit["trial_id"], audit["best_objective"]))}
    ends = {**dict(zip(finished["trial_id"], finished["epochs"] if "epochs" in finished else finished["stop_epoch"])),
            **dict(zip(audit["trial_id"], audit["epochs"]))}

    audited = audit.copy()
    audited["would_be_top"] = [bool(k) and better(value, threshold) for value in audited["best_objective"]]
    audited["margin"] = [(value - threshold) if maximise else (threshold - value) for value in audited["best_objective"]]

    stopped = trials[trials["status"] == STOPPED_EARLY]
    numbers = dict(zip(trials["trial_id"], trials["trial_number"]))
    audited_ids = set(audit["trial_id"])
    per_rung, points = [], []
    for rung in rungs:
        pairs = [(curve[rung], finals[trial_id]) for trial_id, curve in curves.items() if rung in curve and trial_id in finals]
        points.extend({"rung": rung, "trial_number": int(numbers[trial_id]), "at_rung": curve[rung], "final": finals[trial_id],
                       "audited": trial_id in audited_ids}
                      for trial_id, curve in curves.items() if rung in curve and trial_id in finals)
        at_rung = audited[audited["stop_epoch"] == rung]
        spearman = kendall = math.nan
        if len(pairs) >= 3:
            first, last = zip(*pairs)
            spearman = float(stats.spearmanr(first, last).statistic)
            kendall = float(stats.kendalltau(first, last).statistic)
        per_rung.append({"rung": rung, "pairs": len(pairs), "spearman": spearman, "kendall": kendall,
                         "stopped": int((stopped["stop_epoch"] == rung).sum()), "audited": len(at_rung),
                         "would_be_top": int(at_rung["would_be_top"].sum())})
    per_rung_table = pd.DataFrame(per_rung)

    saved = 0.0
    for row in per_rung:
        extra = audited.loc[audited["stop_epoch"] == row["rung"], "epochs"] - row["rung"]
        if len(extra):
            saved += float(extra.mean()) * row["stopped"]
    study_epochs = float(trials["epochs"].fillna(0).sum()) if "epochs" in trials else math.nan
    study_best = float(ranked.iloc[0]) if len(ranked) else math.nan
    every = [v for v in finals.values() if isinstance(v, (int, float)) and math.isfinite(v)]
    possible = (max(every) if maximise else min(every)) if every else math.nan
    regret = max(0.0, (possible - study_best) if maximise else (study_best - possible)) if every and len(ranked) else math.nan

    baseline = _stop_all_at(curves, finals, ends, rungs, maximise)
    report = AuditReport(per_rung_table, audited, baseline, k, threshold, saved, study_epochs, regret, pd.DataFrame(points))
    report.sentences = _audit_sentences(report, trials, rungs, metric)
    return report


def _curves(epochs: pd.DataFrame, metric: str) -> dict[str, dict[int, float]]:
    if epochs.empty or metric not in epochs:
        return {}
    return {trial_id: dict(zip(rows["epoch"].astype(int), rows[metric].astype(float)))
            for trial_id, rows in epochs.groupby("trial_id")}


def _stop_all_at(curves: dict[str, dict[int, float]], finals: dict[str, float], ends: dict[str, float],
                 rungs: list[int], maximise: bool) -> pd.DataFrame:
    """Train every configuration with a whole curve for i epochs, keep the best at i, train it
    on: what that simple rule picks, and what it costs, from the same curves."""
    complete = {trial_id: curve for trial_id, curve in curves.items() if trial_id in finals}
    if not complete:
        return pd.DataFrame()
    best_final = max(finals[t] for t in complete) if maximise else min(finals[t] for t in complete)
    rows = []
    for epoch in rungs:
        at = {trial_id: curve[epoch] for trial_id, curve in complete.items() if epoch in curve}
        if not at:
            continue
        pick = max(at, key=at.get) if maximise else min(at, key=at.get)
        cost = epoch * len(complete) + max(0.0, float(ends.get(pick, epoch)) - epoch)
        rows.append({"epoch": epoch, "trials": len(at), "pick": pick, "pick_final": finals[pick],
                     "regret": abs(best_final - finals[pick]), "epochs": cost})
    return pd.DataFrame(rows)


def _audit_sentences(report: AuditReport, trials: pd.DataFrame, rungs: list[int], metric: str) -> list[str]:
    audited = report.audited
    if audited.empty:
        return ["no stopped trial was audited"]
    cost = (f"the scheduler saved about {report.saved_epochs:.0f} epochs "
            f"({report.saved_epochs / (report.study_epochs + report.saved_epochs):.0%} of what the study would have trained "
            f"without it) and cost {format_amount(report.regret, metric)} in the best {metric}")
    killed = report.per_rung[report.per_rung["would_be_top"] > 0]
    if killed.empty:
        return [cost, f"none of the {len(audited)} audited stopped trials would have made the top {report.top_k}: "
                      "the scheduler's cuts look safe on this study"]
    worst = killed.sort_values("would_be_top", ascending=False).iloc[0]
    rung = int(worst["rung"])
    later = [r for r in rungs if r > rung]
    stopped = trials[trials["status"] == STOPPED_EARLY]
    if later:
        grace = later[0]
        extra = float(sum(max(0, grace - int(e)) for e in stopped["stop_epoch"] if int(e) < grace))
        advice = (f": a grace period of {grace} would have kept them, at about "
                  f"+{extra / max(report.study_epochs, 1):.0%} epochs")
    else:
        advice = ": this is the last rung; a smaller reduction factor would keep more trials past it"
    margin = audited.loc[audited["would_be_top"] & (audited["stop_epoch"] == rung), "margin"].max()
    return [cost, f"rung {rung} killed {int(worst['would_be_top'])} of {int(worst['audited'])} audited trials there "
                  f"that would have made the top {report.top_k} (by up to {format_amount(float(margin), metric)}){advice}"]
