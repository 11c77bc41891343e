"""No import cycle between first-party modules (issue #18).

The graph is built with ``ast`` from every ``import`` statement of every first-party package: at
module level, inside functions and under ``if TYPE_CHECKING:`` (an annotation-only import is still a
dependency; a Protocol or a small shared module breaks such a cycle, see emulator/control.py).
``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to ``pkg``. The
implicit import of a parent package (``import pkg.mod`` runs ``pkg/__init__.py`` first) is not an
edge: it is no dependency of the importing module's code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("emulator", "devkit", "lambda_common", "ingestion_reconcile", "scripts", "benchmarks")


def first_party_packages(root: Path = ROOT) -> list[str]:
    lambdas = sorted(path.name for path in root.glob("lambda_*") if path.is_dir())
    return sorted({*PACKAGES, *lambdas})


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources(root: Path, packages: list[str]) -> dict[str, Path]:
    return {
        module_name(root, path): path
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The first-party module ``name`` is (or is in), if any."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _base(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    package = package[: len(package) - node.level + 1]
    return ".".join([*package, *([node.module] if node.module else [])])


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(filter(None, (_known(alias.name, modules) for alias in node.names)))
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, path, node)
            for alias in node.names:
                target = f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                if (known := _known(target, modules)) is not None:
                    found.add(known)
    found.discard(module)
    return found


def import_graph(root: Path = ROOT, packages: list[str] | None = None) -> dict[str, set[str]]:
    modules = _sources(root, packages if packages is not None else first_party_packages(root))
    return {module: _imports(module, path, modules) for module, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a path back to its start) per strongly connected component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for dependency in sorted(graph.get(node, ())):
            if dependency not in index:
                connect(dependency)
                low[node] = min(low[node], low[dependency])
            elif dependency in stack:
                low[node] = min(low[node], index[dependency])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_a_cycle(graph, component) for component in components]


def _a_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest path from the component's first module back to itself (breadth first)."""
    start, members = component[0], set(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for dependency in sorted(graph[node] & members):
            if dependency == start:
                return [*paths[node], start]
            if dependency not in paths:
                paths[dependency] = [*paths[node], dependency]
                queue.append(dependency)
    raise AssertionError(f"no cycle through {start}")  # unreachable for a strongly connected component


def test_the_first_party_packages_have_no_import_cycle() -> None:
    graph = import_graph()
    assert {"emulator.server", "devkit.stack", "lambda_common.contract", "lambda_trigger.index"} <= set(graph)
    assert "emulator.app" in graph["emulator.server"], "the graph sees imports"
    found = [" -> ".join(cycle) for cycle in cycles(graph)]
    assert found == [], "import cycles (break each with a Protocol or a small shared module):\n" + "\n".join(
        found
    )


@pytest.mark.parametrize("where", ["function", "type_checking", "relative"])
def test_the_check_sees_a_cycle(tmp_path: Path, where: str) -> None:
    package = tmp_path / "probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def late() -> None:\n    from probe import b\n")
    second = {
        "function": "def late() -> None:\n    import probe.a\n",
        "type_checking": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from probe.a import late\n",
        "relative": "from . import a\n",
    }[where]
    (package / "b.py").write_text(second)
    (package / "c.py").write_text("from probe import a, b\n")
    assert cycles(import_graph(tmp_path, ["probe"])) == [["probe.a", "probe.b", "probe.a"]]
