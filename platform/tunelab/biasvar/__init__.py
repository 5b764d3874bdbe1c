"""Bias–variance decomposition of tuned configurations (`tunelab biasvar`)."""

from tunelab.biasvar.decomposition import Decomposition, squared_error_decomposition, zero_one_decomposition
from tunelab.biasvar.engine import METHODS

__all__ = ["METHODS", "Decomposition", "squared_error_decomposition", "zero_one_decomposition"]
