"""The house's layers (issue 20): no import cycle between tunelab's parts, the study does not lean
on a later command, and Ray is imported only by `tunelab.tune` and the cluster path, besides the
strategies' `build()` methods.

Imports are read from the source (also those inside functions: a cycle hidden in a function is
still a cycle; only `if TYPE_CHECKING:` blocks are left out). A part is a subpackage
(`tunelab.spec`) or a top-level module (`tunelab.study`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PLATFORM = Path(__file__).resolve().parents[1] / "platform"
RAY_PARTS = {"tunelab.tune", "tunelab.cluster"}


def part_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                 and "TYPE_CHECKING" in ast.unparse(block.test) for node in ast.walk(block)}
    found: set[str] = set()
    for node in (tree.body if top_level_only else ast.walk(tree)):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def sources() -> dict[str, Path]:
    return {".".join(path.relative_to(PLATFORM).with_suffix("").parts).removesuffix(".__init__"): path
            for path in (PLATFORM / "tunelab").rglob("*.py")}


def part_graph() -> nx.DiGraph:
    graph: nx.DiGraph = nx.DiGraph()
    for module, path in sources().items():
        graph.add_node(part_of(module))
        for imported in imports(path):
            if imported.startswith("tunelab.") and part_of(imported) != part_of(module):
                graph.add_edge(part_of(module), part_of(imported))
    return graph


def test_no_import_cycle_between_tunelabs_parts() -> None:
    assert list(nx.simple_cycles(part_graph())) == []


@pytest.mark.parametrize("later", ["tunelab.biasvar", "tunelab.trust"])
def test_running_a_study_needs_no_later_command_and_no_later_command_needs_the_study(later: str) -> None:
    graph = part_graph()
    assert not nx.has_path(graph, later, "tunelab.study")
    assert nx.has_path(graph, "tunelab.study", later)  # only through follow_ups, which the file asks for
    assert not graph.has_edge("tunelab.study", later)


def test_only_the_tune_package_and_the_cluster_path_import_ray_at_module_level() -> None:
    importing_ray = {part_of(module) for module, path in sources().items()
                     if any(name.split(".")[0] == "ray" for name in imports(path, top_level_only=True))}
    assert importing_ray <= RAY_PARTS
