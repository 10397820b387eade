"""Concurrent gets coalesced into BatchGetItem calls, on real servers, with and without faults."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest

from asyncdyn import (
    Attr,
    Client,
    InvalidExpression,
    Key,
    RetryPolicy,
    Table,
    ValidationError,
    expires_at,
)
from asyncdyn.local import LocalServer
from asyncdyn.testing import FaultInjector
from asyncdyn.transport import AiohttpTransport, HttpResponse

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


class _HeldAnswers:
    """Forwards every request at once (the server reads the table then), but holds the
    answers of BatchGetItem until ``release`` is set: a read in flight, already read."""

    def __init__(self, inner: AiohttpTransport) -> None:
        self.inner = inner
        self.release = asyncio.Event()
        self.arrived = asyncio.Event()
        self.operations: list[str] = []

    async def send(self, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        operation = headers["X-Amz-Target"].rpartition(".")[2]
        self.operations.append(operation)
        response = await self.inner.send(headers, body)
        if operation == "BatchGetItem":
            self.arrived.set()
            await self.release.wait()
        return response

    async def close(self) -> None:
        await self.inner.close()


@pytest.mark.parametrize("consistent", [True, False], ids=["consistent", "eventual"])
async def test_a_get_after_a_write_sees_the_write(
    server: LocalServer, db: Client, table: Table, consistent: bool
) -> None:
    key = {"PK": "K", "SK": "1"}
    await table.put({**key, "v": "old"})
    held = _HeldAnswers(AiohttpTransport(server.endpoint_url))
    async with Client(
        region="us-east-1",
        endpoint_url=server.endpoint_url,
        credentials=("testing", "testing"),
        transport=held,
        coalesce_gets=True,
    ) as client:
        mine = client.table(table.name)
        early = asyncio.create_task(mine.get(key, consistent=consistent))
        await held.arrived.wait()  # the server has read "old"; the answer is held
        await mine.put({**key, "v": "new"})
        late = asyncio.create_task(mine.get(key, consistent=consistent))
        await asyncio.sleep(0.05)
        held.release.set()
        assert (await early) == {**key, "v": "old"}
        assert (await late) == {**key, "v": "new"}
    assert held.operations == ["BatchGetItem", "PutItem", "BatchGetItem"]


async def test_a_refused_key_fails_only_its_caller(
    server: LocalServer, db: Client, table: Table
) -> None:
    await table.batch_write(puts=[{"PK": "C", "SK": f"{n:02d}", "n": n} for n in range(30)])
    keys: list[dict[str, Any]] = [{"PK": "C", "SK": f"{n:02d}"} for n in range(30)]
    keys[5] = {"PK": "C", "SK": 5}  # the sort key is a string: refused by the server
    keys[11] = {"PK": "C", "SK": "x" * 1500}  # over DynamoDB's 1024-byte sort key
    keys[20] = {"PK": "C", "XX": "20"}  # not the table's key
    async with _coalescing(server) as (client, _):
        mine = client.table(table.name)
        results = await asyncio.gather(*(mine.get(k) for k in keys), return_exceptions=True)
    # moto checks neither the sort key's type nor its length: to moto there is no such item.
    refused = {20} if server.kind == "moto" else {5, 11, 20}
    for n in (5, 11, 20):
        assert isinstance(results[n], ValidationError) if n in refused else results[n] is None
    assert [r for n, r in enumerate(results) if n not in (5, 11, 20)] == [
        {"PK": "C", "SK": f"{n:02d}", "n": n} for n in range(30) if n not in (5, 11, 20)
    ]


async def test_raw_projection_strings_on_real_servers(
    server: LocalServer, db: Client, table: Table
) -> None:
    key = {"PK": "P", "SK": "1"}
    item = {**key, "data": "d", "a": 1, "c": {"x": [5, 6]}, "status": "s"}
    await table.put(item)
    async with _coalescing(server) as (client, _):
        for mine in (client.table(table.name), db.table(table.name)):  # coalesced, and not
            assert await mine.get(key, attributes="data") == {"data": "d"}
            assert await mine.get(key, attributes="a, c") == {"a": 1, "c": {"x": [5, 6]}}
            # (moto cannot read a list index after a placeholder, so no "c.x[1]" here)
            assert await mine.get(key, attributes="c.x, #s", names={"#s": "status"}) == {
                "c": {"x": [5, 6]},
                "status": "s",
            }
            got = await asyncio.gather(mine.get(key, attributes="a, c"), mine.get(key))
            assert got == [{"a": 1, "c": {"x": [5, 6]}}, item]
            assert await mine.batch_get([key], attributes="a, c") == [{"a": 1, "c": {"x": [5, 6]}}]
            for bad in ("a,,c", "a c", "#undefined"):
                with pytest.raises(InvalidExpression):
                    await mine.get(key, attributes=bad)
                with pytest.raises(InvalidExpression):
                    await mine.batch_get([key], attributes=bad)


async def test_hide_expired_with_every_projection_form(
    server: LocalServer, db: Client, table: Table
) -> None:
    # The TTL attribute is read by asyncdyn itself: no TTL support needed on the server.
    past, future = expires_at(timedelta(hours=-1)), expires_at(timedelta(hours=1))
    await table.batch_write(
        puts=[
            {"PK": "S", "SK": "old", "v": 1, "exp": past},
            {"PK": "S", "SK": "new", "v": 2, "exp": future},
        ]
    )
    old, new = {"PK": "S", "SK": "old"}, {"PK": "S", "SK": "new"}
    async with _coalescing(server) as (client, _):
        for mine in (client.table(table.name), db.table(table.name)):
            mine.hide_expired("exp")
            try:
                for args in (
                    {"attributes": "v"},
                    {"attributes": "#x", "names": {"#x": "v"}},
                    {"attributes": ["v"]},
                    {"attributes": [Attr("v")]},
                ):
                    assert await mine.get(old, **args) is None
                    assert await mine.get(new, **args) == {"v": 2}
                    assert await mine.batch_get([old, new], **args) == [None, {"v": 2}]
                    query = mine.query(Key("PK").eq("S"), **args)
                    assert [i async for i in query] == [{"v": 2}]
                    assert [i async for i in mine.scan(**args)] == [{"v": 2}]
                    assert [i async for i in mine.query_partitions(["S"], **args)] == [{"v": 2}]
                got = await mine.get(new, attributes="v, exp")
                assert got == {"v": 2, "exp": future}  # asked for: kept
            finally:
                mine.hide_expired(None)
