"""Where each table of a study lives under the storage root."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_STORAGE = "tunelab-results"  # a folder in the working directory
STUDY_TABLE = "study.parquet"
PARAM_PREFIX = "param_"  # trials-table columns of searched parameters: param_learning_rate, ...
TRIALS_TABLE = "trials.parquet"
EPOCHS_FOLDER = "epochs"  # append-only part files: the writer never rewrites epoch rows
BIASVAR_TABLE = "biasvar.parquet"  # written by `tunelab biasvar`
LEARNING_CURVES_TABLE = "learning_curves.parquet"  # likewise
CONFIRM_TABLE = "confirm.parquet"  # written by `tunelab confirm`: one row per (trial, replicate)
AUDIT_TABLE = "audit.parquet"  # written by `tunelab audit`: one row per continued trial
AUDIT_EPOCHS_TABLE = "audit_epochs.parquet"  # and one per epoch of each continued trial
# What the study fitted on its training rows (scaling, categories, class names), as JSON.
PREPROCESSING_FILE = "preprocessing.json"


@dataclass(frozen=True)
class StudyPaths:
    root: Path  # <storage>/<study name>; Ray Tune's experiment state lives here too

    @classmethod
    def of(cls, storage: str | Path, study_name: str) -> StudyPaths:
        return cls(Path(storage).expanduser().resolve() / study_name)

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def study(self) -> Path:
        return self.root / STUDY_TABLE

    @property
    def trials(self) -> Path:
        return self.root / TRIALS_TABLE

    @property
    def epochs(self) -> Path:
        return self.root / EPOCHS_FOLDER

    @property
    def preprocessing(self) -> Path:
        return self.root / PREPROCESSING_FILE

    @property
    def epochs_log(self) -> Path:
        """Write-ahead log of epoch rows not yet in a part file (see StudyWriter)."""
        return self.epochs / "pending.jsonl"

    @property
    def trials_log(self) -> Path:
        """Write-ahead log of trial rows not yet in the trials table (see StudyWriter)."""
        return self.root / "trials.pending.jsonl"

    def epoch_parts(self) -> list[Path]:
        """Part files in write order (their names sort by sequence number)."""
        if not self.epochs.is_dir():
            return []
        return sorted(self.epochs.glob("part-*.parquet"))

    def exists(self) -> bool:
        return self.study.exists()


def list_study_names(storage: str | Path) -> list[str]:
    root = Path(storage).expanduser()
    if not root.is_dir():
        return []
    return sorted(child.name for child in root.iterdir() if (child / STUDY_TABLE).exists())
