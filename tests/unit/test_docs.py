"""README and the pages of docs/: every Python block compiles, the Quick start is one text in
both places, the set-up command CI runs is README's own, and README's links lead somewhere."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# A block right after this marker lists signatures (`Client(*, region=None, ...)`,
# `await t.get(key, *, ...) -> dict | None`): documentation, not code to run.
SIGNATURE = "<!-- signature -->\n"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
QUICK_START = re.compile(r"^## Quick start\n.*?^```python\n(.*?)^```", re.S | re.M)


def python_blocks() -> list[tuple[str, str]]:
    blocks: list[tuple[str, str]] = []
    for page in PAGES:
        text = page.read_text()
        for match in BLOCK.finditer(text):
            if text[: match.start()].endswith(SIGNATURE):
                continue
            line = text[: match.start()].count("\n") + 2
            blocks.append((f"{page.relative_to(ROOT)}:{line}", match.group(1)))
    return blocks


@pytest.mark.parametrize(
    ("where", "code"), [pytest.param(*block, id=block[0]) for block in python_blocks()]
)
def test_python_block_compiles(where: str, code: str) -> None:
    # Examples are written as the body of `async with Client(...) as db:`, hence top-level await.
    compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)


def test_blocks_are_found_on_every_page_that_has_them() -> None:
    names = {where.split(":")[0] for where, _ in python_blocks()}
    assert {"README.md", "docs/index.md", "docs/entities.md", "docs/tables.md"} <= names


def test_the_site_shows_readmes_quick_start() -> None:
    readme = QUICK_START.search((ROOT / "README.md").read_text())
    index = QUICK_START.search((ROOT / "docs" / "index.md").read_text())
    assert readme is not None and index is not None
    assert index.group(1) == readme.group(1)


def test_ci_runs_readmes_test_command_verbatim() -> None:
    top = re.match(r"# asyncdyn\n\n```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert top is not None, "README must open with the two set-up commands"
    commands = [line.split("  #")[0].strip() for line in top.group(1).splitlines()]
    assert commands == [
        "pip install -e '.[dev]' && python -m benchmarks",
        "pip install -e '.[dev]' && python -m pytest",
    ]
    assert commands[1] in (ROOT / ".ci" / "run").read_text().splitlines()


def test_readme_is_a_guide_and_its_links_resolve() -> None:
    text = (ROOT / "README.md").read_text()
    assert text.count("\n") <= 400
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert "docs/index.md" in targets
    missing = [t for t in targets if "://" not in t and not (ROOT / t).exists()]
    assert missing == []
