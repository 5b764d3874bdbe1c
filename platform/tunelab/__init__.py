"""tunelab: hyperparameter tuning for PyTorch on Ray Tune and Optuna, results in Parquet.

    import tunelab
    study = tunelab.run("search_spaces/quickstart.yaml")
    study.best_params, study.best_value
    study.predict(new_inputs)

The names below are imported on first use, so `import tunelab` stays light.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "run": "tunelab.api",
    "load_study": "tunelab.api",
    "load_model": "tunelab.tuned_model",
    "Study": "tunelab.stored_study",
    "TunedModel": "tunelab.tuned_model",
    "Data": "tunelab.inline_data",
    "BadInputError": "tunelab.errors",
    "TunelabError": "tunelab.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tunelab' has no attribute {name!r}")
