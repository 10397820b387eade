"""README's "Single-table design" example, run as written against moto and dynalite."""

from __future__ import annotations

import re
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from asyncdyn import Client, TableNotFound, UndeclaredAccess

README = Path(__file__).resolve().parents[2] / "README.md"


def example(name: str) -> str:
    text = README.read_text()
    match = re.search(rf"<!-- example: {name} -->\n```python\n(.*?)```", text, re.S)
    assert match is not None, f"README has no example {name!r}"
    return match.group(1)


async def run_example(db: Client, name: str, design: str) -> dict[str, Any]:
    """The README block ``name`` run as the body of a coroutine taking ``db``, on a table of
    its own (dynalite cannot be reset); returns its local variables."""
    table = f"t-{uuid.uuid4().hex[:16]}"
    code = example(name)
    assert code.count(f'Design("{design}"') == 1
    code = code.replace(f'Design("{design}"', f'Design("{table}"')
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    source = f"async def run(db):\n{textwrap.indent(code, '    ')}\n    return locals()"
    exec(compile(source, f"README:{name}", "exec", dont_inherit=True), namespace)
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
    shown = re.search(r"```text\n(design Orders: .*?)```", README.read_text(), re.S)
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
