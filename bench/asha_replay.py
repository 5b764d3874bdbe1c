"""Replay ASHA over random search's complete learning curves: what each rung setting keeps.

`bench/search.py --keep FOLDER` leaves, for every random-search run, 48 trials trained to
the last epoch. This feeds their epochs, in the order a run with two slots would have
produced them (each epoch lasting the time it took), to Ray's own ASHAScheduler as tunelab
builds it, for several grace periods and reduction factors. Per setting it prints the share
of the epochs ASHA would have trained, whether the configuration random search chose (best
validation accuracy) survives to the last epoch, the test-accuracy change of the trial ASHA
would have chosen (only trials that reach the last epoch get a test evaluation), and the
simulated time to the target validation accuracy with and without ASHA.

The searcher is the same in every row (random search's draws), so the figures isolate the
scheduler: where TPE + ASHA loses accuracy that random search + ASHA keeps, the searcher lost it.

    python bench/search.py --datasets mnist1d --methods random --keep runs
    python bench/asha_replay.py runs
    python bench/asha_replay.py runs --settings auto:2,3:3,10:2
    python bench/asha_replay.py runs --seconds   # rungs in training seconds as well
"""

from __future__ import annotations

import argparse
import heapq
import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import yaml

RANDOM_STUDY = re.compile(r"^(?P<dataset>.+)-random-(?P<seed>\d+)$")


@dataclass(frozen=True)
class Curves:
    """One random-search run: per trial (in the searcher's order) its per-epoch validation
    accuracy and epoch seconds, and its test accuracy."""

    dataset: str
    seed: int
    max_epochs: int
    val_acc: list[np.ndarray]
    seconds: list[np.ndarray]
    test_acc: list[float]


@dataclass(frozen=True)
class Replay:
    epochs: list[int]  # per trial, epochs trained
    to_target: float  # simulated seconds; inf if never reached


def load_runs(folder: Path) -> list[Curves]:
    from tunelab.store import StudyPaths, read_epochs, read_trials

    runs = []
    for spec_file in sorted(folder.glob("*.yaml")):
        match = RANDOM_STUDY.match(spec_file.stem)
        if not match:
            continue
        spec = yaml.safe_load(spec_file.read_text())
        paths = StudyPaths.of(folder / "tunelab-results", spec["name"])
        trials = read_trials(paths).sort_values("trial_number")
        epochs = read_epochs(paths).sort_values("epoch")
        by_trial = dict(tuple(epochs.groupby("trial_id")))
        runs.append(Curves(
            dataset=match["dataset"],
            seed=int(match["seed"]),
            max_epochs=int(spec["train"]["max_epochs"]),
            val_acc=[by_trial[trial]["val_acc"].to_numpy() for trial in trials["trial_id"]],
            seconds=[by_trial[trial]["epoch_seconds"].to_numpy() for trial in trials["trial_id"]],
            test_acc=[float(acc) for acc in trials["final_test_acc"]],
        ))
    return runs


def asha_options(grace_period: str, reduction_factor: float) -> dict[str, Any]:
    """ASHA's options as an experiment file would give them, checked and with defaults."""
    from tunelab.search.schedulers import ASHA
    from tunelab_models.params import resolve_params

    given = grace_period if grace_period == "auto" else int(grace_period)
    return resolve_params(ASHA.options, {"grace_period": given, "reduction_factor": reduction_factor})


def asha_scheduler(max_epochs: int, options: dict[str, Any]) -> Any:
    """Ray's ASHAScheduler exactly as tunelab builds it for these options."""
    from tunelab.search.schedulers import ASHA

    scheduler = ASHA().build(max_epochs=max_epochs, options=options)
    scheduler.set_search_properties("val_acc", "max")
    return scheduler


def seconds_scheduler(run: Curves, options: dict[str, Any]) -> Any:
    """Ray's ASHAScheduler with its rungs in training seconds instead of epochs: the grace
    period is as many of the run's median epochs as tunelab's grace period has epochs, each
    rung `reduction_factor` times the last, and no cap on a trial's seconds (max_epochs still
    ends it)."""
    from ray.tune.schedulers import ASHAScheduler

    from tunelab.search.schedulers import ASHA

    grace = ASHA.grace_period(run.max_epochs, options) * float(np.median(np.concatenate(run.seconds)))
    scheduler = ASHAScheduler(time_attr="training_seconds", grace_period=grace,
                              max_t=grace * options["reduction_factor"] ** 30, reduction_factor=options["reduction_factor"])
    scheduler.set_search_properties("val_acc", "max")
    return scheduler


def replay(run: Curves, scheduler: Any | None, slots: int, target: float) -> Replay:
    """Two (or `slots`) trials at a time in the searcher's order, each epoch lasting what it
    took; every epoch goes to the scheduler at the moment it ends, as in a real run, with the
    trial's epochs and training seconds so far."""
    from ray.tune.schedulers import TrialScheduler

    trained = [0] * len(run.val_acc)
    pending = list(range(len(run.val_acc)))[::-1]
    events: list[tuple[float, int, int]] = []  # (time the epoch ends, trial, epoch)
    to_target = math.inf

    def start(trial: int, at: float) -> None:
        if scheduler is not None:
            scheduler.on_trial_add(None, SimpleNamespace(trial_id=str(trial)))
        heapq.heappush(events, (at + float(run.seconds[trial][0]), trial, 1))

    for _ in range(min(slots, len(pending))):
        start(pending.pop(), 0.0)
    while events:
        at, trial, epoch = heapq.heappop(events)
        accuracy = float(run.val_acc[trial][epoch - 1])
        if accuracy >= target:
            to_target = min(to_target, at)
        decision = TrialScheduler.CONTINUE
        if scheduler is not None:
            seconds = float(run.seconds[trial][:epoch].sum())
            decision = scheduler.on_trial_result(None, SimpleNamespace(trial_id=str(trial)),
                                                 {"epoch": epoch, "training_seconds": seconds, "val_acc": accuracy})
        if decision == TrialScheduler.STOP or epoch == len(run.val_acc[trial]):  # shorter: it diverged
            trained[trial] = epoch
            if pending:
                start(pending.pop(), at)
        else:
            heapq.heappush(events, (at + float(run.seconds[trial][epoch]), trial, epoch + 1))
    return Replay(trained, to_target)


def chosen(run: Curves, trained: list[int]) -> int | None:
    """The trial a study would report: best validation accuracy among trials that ran to
    their own end with a test evaluation (not stopped by the scheduler, not diverged)."""
    finished = [trial for trial, epochs in enumerate(trained)
                if epochs == len(run.val_acc[trial]) and math.isfinite(run.test_acc[trial])]
    return max(finished, key=lambda trial: float(run.val_acc[trial].max())) if finished else None


def test_acc(run: Curves, trial: int | None) -> float:
    return run.test_acc[trial] if trial is not None else math.nan


def report(runs: list[Curves], settings: list[dict[str, Any]], slots: int, targets: dict[str, float],
           seconds: bool = False) -> str:
    from tunelab.search.schedulers import ASHA

    lines = [f"ASHA replayed over random search's complete curves, {slots} trials at a time"]
    if seconds:
        lines.append("rungs 'seconds': the same rungs in training seconds, one epoch counted as the run's median epoch")
    lines.append("")
    for dataset in dict.fromkeys(run.dataset for run in runs):
        mine = sorted((run for run in runs if run.dataset == dataset), key=lambda run: run.seed)
        target = targets[dataset]
        baseline = {run.seed: replay(run, None, slots, target) for run in mine}
        lines += [f"{dataset}: {len(mine)} seeds, {len(mine[0].val_acc)} trials × {mine[0].max_epochs} epochs, "
                  f"target validation accuracy {target}",
                  f"{'grace':>5} {'rf':>4} {'rungs':<12} {'epochs':>6} {'kept best':>9} {'test acc Δ':>10} "
                  f"{'to target vs none (per seed)':<40}"]

        def row(label: str, rungs: str, scheduler_of: Any) -> str:
            shares, kept, gaps, ratios = [], 0, [], []
            for run in mine:
                result = replay(run, scheduler_of(run), slots, target)
                full = baseline[run.seed]
                shares.append(sum(result.epochs) / sum(full.epochs))
                best = chosen(run, full.epochs)
                kept += best is not None and result.epochs[best] == full.epochs[best]
                gaps.append(test_acc(run, chosen(run, result.epochs)) - test_acc(run, best))
                ratios.append(result.to_target / full.to_target if math.isfinite(full.to_target) else math.nan)
            reached = [ratio for ratio in ratios if not math.isnan(ratio)]
            to_target = (f"median {statistics.median(reached):.2f} ("
                         + " ".join("—" if math.isnan(ratio) else f"{ratio:.2f}" for ratio in ratios) + ")"
                         if reached else "— (without early stopping the target was never reached)")
            return (f"{label} {rungs:<12} {statistics.mean(shares):>6.2f} {kept:>5} of {len(mine)} "
                    f"{statistics.mean(gaps):>+10.4f} {to_target}")

        for options in settings:
            label = f"{options['grace_period']:>5} {options['reduction_factor']:>4g}"
            problems = ASHA().problems(mine[0].max_epochs, options)  # what `tunelab run` would refuse
            if problems:
                lines.append(f"{label} skipped: " + "; ".join(f"{name}: {problem}" for name, problem in problems.items()))
                continue
            rungs = ",".join(map(str, ASHA().rung_epochs(mine[0].max_epochs, options))) or "none"
            lines.append(row(label, rungs, lambda run: asha_scheduler(run.max_epochs, options)))
            if seconds:
                lines.append(row(label, "seconds", lambda run: seconds_scheduler(run, options)))
        lines.append("")
    return "\n".join(lines)


def parse_settings(text: str) -> list[dict[str, Any]]:
    """GRACE:FACTOR items, each resolved to ASHA's options once."""
    from tunelab_models.params import ParamError

    settings = []
    for item in text.split(","):
        grace_period, _, reduction_factor = item.partition(":")
        if not (grace_period == "auto" or grace_period.isdigit()) or not reduction_factor:
            raise argparse.ArgumentTypeError(f"expected GRACE:FACTOR items such as auto:2 or 5:3, got {item!r}")
        try:
            settings.append(asha_options(grace_period, float(reduction_factor)))
        except (ParamError, ValueError) as error:
            raise argparse.ArgumentTypeError(f"{item!r}: {error}") from None
    return settings


def main() -> None:
    from search import SMOKE, WORKLOADS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a folder kept by bench/search.py --keep")
    parser.add_argument("--settings", type=parse_settings, default=parse_settings("auto:2,3:3,5:3,10:2"),
                        help="comma-separated GRACE:FACTOR (grace period 'auto' is tunelab's default)")
    parser.add_argument("--slots", type=int, default=2, help="trials at once")
    parser.add_argument("--seconds", action="store_true",
                        help="also replay each setting with its rungs in training seconds instead of epochs")
    parser.add_argument("--smoke", action="store_true", help="the folder came from search.py --smoke (its targets)")
    args = parser.parse_args()
    runs = load_runs(args.folder)
    if not runs:
        parser.error(f"{args.folder}: no random-search runs (run bench/search.py --methods random --keep {args.folder})")
    targets = {name: work.target for name, work in (SMOKE if args.smoke else WORKLOADS).items()}
    print(report(runs, args.settings, args.slots, targets, args.seconds))


if __name__ == "__main__":
    main()
