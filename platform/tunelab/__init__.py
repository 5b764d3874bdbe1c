"""tunelab: hyperparameter tuning for PyTorch on Ray Tune and Optuna, results in Parquet."""

__version__ = "0.1.0"
