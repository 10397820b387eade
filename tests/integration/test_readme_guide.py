"""README's guide run as written, block by block, against moto and dynalite.

Each block is the body of a coroutine, as the guide says ("the examples below run inside
`async with Client(...) as db:`"). What a block takes from the reader's own code -- `orders`,
`keys`, `item`, a time range -- is given here; the table names the blocks spell out ("Orders",
"Checkpoints", "Shop") become tables of this test's own, since dynalite cannot be reset.
"""

from __future__ import annotations

import re
import textwrap
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncdyn
from asyncdyn import Client, TableNotFound
from asyncdyn.local import LocalServer

from .conftest import MakeTable

README = Path(__file__).resolve().parents[2] / "README.md"
# What dynalite lacks (transactions, TTL, Streams); these blocks run on moto only.
MOTO_ONLY = {"Transactions, optimistic locking, TTL", "Streams"}
# Starts a server of its own: once is enough.
STARTS_A_SERVER = "Local servers and testing your code"


def guide_blocks() -> list[tuple[str, str]]:
    text = README.read_text()
    guide = text[text.index("\n## The guide\n") : text.index("\n## Performance\n")]
    return [
        (section.split("\n", 1)[0], code)
        for section in re.split(r"^### ", guide, flags=re.M)[1:]
        for code in re.findall(r"^```python\n(.*?)^```", section, re.S | re.M)
    ]


async def test_every_guide_block_runs(
    db: Client, server: LocalServer, make_table: MakeTable
) -> None:
    blocks = guide_blocks()
    titles = [title for title, _ in blocks]
    assert len(blocks) == 11 and "Single-table design: the entity layer" in titles

    moto = server.kind == "moto"
    orders = await make_table(stream="NEW_AND_OLD_IMAGES" if moto else None)
    checkpoints = await make_table()
    articles = await make_table()
    shop = f"t-{uuid.uuid4().hex[:16]}"
    given: dict[str, Any] = {
        **{name: getattr(asyncdyn, name) for name in asyncdyn.__all__},
        "Decimal": Decimal,
        "timedelta": timedelta,
        "orders": orders,
        "users": await make_table(),
        "docs": await make_table(),
        "sessions": await make_table(),
        "request_cursor": None,
        "keys": [{"PK": "C#2", "SK": f"O#{n}"} for n in range(150)],
        "new_items": [{"PK": "C#2", "SK": f"O#{n}", "n": n} for n in range(60)],
        "old_keys": [{"PK": "C#2", "SK": "O#9"}],
        "item": {"PK": "W#1", "SK": "A"},
        "key": {"PK": "W#1", "SK": "B"},
        "start": datetime(2024, 1, 30, tzinfo=UTC),
        "end": datetime(2024, 2, 2, tzinfo=UTC),
        "order": {"PK": "C#3", "SK": "O#1", "total": Decimal("5")},
    }
    await given["users"].put({"PK": "USER#bob", "SK": "PROFILE", "followers": 0})
    ran = []
    try:
        for title, code in blocks:
            if (title in MOTO_ONLY or title == STARTS_A_SERVER) and not moto:
                continue
            code = (
                code.replace('"Orders"', f'"{orders.name}"')
                .replace('"Checkpoints"', f'"{checkpoints.name}"')
                .replace('"Articles"', f'"{articles.name}"')
                .replace('Design("Shop"', f'Design("{shop}"')
            )
            if title == "Streams":
                # A consumer runs until stopped: this one stops after its first record.
                code = code.replace(
                    "await stream.checkpoint(rec)", "await stream.checkpoint(rec)\n        break"
                )
            source = f"async def block(db):\n{textwrap.indent(code, '    ')}\n    return locals()"
            namespace = dict(given)
            exec(compile(source, f"README:{title}", "exec", dont_inherit=True), namespace)
            done: dict[str, Any] = await namespace["block"](db)
            ran.append((title, done))
    finally:
        try:
            await db.delete_table(shop, wait=False)
        except TableNotFound:
            pass

    results = dict(ran)
    assert results["Queries, scans and paging"]["page"].cursor is None
    batches = results["Batches, the buffered writer, get coalescing"]
    assert len(batches["items"]) == 150 and batches["w"].stats.written == 2
    assert [o.order_id for o in results["Single-table design: the entity layer"]["orders"]] == [
        "001"
    ]
    cost = results["Cost and scale: large items, an item cache, hot keys"]
    assert cost["first"] == cost["again"] and len(cost["again"]["body"]) == 100_000
    assert db.stats().cache_hits == 1
    if moto:
        assert results["Transactions, optimistic locking, TTL"]["doc"]["views"] == 1
        assert results["Streams"]["rec"].event == "INSERT"
