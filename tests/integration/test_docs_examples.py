"""The examples of docs/entities.md ("Single-table design") and docs/tables.md (index
projections), run as written against moto and dynalite."""

from __future__ import annotations

import re
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from asyncdyn import Client, TableNotFound, UndeclaredAccess

DOCS = Path(__file__).resolve().parents[2] / "docs"
ENTITIES = DOCS / "entities.md"


def example(page: Path, name: str) -> str:
    text = page.read_text()
    match = re.search(rf"<!-- example: {name} -->\n```python\n(.*?)```", text, re.S)
    assert match is not None, f"{page.name} has no example {name!r}"
    return match.group(1)


async def run_example(
    db: Client, name: str, design: str, page: Path = ENTITIES, named: str = "Design"
) -> dict[str, Any]:
    """The block ``name`` of ``page`` run as the body of a coroutine taking ``db``, on a table
    of its own (dynalite cannot be reset): ``{named}("{design}"`` is the one place the block
    names its table. Returns the block's local variables."""
    table = f"t-{uuid.uuid4().hex[:16]}"
    code = example(page, name)
    assert code.count(f'{named}("{design}"') == 1
    code = code.replace(f'{named}("{design}"', f'{named}("{table}"')
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    source = f"async def run(db):\n{textwrap.indent(code, '    ')}\n    return locals()"
    exec(compile(source, f"{page.name}:{name}", "exec", dont_inherit=True), namespace)
    try:
        done: dict[str, Any] = await namespace["run"](db)
    finally:
        try:
            await db.delete_table(table, wait=False)
        except TableNotFound:
            pass
    return done


async def test_single_table_example(db: Client) -> None:
    done = await run_example(db, "single-table", "Shop")
    assert done["shipped"].status == "SHIPPED" and done["ada2"].version == 2
    # The playbook's patterns check clean against the live table, as the block asserts.
    report = done["report"]
    assert report.ok and report.live and len(done["shop"].patterns) == 8


async def test_design_check_example_prints_the_report_shown(
    db: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    done = await run_example(db, "design-check", "Orders")
    assert isinstance(done["refused"], UndeclaredAccess)
    shown = re.search(r"```text\n(design Orders: .*?)```", ENTITIES.read_text(), re.S)
    assert shown is not None
    printed = capsys.readouterr().out.replace(done["shop"].name, "Orders")
    assert printed == shown.group(1)


@pytest.mark.moto_only
async def test_adjacency_example(db: Client) -> None:
    done = await run_example(db, "adjacency", "Social")
    assert len(done["rows"]) == 2


async def test_time_series_example(db: Client) -> None:
    done = await run_example(db, "time-series", "Sensors")
    assert len(done["january"]) == 11


async def test_index_projections_example(db: Client) -> None:
    # The block asserts what each projection returns; here, that each index answered at all.
    done = await run_example(
        db, "projections", "Orders", page=DOCS / "tables.md", named="db.create_table"
    )
    assert [len(done[name]) for name in ("keys", "totals", "whole")] == [1, 1, 1]
    assert "total" not in done["keys"][0] and "note" not in done["totals"][0]
