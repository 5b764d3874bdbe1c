"""The experiment file: the one contract everything downstream takes."""

from tunelab.spec.checks import resolved_options
from tunelab.search.space import evaluation_order
from tunelab.spec.loader import load_spec, parse_spec
from tunelab.spec.schema import Spec

__all__ = ["Spec", "evaluation_order", "load_spec", "parse_spec", "resolved_options"]
