"""The package's import graph: no circles, and the layers only look down (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import asyncdyn

ROOT = Path(asyncdyn.__file__).parent


def module_name(path: Path) -> str:
    parts = ("asyncdyn", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts).removesuffix(".__init__")


def import_graph() -> dict[str, set[str]]:
    """Module -> the asyncdyn modules it imports (at run time or for type checking)."""
    paths = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            target = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                found = f"{target}.{alias.name}"
                imported = found if found in paths else target
                if imported in paths and imported != name:
                    graph[name].add(imported)
    return graph


def test_no_import_circles() -> None:
    graph = import_graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == 1:
                raise AssertionError(" -> ".join([*path[path.index(imported) :], imported]))
            if imported not in state:
                visit(imported)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_lower_layers_never_import_the_ones_above() -> None:
    graph = import_graph()
    above = {"asyncdyn", "asyncdyn.client", "asyncdyn.cli"}
    tables = {m for m in graph if m == "asyncdyn.table" or m.startswith("asyncdyn.table.")}
    for module, imported in graph.items():
        if module in above:
            continue
        assert not imported & above, f"{module} imports {imported & above}"
        if module not in tables:
            assert not imported & tables, f"{module} imports the table package"
