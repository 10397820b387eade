"""Fan-out queries over write shards and time buckets, and parallel scans, on real servers."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from asyncdyn import Client, InvalidCursor, Key, Table, TimeBuckets, WriteSharding

from .conftest import MakeTable

SHARDS = WriteSharding("SHARD#{shard}#USER", shards=10)
MONTHS = TimeBuckets("SENSOR#{sensor}#{bucket}", granularity="month")


def _requests(db: Client, operation: str = "Query") -> int:
    return db.stats().requests.get(operation, 0)


@pytest.fixture
async def users(table: Table) -> list[dict[str, Any]]:
    """500 users spread over 10 write shards; SK orders them by signup."""
    rows = [
        {"PK": SHARDS.partition_for(f"user-{n}"), "SK": f"USER#{(n * 7919) % 500:04d}", "n": n}
        for n in range(500)
    ]
    await table.batch_write(puts=rows)
    return sorted(rows, key=lambda row: row["SK"])


async def test_sharded_users_merge_in_sort_key_order(
    table: Table, users: list[dict[str, Any]]
) -> None:
    partitions = SHARDS.partitions()
    assert len({row["PK"] for row in users}) == 10  # every shard holds some
    got = [item async for item in table.query_partitions(partitions)]
    assert got == users
    got = [item async for item in table.query_partitions(partitions, descending=True)]
    assert got == users[::-1]
    got = [item async for item in table.query_partitions(partitions, limit=37)]
    assert got == users[:37]
    got = [
        item
        async for item in table.query_partitions(
            partitions, Key("SK").between("USER#0100", "USER#0199"), attributes=["n"]
        )
    ]
    assert got == [{"n": row["n"]} for row in users[100:200]]
    unmerged = [item async for item in table.query_partitions(partitions, merge=False)]
    assert sorted(unmerged, key=lambda row: row["SK"]) == users


async def test_paging_the_fan_out_with_cursors(
    db: Client, table: Table, users: list[dict[str, Any]]
) -> None:
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        page = await table.query_partitions_page(SHARDS.partitions(), limit=23, cursor=cursor)
        assert len(page.items) == 23 or page.cursor is None
        seen += page.items
        pages += 1
        cursor = page.cursor
        if cursor is None:
            break
    assert seen == users
    assert pages == 22  # 21 full pages of 23 and one of 17

    first = await table.query_partitions_page(SHARDS.partitions(), limit=23, descending=True)
    with pytest.raises(InvalidCursor):  # an ascending fan-out cannot use it
        await table.query_partitions_page(SHARDS.partitions(), limit=23, cursor=first.cursor)
    second = await table.query_partitions_page(
        SHARDS.partitions(), limit=23, descending=True, cursor=first.cursor
    )
    assert first.items + second.items == users[::-1][:46]


async def test_time_buckets_range_and_latest(db: Client, table: Table) -> None:
    start = datetime(2024, 11, 15, tzinfo=UTC)
    readings = []
    at = start
    while at <= datetime(2025, 2, 20, tzinfo=UTC):
        readings.append(
            {"PK": MONTHS.partition_for(at, sensor=42), "SK": at.isoformat(), "v": len(readings)}
        )
        at += timedelta(hours=6)
    await table.batch_write(puts=readings)

    low, high = datetime(2024, 11, 20, tzinfo=UTC), datetime(2025, 2, 10, 12, tzinfo=UTC)
    buckets = MONTHS.partitions(low, high, sensor=42)
    assert len(buckets) == 4
    window = Key("SK").between(low.isoformat(), high.isoformat())
    got = [item async for item in table.query_partitions(buckets, window, ordered=True)]
    assert got == [r for r in readings if low.isoformat() <= r["SK"] <= high.isoformat()]

    before = _requests(db)
    latest = [
        item
        async for item in table.query_partitions(
            buckets, window, ordered=True, descending=True, limit=10
        )
    ]
    assert _requests(db) - before == 1  # the newest bucket alone held ten
    assert latest == [r for r in readings if r["SK"] <= high.isoformat()][::-1][:10]

    # The same through a k-way merge (no ordering promise) reads every bucket.
    before = _requests(db)
    merged = [
        item async for item in table.query_partitions(buckets, window, descending=True, limit=10)
    ]
    assert merged == latest
    assert _requests(db) - before == 4


async def test_parallel_scan_yields_every_item_once(db: Client, make_table: MakeTable) -> None:
    table = await make_table()
    rows = [{"PK": f"P#{n % 250}", "SK": f"{n:05d}", "n": n} for n in range(5000)]
    await table.batch_write(puts=rows)
    got = [item async for item in table.scan(segments=8)]
    assert len(got) == 5000
    assert sorted(got, key=lambda row: row["n"]) == rows

    # Pages of a parallel scan, resumed segment by segment.
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await table.scan_page(segments=8, limit=700, cursor=cursor, attributes=["n"])
        seen += page.items
        cursor = page.cursor
        if cursor is None:
            break
    assert sorted(item["n"] for item in seen) == list(range(5000))
    assert all(set(item) == {"n"} for item in seen)

    # Cancelled after 100 items: nothing keeps running.
    before = asyncio.all_tasks()
    async with contextlib.aclosing(table.scan(segments=8)) as items:
        taken = 0
        async for _ in items:
            taken += 1
            if taken == 100:
                break
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - before - {asyncio.current_task()} == set()
