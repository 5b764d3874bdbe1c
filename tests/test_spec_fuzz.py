"""Fuzzing the experiment-file reader: whatever the text, it ends as a Spec or as one line.

Hypothesis writes YAML documents from scratch and mutates the shipped files in
`search_spaces/`: their structure (keys dropped, renamed or added, values of another type,
extreme numbers, unicode, deep nesting, nodes shared so that YAML writes them as aliases) and
their text (lines duplicated, dropped, swapped or re-indented, the file cut short, YAML
tokens, tags and anchors put in). Every input must end as a valid Spec or as one
`BadInputError` whose message is one line naming the file; any other exception, a message
of several lines or an input that never ends fails the test and Hypothesis prints the input.
The shipped files' relative data paths, and two more seed files' arrays and images, are read
from a temporary folder: a mutated path names a file that is not there (offline, fast).

The default run is derandomized (the same inputs every run, so CI is not a lottery) and small
enough for the normal suite; `TUNELAB_FUZZ_EXAMPLES=5000` runs that many fresh random inputs
per test instead.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import REPO, run_cli
from tunelab.datasets import dataset_names, get_dataset
from tunelab.errors import BadInputError
from tunelab.search.schedulers import SCHEDULERS
from tunelab.search.searchers import SEARCHERS
from tunelab.spec import parse_spec
from tunelab_models.registry import get_model, model_names
from user_data import write_arrays, write_images

SOURCE = "study.yaml"
SHIPPED = {path.name: path.read_text() for path in sorted((REPO / "search_spaces").glob("*.yaml"))}


def _with_dataset(dataset: dict[str, Any]) -> str:
    document = yaml.safe_load(SHIPPED["quickstart.yaml"])
    document["dataset"] = dataset
    return yaml.safe_dump(document, sort_keys=False)


# The files to mutate: the shipped ones, and the quickstart on the two file kinds no shipped
# file reads (the files are in `data_folder`), so their options are fuzzed too.
SEEDS = {
    **SHIPPED,
    "own-arrays.yaml": _with_dataset({"name": "arrays", "path": "signals.npz", "missing": "drop"}),
    "own-images.yaml": _with_dataset({"name": "images", "path": "pictures", "size": [6, 5], "color": "gray"}),
}

FUZZ_EXAMPLES = int(os.environ.get("TUNELAB_FUZZ_EXAMPLES", "0"))


def fuzz_settings(examples: int) -> settings:
    """`examples` derandomized inputs by default; TUNELAB_FUZZ_EXAMPLES fresh ones on demand.
    No deadline: a slow example on a busy machine is not a bug; `no_hang` catches a hang."""
    return settings(
        max_examples=FUZZ_EXAMPLES or examples,
        derandomize=not FUZZ_EXAMPLES,
        deadline=None,
        database=None,  # no .hypothesis/ folder in the repository; failures print their input
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
        print_blob=True,
    )


# A file the reader takes milliseconds for; this many seconds is a hang, not a slow machine.
HANG_SECONDS = 60


class Hang(Exception):
    pass


@contextmanager
def no_hang() -> Iterator[None]:
    def stop(signum: int, frame: Any) -> None:
        raise Hang(f"the reader did not finish within {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The folder relative data paths are read from: the shipped table's CSV and small arrays
    and images, so the seed files are valid and a mutated path names a file that is not there
    (offline, fast). Decoded images are cached in it, not in the user's cache."""
    folder = tmp_path_factory.mktemp("spaces")
    shutil.copytree(REPO / "search_spaces" / "data", folder / "data")
    write_arrays(folder, rows=60)
    write_images(folder / "pictures", per_class=6)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUNELAB_CACHE_DIR", str(folder / "cache"))
        yield folder


def read_or_refuse(text: str, base: Path) -> None:
    """The property: a Spec, or one BadInputError line naming the file. Anything else raises."""
    try:
        with no_hang():
            parse_spec(text, SOURCE, base=base)
        event("valid")
    except BadInputError as exc:
        message = str(exc)
        event(message[len(SOURCE) + 2:].split(":")[0][:30])  # the field: --hypothesis-show-statistics
        assert len(message.splitlines()) == 1, f"a message over several lines: {message!r}"
        assert message.startswith(f"{SOURCE}: "), f"the message does not name the file: {message!r}"


# --- values ----------------------------------------------------------------------------------

# Strings without path characters, so a drawn data path never names a real folder (`/`, `~`).
texts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="/.~\\"), max_size=12)
EXTREME_VALUES = [0, -1, 2**31, 2**32, 2**63, -(2**63) - 1, 10**30, 10**400, 1e308, -1e308, 5e-324, -0.0,
                  float("inf"), float("-inf"), float("nan"), "", "x" * 100_000, "\u00e9\u2028\n" * 1000]


def _words(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _words(value)
    elif isinstance(node, list):
        for item in node:
            yield from _words(item)
    elif isinstance(node, str):
        yield node


def _registered_words() -> Iterator[str]:
    for name in dataset_names():
        yield name
        yield from (param.name for param in get_dataset(name).params)
    for name in model_names():
        yield name
        yield from (param.name for param in get_model(name).hyperparameters)
    for strategy in (*SEARCHERS.values(), *SCHEDULERS.values()):
        yield strategy.name
        yield from (param.name for param in strategy.options)


# Every key and string of the seed files and every name the registries know: drawn keys and
# values that the reader recognises, so mutated files get past the first check.
VOCABULARY = sorted({word for text in SEEDS.values() for word in _words(yaml.safe_load(text))} | set(_registered_words()))
words = st.sampled_from(VOCABULARY)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.sampled_from(EXTREME_VALUES),
    texts, words, st.binary(max_size=6), st.dates(),
)
keys = st.one_of(words, texts, st.integers(-3, 3), st.booleans(), st.none(), st.floats(allow_nan=False))
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)


def dumped(document: Any) -> str:
    # Nodes that appear twice are written once with an anchor and then as aliases.
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


# --- structural mutations --------------------------------------------------------------------


def _containers(node: Any, depth: int = 0) -> Iterator[Any]:
    if isinstance(node, (dict, list)) and depth < 20:
        yield node
        for child in node.values() if isinstance(node, dict) else node:
            yield from _containers(child, depth + 1)


def _nested(value: Any, levels: int, as_list: bool) -> Any:
    for _ in range(levels):
        value = [value] if as_list else {"a": value}
    return value


def mutate_structure(document: dict[str, Any], draw: Callable[..., Any]) -> None:
    """One change at a drawn place of the document: drop, rename, add, retype, nest, share."""
    nodes = list(_containers(document))
    node = draw(st.sampled_from(nodes))
    slots = list(node) if isinstance(node, dict) else list(range(len(node)))
    operation = draw(st.sampled_from(["drop", "rename", "add", "replace", "extreme", "nest", "share"]))
    if not slots or operation == "add":
        if isinstance(node, dict):
            node[draw(keys)] = draw(values)
        else:
            node.append(draw(values))
        return
    slot = draw(st.sampled_from(slots))
    if operation == "drop":
        del node[slot]
    elif operation == "rename" and isinstance(node, dict):
        new_key = draw(st.one_of(keys, st.just(str(slot)[:-1]), st.just(str(slot).upper()), st.just(f"{slot}\u00a0")))
        node[new_key] = node.pop(slot)
    elif operation == "extreme":  # often the right type, so the file gets past the schema
        node[slot] = draw(st.sampled_from(EXTREME_VALUES) | words | st.integers(-(2**70), 2**70))
    elif operation == "nest":
        node[slot] = _nested(node[slot], draw(st.integers(1, 40)), draw(st.booleans()))
    elif operation == "share":
        # The same object in two places: safe_dump writes an anchor and an alias.
        node[slot] = draw(st.sampled_from(nodes)) if draw(st.booleans()) else node[draw(st.sampled_from(slots))]
    else:
        node[slot] = draw(values)


# --- text mutations --------------------------------------------------------------------------

TOKENS = [
    "&a ", "*a", "<<: *a", "!!set ", "!!omap ", "!!pairs ", "!!binary ", "!!float ", "!!int ", "!!str ",
    "!!timestamp ", "!!python/object/apply:os.system ['true']", "!custom ", "? ", "- ", ": ", "{", "}",
    "[", "]", ",", "\"", "'", "|", ">", "#", "%YAML 1.1\n", "---\n", "...\n", "\t", "\ufeff", "\x00",
    "\x85", "\u2028", "1e400", ".nan", "-.inf", "0x7fffffffffffffffffff", "0o17", "1:30:00",
    "2001-12-14", "2001-12-14T21:59:43.10-05:00", "~", "null", "yes", "off", "0b1010", "1_000",
    "[" * 300 + "]" * 300, "[" * 3000 + "]" * 3000, "{a: " * 300 + "}" * 300, "- " * 200 + "x",
    "a:\n" + " " * 200 + "b", "9" * 5000,
]


def mutate_text(text: str, draw: Callable[..., Any]) -> str:
    lines = text.splitlines(keepends=True) or [""]
    index = draw(st.integers(0, len(lines) - 1))
    operation = draw(st.sampled_from(["duplicate", "drop", "swap", "indent", "cut", "insert", "value"]))
    if operation == "duplicate":  # a key given twice when the line holds one
        lines.insert(draw(st.integers(index, len(lines))), lines[index])
    elif operation == "drop":
        del lines[index]
    elif operation == "swap":
        other = draw(st.integers(0, len(lines) - 1))
        lines[index], lines[other] = lines[other], lines[index]
    elif operation == "indent":
        lines[index] = draw(st.sampled_from([" ", "  ", "\t", "    "])) + lines[index]
    elif operation == "cut":
        return text[: draw(st.integers(0, len(text)))]
    elif operation == "insert":
        at = draw(st.integers(0, len(lines[index])))
        inserted = draw(st.sampled_from(TOKENS) | texts)
        lines[index] = lines[index][:at] + inserted + lines[index][at:]
    else:  # the value after the first ": " becomes a YAML token
        head, colon, _ = lines[index].partition(": ")
        if colon:
            lines[index] = head + colon + draw(st.sampled_from(TOKENS)) + "\n"
    return "".join(lines)


# --- the properties --------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_every_file_the_fuzzer_mutates_is_valid(data_folder: Path, name: str) -> None:
    # A seed that is already refused would leave its mutations nothing past the first error.
    parse_spec(SEEDS[name], name, base=data_folder)


@fuzz_settings(300)
@given(st.one_of(values, st.dictionaries(words, values, max_size=12)))
def test_any_yaml_document_is_a_spec_or_one_line(data_folder: Path, document: Any) -> None:
    read_or_refuse(dumped(document), data_folder)


@fuzz_settings(300)
@given(st.lists(st.sampled_from([*":-[]{}&*!|>'\"%@`#,? \n\t", "a", "1", "name", "\u00e9"]) | st.characters(), max_size=60).map("".join))
def test_any_text_is_a_spec_or_one_line(data_folder: Path, text: str) -> None:
    read_or_refuse(text, data_folder)


@fuzz_settings(900)
@given(st.sampled_from(sorted(SEEDS)), st.integers(1, 4), st.data())
def test_shipped_file_with_structural_changes_is_a_spec_or_one_line(
    data_folder: Path, name: str, changes: int, data: st.DataObject
) -> None:
    document = yaml.safe_load(SEEDS[name])
    for _ in range(changes):
        mutate_structure(document, data.draw)
    read_or_refuse(dumped(document), data_folder)


@fuzz_settings(900)
@given(st.sampled_from(sorted(SEEDS)), st.integers(1, 4), st.data())
def test_shipped_file_with_text_changes_is_a_spec_or_one_line(
    data_folder: Path, name: str, changes: int, data: st.DataObject
) -> None:
    text = SEEDS[name]
    for _ in range(changes):
        text = mutate_text(text, data.draw)
    read_or_refuse(text, data_folder)


@fuzz_settings(80)
@given(st.sampled_from(sorted(SEEDS)), st.integers(1, 3), st.data())
def test_validate_command_on_a_changed_file_exits_0_or_2_with_one_line(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str], name: str, changes: int, data: st.DataObject
) -> None:
    """Through the CLI as a user runs it: `ok`, or one line on stderr and exit code 2."""
    text = SEEDS[name]
    for _ in range(changes):
        text = mutate_text(text, data.draw)
    path = tmp_path_factory.mktemp("fuzz") / SOURCE
    path.write_text(text)
    with no_hang():
        code, out, err = run_cli(["validate", str(path)], capsys)
    assert "Traceback" not in out + err
    if code == 0:
        assert out.startswith(f"{path}: ok")
    else:
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith(f"tunelab: error: {path}: ")
