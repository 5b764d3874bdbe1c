"""The results store: Parquet tables per study, one writer (the driver), many readers.

Readers never import Ray, so the dashboard and the CLI summaries stay light.
"""

from tunelab.store import schema
from tunelab.store.layout import StudyPaths, list_study_names
from tunelab.store.reader import StudyTables, read_epochs, read_study, read_study_tables, read_trials
from tunelab.store.writer import StudyWriter

__all__ = [
    "StudyPaths",
    "StudyTables",
    "StudyWriter",
    "list_study_names",
    "read_epochs",
    "read_study",
    "read_study_tables",
    "read_trials",
    "schema",
]
