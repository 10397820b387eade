"""docs/entities-queries.md's examples, run as written against moto and dynalite."""

from __future__ import annotations

import re
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from asyncdyn import Client, TableNotFound

PAGE = Path(__file__).resolve().parents[2] / "docs" / "entities-queries.md"


async def run_example(db: Client, name: str, design: str) -> dict[str, Any]:
    """The page's block ``name`` as the body of a coroutine taking ``db``, on a table of its
    own (dynalite cannot be reset); returns its local variables."""
    match = re.search(rf"<!-- example: {name} -->\n```python\n(.*?)```", PAGE.read_text(), re.S)
    assert match is not None, f"the page has no example {name!r}"
    code = match.group(1)
    table = f"t-{uuid.uuid4().hex[:16]}"
    assert code.count(f'Design("{design}"') == 1
    code = code.replace(f'Design("{design}"', f'Design("{table}"')
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    source = f"async def run(db):\n{textwrap.indent(code, '    ')}\n    return locals()"
    exec(compile(source, f"{PAGE.name}:{name}", "exec", dont_inherit=True), namespace)
    try:
        done: dict[str, Any] = await namespace["run"](db)
    finally:
        try:
            await db.delete_table(table, wait=False)
        except TableNotFound:
            pass
    return done


async def test_collection_where_example(db: Client) -> None:
    done = await run_example(db, "collection-where", "Bank")
    assert len(done["rows"]) == 4 and len(done["latest"]) == 3


async def test_open_time_range_example(db: Client) -> None:
    done = await run_example(db, "open-time-range", "Sensors")
    assert len(done["before"]) == 3 and done["december"]


@pytest.mark.moto_only
async def test_multi_attribute_example(db: Client) -> None:
    done = await run_example(db, "multi-attribute", "Stores")
    assert done["us"] == ["x", "c"]
