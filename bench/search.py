"""Search quality per unit of time: TPE + ASHA vs random search (with and without ASHA) vs
in-process Optuna.

The same search space, trial budget and epoch budget on each data set, five searcher seeds
each, every run in a fresh process, one after the other:

  tpe+asha     `tunelab run`: Optuna's TPE proposes, ASHA stops unpromising trials at its rungs
  bohb+asha    `tunelab run`: TPE fitted on the results at the deepest rung enough trials reached
               (searcher `bohb`), ASHA as above
  random+asha  `tunelab run`: random search with ASHA: what the scheduler alone contributes
  random       `tunelab run`: random search, every trial trains all its epochs
  optuna       plain Optuna in one process (no Ray): TPE with Optuna's successive-halving
               pruner at the same rungs, one thread per trial, as many threads as slots
  fused-tpe+asha  tpe+asha with `train.fuse: auto` and the concurrency it brings (16 trials per
               fusion host): whether training 3× faster makes up for a searcher that proposes
               most configurations before it has seen any trial end

Patience early stopping is off everywhere: the only early stopping is the scheduler's.
Printed per run: the time from the first trial's start until some trial first reached the
target validation accuracy, the best validation accuracy, the test accuracy of the trial
chosen by validation accuracy, the epochs trained in all, and the wall time; then, against
random search, each early-stopping method's time to target and its test accuracy paired by seed,
and so each fused method against its unfused self.
With --to-target every study ends when a trial reaches the target (`objective.goal`): the
time to target is the same as in the whole study, at a fraction of the cost, so many more
seeds fit in an hour; the test accuracies then belong to the shortened studies. Whole studies
also print each method's time to a few other targets from the same runs: how the ratios move
as the target nears the top of what the space reaches.

    python bench/search.py                  # digits and MNIST-1D, seeds 0-4 (about 45 minutes on a quiet host)
    python bench/search.py --datasets digits --seeds 0
    python bench/search.py --smoke          # tiny sizes: prints every figure in a minute
    python bench/search.py --datasets mnist1d --methods random,tpe+asha --seeds 0-29 --to-target
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

FUSED = "fused-"  # a method's prefix: the same study with `train.fuse: auto`
METHODS = ("tpe+asha", "bohb+asha", "random+asha", "random", "optuna", f"{FUSED}tpe+asha")
# Set against random search in the verdict: tunelab with ASHA, one per searcher.
EARLY_STOPPING_METHODS = tuple(method for method in METHODS if method.endswith("+asha") and not method.startswith(FUSED))
WIDTH = max(map(len, METHODS))  # the method column

# The quickstart's search space: the five classic knobs of an MLP.
SPACE = {
    "learning_rate": {"type": "loguniform", "low": 1.0e-4, "high": 0.3},
    "batch_size": {"type": "choice", "values": [16, 32, 64, 128]},
    "optimizer": {"type": "choice", "values": ["sgd", "adam"]},
    "momentum": {"type": "uniform", "low": 0.0, "high": 0.95, "when": {"optimizer": "sgd"}},
    "depth": {"type": "int", "low": 1, "high": 4},
    "dropout": {"type": "uniform", "low": 0.0, "high": 0.5},
}


@dataclass(frozen=True)
class Workload:
    dataset: dict[str, Any]
    width: int
    max_epochs: int
    num_samples: int
    target: float  # validation accuracy
    # Other targets whose times whole studies also print: how the ratios move as the target
    # nears the top of what the space reaches.
    sweep: tuple[float, ...] = ()


WORKLOADS = {
    # Targets just below the best validation accuracy random search finds (its median best:
    # digits 0.964, MNIST-1D 0.633). At 0.60 random search reached MNIST-1D's within its first
    # few trials (28 s of a 165 s study), where the start-up draws every method shares decide;
    # at 0.62 it needs most of its budget, and the searcher counts. Digits has no such target:
    # its 360 validation examples move accuracy in steps of 0.003, and 0.96 sits one or two
    # examples under the best (README, Performance).
    "digits": Workload({"name": "digits", "seed": 0}, width=64, max_epochs=40, num_samples=48, target=0.96,
                       sweep=(0.95, 0.962)),
    # 3000 validation and 3000 test examples (a 0.009 standard error at 60 % accuracy, against
    # 0.017 with 800), training on the same 2400 examples as before.
    "mnist1d": Workload({"name": "mnist1d", "seed": 0, "num_samples": 10000, "validation_fraction": 0.3,
                         "test_fraction": 0.3, "max_train_samples": 2400}, width=128, max_epochs=40,
                        num_samples=48, target=0.62, sweep=(0.58, 0.60, 0.61, 0.63)),
}
SMOKE = {
    "digits": Workload({"name": "digits", "seed": 0, "max_train_samples": 300}, width=16, max_epochs=4,
                       num_samples=4, target=0.5, sweep=(0.3,)),
    "mnist1d": Workload({"name": "mnist1d", "seed": 0, "num_samples": 1000, "max_train_samples": 300}, width=16,
                        max_epochs=4, num_samples=4, target=0.2, sweep=(0.15,)),
}


def experiment(name: str, work: Workload, method: str, seed: int, slots: int, startup: int | None,
               to_target: bool = False) -> dict[str, Any]:
    """The experiment file of one run (the optuna method reads the same file); `startup` is
    TPE's random start-up trials, None for tunelab's default; `to_target`: the study ends
    when a trial reaches the target (its goal)."""
    fused = method.startswith(FUSED)
    method = method.removeprefix(FUSED)
    asha = method.endswith("+asha")
    searcher = "tpe" if method == "optuna" else method.removesuffix("+asha")
    tpe_options = {} if startup is None else {"n_startup_trials": startup}
    return {
        "name": name,
        "dataset": work.dataset,
        "model": {"name": "mlp", "width": work.width, "activation": "relu"},
        "search_space": SPACE,
        "objective": {"metric": "val_acc", **({"goal": work.target} if to_target else {})},
        "train": {"max_epochs": work.max_epochs, "early_stopping": {"patience": None},
                  **({"fuse": "auto"} if fused else {})},
        "searcher": {"name": searcher, "seed": seed, **(tpe_options if searcher in ("tpe", "bohb") else {})},
        "scheduler": {"name": "asha"} if asha else {"name": "none"},  # tunelab's default rungs
        "budget": {"num_samples": work.num_samples, "max_concurrent": None if fused else slots},
        "resources": {"cpu": 1, "gpu": 0},
    }


# ---------------------------------------------------------------------------------------
# One run, in its own process: what it writes is a JSON record of the run.


def run_tunelab(spec_file: Path, out: Path) -> None:
    """`tunelab run`; the epochs' times come from its results store."""
    import pandas as pd

    from tunelab.store import StudyPaths, read_epochs, read_trials
    from tunelab_cli import tunelab_run

    spec = yaml.safe_load(spec_file.read_text())
    storage = out.parent / "tunelab-results"
    tunelab_run(spec_file, storage, out.with_suffix(".log"))
    paths = StudyPaths.of(storage, spec["name"])
    trials, epochs = read_trials(paths), read_epochs(paths)
    started = trials.set_index("trial_id")["started_at"].map(pd.Timestamp.timestamp)
    reached = epochs.assign(at=epochs["trial_id"].map(started) + epochs["time_total_s"])
    evaluated = trials.dropna(subset=["final_test_acc"]) if "final_test_acc" in trials else trials.iloc[0:0]
    chosen = evaluated.loc[evaluated["objective"].idxmax()] if len(evaluated) else None
    write_record(
        out,
        first_start=float(started.min()),
        epochs=[(float(at), float(acc)) for at, acc in zip(reached["at"], reached["val_acc"])],
        best_val=float(trials["objective"].max()),
        chosen_test=float(chosen["final_test_acc"]) if chosen is not None else math.nan,
        trials=len(trials),
        stopped=int((trials["status"] == "stopped_early").sum()),
    )


def run_optuna(spec_file: Path, out: Path) -> None:
    """Plain Optuna in this process: TPE + successive halving, one thread per slot."""
    import optuna
    import torch

    from tunelab.metrics import TRIAL_END
    from tunelab.tune.optuna_search import DefineByRun
    from tunelab.search.searchers import SEARCHERS
    from tunelab.spec import load_spec, resolved_options
    from tunelab.from_spec import load_study_data, study_budgets, study_setup
    from tunelab.training.loop import train_trial

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = load_spec(spec_file)
    data, setup = load_study_data(spec), study_setup(spec)
    space = DefineByRun(spec.search_space)
    searcher = SEARCHERS["tpe"]
    sampler = searcher.build(space=spec.search_space, seed=spec.searcher.seed,
                             options=resolved_options(spec.searcher, searcher.options), budgets=study_budgets(spec))
    grace_period, reduction_factor = asha_defaults(spec.train.max_epochs)
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=grace_period, reduction_factor=reduction_factor)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    epochs: list[tuple[float, float]] = []

    def objective(trial: optuna.Trial) -> float:
        space(trial)

        def on_epoch(metrics: dict[str, Any], state: Any) -> None:
            epochs.append((time.time(), metrics["val_acc"]))
            if TRIAL_END in metrics:
                trial.set_user_attr("test_acc", metrics.get("test_acc", math.nan))
                return
            trial.report(metrics["val_acc"], metrics["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned()

        metrics = train_trial(setup.plan_for(trial.params), data, on_epoch).metrics
        if metrics.get(TRIAL_END) == "reached_goal":
            trial.study.stop()  # as `tunelab run` does: no new trials (the running one finishes)
        return float(metrics["best_objective"])

    first_start = time.time()
    study.optimize(objective, n_trials=spec.budget.num_samples, n_jobs=spec.budget.max_concurrent)
    complete = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    write_record(
        out,
        first_start=first_start,
        epochs=epochs,
        best_val=max(trial.value for trial in complete) if complete else math.nan,
        chosen_test=float(study.best_trial.user_attrs.get("test_acc", math.nan)) if complete else math.nan,
        trials=len(study.trials),
        stopped=len(study.get_trials(states=[optuna.trial.TrialState.PRUNED])),
    )


def asha_defaults(max_epochs: int) -> tuple[int, int]:
    """tunelab's default ASHA rungs: the in-process Optuna pruner judges at the same epochs
    (it takes a whole reduction factor)."""
    from tunelab.search.schedulers import ASHA
    from tunelab_models.params import resolve_params

    options = resolve_params(ASHA.options, {})
    return ASHA.grace_period(max_epochs, options), int(options["reduction_factor"])


def write_record(out: Path, **record: Any) -> None:
    out.write_text(json.dumps(record))


RUNNERS = {"tpe+asha": run_tunelab, "bohb+asha": run_tunelab, "random+asha": run_tunelab, "random": run_tunelab,
           "optuna": run_optuna, f"{FUSED}tpe+asha": run_tunelab}


# ---------------------------------------------------------------------------------------
# The orchestrator.


@dataclass(frozen=True)
class Run:
    dataset: str
    method: str
    seed: int
    wall: float
    to_target: float  # seconds from the first trial's start; inf if never reached
    best_val: float
    chosen_test: float
    epochs_trained: int
    trials: int
    stopped: int
    # Each epoch's end (seconds from the first trial's start) and validation accuracy: the time
    # to any other target.
    curve: tuple[tuple[float, float], ...] = ()

    def time_to(self, target: float) -> float:
        return first_reached(self.curve, target)


def first_reached(curve: tuple[tuple[float, float], ...], target: float) -> float:
    """Seconds until the first epoch at or above the target; inf if none."""
    return min((at for at, acc in curve if acc >= target), default=math.inf)


def measure(dataset: str, work: Workload, method: str, seed: int, slots: int, startup: int | None,
            folder: Path, to_target: bool = False) -> Run:
    name = f"{dataset}-{method.replace('+', '-')}-{seed}"
    spec_file = folder / f"{name}.yaml"
    spec_file.write_text(yaml.safe_dump(experiment(name, work, method, seed, slots, startup, to_target), sort_keys=False))
    out = folder / f"{name}.json"
    started = time.time()
    completed = subprocess.run(
        [sys.executable, __file__, "--run-method", method, "--spec", str(spec_file), "--out", str(out)],
        capture_output=True, text=True,
    )
    wall = time.time() - started
    if completed.returncode != 0:
        sys.exit(f"{name} failed:\n{completed.stdout[-3000:]}{completed.stderr[-3000:]}")
    record = json.loads(out.read_text())
    curve = tuple((at - record["first_start"], acc) for at, acc in record["epochs"])
    return Run(
        dataset=dataset,
        method=method,
        seed=seed,
        wall=wall,
        to_target=first_reached(curve, work.target),
        best_val=record["best_val"],
        chosen_test=record["chosen_test"],
        epochs_trained=len(record["epochs"]),
        trials=record["trials"],
        stopped=record["stopped"],
        curve=curve,
    )


def seconds(value: float) -> str:
    return "never" if math.isinf(value) else f"{value:.1f}"


def ratio(value: float, times_sign: bool = True) -> str:
    """A time ratio; a method that never reached the target where random search did: never."""
    return "never" if math.isinf(value) else f"{value:.2f}" + ("×" if times_sign else "")


def interval(low: float, high: float) -> str:
    return f"{ratio(low, times_sign=False)}–{ratio(high)}"


def report(runs: list[Run], workloads: dict[str, Workload], slots: int, to_target: bool = False) -> str:
    lines = [f"{slots} trials at once; patience off; ASHA / successive halving with tunelab's defaults"]
    if to_target:
        lines.append("each study ended when a trial reached the target (objective.goal): test acc is that of the "
                     "first trial above it, epochs and wall those of the shortened study")
    lines.append("")
    header = (f"{'data set':<8} {'method':<{WIDTH}} {'seed':>4} {'to target s':>11} {'best val acc':>12} "
              f"{'test acc':>8} {'epochs':>6} {'stopped':>7} {'wall s':>7}")
    for dataset, work in workloads.items():
        grace_period, reduction_factor = asha_defaults(work.max_epochs)
        lines += [f"{dataset}: {work.num_samples} trials × up to {work.max_epochs} epochs, "
                  f"target validation accuracy {work.target}; ASHA grace period {grace_period}, "
                  f"reduction factor {reduction_factor}", header]
        mine = [run for run in runs if run.dataset == dataset]
        for run in mine:
            lines.append(
                f"{run.dataset:<8} {run.method:<{WIDTH}} {run.seed:>4} {seconds(run.to_target):>11} {run.best_val:>12.4f} "
                f"{run.chosen_test:>8.4f} {run.epochs_trained:>6} {run.stopped:>7} {run.wall:>7.1f}"
            )
        lines.append("median over seeds:")
        medians = {}
        for method in dict.fromkeys(run.method for run in mine):
            of_method = [run for run in mine if run.method == method]
            medians[method] = statistics.median(run.to_target for run in of_method)
            lines.append(
                f"  {method:<{WIDTH}} to target {seconds(medians[method]):>7} s · test acc "
                f"{statistics.mean(run.chosen_test for run in of_method):.4f} (mean) · "
                f"epochs {statistics.mean(run.epochs_trained for run in of_method):.0f} (mean)"
            )
        lines += verdict(mine, medians, with_test=not to_target)
        if not to_target:  # a study ended at its target knows nothing of higher ones
            lines += target_sweep(mine, work.sweep)
        lines.append("")
    return "\n".join(lines)


def target_sweep(runs: list[Run], targets: tuple[float, ...]) -> list[str]:
    """The median time to each other target per method, and each early-stopping method's ratio
    to random search there, from the same whole studies."""
    if not targets:
        return []
    methods = list(dict.fromkeys(run.method for run in runs))
    lines = ["time to other targets (median s over seeds, never = not reached in more than half; "
             "vs random with its 95 % bootstrap interval):"]
    random_seeds = [run.seed for run in runs if run.method == "random"]
    for target in sorted(targets):
        times = {(run.method, run.seed): run.time_to(target) for run in runs}
        cells = []
        for method in methods:
            of_method = [times[method, run.seed] for run in runs if run.method == method]
            median = statistics.median(of_method)
            missed = sum(math.isinf(time) for time in of_method)
            cell = f"{method} {seconds(median)}" + (f" ({missed} never)" if missed else "")
            pairs = [(times[method, seed], times["random", seed]) for seed in random_seeds
                     if (method, seed) in times]
            baseline = statistics.median(theirs for _, theirs in pairs) if pairs else math.inf
            if method in EARLY_STOPPING_METHODS and len(pairs) >= 3 and math.isfinite(baseline):
                low, high = time_ratio_interval(pairs)
                cell += f" {ratio(median / baseline)} ({interval(low, high)})"
            cells.append(cell)
        lines.append(f"  {target:.3g}: " + " · ".join(cells))
    return lines


def verdict(runs: list[Run], medians: dict[str, float], with_test: bool = True) -> list[str]:
    """Each early-stopping method against random search, and each fused method against its
    unfused self: the time ratio (with a bootstrap interval over seeds) and, for whole studies,
    the paired test-accuracy gap."""
    comparisons = [(method, "random") for method in EARLY_STOPPING_METHODS]
    comparisons += [(method, method.removeprefix(FUSED)) for method in medians if method.startswith(FUSED)]
    return [line for method, baseline in comparisons
            if (line := compared(runs, medians, method, baseline, with_test)) is not None]


def compared(runs: list[Run], medians: dict[str, float], method: str, baseline: str, with_test: bool) -> str | None:
    if method not in medians or baseline not in medians or math.isinf(medians[baseline]):
        return None
    # Paired by seed: both methods see the same data and split, and their searchers draw
    # the same first configurations, so much of the seed-to-seed spread drops out.
    theirs_by_seed = {run.seed: run for run in runs if run.method == baseline}
    pairs = [(run, theirs_by_seed[run.seed]) for run in runs if run.method == method and run.seed in theirs_by_seed]
    line = f"  {method} vs {baseline}: {medians[method] / medians[baseline]:.2f}× the time to target"
    if len(pairs) >= 3:
        low, high = time_ratio_interval([(mine.to_target, theirs.to_target) for mine, theirs in pairs])
        line += f" (95 % bootstrap interval {interval(low, high)})"
    gaps = [mine.chosen_test - theirs.chosen_test for mine, theirs in pairs]
    if with_test and len(gaps) >= 2:
        gap, error = statistics.mean(gaps), statistics.stdev(gaps) / math.sqrt(len(gaps))
        line += f", test acc {gap:+.4f} ± {error:.4f} (paired by seed, standard error of {len(gaps)})"
    return line


def time_ratio_interval(pairs: list[tuple[float, float]], resamples: int = 4000) -> tuple[float, float]:
    """2.5th and 97.5th percentiles of median(method) / median(random) over seeds drawn with
    replacement, each seed keeping its pair: how much the ratio owes to the seeds drawn."""
    import random as draws

    rng = draws.Random(0)
    ratios = []
    for _ in range(resamples):
        sample = [pairs[rng.randrange(len(pairs))] for _ in pairs]
        baseline = statistics.median(theirs for _, theirs in sample)
        ratios.append(statistics.median(mine for mine, _ in sample) / baseline if math.isfinite(baseline) else math.nan)
    ratios = sorted(ratio for ratio in ratios if not math.isnan(ratio))
    if not ratios:
        return math.nan, math.nan
    return ratios[int(0.025 * (len(ratios) - 1))], ratios[int(0.975 * (len(ratios) - 1))]


def parse_seeds(text: str) -> list[int]:
    """`0,1,2`, `0-29` or a mix (`0-4,9`)."""
    seeds: list[int] = []
    for item in filter(None, text.split(",")):
        first, dash, last = item.partition("-")
        if not (first.isdigit() and (not dash or last.isdigit())) or (dash and int(last) < int(first)):
            raise argparse.ArgumentTypeError(f"expected seeds such as 0,1,2 or 0-29, got {item!r}")
        seeds += range(int(first), int(last) + 1) if dash else [int(first)]
    return seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one seed")
    parser.add_argument("--datasets", default=",".join(WORKLOADS), help="comma-separated")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
    parser.add_argument("--seeds", type=parse_seeds, default="0-4", help="searcher seeds: 0,1,2 or 0-29")
    parser.add_argument("--target", type=float, help="target validation accuracy instead of the data set's own "
                        "(with one --datasets)")
    parser.add_argument("--to-target", action="store_true",
                        help="end each study when a trial reaches the target: only the time to target, for many "
                             "seeds at a fraction of the cost")
    parser.add_argument("--slots", type=int, default=2, help="trials at once")
    parser.add_argument("--tpe-startup", type=int, help="TPE's random start-up trials (default: tunelab's)")
    parser.add_argument("--keep", type=Path, help="keep experiment files, logs and results in this folder")
    parser.add_argument("--run-method", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--spec", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_method:
        from tunelab_cli import exit_without_teardown

        RUNNERS[args.run_method](args.spec, args.out)
        exit_without_teardown()

    catalogue = SMOKE if args.smoke else WORKLOADS
    datasets = [name for name in args.datasets.split(",") if name]
    methods = [name for name in args.methods.split(",") if name]
    seeds = [0] if args.smoke else args.seeds
    for given, known, flag in ((datasets, catalogue, "--datasets"), (methods, METHODS, "--methods")):
        unknown = sorted(set(given) - set(known))
        if unknown:
            parser.error(f"{flag}: unknown {', '.join(unknown)}; expected some of {', '.join(known)}")
    if args.target is not None and len(datasets) != 1:
        parser.error("--target: give one data set with --datasets")
    workloads = {name: replace(catalogue[name], target=args.target) if args.target is not None else catalogue[name]
                 for name in datasets}
    with tempfile.TemporaryDirectory(prefix="tunelab-bench-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        runs = []
        for dataset, work in workloads.items():
            for seed in seeds:
                for method in methods:
                    print(f"running {dataset} {method} seed {seed} ...", flush=True)
                    runs.append(measure(dataset, work, method, seed, args.slots, args.tpe_startup, folder,
                                        args.to_target))
        print()
        print(report(runs, workloads, args.slots, args.to_target))


if __name__ == "__main__":
    main()
