"""YAML as an experiment file is read: PyYAML's SafeLoader, stricter where YAML is lenient.

Still the safe loader (no Python tags, nothing executed); on top of it:

- a key given twice in one mapping is an error naming the key and both lines: YAML keeps the
  last one silently, and a user who wrote two meant one of them;
- nesting deeper than `MAX_DEPTH` is an error at its line, where PyYAML's recursive composer
  would end in a RecursionError (an experiment file is five levels deep);
- a scalar that its tag cannot build (`!!float ''`, `!!int abc`, `!!bool maybe`, an integer of
  5000 digits) is an error at its line, where PyYAML raises IndexError, ValueError, KeyError...
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tunelab.errors import shown_value

# Far beyond any experiment file, far below Python's recursion limit (about three frames a level).
MAX_DEPTH = 50

MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(yaml.YAMLError):
    """A mapping gives `field`'s last key twice, on `lines` (1-based)."""

    def __init__(self, field: tuple[Any, ...], lines: tuple[int, int]) -> None:
        first, second = lines
        where = f"lines {first} and {second}" if first != second else f"both on line {first}"
        self.field = field
        self.problem = f"given twice ({where})"
        super().__init__(f"{'.'.join(map(str, field))}: {self.problem}")


class ExperimentLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._paths: dict[int, tuple[Any, ...]] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node: Node) -> Any:
        self._paths = _node_paths(node)
        return super().construct_document(node)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception:  # PyYAML's scalar constructors fail on bad text with whatever they hit
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            shown = shown_value(node.value) if isinstance(node, ScalarNode) else "this value"
            raise ConstructorError(None, None, f"cannot read {shown} as {tag}", node.start_mark) from None

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            self._refuse_duplicate_keys(node, deep)
        return super().construct_mapping(node, deep=deep)

    def _refuse_duplicate_keys(self, node: MappingNode, deep: bool) -> None:
        # Before the base class folds in `<<` merges: a key that overrides a merged one is
        # what a merge is for, not a duplicate.
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # the base class says "found unhashable key"
            line = key_node.start_mark.line + 1
            if key in first_line:
                written = key_node.value if isinstance(key_node, ScalarNode) else key
                raise DuplicateKeyError((*self._paths.get(id(node), ()), written), (first_line[key], line))
            first_line[key] = line


def _node_paths(root: Node) -> dict[int, tuple[Any, ...]]:
    """Each collection node's place in the document (keys as written, list indexes), so an
    error inside it can name its field. A node reached twice (an alias) keeps its first place."""
    paths: dict[int, tuple[Any, ...]] = {id(root): ()}
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, MappingNode):
            children = [(key.value if isinstance(key, ScalarNode) else "?", value) for key, value in node.value]
        elif isinstance(node, SequenceNode):
            children = list(enumerate(node.value))
        else:
            continue
        for part, child in children:
            if id(child) not in paths:
                paths[id(child)] = (*paths[id(node)], part)
                stack.append(child)
    return paths


def load_yaml(text: str) -> Any:
    """The one document in `text`, as plain data; raises yaml.YAMLError (DuplicateKeyError too)."""
    loader = ExperimentLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
