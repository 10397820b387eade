"""Soak: bulk writes, batch reads, a 10-shard fan-out and a parallel scan through the fault
proxy (``tests/faultproxy.py``), each compared item by item with the expected data.

The proxy sits on a real socket between the client and moto or dynalite, and throttles,
leaves batches partly unprocessed, answers 5xx, resets, truncates and corrupts answers under
a seeded mixed schedule. Whatever happens on the wire, the table must end up holding exactly
what was written, and every read must return exactly what the table holds: nothing lost,
nothing duplicated, nothing altered.

Written data is checked by reading the table back *around* the proxy (a plain consistent
scan on a direct client), so a read path bug cannot hide a write path bug. A write whose
answer was lost after the server applied it (a reset mid-body, a 500 after forwarding) is
sent again; puts of the same item are idempotent, so only the final state is compared.

Sizes are small by default; ``ASYNCDYN_SOAK=full`` runs the issue's sizes (a 100,000-item
bulk write, a 10,000-key batch_get) and prints the counts (``pytest -s`` shows them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import asdict
from decimal import Decimal
from typing import Any

import pytest

from asyncdyn import (
    Client,
    RetryPolicy,
    Table,
    UnprocessedItemsError,
    UnprocessedKeysError,
    WriteSharding,
)
from asyncdyn.local import LocalServer

from ..faultproxy import FaultProxy, FaultSchedule
from .conftest import MakeTable

FULL = os.environ.get("ASYNCDYN_SOAK") == "full"

# moto serves one request at a time in Python, several times slower than dynalite: smaller
# default sizes keep the whole file near a minute on a small machine.
_DEFAULT_SIZES = {
    "moto": {"write": 1_500, "get": 1_000, "fan": 600, "scan": 1_600},
    "dynalite": {"write": 5_000, "get": 3_000, "fan": 2_000, "scan": 5_000},
}
_FULL_SIZES = {"write": 100_000, "get": 10_000, "fan": 20_000, "scan": 20_000}

# The mix: 30 % throttled, 30 % partly unprocessed (batches), 3 % 5xx, 1 % resets,
# 1 % truncated, and a little corruption and latency. ``page_limit`` makes small tables
# read in many pages, so that reads meet faults too.
MIXED = FaultSchedule(
    seed=20261127,
    throttle=0.30,
    unprocessed=0.30,
    server_error=0.03,
    reset_before=0.005,
    reset_mid_body=0.005,
    truncate=0.01,
    corrupt=0.005,
    slow=0.01,
    slow_delay=0.02,
    page_limit=100,
)

# A lone remainder of a batch fails about 65 % of its attempts under MIXED (an unprocessed
# draw on a batch of one is a throttle): 40 attempts without progress leave one chance in
# 2 * 10^7 per chunk of giving up. Short waits: the faults are drawn, not caused by load.
SOAK_RETRY = RetryPolicy(max_attempts=40, base=0.002, cap=0.05, deadline=1200.0)
# A test that hangs fails instead of blocking the session.
TIME_LIMIT = 3600.0 if FULL else 150.0
SHARDS = WriteSharding("SOAK#{shard}", shards=10)

Key = tuple[str, str]


def _sizes(server: LocalServer) -> dict[str, int]:
    return _FULL_SIZES if FULL else _DEFAULT_SIZES.get(server.kind, _DEFAULT_SIZES["moto"])


def _item(n: int, version: int = 1) -> dict[str, Any]:
    """An item with every kind of value, so that a damaged answer cannot pass unnoticed."""
    return {
        "PK": f"ITEM#{n % 997:03d}",
        "SK": f"N#{n:07d}",
        "n": n,
        "version": version,
        "price": Decimal(n) / 100,
        "name": f"item {n} é",
        "tags": {"all", f"mod7-{n % 7}"},
        "blob": n.to_bytes(4, "big"),
        "doc": {"even": n % 2 == 0, "list": [n, str(n), None]},
    }


def _fan_row(n: int, count: int) -> dict[str, Any]:
    # 7919 is prime and no size here is a multiple of it, so the sort keys are a permutation.
    return {"PK": SHARDS.partition_for(f"user-{n}"), "SK": f"USER#{(n * 7919) % count:07d}", "n": n}


def _key(item: dict[str, Any]) -> Key:
    return (item["PK"], item["SK"])


def _key_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"PK": item["PK"], "SK": item["SK"]}


def _faulty_client(proxy: FaultProxy) -> Client:
    # adaptive_rate=False: these faults come at a fixed rate whatever the load, so an
    # adaptive rate would only sink towards its floor and make the test crawl.
    return Client(
        region="us-east-1",
        endpoint_url=proxy.endpoint_url,
        credentials=("testing", "testing"),
        retry=SOAK_RETRY,
        adaptive_rate=False,
        max_concurrency=32,
    )


@contextlib.asynccontextmanager
async def _through_faults(server: LocalServer) -> AsyncIterator[tuple[Client, FaultProxy]]:
    async with FaultProxy(server.endpoint_url, MIXED) as proxy, _faulty_client(proxy) as client:
        yield client, proxy


def _report(
    name: str, server: LocalServer, client: Client, proxy: FaultProxy, verified: int, t0: float
) -> dict[str, Any]:
    stats = client.stats()
    report = {
        "test": name,
        "server": server.kind,
        "size": "full" if FULL else "default",
        "wall_s": round(time.monotonic() - t0, 2),
        "items_verified": verified,
        "client_requests": stats.total_requests,
        "client_retries": stats.retries,
        "client_throttles": stats.throttles,
        **proxy.report(),
    }
    print(f"\nSOAK {json.dumps(report)}")
    return report


# Any fault that breaks an answer rather than refusing the request.
_BROKEN = "http_500|http_503|reset_before|reset_mid_body|truncate|corrupt"


def _assert_faults_met(report: dict[str, Any], kinds: Iterable[str]) -> None:
    """The run is only worth something if the faults really happened and were retried.

    Each of ``kinds`` names a fault, or several joined by ``|`` of which one is enough."""
    injected = report["injected"]
    missing = [kind for kind in kinds if not any(injected.get(one) for one in kind.split("|"))]
    assert not missing, f"no {missing} injected: {injected}"
    assert report["client_retries"] > 0


async def _load(table: Table, items: list[dict[str, Any]]) -> None:
    """Seed a table without faults (no proxy)."""
    await table.batch_write(puts=items)


async def _stored(table: Table) -> dict[Key, dict[str, Any]]:
    """The table's contents, read around the proxy, each key once."""
    by_key: dict[Key, dict[str, Any]] = {}
    async for item in table.scan(consistent=True):
        key = _key(item)
        assert key not in by_key, f"the scan returned {key} twice"
        by_key[key] = item
    return by_key


def _compare(got: dict[Key, dict[str, Any]], expected: dict[Key, dict[str, Any]]) -> None:
    missing = expected.keys() - got.keys()
    extra = got.keys() - expected.keys()
    altered = [key for key in expected.keys() & got.keys() if got[key] != expected[key]]
    assert not (missing or extra or altered), (
        f"{len(missing)} missing (e.g. {sorted(missing)[:3]}), "
        f"{len(extra)} unexpected (e.g. {sorted(extra)[:3]}), "
        f"{len(altered)} altered (e.g. {[(got[k], expected[k]) for k in altered[:2]]})"
    )


@pytest.fixture(scope="module")
async def seeded(server: LocalServer) -> AsyncIterator[tuple[str, dict[str, list[dict[str, Any]]]]]:
    """One table per server, loaded without faults, for the read workloads: generic items
    for batch_get, 10-shard user rows for the fan-out; a scan must see both."""
    sizes = _sizes(server)
    async with Client(
        region="us-east-1",
        endpoint_url=server.endpoint_url,
        credentials=("testing", "testing"),
        retry=RetryPolicy(deadline=600.0),
    ) as direct:
        name = f"soak-{random.randrange(16**12):012x}"
        table = await direct.create_table(name, partition_key="PK", sort_key="SK")
        items = [_item(n) for n in range(max(sizes["get"], sizes["scan"] - sizes["fan"]))]
        rows = [_fan_row(n, sizes["fan"]) for n in range(sizes["fan"])]
        await _load(table, items + rows)
        yield name, {"items": items, "rows": rows}
        await direct.delete_table(name, wait=False)


async def test_bulk_write_through_faults(
    server: LocalServer, db: Client, make_table: MakeTable
) -> None:
    """Half through a writer shared by 8 tasks, half through one batch_write; 2 % of the keys
    are written twice (the second version must win) and 200 seeded items are deleted."""
    count = _sizes(server)["write"]
    target = await make_table()
    doomed = [_item(n) for n in range(count, count + 200)]
    await _load(target, doomed)
    expected = {_key(item): item for item in (_item(n, version=2) for n in range(count))}
    via_writer = range(count // 2)
    via_batch = range(count // 2, count)

    async with asyncio.timeout(TIME_LIMIT), _through_faults(server) as (client, proxy):
        t0 = time.monotonic()
        table = client.table(target.name)

        async with table.writer() as writer:

            async def feed(numbers: range) -> None:
                for n in numbers:
                    if n % 50 == 0:
                        await writer.put(_item(n, version=1))  # a stale version first
                    await writer.put(_item(n, version=2))

            tasks = 8
            async with asyncio.TaskGroup() as group:
                for part in range(tasks):
                    group.create_task(feed(via_writer[part::tasks]))

        puts = [_item(n, version=1) for n in via_batch if n % 50 == 0]
        puts += [_item(n, version=2) for n in via_batch]
        await table.batch_write(puts=puts, deletes=[_key_of(item) for item in doomed])

        # Read around the proxy: the server's own view of what was written.
        _compare(await _stored(target), expected)
        report = _report("bulk_write", server, client, proxy, len(expected), t0)
        report["writer"] = asdict(writer.stats)
        print(f"SOAK writer {json.dumps(report['writer'])}")
    _assert_faults_met(report, ["throttle", "unprocessed", _BROKEN])
    assert writer.stats.unprocessed == 0 and writer.stats.written >= len(via_writer)


async def test_batch_get_through_faults(
    server: LocalServer, seeded: tuple[str, dict[str, list[dict[str, Any]]]]
) -> None:
    """Keys in random order, a tenth of them missing and some repeated: every position gets
    its item or None; then the streaming form over the same keys."""
    name, data = seeded
    count = _sizes(server)["get"]
    stored = {_key(item): item for item in data["items"][:count]}
    rng = random.Random(8)
    keys = [_key_of(item) for item in data["items"][:count]]
    keys += [{"PK": "ITEM#000", "SK": f"MISSING#{n}"} for n in range(count // 10)]
    keys += rng.sample(keys, count // 20)
    rng.shuffle(keys)

    async with asyncio.timeout(TIME_LIMIT), _through_faults(server) as (client, proxy):
        t0 = time.monotonic()
        table = client.table(name)
        got = await table.batch_get(keys)
        assert len(got) == len(keys)
        wrong = [
            (key, item)
            for key, item in zip(keys, got, strict=True)
            if item != stored.get((key["PK"], key["SK"]))
        ]
        assert not wrong, f"{len(wrong)} wrong answers, e.g. {wrong[:2]}"

        unique = list({(key["PK"], key["SK"]): key for key in keys}.values())
        pairs: dict[Key, dict[str, Any] | None] = {}
        async for key, item in table.batch_get_iter(unique):
            pair_key = (key["PK"], key["SK"])
            assert pair_key not in pairs, f"batch_get_iter yielded {pair_key} twice"
            pairs[pair_key] = item
        assert pairs == {
            (key["PK"], key["SK"]): stored.get((key["PK"], key["SK"])) for key in unique
        }
        report = _report("batch_get", server, client, proxy, len(keys) + len(unique), t0)
    _assert_faults_met(report, ["throttle", "unprocessed", _BROKEN])


async def test_sharded_fan_out_through_faults(
    server: LocalServer, seeded: tuple[str, dict[str, list[dict[str, Any]]]]
) -> None:
    """All 10 shards merged in sort-key order, both ways, and paged with cursors; every
    shard is read in pages of at most 100 items, each page through the faults."""
    name, data = seeded
    rows = sorted(data["rows"], key=lambda row: row["SK"])

    async with asyncio.timeout(TIME_LIMIT), _through_faults(server) as (client, proxy):
        t0 = time.monotonic()
        table = client.table(name)
        partitions = SHARDS.partitions()
        merged = [item async for item in table.query_partitions(partitions)]
        assert merged == rows
        merged = [item async for item in table.query_partitions(partitions, descending=True)]
        assert merged == rows[::-1]

        paged: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = await table.query_partitions_page(partitions, limit=173, cursor=cursor)
            paged += page.items
            cursor = page.cursor
            if cursor is None:
                break
        assert paged == rows
        report = _report("fan_out", server, client, proxy, 3 * len(rows), t0)
    _assert_faults_met(report, ["throttle", _BROKEN])


async def test_parallel_scan_through_faults(
    server: LocalServer, seeded: tuple[str, dict[str, list[dict[str, Any]]]]
) -> None:
    """``scan(segments=8)`` and a paged parallel scan yield every stored item exactly once."""
    name, data = seeded
    expected = {_key(item): item for item in data["items"] + data["rows"]}

    async with asyncio.timeout(TIME_LIMIT), _through_faults(server) as (client, proxy):
        t0 = time.monotonic()
        table = client.table(name)
        scanned: dict[Key, dict[str, Any]] = {}
        async for item in table.scan(segments=8):
            assert _key(item) not in scanned, f"the parallel scan yielded {_key(item)} twice"
            scanned[_key(item)] = item
        _compare(scanned, expected)

        paged: dict[Key, dict[str, Any]] = {}
        cursor = None
        while True:
            page = await table.scan_page(segments=8, limit=500, cursor=cursor)
            for item in page.items:
                assert _key(item) not in paged, f"the paged scan yielded {_key(item)} twice"
                paged[_key(item)] = item
            cursor = page.cursor
            if cursor is None:
                break
        _compare(paged, expected)
        report = _report("parallel_scan", server, client, proxy, 2 * len(expected), t0)
    _assert_faults_met(report, ["throttle", _BROKEN])


async def test_withheld_batch_work_never_reaches_the_server(
    server: LocalServer, table: Table
) -> None:
    """The proxy's contract, and the error's: with one attempt and every batch split, what
    ``UnprocessedItemsError`` lists is exactly what the table lacks, and what
    ``UnprocessedKeysError`` lists is exactly what ``partial`` lacks."""
    items = [_item(n) for n in range(60)]  # chunks of 25, 25 and 10
    split = FaultSchedule(seed=5, unprocessed=1.0)
    async with (
        FaultProxy(server.endpoint_url, split) as proxy,
        Client(
            region="us-east-1",
            endpoint_url=proxy.endpoint_url,
            credentials=("testing", "testing"),
            retry=RetryPolicy(max_attempts=1),
        ) as client,
    ):
        faulty = client.table(table.name, key=("PK", "SK"))
        with pytest.raises(UnprocessedItemsError) as refused:
            await faulty.batch_write(puts=items)
        withheld = {_key(item) for item in refused.value.puts}
        assert 3 <= len(withheld) <= 57 and proxy.injected["unprocessed"] == 3
        stored = await _stored(table)
        _compare(stored, {_key(item): item for item in items if _key(item) not in withheld})

        keys = [_key_of(item) for item in items]
        with pytest.raises(UnprocessedKeysError) as unread:
            await faulty.batch_get(keys)
        unprocessed, partial = unread.value.unprocessed, unread.value.partial
        assert isinstance(unprocessed, list) and isinstance(partial, list)  # one table
        missed = {(key["PK"], key["SK"]) for key in unprocessed}
        assert 1 <= len(missed) <= 59 and proxy.injected["unprocessed"] == 4  # one chunk
        for key, item in zip(keys, partial, strict=True):
            pair = (key["PK"], key["SK"])
            assert item == (None if pair in missed else stored.get(pair))
