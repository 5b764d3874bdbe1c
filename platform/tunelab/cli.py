"""The `tunelab` command line. User errors print one line and exit 2; no tracebacks."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from tunelab.training.replicates import BIASVAR_METHODS
from tunelab.errors import BadInputError, StudyInterrupted, TunelabError
from tunelab.store.layout import DEFAULT_STORAGE

if TYPE_CHECKING:  # the study imports what trains: a command that trains nothing must not
    from tunelab.study import StudyOutcome

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Hyperparameter tuning for PyTorch: Ray Tune schedules, Optuna searches, Parquet keeps every result.",
)

class OutputFormat(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


StorageOption = Annotated[
    Path, typer.Option("--storage", help="Folder that holds the studies.", show_default=True)
]
DEFAULT_STORAGE_PATH = Path(DEFAULT_STORAGE)


def echo(line: str) -> None:
    typer.echo(line)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@app.command()
def validate(file: Annotated[Path, typer.Argument(help="Experiment file (YAML).")]) -> None:
    """Check an experiment file without running it."""
    from tunelab.spec import load_spec

    spec = load_spec(file)
    echo(
        f"{file}: ok — study {spec.name!r}, {spec.budget.num_samples} trials of {spec.model.name} on "
        f"{spec.dataset.name}, {plural(len(spec.search_space), 'parameter')} searched by {spec.searcher.name} "
        f"with {spec.scheduler.name}, {_objectives_said(spec)}"
    )
    for line in _data_description(spec):
        echo(f"  {line}")


def _objectives_said(spec: Any) -> str:
    if not spec.is_multi_objective:
        return f"objective {spec.primary_objective.metric} ({spec.objective_mode})"
    listed = ", ".join(f"{o.metric} ({o.mode})" for o in spec.objectives)
    return f"objectives {listed}; the scheduler judges {spec.primary_objective.metric}"


def _data_description(spec: Any) -> list[str]:
    """What tunelab found in a user's data (rows, columns, the task it inferred, the split);
    nothing for a built-in data set, whose description is its name."""
    from tunelab.datasets import get_dataset, load_splits, resolve_dataset_params

    options = spec.dataset.options()
    if get_dataset(spec.dataset.name).input_shape(resolve_dataset_params(spec.dataset.name, options)) is not None:
        return []
    # Read already while validating (and kept): this costs no second pass over the files.
    splits = load_splits(spec.dataset.name, options, spec.dataset.validation_fraction, spec.dataset.test_fraction,
                         spec.dataset.seed, spec.dataset.max_train_samples)
    sizes = splits.sizes()
    return [*splits.notes, f"split: {sizes['train']} train, {sizes['validation']} validation, {sizes['test']} test; "
            f"model inputs of shape {splits.input_shape}"]


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="Experiment file (YAML).")],
    storage: StorageOption = DEFAULT_STORAGE_PATH,
    name: Annotated[Optional[str], typer.Option(help="Study name (default: the file's `name`).")] = None,
    num_samples: Annotated[Optional[int], typer.Option(min=1, help="Number of trials.")] = None,
    max_concurrent: Annotated[Optional[int], typer.Option(min=1, help="Trials running at once.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Searcher seed.")] = None,
    fuse: Annotated[Optional[str], typer.Option(
        help="train.fuse: auto, off, or the most members per fused cohort.")] = None,
) -> None:
    """Run a study on this machine (embedded Ray) and print the best trials."""
    from tunelab.api import run_experiment

    with _interruption_said():
        outcome = run_experiment(file, storage=storage, name=name, echo=echo, num_samples=num_samples,
                                 max_concurrent=max_concurrent, seed=seed,
                                 fuse=int(fuse) if fuse is not None and fuse.isdigit() else fuse)
    from tunelab.store import read_study

    _print_summary(outcome.paths, read_study(outcome.paths)["objective_mode"], top=5)
    echo(_took(outcome))


@app.command()
def resume(
    study: Annotated[str, typer.Argument(help="Study name.")],
    storage: StorageOption = DEFAULT_STORAGE_PATH,
) -> None:
    """Continue a study whose driver died (killed, machine rebooted) from its checkpoints."""
    from tunelab.study import resume_study

    with _interruption_said():
        outcome = resume_study(storage, study, echo=echo)
    from tunelab.store import read_study

    _print_summary(outcome.paths, read_study(outcome.paths)["objective_mode"], top=5)
    echo(_took(outcome))


def _took(outcome: StudyOutcome) -> str:
    if outcome.ray_start_seconds is None:
        return f"took {outcome.seconds:.1f} s (no Ray: fused on this machine's processes)"
    return f"took {outcome.seconds:.1f} s (Ray start-up {outcome.ray_start_seconds:.1f} s)"


@app.command()
def studies(storage: StorageOption = DEFAULT_STORAGE_PATH) -> None:
    """Every study in the storage: status, trials, best objective. A damaged one is reported
    and the others are still listed."""
    from tunelab.analysis import study_summaries
    from tunelab.summary import format_value

    summaries = study_summaries(storage)
    if summaries.empty:
        echo(f"no studies in {storage}")
        return
    for row in summaries.to_dict("records"):
        if row["error"]:
            typer.echo(f"{row['name']}: cannot be read: {row['error']}", err=True)
            continue
        started = f"{row['started_at']:%Y-%m-%d %H:%M:%S}" if row["started_at"] is not None else "—"
        echo(f"{row['name']}  {row['status']:<9}  {int(row['trials_seen'])}/{int(row['trials_planned'])} trials  "
             f"best {row['objective_metric']} {format_value(row['best_objective'])}  started {started}")


@app.command()
def results(
    study: Annotated[str, typer.Argument(help="Study name.")],
    storage: StorageOption = DEFAULT_STORAGE_PATH,
    top: Annotated[Optional[int], typer.Option(min=1, help="Show only the best N trials.")] = None,
    format: Annotated[OutputFormat, typer.Option("--format", help="How to print the trials.")] = OutputFormat.table,
    confirmed: Annotated[bool, typer.Option("--confirmed", help="The noise-aware leaderboard from `tunelab confirm`.")] = False,
) -> None:
    """Show a study's trials, best first."""
    if confirmed:
        _print_confirmation(_existing_study(storage, study))
        return
    from tunelab.analysis.objectives import front_summary_table, is_multi_objective
    from tunelab.store import read_study, read_study_tables
    from tunelab.summary import summary_table

    paths = _existing_study(storage, study)
    mode = read_study(paths)["objective_mode"]
    if format is OutputFormat.table:
        _print_summary(paths, mode, top)
        return
    tables = read_study_tables(paths)
    table = summary_table(tables.trials, mode, top, fit=_fit_by_trial(tables))
    if is_multi_objective(tables.study):
        table = front_summary_table(tables.trials, tables.study, top)
    if format is OutputFormat.csv:
        typer.echo(table.to_csv(index=False), nl=False)
    else:
        typer.echo(table.to_json(orient="records", indent=2))


# typer lists an Enum's values as the option's choices: the registered methods.
BiasVarMethod = Enum("BiasVarMethod", {name: name for name in BIASVAR_METHODS}, type=str)  # type: ignore[misc]


@app.command()
def biasvar(
    study: Annotated[str, typer.Argument(help="Study name.")],
    storage: StorageOption = DEFAULT_STORAGE_PATH,
    top: Annotated[Optional[int], typer.Option(min=1, help="Decompose the best K trials (default 3).")] = None,
    trial: Annotated[Optional[list[str]], typer.Option("--trial", help="A trial id or number; repeat for several.")] = None,
    rounds: Annotated[int, typer.Option(min=2, max=1000, help="Retrainings per trial.")] = 10,
    method: Annotated[BiasVarMethod, typer.Option(help="; ".join(f"{m.name}: {m.summary}" for m in BIASVAR_METHODS.values()))] = BiasVarMethod.bootstrap,  # type: ignore[attr-defined]
    learning_curve: Annotated[bool, typer.Option(help="Also train on 10/25/50/100 % of the training split.")] = True,
) -> None:
    """Bias–variance decomposition of a study's best trials, stored beside the study."""
    from tunelab.biasvar.runner import run_biasvar

    if trial and top:
        raise BadInputError("give either --top or --trial, not both")
    table = run_biasvar(storage, study, trial_ids=trial, top=top or (None if trial else 3), rounds=rounds,
                        method=method.value, learning_curve=learning_curve, echo=echo)
    from tunelab.biasvar.decomposition import describe

    for row in table.to_dict("records"):
        echo(f"trial {row['trial_number']}: {describe(row)}")


AddressOption = Annotated[
    Optional[str], typer.Option("--address", help="The head's Jobs API, e.g. http://HEAD:8265 (default: RAY_ADDRESS or local).")
]


@app.command()
def submit(
    file: Annotated[Path, typer.Argument(help="Experiment file (YAML).")],
    address: AddressOption = None,
    storage: Annotated[str, typer.Option(help="Results folder or URI on the cluster, reachable by every node.")] = "/tmp/tunelab-results",
    name: Annotated[Optional[str], typer.Option(help="Study name (default: the file's `name`).")] = None,
    follow: Annotated[bool, typer.Option(help="Stream the job's logs until it ends.")] = False,
    ship_code: Annotated[bool, typer.Option(help="Upload this tunelab; off when the cluster's image has it.")] = True,
    python: Annotated[str, typer.Option(help="Python interpreter on the cluster.")] = "python",
    data_shared: Annotated[bool, typer.Option(
        help="The data set's files are on storage the cluster mounts at the same path: read them there "
        "(they are checked here only if this machine sees them too). Without it, data under 100 MiB travels with the job.",
    )] = False,
) -> None:
    """Run a study on a Ray cluster through the Jobs API."""
    from tunelab.cluster.jobs import follow_logs
    from tunelab.cluster.submit import submit_study
    from tunelab.spec import load_spec

    overrides = {"name": name} if name else None
    spec = load_spec(file, overrides, read_data=not data_shared or _data_visible_here(file))
    job_id, where = submit_study(file, spec, address, storage, spec.name, ship_code, python, data_shared)
    echo(f"submitted study {spec.name!r} as job {job_id} to {where}")
    echo(f"follow it with: tunelab jobs logs {job_id} --follow --address {where}")
    if follow:
        status = follow_logs(where, job_id, lambda chunk: typer.echo(chunk, nl=False))
        echo(f"job {job_id}: {status}")
        if status != "SUCCEEDED":
            raise typer.Exit(1)


def _data_visible_here(file: Path) -> bool:
    """Whether this machine sees the data set's files too (then they are checked before submitting)."""
    from tunelab.datasets import get_dataset
    from tunelab.spec import load_spec

    spec = load_spec(file, read_data=False)
    options = spec.dataset.options()
    paths = [options[o] for o in get_dataset(spec.dataset.name).path_params if options.get(o)]
    return all(Path(str(p)).exists() for p in paths)


@contextmanager
def _interruption_said() -> Iterator[None]:
    """Ctrl-C ends a study as interrupted: say so, and how to go on, with the shell's code
    for an interrupted command (typer would swallow the KeyboardInterrupt silently)."""
    try:
        yield
    except StudyInterrupted as exc:
        typer.echo(f"tunelab: {exc}", err=True)
        raise typer.Exit(130) from None


TrialOption = Annotated[Optional[str], typer.Option("--trial", help="Trial number or id (default: the best trial).")]


@app.command()
def export(
    study: Annotated[str, typer.Argument(help="Study name.")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="New folder for the model bundle.")] = None,
    storage: StorageOption = DEFAULT_STORAGE_PATH,
    trial: TrialOption = None,
    optuna: Annotated[Optional[str], typer.Option(
        "--optuna", help="Write the study as an Optuna study instead: a journal file, or a database URL (sqlite:///x.db)."
    )] = None,
    tensorboard: Annotated[Optional[Path], typer.Option(
        "--tensorboard", help="Write every trial's per-epoch metrics as TensorBoard event files into this folder."
    )] = None,
    mlflow: Annotated[Optional[str], typer.Option(
        "--mlflow", help="Write the study to this MLflow tracking URI: a parent run, a child run per trial."
    )] = None,
) -> None:
    """Write a trial's trained model (default: the best) as a bundle that predicts without the
    study, or the whole study for another tool: Optuna (--optuna), TensorBoard, MLflow."""
    targets = [given for given in (output, optuna, tensorboard, mlflow) if given is not None]
    if len(targets) != 1:
        raise BadInputError("give one of -o DIR (the model bundle), --optuna FILE_OR_URL, --tensorboard DIR, --mlflow URI")
    if tensorboard is not None or mlflow is not None:
        from tunelab.other_tools import write_mlflow, write_tensorboard

        paths = _existing_study(storage, study)
        if tensorboard is not None:
            echo(f"wrote {study}'s trials as TensorBoard event files to {write_tensorboard(paths, tensorboard)}")
        else:
            echo(f"wrote {study} to MLflow at {mlflow}: parent run {write_mlflow(paths, str(mlflow))}")
        return
    if optuna is not None:
        from tunelab.optuna_export import export_to_optuna

        name, count = export_to_optuna(_existing_study(storage, study), optuna)
        echo(f"exported {count} trials of {study} to {optuna} as Optuna study {name!r}; "
             f"open it with `optuna-dashboard {optuna}` or optuna.load_study(study_name={name!r}, storage=...)")
        return
    from tunelab.stored_study import Study

    chosen = Study.load(study, storage)
    bundle = chosen.export(output, _trial_key(trial))
    model = chosen.tuned_model(_trial_key(trial))
    echo(f"exported trial {model.trial['number']} of {study} ({model.model_name}, best epoch {model.trial['best_epoch']}) "
         f"→ {bundle}")
    echo(f"load it with tunelab.load_model({str(bundle)!r}) or `tunelab predict {bundle} INPUT -o OUTPUT`")


@app.command()
def predict(
    model: Annotated[str, typer.Argument(help="A study name, or a bundle folder from `tunelab export`.")],
    inputs: Annotated[Path, typer.Argument(help="A CSV/Parquet table, a .npz/.npy array, or a folder of images.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the predictions (.csv or .parquet).")],
    storage: StorageOption = DEFAULT_STORAGE_PATH,
    trial: TrialOption = None,
) -> None:
    """Predict new inputs with a tuned model: the study's own preprocessing, class names out."""
    from tunelab.predict_files import predict_file
    from tunelab.stored_study import Study
    from tunelab.tuned_model import MODEL_FILE, load_model

    bundle = Path(model)
    tuned = load_model(bundle) if (bundle / MODEL_FILE).is_file() else Study.load(model, storage).tuned_model(_trial_key(trial))
    count = predict_file(tuned, inputs, output)
    echo(f"{count} predictions of trial {tuned.trial.get('number', '?')} of {tuned.trial.get('study', '?')} → {output}")


def _trial_key(trial: str | None) -> int | str | None:
    """`--trial 7` is a trial number; anything else a trial id."""
    return int(trial) if trial is not None and trial.isdigit() else trial


@app.command()
def confirm(
    study: Annotated[str, typer.Argument(help="Study name.")],
    storage: StorageOption = DEFAULT_STORAGE_PATH,
    top: Annotated[int, typer.Option(min=1, help="Confirm the best K configurations.")] = 3,
    seeds: Annotated[int, typer.Option(min=2, help="Replicates of each, each with a new seed.")] = 5,
    resplit: Annotated[bool, typer.Option(help="Also draw a new train/validation split for each replicate.")] = False,
) -> None:
    """Retrain the best configurations with new seeds: a leaderboard with intervals, the chance
    each is the best, and how optimistic the search's scores were."""
    from tunelab.trust.runners import run_confirm

    run_confirm(storage, study, top=top, seeds=seeds, resplit=resplit, echo=echo)
    _print_confirmation(_existing_study(storage, study))


@app.command()
def audit(
    study: Annotated[str, typer.Argument(help="Study name.")],
    storage: StorageOption = DEFAULT_STORAGE_PATH,
    sample: Annotated[Optional[int], typer.Option(min=1, help="Continue N stopped trials (default: about 10 %, at least 4).")] = None,
    all_stopped: Annotated[bool, typer.Option("--all", help="Continue every stopped trial.")] = False,
    top: Annotated[int, typer.Option(min=1, help="Judge cuts against the study's top K.")] = 5,
) -> None:
    """Continue trials the scheduler stopped to their own end: did it stop a would-be winner?"""
    from tunelab.trust.report import audit as audit_of
    from tunelab.trust.runners import run_audit

    if sample is not None and all_stopped:
        raise BadInputError("give either --sample or --all, not both")
    run_audit(storage, study, sample=sample, every=all_stopped, echo=echo)
    found = audit_of(_existing_study(storage, study), top_k=top)
    assert found is not None
    report, _ = found
    _print_frame(f"{study} — rank correlation of each rung's value with the final one", report.per_rung)
    _print_frame(f"{study} — stopped trials continued", report.audited[
        ["trial_number", "stop_epoch", "value_at_stop", "best_objective", "epochs", "end", "would_be_top", "margin"]])
    if not report.baseline.empty:
        _print_frame(f"{study} — stop every trial at epoch i, keep the best there", report.baseline.drop(columns="pick"))
    for sentence in report.sentences:
        echo(sentence)


def _existing_study(storage: Path, study: str) -> Any:
    from tunelab.store import StudyPaths

    paths = StudyPaths.of(storage, study)
    if not paths.exists():
        raise BadInputError(f"no study {study!r} in {storage}")
    return paths


def _print_confirmation(paths: Any) -> None:
    from tunelab.trust.report import confirmation, leaderboard_table

    found = confirmation(paths)
    if found is None:
        raise BadInputError(f"study {paths.name!r} has no confirmed configurations; run `tunelab confirm {paths.name}` first")
    _print_frame(f"{paths.name} — confirmed by {int(found.board['replicates'].max())} seeds, best mean first", leaderboard_table(found))
    echo(found.sentence)


def _print_frame(title: str, frame: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from tunelab.summary import format_value

    view = Table(title=title)
    for column in frame.columns:
        view.add_column(str(column), justify="right")
    for row in frame.itertuples(index=False):
        view.add_row(*(format_value(value) for value in row))
    Console(width=max(170, Console().width)).print(view)


jobs_app = typer.Typer(help="Follow studies submitted to a Ray cluster.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")


@jobs_app.command("list")
def jobs_list(address: AddressOption = None) -> None:
    """Every job on the cluster, newest first."""
    from tunelab.cluster.jobs import list_jobs

    for job in list_jobs(address):
        echo(f"{job['job_id']}  {job['status']:<9}  {job['started']}  {job['study'] or job['entrypoint'][:60]}")


@jobs_app.command("status")
def jobs_status(job_id: Annotated[str, typer.Argument(help="Job id.")], address: AddressOption = None) -> None:
    """One job's status."""
    from tunelab.cluster.jobs import job_status

    job = job_status(address, job_id)
    echo(f"{job['job_id']}: {job['status']}  study {job['study'] or '—'}  started {job['started']}"
         f"{'  ended ' + job['ended'] if job['ended'] else ''}{'  ' + job['message'] if job['message'] else ''}")


@jobs_app.command("logs")
def jobs_logs(
    job_id: Annotated[str, typer.Argument(help="Job id.")],
    address: AddressOption = None,
    follow: Annotated[bool, typer.Option(help="Keep streaming until the job ends.")] = False,
) -> None:
    """A job's output."""
    from tunelab.cluster.jobs import follow_logs, job_logs

    if follow:
        follow_logs(address, job_id, lambda chunk: typer.echo(chunk, nl=False))
    else:
        typer.echo(job_logs(address, job_id), nl=False)


@jobs_app.command("stop")
def jobs_stop(job_id: Annotated[str, typer.Argument(help="Job id.")], address: AddressOption = None) -> None:
    """Ask the cluster to stop a job."""
    from tunelab.cluster.jobs import stop_job

    stopped = stop_job(address, job_id)
    echo(f"job {job_id}: {'stop requested' if stopped else 'already finished'}")


def _fit_by_trial(tables: Any) -> dict[str, str]:
    """Each trial's fit as the Bias & variance page shows it: a region, or the group of trials
    not judged that it is in."""
    from tunelab.analysis import fit_diagnosis

    diagnosis = fit_diagnosis(tables)
    return dict(zip(diagnosis["trial_id"], diagnosis["region"]))


def _print_summary(paths: Any, mode: str, top: int | None) -> None:
    from rich.console import Console
    from rich.table import Table

    from tunelab.analysis import fit_diagnosis, fit_summary
    from tunelab.analysis.objectives import is_multi_objective
    from tunelab.store import read_study_tables
    from tunelab.summary import format_value, summary_table

    tables = read_study_tables(paths)
    study, trials = tables.study, tables.trials
    if is_multi_objective(study):
        _print_front(paths, tables, top)
        return
    # No fit column here: it would squeeze a table already as wide as a terminal. Each trial's
    # fit is in the csv and json formats and on the dashboard; this prints a sentence.
    table = summary_table(trials, mode, top)
    title = f"{study['name']} — best trials by {study['objective_metric']} ({mode})"
    view = Table(title=title)
    for column in table.columns:
        view.add_column("best " + column if column == "objective" else column, justify="right")
    for row in table.itertuples(index=False):
        view.add_row(*(format_value(v) for v in row))
    console = Console(width=max(170, Console().width))
    console.print(view)
    _echo_how_trials_ended(trials)
    echo(f"fit: {fit_summary(fit_diagnosis(tables))}")
    if not table.empty:
        best = table.iloc[0]
        echo(f"best trial: {best['trial']} with {study['objective_metric']} {format_value(best['objective'])}")
    echo(f"results: {paths.root}")


def _print_front(paths: Any, tables: Any, top: int | None) -> None:
    """A multi-objective study's results: its Pareto front first, then the other trials."""
    from tunelab.analysis.objectives import front_summary_table, hypervolume_history, study_objectives
    from tunelab.summary import format_value

    study, trials = tables.study, tables.trials
    objectives = ", ".join(f"{metric} ({mode})" for metric, mode in study_objectives(study))
    every = front_summary_table(trials, study)
    shown = every if top is None else every.head(top)
    _print_frame(f"{study['name']} — Pareto front first over {objectives}, each part by {study['objective_metric']}", shown)
    front = every[every["pareto"]]["trial"].astype(int).tolist() if not every.empty else []  # all of it, whatever --top
    _echo_how_trials_ended(trials)
    history = hypervolume_history(trials)
    volume = f" (hypervolume {format_value(float(history['hypervolume'].iloc[-1]))})" if not history.empty else ""
    echo(f"Pareto front: trial{'s' if len(front) != 1 else ''} {', '.join(map(str, front)) or '—'}{volume}; "
         f"primary objective {study['objective_metric']}")
    echo(f"results: {paths.root}")


def _echo_how_trials_ended(trials: Any) -> None:
    """"64 trials: 60 completed, 4 stopped_early", and for a fused study how they trained."""
    from tunelab.summary import fusion_summary, status_counts

    counts = ", ".join(f"{n} {status}" for status, n in status_counts(trials).items())
    echo(f"{len(trials)} trials: {counts}")
    fusion = fusion_summary(trials)
    if fusion is not None:
        echo(fusion)


@app.command()
def dashboard(
    storage: StorageOption = DEFAULT_STORAGE_PATH,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8501,
    host: Annotated[
        str, typer.Option(help="Address to listen on; the default keeps the dashboard to this machine.")
    ] = "127.0.0.1",
) -> None:
    """Open the Streamlit dashboard over a results folder (live while a study runs)."""
    import importlib.util
    import os

    if not storage.is_dir():
        raise BadInputError(f"storage {storage}: no such folder; run a study first or pass --storage DIR")
    found = importlib.util.find_spec("tunelab_dashboard")
    if found is None or found.origin is None:
        raise TunelabError("the dashboard is not installed with this tunelab; reinstall it (make setup)")
    app_script = Path(found.origin).with_name("app.py")
    command = [
        sys.executable, "-m", "streamlit", "run", str(app_script),
        "--server.address", host, "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        # Streamlit's developer toolbar offers "Deploy" (to Streamlit's cloud) and cache
        # controls: tools for the app's authors, not for someone browsing studies.
        "--client.toolbarMode", "viewer",
    ]
    echo(f"dashboard for {storage.resolve()} at http://{host}:{port} (Ctrl-C stops it)")
    sys.stdout.flush()
    # Become the server rather than wrap it: Ctrl-C and a signal to this process reach it directly.
    os.execve(sys.executable, command, {**os.environ, "TUNELAB_STORAGE": str(storage.resolve())})


def main(argv: list[str] | None = None) -> None:
    from tunelab.tune.local_ray import ray_is_up, stop_ray_quietly

    ray_was_up = ray_is_up()  # a program calling main with its own Ray keeps it
    try:
        run_command(argv)
    finally:
        if not ray_was_up:
            stop_ray_quietly()


def run_command(argv: list[str] | None) -> None:
    try:
        # Without standalone mode, an Exit's code is returned rather than raised.
        code = app(args=argv, standalone_mode=False, prog_name="tunelab")
    except typer.TyperException as exc:  # bad command-line usage (typer's vendored click)
        if exc.exit_code == 0 or type(exc).__name__ == "NoArgsIsHelpError":
            ctx = getattr(exc, "ctx", None)
            typer.echo(ctx.get_help() if ctx else "", err=False)
            sys.exit(0 if exc.exit_code == 0 else 2)
        where = f"{exc.ctx.command_path}: " if getattr(exc, "ctx", None) else ""
        typer.echo(f"tunelab: error: {where}{exc.format_message()}", err=True)
        sys.exit(2)
    except TunelabError as exc:
        typer.echo(f"tunelab: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("tunelab: interrupted", err=True)
        sys.exit(130)
    if isinstance(code, int) and code != 0:
        sys.exit(code)


if __name__ == "__main__":
    main()
