"""Experiment file → Spec. Every failure is one SpecError naming the file and the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from tunelab.errors import SpecError, shown_value
from tunelab.spec.checks import did_you_mean, validate_spec
from tunelab.search.space import DISTRIBUTION_TYPES, DISTRIBUTIONS_BY_TYPE
from tunelab.spec.schema import OBJECTIVE_SHAPES, Objective, Spec
from tunelab.spec.yaml_loader import MAX_DEPTH, DuplicateKeyError, load_yaml

# An experiment file has tens of values. The bound stops alias bombs ("billion laughs"),
# which safe_load builds cheaply as shared references but which explode when walked.
MAX_VALUES = 10_000
MAX_FILE_BYTES = 1_000_000


def load_spec(path: str | Path, overrides: dict[str, Any] | None = None, read_data: bool = True) -> Spec:
    """Read and validate an experiment file; `overrides` maps dotted field paths to values;
    `read_data` off skips what only the data set's files can tell (see `validate_spec`)."""
    path = Path(path)
    return parse_spec(read_experiment_text(path), str(path), overrides, base=path.resolve().parent, read_data=read_data)


def read_experiment_text(path: Path) -> str:
    source = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(source, "", "no such file") from None
    except OSError as exc:
        raise SpecError(source, "", f"cannot read the file: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise SpecError(source, "", f"file is {len(raw)} bytes; expected an experiment file under {MAX_FILE_BYTES}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(source, "", "expected UTF-8 text") from None


def parse_spec(
    text: str,
    source: str = "<experiment>",
    overrides: dict[str, Any] | None = None,
    base: Path | None = None,
    read_data: bool = True,
) -> Spec:
    """Parse and validate YAML text; `overrides` maps dotted field paths to values; relative
    data paths are relative to `base` (default: the working folder)."""
    return validate_document(parse_document(text, source), source, overrides, base, read_data)


def parse_document(text: str, source: str) -> dict[str, Any]:
    """YAML text → the experiment as plain data (a mapping), not yet validated."""
    try:
        document = load_yaml(text)
    except DuplicateKeyError as exc:
        raise SpecError(source, _dotted(exc.field), f"{exc.problem}; expected it once") from None
    except yaml.YAMLError as exc:
        raise SpecError(source, "", _yaml_problem(exc)) from None
    if not isinstance(document, dict):
        raise SpecError(source, "", f"expected a mapping of experiment settings at the top level, got {_kind(document)}")
    return document


def validate_document(
    document: dict[str, Any],
    source: str,
    overrides: dict[str, Any] | None = None,
    base: Path | None = None,
    read_data: bool = True,
) -> Spec:
    """An experiment as plain data (from a file, or a caller's dict) → a validated Spec."""
    if not isinstance(document, dict):
        raise SpecError(source, "", f"expected a mapping of experiment settings at the top level, got {_kind(document)}")
    _check_size(document, source)
    document = copy.deepcopy(document)  # overrides must not change the caller's dict
    for dotted, value in (overrides or {}).items():
        _set_path(document, dotted, value)
    try:
        spec = Spec.model_validate(document)
    except ValidationError as exc:
        field, message = _first_problem(exc)
        raise SpecError(source, field, message) from None
    return validate_spec(spec, source, base, read_data)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: invalid YAML: {problem}"
    return f"invalid YAML: {problem}"


def _check_size(document: Any, source: str) -> None:
    """Bound the values and the depth before anything recursive (deepcopy, pydantic) walks
    them: a caller's dict, or YAML's sets and pairs, are not bounded by the YAML loader."""
    count, stack = 0, [(document, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise SpecError(source, "", f"more than {MAX_VALUES} values (YAML aliases expanding?); expected a small experiment file")
        if depth > MAX_DEPTH:
            raise SpecError(source, "", f"nested deeper than {MAX_DEPTH} levels; expected a small experiment file")
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in (*node.keys(), *node.values()))
        elif isinstance(node, (list, tuple, set, frozenset)):
            stack.extend((child, depth + 1) for child in node)


def _set_path(document: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = document
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {} if child is None else child
            node[key] = child
        node = child
    node[leaf] = value


def _first_problem(exc: ValidationError) -> tuple[str, str]:
    errors = exc.errors(include_url=False)
    error = errors[0]
    loc = _clean_location(error["loc"])
    field = _dotted(loc)
    kind, given = error["type"], error.get("input")
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    if kind == "extra_forbidden":
        siblings = _known_fields(error["loc"][:-1])
        return field, f"unknown key{did_you_mean(str(loc[-1]), siblings)}; expected one of {', '.join(siblings)}{more}"
    if kind == "missing":
        return field, f"required field is missing{more}"
    if kind == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag", given)
        return f"{field}.type", f"unknown type {shown_value(tag)}{did_you_mean(str(tag), DISTRIBUTION_TYPES)}; expected one of {', '.join(DISTRIBUTION_TYPES)}{more}"
    if kind == "union_tag_not_found":
        return f"{field}.type", f"required field is missing; expected one of {', '.join(DISTRIBUTION_TYPES)}{more}"
    if kind == "invalid_key" or loc[-1:] == ("[key]",):  # a key that is a number, true/false or null
        place = loc if kind == "invalid_key" else loc[:-1]
        return _dotted(place), f"expected a name (text) as the key, got {shown_value(given)}{more}"
    message = error["msg"]
    if message.startswith("Input should be a valid"):
        message = message.split(",")[0]  # drop pydantic's "unable to parse string as ..."
        message = message.replace(" or instance of " + str(error.get("ctx", {}).get("class_name", "")), "")
    for prefix in ("Value error, ", "Input should be "):
        if message.startswith(prefix):
            message = ("expected " if prefix.startswith("Input") else "") + message[len(prefix):]
    if kind != "value_error" and not isinstance(given, (dict, list)):
        message += f", got {shown_value(given)}"
    return field, message[0].lower() + message[1:] + more


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in path)


def _clean_location(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # Pydantic puts the union tag into the location (search_space.lr.loguniform.low).
    if len(loc) >= 3 and loc[0] == "search_space" and loc[2] in DISTRIBUTION_TYPES:
        return loc[:2] + loc[3:]
    # And the shape of `objective` (one mapping or a list): objective.one.metric is objective.metric.
    if len(loc) >= 2 and loc[0] == "objective" and loc[1] in OBJECTIVE_SHAPES:
        return loc[:1] + loc[2:]
    return loc


def _known_fields(parent: tuple[Any, ...]) -> list[str]:
    """Field names allowed at `parent` (a raw pydantic location), for "did you mean"."""
    if len(parent) == 3 and parent[0] == "search_space" and parent[2] in DISTRIBUTIONS_BY_TYPE:
        return list(DISTRIBUTIONS_BY_TYPE[parent[2]].model_fields)
    if parent[:1] == ("objective",) and len(parent) in (2, 3):  # (objective, one) or (objective, several, i)
        return list(Objective.model_fields)
    model: Any = Spec
    for part in parent:
        field = model.model_fields.get(str(part)) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return []
        model = field.annotation
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _kind(value: Any) -> str:
    return "an empty file" if value is None else f"a {type(value).__name__}"
