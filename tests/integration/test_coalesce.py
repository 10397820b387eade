"""Concurrent gets coalesced into BatchGetItem calls, on real servers, with and without faults."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from contextlib import asynccontextmanager
from typing import Any

from asyncdyn import Client, RetryPolicy, Table
from asyncdyn.local import LocalServer
from asyncdyn.testing import FaultInjector
from asyncdyn.transport import AiohttpTransport

from .conftest import MakeTable


def _workload(seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """650 stored items; 1,000 keys: 700 distinct (50 of them missing), 300 repeats."""
    rng = random.Random(seed)
    stored = [{"PK": f"U#{n % 37}", "SK": f"{n:04d}", "n": n} for n in range(650)]
    distinct = [{"PK": i["PK"], "SK": i["SK"]} for i in stored]
    distinct += [{"PK": "U#0", "SK": f"missing-{n}"} for n in range(50)]
    keys = distinct + [dict(rng.choice(distinct)) for _ in range(300)]
    rng.shuffle(keys)
    return stored, keys


@asynccontextmanager
async def _coalescing(server: LocalServer, **faults: Any) -> Iterator[tuple[Client, FaultInjector]]:  # type: ignore[misc]
    injector = FaultInjector(AiohttpTransport(server.endpoint_url), seed=9, **faults)
    async with Client(
        region="us-east-1",
        endpoint_url=server.endpoint_url,
        credentials=("testing", "testing"),
        retry=RetryPolicy(max_attempts=30, base=0.002, cap=0.05, deadline=120.0),
        transport=injector,
        adaptive_rate=False,
        coalesce_gets=True,
    ) as client:
        yield client, injector


async def _check(table: Table, stored: list[dict[str, Any]], keys: list[dict[str, Any]]) -> None:
    by_key = {(i["PK"], i["SK"]): i for i in stored}
    got = await asyncio.gather(*(table.get(key) for key in keys))
    for key, item in zip(keys, got, strict=True):
        assert item == by_key.get((key["PK"], key["SK"]))
    # Each caller has its own dict, even for a key asked many times.
    assert len({id(item) for item in got if item is not None}) == sum(
        item is not None for item in got
    )


async def test_a_thousand_gets_take_few_requests(
    server: LocalServer, db: Client, make_table: MakeTable
) -> None:
    name = (await make_table()).name
    stored, keys = _workload(1)
    await db.table(name).batch_write(puts=stored)
    async with _coalescing(server) as (client, injector):
        await _check(client.table(name), stored, keys)
        stats = client.stats()
        assert stats.requests.get("GetItem", 0) == 0
        assert stats.requests["BatchGetItem"] <= 15
        assert stats.coalesced_gets == 1000
        assert injector.forwarded == stats.requests["BatchGetItem"]


async def test_coalesced_gets_through_faults(
    server: LocalServer, db: Client, make_table: MakeTable
) -> None:
    name = (await make_table()).name
    stored, keys = _workload(2)
    await db.table(name).batch_write(puts=stored)
    async with _coalescing(server, unprocessed=0.4, throttle=0.2) as (client, injector):
        await _check(client.table(name), stored, keys)
        assert injector.injected["unprocessed_keys"] > 0 and injector.injected["throttle"] > 0


async def test_a_cancelled_caller_leaves_the_others_alone(
    server: LocalServer, db: Client, make_table: MakeTable
) -> None:
    name = (await make_table()).name
    await db.table(name).batch_write(puts=[{"PK": "C", "SK": str(n)} for n in range(20)])
    async with _coalescing(server, latency=(0.05, 0.05)) as (client, _):
        table = client.table(name)
        tasks = [asyncio.create_task(table.get({"PK": "C", "SK": str(n)})) for n in range(20)]
        await asyncio.sleep(0.01)
        tasks[3].cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(results[3], asyncio.CancelledError)
        assert [r for n, r in enumerate(results) if n != 3] == [
            {"PK": "C", "SK": str(n)} for n in range(20) if n != 3
        ]
