"""The package's import graph: the layers only look down, and nothing imports in a circle
(docs/architecture.md).

Layers, top to bottom: the package's public names and the command line; the entity layer
(``asyncdyn.model``); ``client``; the ``table`` package; everything else (engines, dispatch,
ground floor). A module never imports one of a higher layer, not even for type annotations
(``if TYPE_CHECKING:``): what a lower layer needs of a higher one it names as a protocol.
Within one layer, a type-only reference back (a ``Repository`` annotated with its ``Design``)
is allowed; at run time the imports form no circle at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import asyncdyn

ROOT = Path(asyncdyn.__file__).parent


def module_name(path: Path) -> str:
    parts = ("asyncdyn", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts).removesuffix(".__init__")


def layer(module: str) -> int:
    if module in ("asyncdyn", "asyncdyn.cli"):
        return 4
    if module == "asyncdyn.model" or module.startswith("asyncdyn.model."):
        return 3
    if module == "asyncdyn.client":
        return 2
    if module == "asyncdyn.table" or module.startswith("asyncdyn.table."):
        return 1
    return 0


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def import_graph(*, runtime_only: bool) -> dict[str, set[str]]:
    """Module -> the asyncdyn modules it imports (without ``if TYPE_CHECKING:`` blocks when
    ``runtime_only``)."""
    paths = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        pending: list[ast.AST] = [ast.parse(path.read_text())]
        while pending:
            node = pending.pop()
            if runtime_only and _type_checking_only(node):
                continue
            pending.extend(ast.iter_child_nodes(node))
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


def test_no_import_circles_at_run_time() -> None:
    graph = import_graph(runtime_only=True)
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


def test_no_layer_imports_one_above_it_even_for_types() -> None:
    for module, imported in import_graph(runtime_only=False).items():
        upward = {other for other in imported if layer(other) > layer(module)}
        # A package's __init__ gathers its own modules, which is not looking up.
        upward = {other for other in upward if not other.startswith(module + ".")}
        assert not upward, f"{module} imports {sorted(upward)}, a layer above it"
