"""Number keys are exact to DynamoDB's 38 digits on every path (issue 16, defect 1).

Key identity used to round N values to 28 digits, so ``10**28 + 1`` and ``10**28 + 2`` were
one key: batch_get sent one and answered another customer's item, batch_write and the writer
dropped one item, coalesced gets crossed answers, transact_write refused two items as one,
and ``asyncdyn load`` lost a row and exited 0. Checked here against both real servers.
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from asyncdyn import Client, RetryPolicy
from asyncdyn.cli import EXIT_OK, main
from asyncdyn.local import LocalServer

from .conftest import MakeTable

# Pairs that agree in their first 28 (or 37) significant digits and differ after.
NUMBERS: list[Any] = [
    10**28 + 1,
    10**28 + 2,
    int("9" * 38),
    int("9" * 37 + "8"),
    Decimal("1." + "0" * 36 + "1"),
    Decimal("1." + "0" * 36 + "2"),
    Decimal("1" + "0" * 36 + "1E+88"),
    Decimal("1" + "0" * 36 + "2E+88"),
    Decimal("1" + "0" * 36 + "1E-167"),
    Decimal("1" + "0" * 36 + "2E-167"),
]


def items() -> list[dict[str, Any]]:
    return [{"id": n, "v": f"item {i}"} for i, n in enumerate(NUMBERS)]


def as_stored(item: dict[str, Any]) -> dict[str, Any]:
    # numbers="auto" gives integral numbers back as int.
    value = Decimal(item["id"])
    return {**item, "id": int(value) if value == value.to_integral_value() else value}


async def test_batch_write_and_batch_get_keep_38_digit_keys_apart(make_table: MakeTable) -> None:
    table = await make_table(partition_key=("id", "N"), sort_key=None)
    await table.batch_write(puts=items())
    assert await table.count() == len(NUMBERS)
    got = await table.batch_get([{"id": n} for n in NUMBERS])
    assert got == [as_stored(item) for item in items()]


async def test_writer_keeps_38_digit_keys_apart(make_table: MakeTable) -> None:
    table = await make_table(partition_key=("id", "N"), sort_key=None)
    async with table.writer() as w:
        for item in items():
            await w.put(item)
    assert w.stats.superseded == 0
    scanned = sorted([i async for i in table.scan()], key=lambda i: i["v"])
    assert scanned == sorted([as_stored(i) for i in items()], key=lambda i: i["v"])


async def test_equal_numbers_are_still_one_key(make_table: MakeTable) -> None:
    table = await make_table(partition_key=("id", "N"), sort_key=None)
    await table.batch_write(puts=[{"id": 1, "v": "a"}, {"id": Decimal("1.00"), "v": "b"}])
    got = await table.batch_get([{"id": Decimal("1E+0")}, {"id": 1.0}])
    assert got == [{"id": 1, "v": "b"}, {"id": 1, "v": "b"}]


async def test_coalesced_gets_answer_each_38_digit_key(
    server: LocalServer, make_table: MakeTable
) -> None:
    table = await make_table(partition_key=("id", "N"), sort_key=None)
    await table.batch_write(puts=items())
    async with Client(
        region="us-east-1",
        endpoint_url=server.endpoint_url,
        credentials=("testing", "testing"),
        retry=RetryPolicy(deadline=60.0),
        coalesce_gets=True,
    ) as db:
        coalesced = db.table(table.name)
        got = await asyncio.gather(*(coalesced.get({"id": n}) for n in NUMBERS))
        assert db.stats().requests["BatchGetItem"] >= 1
    assert list(got) == [as_stored(item) for item in items()]


@pytest.mark.moto_only
async def test_transact_write_takes_two_items_that_differ_past_28_digits(
    db: Client, make_table: MakeTable
) -> None:
    table = await make_table(partition_key=("id", "N"), sort_key=None)
    await db.transact_write([table.tx_put(items()[0]), table.tx_put(items()[1])])
    assert await table.count() == 2


def test_load_writes_every_row_of_38_digit_keys(server: LocalServer, tmp_path: Path) -> None:
    data = tmp_path / "numbers.jsonl"
    lines = [f'{{"id": {n}, "v": "row {i}"}}\n' for i, n in enumerate(NUMBERS)]
    data.write_text("".join(lines))
    table = f"numbers-{uuid.uuid4().hex[:12]}"
    common = ["--table", table, "--endpoint-url", server.endpoint_url, "--no-progress"]
    assert main(["load", str(data), "--create-table", "id:N", *common]) == EXIT_OK

    async def count() -> int:
        async with Client(
            region="us-east-1", endpoint_url=server.endpoint_url, credentials=("a", "b")
        ) as db:
            return await db.table(table).count()

    assert asyncio.run(count()) == len(NUMBERS)
