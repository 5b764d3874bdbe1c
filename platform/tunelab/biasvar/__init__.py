"""Bias–variance decomposition of tuned configurations (`tunelab biasvar`)."""

from tunelab.biasvar.decomposition import Decomposition, squared_error_decomposition, zero_one_decomposition
from tunelab.training.replicates import BIASVAR_METHODS

__all__ = ["BIASVAR_METHODS", "Decomposition", "squared_error_decomposition", "zero_one_decomposition"]
