"""What the dashboard shows, computed from a study's stored tables.

Plain pandas, numpy and Optuna over `tunelab.store`: never imports Ray or Streamlit, so the
dashboard and the CLI read results without either.
"""

from tunelab.analysis.biasvar import (
    FIT_RULE,
    REMEDIES,
    decomposition,
    fit_diagnosis,
    fit_groups,
    fit_summary,
    learning_curves,
    validation_curve,
)
from tunelab.analysis.compare import class_names, compare_metrics, compare_params, confusion_matrix
from tunelab.analysis.curves import available_kinds, epoch_curves, rung_epochs, stop_points, train_val_curves
from tunelab.analysis.importance import param_importance, parallel_coordinates, slice_points
from tunelab.analysis.overview import best_trial, filter_trials, optimisation_history, trial_table
from tunelab.analysis.studies import load_study, study_summaries

__all__ = [
    "FIT_RULE",
    "REMEDIES",
    "available_kinds",
    "best_trial",
    "compare_metrics",
    "compare_params",
    "class_names",
    "confusion_matrix",
    "decomposition",
    "learning_curves",
    "epoch_curves",
    "filter_trials",
    "fit_diagnosis",
    "fit_groups",
    "fit_summary",
    "load_study",
    "optimisation_history",
    "param_importance",
    "parallel_coordinates",
    "rung_epochs",
    "slice_points",
    "stop_points",
    "study_summaries",
    "train_val_curves",
    "trial_table",
    "validation_curve",
]
