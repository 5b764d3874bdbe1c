"""Fused trials: many small models of one architecture trained as one vectorised model."""
