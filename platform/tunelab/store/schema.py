"""The store's schema, defined once: its tables, their columns with types, and the status words.

The writer (the driver's store callback), the readers, the dashboard and the README's "Results
store" table all take their names from here; tests/test_store_schema.py keeps the README's table
equal to `readme_table()` and a real study's tables inside these columns.
"""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.store.layout import (
    AUDIT_EPOCHS_TABLE,
    AUDIT_TABLE,
    BIASVAR_TABLE,
    CONFIRM_TABLE,
    EPOCHS_FOLDER,
    LEARNING_CURVES_TABLE,
    PARAM_PREFIX,
    PREPROCESSING_FILE,
    STUDY_TABLE,
    TRIALS_TABLE,
)

# How a trial stands, as the store, the progress display and the dashboard name it.
RUNNING = "running"
COMPLETED = "completed"  # ran to max_epochs
STOPPED_EARLY = "stopped_early"  # stopped by the scheduler (ASHA / median) at a rung
EARLY_STOPPED_PATIENCE = "early_stopped_patience"  # no improvement for `patience` epochs
REACHED_GOAL = "reached_goal"  # its objective reached the study's `objective.goal`
DIVERGED = "diverged"  # loss became NaN or infinite
ERRORED = "errored"  # raised an exception
INTERRUPTED = "interrupted"  # still running when the study ended (time budget, goal, Ctrl-C); resumable

TRIAL_STATUSES: tuple[str, ...] = (
    COMPLETED, STOPPED_EARLY, EARLY_STOPPED_PATIENCE, REACHED_GOAL, DIVERGED, ERRORED, INTERRUPTED,
)
# Ended by the trial's own rule: a final result, however it came.
ENDED_ON_THEIR_OWN: tuple[str, ...] = (COMPLETED, EARLY_STOPPED_PATIENCE, REACHED_GOAL, DIVERGED)
# Ended on their own with a result to rank (a diverged trial's is its worst value).
WITH_A_FINAL_RESULT: tuple[str, ...] = (COMPLETED, EARLY_STOPPED_PATIENCE, REACHED_GOAL)
# Ended for good: a resumed study never trains these again.
FINISHED: tuple[str, ...] = (*ENDED_ON_THEIR_OWN, STOPPED_EARLY, ERRORED)

# How a study stands (the study table's `status`).
STUDY_RUNNING = "running"
STUDY_COMPLETED = "completed"
STUDY_INTERRUPTED = "interrupted"  # Ctrl-C: resumable
STUDY_FAILED = "failed"  # the driver raised
STUDY_STATUSES: tuple[str, ...] = (STUDY_RUNNING, STUDY_COMPLETED, STUDY_INTERRUPTED, STUDY_FAILED)


@dataclass(frozen=True)
class Column:
    name: str  # may be a pattern: `param_*`, `final_{train,val}_loss`
    dtype: str  # as pandas reads it: string, int64, float64, bool, timestamp, list<int64>
    meaning: str = ""

    def shown(self) -> str:
        return f"{self.name} ({self.meaning})" if self.meaning else self.name


@dataclass(frozen=True)
class Table:
    path: str  # relative to the study's folder
    one_row_per: str
    columns: tuple[Column, ...] = ()
    summary: str = ""  # for a table another command writes: what it holds, in words

    def column_names(self) -> set[str]:
        """Every concrete column name, patterns expanded (not `param_*`: those are the space's)."""
        return {name for column in self.columns for name in _expand(column.name)}

    def holds(self, name: str) -> bool:
        """Whether a column of this name belongs in the table (`param_*` and the like match)."""
        return name in self.column_names() or any(
            column.name.endswith("*") and name.startswith(column.name[:-1]) for column in self.columns)

    def readme_row(self) -> str:
        shown = self.summary or ", ".join(column.shown() for column in self.columns)
        return f"| `{self.path}` | {self.one_row_per} | {shown} |"


def _expand(pattern: str) -> list[str]:
    """`final_{train,val}_loss` → final_train_loss, final_val_loss."""
    if "{" not in pattern:
        return [] if pattern.endswith("*") else [pattern]
    head, rest = pattern.split("{", 1)
    choices, tail = rest.split("}", 1)
    return [name for choice in choices.split(",") for name in _expand(head + choice + tail)]


S, I, F, B, T = "string", "int64", "float64", "bool", "timestamp"

STUDY = Table(STUDY_TABLE, "study", (
    Column("name", S), Column("description", S), Column("spec_yaml", S, "the validated spec"),
    Column("dataset", S), Column("task", S), Column("class_names", S, "JSON, in class-index order"), Column("model", S),
    Column("objective_metric", S, "the primary objective's"), Column("objective_mode", S), Column("searcher", S), Column("scheduler", S),
    Column("rung_epochs", "list<int64>", "the epochs the scheduler judges"), Column("max_epochs", I),
    Column("num_samples", I), Column("max_concurrent", I), Column("status", S, " / ".join(STUDY_STATUSES)),
    Column("started_at", T), Column("finished_at", T), Column("resumed_at", T),
    Column("objectives", S, "several objectives: JSON list of {metric, mode}, the file's order"),
    Column("hypervolume_reference", S, "several objectives: JSON list"),
))

TRIALS = Table(TRIALS_TABLE, "trial", (
    Column("trial_id", S), Column("trial_number", I), Column(f"{PARAM_PREFIX}*", "as sampled", "one per searched parameter"),
    Column("status", S, " / ".join((RUNNING, *TRIAL_STATUSES))), Column("objective", F, "best value"),
    Column("best_epoch", I), Column("epochs", I), Column("stop_epoch", I), Column("stop_reason", S), Column("error", S),
    Column("final_{train,val,test}_{loss,acc,r2}", F), Column("final_{val,test}_auc", F), Column("final_inference_ms", F),
    Column("test_confusion", S, "JSON, rows = true class"), Column("retries", I), Column("rerun_epochs", I),
    Column("node_id", S), Column("gpu_ids", S), Column("fusion", S, "fused studies: `fused`, or why the trial trained alone"),
    Column("cohort", S, "fused studies: what its cohort's members share (model, shapes, batch size)"),
    Column("started_at", T), Column("finished_at", T), Column("duration_s", F),
    Column("objective_*", F, "several objectives: one per objective, at the best epoch so far; final when the trial ends"),
    Column("pareto", B, "several objectives: on the front of finished trials"),
    Column("hypervolume", F, "several objectives: the front's, when the trial finished"),
))

EPOCHS = Table(f"{EPOCHS_FOLDER}/part-*.parquet", "trial × epoch", (
    Column("trial_id", S), Column("epoch", I), Column("{train,val}_{loss,acc,r2}", F, "NaN where a task lacks one"),
    Column("lr", F), Column("epoch_seconds", F), Column("num_parameters", F), Column("train_seconds", F),
    Column("time_total_s", F),
))

SIDE_TABLES: tuple[Table, ...] = (
    Table(f"{BIASVAR_TABLE}`, `{LEARNING_CURVES_TABLE}", "trial × method, trial × training share",
          summary="written by `tunelab biasvar` (see above)"),
    Table(CONFIRM_TABLE, "trial × seed", summary="written by `tunelab confirm`: replicate, seed, resplit, objective "
          "(best validation value), best_epoch, epochs, end, test metrics; fusion (fused studies: `fused`, or why the "
          "replicates trained alone)"),
    Table(f"{AUDIT_TABLE}`, `{AUDIT_EPOCHS_TABLE}", "continued trial, its epochs", summary="written by `tunelab "
          "audit`: stop_epoch, value_at_stop, best_objective, epochs, end, test metrics; the continued curve"),
    Table(PREPROCESSING_FILE, "study", summary="what was fitted on the training rows: input (and regression target) "
          "scaling, a table's columns, one-hot categories and imputed means, class names, input shape, task; JSON, "
          "never a pickle"),
)
TABLES: tuple[Table, ...] = (STUDY, TRIALS, EPOCHS, *SIDE_TABLES)


def readme_table() -> str:
    """The README's "Results store" table (`python -m tunelab.store.schema` prints it)."""
    return "\n".join(["| table | one row per | columns |", "|---|---|---|", *(table.readme_row() for table in TABLES)])


if __name__ == "__main__":
    print(readme_table())
