"""Deadlines and timeouts against a server that accepts connections and never answers.

The fault proxy (``tests/faultproxy.py``) stands in front of the real server. With
``answering = False`` it reads every request and sends nothing back, which no error, reset or
close gives away: only the client's clock can end the wait. Every operation must then fail
with a typed timeout (``RetriesExhausted`` carrying a ``RequestTimeout``, or for the batch
calls ``UnprocessedKeysError`` / ``UnprocessedItemsError`` chained to one, as docs/batches.md says)
close to its deadline; and once the proxy answers again, the same client must serve the next
request at once: abandoned connections closed, none of them handed out again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from asyncdyn import (
    Client,
    Key,
    RequestTimeout,
    RetriesExhausted,
    RetryPolicy,
    Table,
    UnprocessedItemsError,
    UnprocessedKeysError,
)
from asyncdyn.local import LocalServer

from ..faultproxy import FaultProxy, FaultSchedule

DEADLINE = 1.0
# Generous against a loaded machine; the measured overshoot is printed (pytest -s).
OVERSHOOT_BOUND = 1.0
TRANSPORTS = ["lean", "aiohttp"]

ITEM = {"PK": "USER#1", "SK": "PROFILE", "name": "Ann"}
KEY = {"PK": "USER#1", "SK": "PROFILE"}


def _client(proxy: FaultProxy, http: str, timeout: float | None, deadline: float) -> Client:
    return Client(
        region="us-east-1",
        endpoint_url=proxy.endpoint_url,
        credentials=("testing", "testing"),
        http=http,  # type: ignore[arg-type]
        timeout=timeout,
        retry=RetryPolicy(deadline=deadline),
        max_concurrency=8,
    )


@pytest.fixture
async def stored(table: Table) -> Table:
    await table.put(ITEM)
    return table


@pytest.fixture
async def proxy(server: LocalServer) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(server.endpoint_url) as running:
        yield running


def _operations(client: Client, name: str) -> dict[str, Callable[[], Awaitable[Any]]]:
    # key= spares the batch and transaction calls a DescribeTable, so each call below is
    # exactly its own operation.
    table = client.table(name, key=("PK", "SK"))

    async def query() -> list[dict[str, Any]]:
        return [item async for item in table.query(Key("PK").eq("USER#1"))]

    async def scan() -> list[dict[str, Any]]:
        return [item async for item in table.scan()]

    async def parallel_scan() -> list[dict[str, Any]]:
        return [item async for item in table.scan(segments=4)]

    async def fan_out() -> list[dict[str, Any]]:
        partitions = ["USER#1", "USER#2", "USER#3"]
        return [item async for item in table.query_partitions(partitions)]

    async def writer() -> None:
        async with table.writer() as w:
            await w.put(other)

    other = {"PK": "USER#2", "SK": "PROFILE", "name": "Bob"}
    return {
        "get": lambda: table.get(KEY),
        "put": lambda: table.put(other),
        "query": query,
        "scan": scan,
        "batch_get": lambda: table.batch_get([KEY, {"PK": "USER#2", "SK": "PROFILE"}]),
        "batch_write": lambda: table.batch_write(puts=[other], deletes=[KEY]),
        "transact_write": lambda: client.transact_write([table.tx_put(other)]),
        "parallel_scan": parallel_scan,
        "query_partitions": fan_out,
        "writer": writer,
    }


def _timeout_behind(error: BaseException) -> RequestTimeout | None:
    """The RequestTimeout an error carries, through ``last_error`` and ``__cause__``."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, RequestTimeout):
            return seen
        seen = seen.last_error if isinstance(seen, RetriesExhausted) else seen.__cause__
    return None


async def _warm(client: Client, name: str) -> None:
    """Fill the pool with keep-alive connections; a busy machine may need another try."""
    for _ in range(3):
        try:
            got = await asyncio.gather(*(client.table(name).get(KEY) for _ in range(4)))
        except RetriesExhausted:
            continue
        assert got == [ITEM] * 4
        return
    pytest.fail("the server did not answer a get within the deadline three times running")


async def _timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, BaseException | None]:
    start = time.monotonic()
    try:
        await call()
    except Exception as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


@pytest.mark.parametrize("timeout", [None, 0.15], ids=["one-attempt", "timeout-0.15"])
@pytest.mark.parametrize("http", TRANSPORTS)
async def test_every_operation_times_out_within_its_deadline(
    server: LocalServer, stored: Table, proxy: FaultProxy, http: str, timeout: float | None
) -> None:
    """Without ``timeout`` the first attempt waits the whole deadline; with one, several
    attempts time out and the last is cut short by the deadline. All seven operations run
    at once on one client whose pool already holds keep-alive connections."""
    async with _client(proxy, http, timeout, DEADLINE) as client:
        operations = _operations(client, stored.name)
        await _warm(client, stored.name)
        proxy.answering = False
        results = await asyncio.gather(*(_timed(call) for call in operations.values()))

        overshoot: dict[str, float] = {}
        for name, (elapsed, error) in zip(operations, results, strict=True):
            assert error is not None, f"{name} answered while the server was silent"
            assert _timeout_behind(error) is not None, f"{name}: {error!r} carries no timeout"
            if isinstance(error, RetriesExhausted):
                assert error.reason == "deadline", f"{name}: {error!r}"
            elif name == "batch_get":
                assert isinstance(error, UnprocessedKeysError), f"{name}: {error!r}"
                assert len(error.unprocessed) == 2 and error.partial == [None, None]
            elif name == "writer":
                assert isinstance(error, UnprocessedItemsError) and len(error.puts) == 1
            else:
                assert name == "batch_write" and isinstance(error, UnprocessedItemsError)
                assert len(error.puts) == 1 and len(error.deletes) == 1
            assert DEADLINE / 2 <= elapsed < DEADLINE + OVERSHOOT_BOUND, f"{name}: {elapsed:.3f}s"
            overshoot[name] = round((elapsed - DEADLINE) * 1000, 1)
        print(
            f"\nDEADLINE {server.kind} {http} timeout={timeout} deadline={DEADLINE}s "
            f"overshoot_ms={json.dumps(overshoot)} swallowed={proxy.injected['blackhole']}"
        )

        # Answering again: the very next requests are served at once, not after a read
        # timeout on a connection abandoned above.
        proxy.answering = True
        start = time.monotonic()
        assert await client.table(stored.name).get(KEY) == ITEM
        await operations["put"]()
        assert len(await operations["batch_get"]()) == 2
        # (A request stuck on a dead connection would take the whole deadline.)
        assert time.monotonic() - start < DEADLINE
        # Every abandoned connection was closed by the client, none left hanging.
        async with asyncio.timeout(2.0):
            await proxy.wait_unhung()


@pytest.mark.parametrize("http", TRANSPORTS)
async def test_slow_first_byte(
    server: LocalServer, stored: Table, proxy: FaultProxy, http: str
) -> None:
    """Every answer waits 0.3 s before its first byte: a 1 s request timeout gets it, a
    0.1 s one gives up on every attempt until the deadline."""
    proxy.schedule = FaultSchedule(slow=1.0, slow_delay=0.3)
    async with _client(proxy, http, 1.0, 5.0) as patient:
        elapsed, error = await _timed(lambda: patient.table(stored.name).get(KEY))
        assert error is None and 0.3 <= elapsed < 1.0
    async with _client(proxy, http, 0.1, 0.8) as hasty:
        elapsed, error = await _timed(lambda: hasty.table(stored.name).get(KEY))
        assert isinstance(error, RetriesExhausted) and _timeout_behind(error) is not None
        assert error.attempts > 1 and elapsed < 0.8 + OVERSHOOT_BOUND
    assert proxy.injected["slow"] > 2


@pytest.mark.parametrize("http", TRANSPORTS)
async def test_requests_swallowed_at_random_are_retried(
    server: LocalServer, stored: Table, proxy: FaultProxy, http: str
) -> None:
    """A third of the requests get no answer ever: each is abandoned after the request
    timeout and sent again on another connection; every call succeeds."""
    proxy.schedule = FaultSchedule(seed=3, hang=0.33)
    async with _client(proxy, http, 0.2, 20.0) as client:
        table = client.table(stored.name, key=("PK", "SK"))
        items = [{"PK": "HANG", "SK": f"{n:03d}", "n": n} for n in range(30)]
        await asyncio.gather(*(table.put(item) for item in items))
        got = await asyncio.gather(*(table.get({"PK": "HANG", "SK": item["SK"]}) for item in items))
        assert got == items
        assert client.stats().retries >= proxy.injected["hang"] > 0
    async with asyncio.timeout(2.0):  # closing the client closed the abandoned connections
        await proxy.wait_unhung()
