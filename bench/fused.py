"""Fused trials in `tunelab run` (issue 21): the same trials three ways, in one invocation.

Studies whose learning rate, momentum, weight decay and dropout are searched (random search,
one seed, so every way trains the same configurations; no scheduler, no early stopping, so every
way trains every epoch). The issue's two keep their structure fixed:

  digits-mlp    digits, MLP 64-128-128-10, SGD, batch 32
  mnist1d-cnn   MNIST-1D, CNN of 2 blocks × 16 channels, SGD, batch 32

and three more ask whether fusing can lose (what `train.fuse: auto` as a default would need):

  digits-resnet     digits, ResNet of 2 blocks × 16 channels with batch norm (no dropout in it)
  digits-mlp-split  digits MLP, depth 1-3 and width 32/64/128/256 searched too: 12 shapes, so
                    cohorts split and many are small
  digits-mlp-alone  digits MLP, width searched as any integer 16-256: nearly every trial has a
                    shape of its own, a cohort of one (the worst case for fusing)

and one whose optimiser is searched too (sgd, adam, adamw, rmsprop, adagrad: one cohort, each
optimiser's members a block of it):

  digits-mlp-optimizers  digits MLP 64-128-128-10, the optimiser searched with the rest

and each trained three ways, one after the other on the same machine:

  unfused     `tunelab run` with `train.fuse: off`: one trial per CPU at a time
  fused       `tunelab run` with `train.fuse: auto` (or --fuse N): members of fused cohorts
  inprocess   the training loop over the same configurations in a plain Python loop, one trial
              at a time, one thread: no Ray

Wall time counts everything a user waits for (`tunelab run` includes starting and stopping
Ray, seconds that do not grow with the study); study time is the store's started → finished
(Ray already up). The fused speed-up is printed on both. Member-epochs per second are the
trials' epochs over the wall time. Figures from a busy machine mean little: note its load.

    python bench/fused.py                  # 64 trials × 5 epochs per study (several minutes)
    python bench/fused.py --smoke          # 4 trials × 2 epochs, small data: every figure in seconds
    python bench/fused.py --studies digits-mlp --trials 32 --fuse 16
    python bench/fused.py --studies digits-resnet digits-mlp-split digits-mlp-alone
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from tunelab_cli import tunelab_run

SEARCHED = {
    "learning_rate": {"type": "loguniform", "low": 1e-3, "high": 0.1},
    "momentum": {"type": "uniform", "low": 0.0, "high": 0.95},
    "weight_decay": {"type": "loguniform", "low": 1e-6, "high": 1e-3},
    "dropout": {"type": "uniform", "low": 0.0, "high": 0.5},
}
DIGITS = {"name": "digits"}
MLP = {"name": "mlp", "width": 128, "depth": 2}
STUDIES: dict[str, dict[str, Any]] = {
    "digits-mlp": {"dataset": DIGITS, "model": MLP},
    "mnist1d-cnn": {"dataset": {"name": "mnist1d", "num_samples": 4000}, "model": {"name": "cnn", "blocks": 2, "channels": 16}},
    "digits-resnet": {"dataset": DIGITS, "model": {"name": "resnet", "depth": 2, "width": 16},
                      "searched": {"dropout": None}},
    "digits-mlp-split": {"dataset": DIGITS, "model": {"name": "mlp"}, "searched": {
        "depth": {"type": "int", "low": 1, "high": 3},
        "width": {"type": "choice", "values": [32, 64, 128, 256]},
    }},
    "digits-mlp-alone": {"dataset": DIGITS, "model": {"name": "mlp", "depth": 2}, "searched": {
        "width": {"type": "int", "low": 16, "high": 256},
    }},
    "digits-mlp-optimizers": {"dataset": DIGITS, "model": MLP, "searched": {
        "optimizer": {"type": "choice", "values": ["sgd", "adam", "adamw", "rmsprop", "adagrad"]},
        # Adam's rates are smaller than SGD's: one range that suits both.
        "learning_rate": {"type": "loguniform", "low": 3e-4, "high": 0.03},
    }},
}
ISSUE_STUDIES = ["digits-mlp", "mnist1d-cnn"]
WAYS = ("unfused", "fused", "inprocess")


def experiment(study: str, fuse: str, trials: int, epochs: int, smoke: bool) -> dict[str, Any]:
    dataset = {**STUDIES[study]["dataset"], "validation_fraction": 0.2, "test_fraction": 0.2, "seed": 0}
    if smoke:
        dataset["max_train_samples"] = 300
        if dataset["name"] == "mnist1d":
            dataset["num_samples"] = 1000
    # A study's own entries add parameters to SEARCHED; None drops one its model lacks.
    searched = {**SEARCHED, **STUDIES[study].get("searched", {})}
    train = {"max_epochs": epochs, "optimizer": "sgd", "batch_size": 32, "fuse": fuse, "early_stopping": {"patience": None}}
    return {
        "name": f"{study}-{fuse}",
        "dataset": dataset,
        "model": STUDIES[study]["model"],
        "search_space": {name: space for name, space in searched.items() if space is not None},
        "objective": {"metric": "val_acc"},
        "train": {name: value for name, value in train.items() if name not in searched},
        "searcher": {"name": "random", "seed": 0},
        "scheduler": {"name": "none"},
        "budget": {"num_samples": trials},
        "resources": {"cpu": 1},
    }


def run_study(document: dict[str, Any], folder: Path) -> tuple[float, float, Path]:
    """`tunelab run` on the document: (wall seconds, study seconds, the study's folder)."""
    spec_file = folder / f"{document['name']}.yaml"
    spec_file.write_text(yaml.safe_dump(document, sort_keys=False))
    started = time.perf_counter()
    tunelab_run(spec_file, folder / "store", folder / f"{document['name']}.log")
    wall = time.perf_counter() - started
    from tunelab.store import StudyPaths, read_study

    paths = StudyPaths.of(folder / "store", document["name"])
    study = read_study(paths)
    return wall, (study["finished_at"] - study["started_at"]).total_seconds(), paths.root


def in_process(document: dict[str, Any], fused_study: Path) -> float:
    """The fused study's own configurations, trained one after another in this process."""
    import torch

    from tunelab.spec import parse_spec
    from tunelab.store import StudyPaths
    from tunelab.stored_study import trial_params
    from tunelab.store import read_trials
    from tunelab.from_spec import load_study_data, study_setup
    from tunelab.training.loop import train_trial

    torch.set_num_threads(1)
    spec = parse_spec(yaml.safe_dump(document), "inprocess.yaml")
    data, setup = load_study_data(spec), study_setup(spec)
    trials = read_trials(StudyPaths(fused_study))
    started = time.perf_counter()
    for _, row in trials.iterrows():
        train_trial(setup.plan_for(trial_params(row)), data, lambda metrics, state: None)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", nargs="+", choices=sorted(STUDIES), default=ISSUE_STUDIES)
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--fuse", default="auto", help="train.fuse of the fused way: auto or a member count")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--keep", help="keep the studies in this folder (default: a temporary one)")
    args = parser.parse_args()
    trials, epochs = (4, 2) if args.smoke else (args.trials, args.epochs)
    fuse = args.fuse if args.fuse == "auto" else int(args.fuse)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-fused-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} CPUs, {platform.machine()}, load average {os.getloadavg()[0]:.2f} at the start; "
          f"{trials} trials × {epochs} epochs per study, fused way train.fuse: {fuse}")
    print(f"{'study':<22} {'way':<10} {'wall s':>8} {'study s':>8} {'member-epochs/s':>16} {'fused speed-up':>15} "
          f"{'on study s':>11}")
    for study in args.studies:
        walls: dict[str, float] = {}
        studies: dict[str, float | None] = {}
        fused_folder = None
        for way in WAYS:
            if way == "inprocess":
                assert fused_folder is not None
                walls[way], studies[way] = in_process(experiment(study, "off", trials, epochs, args.smoke), fused_folder), None
            else:
                document = experiment(study, "off" if way == "unfused" else fuse, trials, epochs, args.smoke)
                document["name"] = f"{study}-{way}"
                walls[way], studies[way], root = run_study(document, folder)
                fused_folder = root if way == "fused" else fused_folder
        for way in WAYS:
            study_s = "—" if studies[way] is None else f"{studies[way]:.1f}"
            speed_up = f"{walls['unfused'] / walls['fused']:.2f}×" if way == "fused" else "—"
            on_study = f"{studies['unfused'] / studies['fused']:.2f}×" if way == "fused" else "—"
            print(f"{study:<22} {way:<10} {walls[way]:>8.1f} {study_s:>8} {trials * epochs / walls[way]:>16.1f} "
                  f"{speed_up:>15} {on_study:>11}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end; studies in {folder}")


if __name__ == "__main__":
    main()
