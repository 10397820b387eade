"""The entity layer sits above Table: nothing below imports it, and its own modules import
each other without a circle (imports under ``if TYPE_CHECKING`` are types only)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "asyncdyn"


def runtime_imports(path: Path) -> set[str]:
    """Modules of ``asyncdyn`` that ``path`` imports when it is imported."""
    module = "asyncdyn." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:  # module level only: no function bodies
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = f"{base}.{node.module}" if node.module else base
            found.add(target.removeprefix("asyncdyn.").removesuffix(".__init__"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("asyncdyn"):
            found.add((node.module or "").removeprefix("asyncdyn."))
    return found


def graph() -> dict[str, set[str]]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
        out[name] = runtime_imports(path)
    return out


def test_nothing_below_the_model_imports_it() -> None:
    for module, imports in graph().items():
        if module.startswith("model") or module == "__init__":
            continue
        assert not {i for i in imports if i.startswith("model")}, module


def test_the_model_has_no_import_circle() -> None:
    edges = {
        m: {i for i in deps if i.startswith("model.")}
        for m, deps in graph().items()
        if m.startswith("model.")
    }
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        assert node not in path, " -> ".join([*path, node])
        if node in done:
            return
        for nxt in edges.get(node, ()):
            visit(nxt, [*path, node])
        done.add(node)

    for module in edges:
        visit(module, [])
    assert "model.repository" in edges["model.design"]  # the check sees real edges
