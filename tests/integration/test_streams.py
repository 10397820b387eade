"""The Streams consumer on moto's server (dynalite has no Streams).

moto keeps one open shard per table that never closes or splits, answers GetRecords from an
in-memory list and never expires iterators: lineage and expiry are covered by the unit tests.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

from asyncdyn import (
    Attr,
    CheckpointStore,
    Client,
    MemoryCheckpoints,
    Record,
    Stream,
    StreamNotEnabled,
    Table,
    TableCheckpoints,
)

pytestmark = pytest.mark.moto_only

MakeTable = Callable[..., Awaitable[Table]]
POLL = 0.02


async def take(stream: Stream, count: int) -> list[Record]:
    """Read ``count`` records, checkpointing each one, then leave the stream."""
    got: list[Record] = []
    async with asyncio.timeout(20), stream.records() as records:
        async for record in records:
            got.append(record)
            await stream.checkpoint(record)
            if len(got) == count:
                break
    return got


async def test_put_update_delete_give_insert_modify_remove(
    db: Client, make_table: MakeTable
) -> None:
    table = await make_table(stream="NEW_AND_OLD_IMAGES")
    key = {"PK": "CUSTOMER#1", "SK": "ORDER#1"}
    await table.put({**key, "status": "PENDING", "total": Decimal("9.5")})
    await table.update(key, Attr("status").set("SHIPPED") & Attr("total").add(1))
    await table.delete(key)

    insert, modify, remove = await take(db.stream(table.name, poll_interval=POLL), 3)

    assert (insert.event, modify.event, remove.event) == ("INSERT", "MODIFY", "REMOVE")
    assert insert.keys == modify.keys == remove.keys == key
    assert insert.old is None
    assert insert.new == {**key, "status": "PENDING", "total": Decimal("9.5")}
    assert modify.old == insert.new
    assert modify.new == {**key, "status": "SHIPPED", "total": Decimal("10.5")}
    assert remove.old == modify.new and remove.new is None
    assert {r.view_type for r in (insert, modify, remove)} == {"NEW_AND_OLD_IMAGES"}
    assert int(insert.sequence_number) < int(modify.sequence_number) < int(remove.sequence_number)
    assert insert.approximate_created_at is not None
    assert insert.approximate_created_at.tzinfo is not None


@pytest.mark.parametrize("store_kind", ["memory", "table"])
async def test_per_key_order_and_restart_from_checkpoints(
    db: Client, make_table: MakeTable, store_kind: str
) -> None:
    table = await make_table(stream="NEW_AND_OLD_IMAGES")
    store: CheckpointStore
    if store_kind == "memory":
        store = MemoryCheckpoints()
    else:
        ledger = await make_table(partition_key="consumer", sort_key="shard")
        store = TableCheckpoints(ledger, consumer="order-test")

    async def write_key(k: int) -> None:
        for n in range(10):  # one writer per key: the key's writes happen in this order
            await table.put({"PK": f"KEY#{k}", "SK": "STATE", "n": n})

    writers = asyncio.gather(*(write_key(k) for k in range(20)))
    first = await take(db.stream(table.name, checkpoints=store, poll_interval=POLL), 80)
    await writers
    restarted = db.stream(table.name, checkpoints=store, poll_interval=POLL)
    second = await take(restarted, 120)
    async with restarted.records() as records:  # nothing more is delivered
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(records), 0.3)

    sequences = [r.sequence_number for r in first + second]
    assert len(sequences) == len(set(sequences)) == 200
    by_key: defaultdict[str, list[Any]] = defaultdict(list)
    for record in first + second:
        assert record.new is not None
        by_key[record.keys["PK"]].append(record.new["n"])
        assert record.event == ("INSERT" if record.new["n"] == 0 else "MODIFY")
    assert by_key == {f"KEY#{k}": list(range(10)) for k in range(20)}
    if isinstance(store, TableCheckpoints):
        saved = await ledger.get({"consumer": "order-test", "shard": first[0].shard_id})
        assert saved is not None and saved["sequence_number"] == second[-1].sequence_number


async def test_latest_skips_earlier_changes(db: Client, make_table: MakeTable) -> None:
    table = await make_table(stream="KEYS_ONLY")
    await table.put({"PK": "old", "SK": "1"})
    stream = db.stream(table.name, start="latest", poll_interval=POLL)
    got: list[Record] = []

    async def consume() -> None:
        async for record in stream.records():
            got.append(record)
            if len(got) == 2:
                return

    before = db.stats().requests.get("GetRecords", 0)
    task = asyncio.create_task(consume())
    async with asyncio.timeout(10):
        while db.stats().requests.get("GetRecords", 0) == before:  # noqa: ASYNC110 - counters, no Event
            await asyncio.sleep(POLL)
        await table.put({"PK": "new", "SK": "1"})
        await table.delete({"PK": "new", "SK": "1"})
        await task
    assert [(r.event, r.keys["PK"], r.new, r.old) for r in got] == [
        ("INSERT", "new", None, None),
        ("REMOVE", "new", None, None),
    ]


async def test_table_without_a_stream(db: Client, make_table: MakeTable) -> None:
    table = await make_table()
    with pytest.raises(StreamNotEnabled):
        await take(db.stream(table.name), 1)


async def test_enable_stream_on_an_existing_table(db: Client, make_table: MakeTable) -> None:
    table = await make_table()
    arn = await table.enable_stream("NEW_IMAGE")
    assert "/stream/" in arn
    await table.put({"PK": "a", "SK": "b", "v": 1})
    (record,) = await take(db.stream(arn, poll_interval=POLL), 1)
    assert (record.event, record.new, record.old) == (
        "INSERT",
        {"PK": "a", "SK": "b", "v": 1},
        None,
    )
    assert record.view_type == "NEW_IMAGE"
