"""Cancelling long operations at random points leaks nothing.

Every long operation (batch_get, batch_get_iter, batch_write, writer, query_partitions,
parallel scan, query paging, the stream consumer) is cancelled at seeded random points
of its run, in asyncio debug mode. After each cancellation:

* no asyncio task is left but the test's own (``asyncio.all_tasks``);
* no connection is busy: every pooled connection is idle and reusable, and no socket of
  this process (``/proc/self/fd``) is open outside the pool's idle connections;
* no coroutine was left unawaited, no task was destroyed pending, no exception was left
  unretrieved (loop exception handler, warnings and ``gc.collect()``);
* the client still works.

The servers run in child processes, so every socket in ``/proc/self/fd`` is a client's.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Literal

import pytest

from asyncdyn import Attr, Client, Key, RetryPolicy, Table, TransportError
from asyncdyn.lean import LeanTransport
from asyncdyn.local import LocalServer

PARTITIONS = [f"P{i}" for i in range(10)]
PER_PARTITION = 150
BIG_ITEMS = 120  # of ~20 KB: about 2.4 MB, three query pages of 1 MB
POINTS = 5  # cancellation points per operation (one of them before the first request)


def _socket_fds() -> set[int]:
    fds: set[int] = set()
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                fds.add(int(name))
    return fds


def _pool(db: Client) -> LeanTransport:
    transport = db._dispatcher.transport
    assert isinstance(transport, LeanTransport)
    return transport


def _pool_fds(pool: LeanTransport) -> set[int]:
    fds = set()
    for conn in pool._all:
        if conn.transport is not None:
            fd = conn.transport.get_extra_info("socket").fileno()
            if fd >= 0:
                fds.add(fd)
    return fds


class LeakCheck:
    """Baseline of tasks and sockets, and the loop-level problems seen since."""

    def __init__(self, db: Client) -> None:
        self.db = db
        self.loop = asyncio.get_running_loop()
        self.tasks = asyncio.all_tasks()
        self.outside = _socket_fds() - _pool_fds(_pool(db))
        self.problems: list[str] = []
        self._handler = self.loop.get_exception_handler()
        self.loop.set_exception_handler(self._record)

    def _record(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        self.problems.append(str(context.get("message")) + " " + repr(context.get("exception")))

    def close(self) -> None:
        self.loop.set_exception_handler(self._handler)

    async def check(self, what: str) -> None:
        # Two turns: an aborted socket is closed by a callback scheduled on the next one.
        for _ in range(2):
            await asyncio.sleep(0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.collect()
        await asyncio.sleep(0)
        left = asyncio.all_tasks() - self.tasks
        assert not left, f"{what}: tasks left behind: {left}"
        pool = _pool(self.db)
        busy = [conn for conn in pool._all if conn not in pool._idle]
        assert not busy, f"{what}: {len(busy)} connection(s) still busy"
        assert len(pool._all) <= pool.max_connections
        stray = _socket_fds() - _pool_fds(pool) - self.outside
        assert not stray, f"{what}: sockets open outside the pool: {stray}"
        assert not self.problems, f"{what}: {self.problems}"
        messages = [str(w.message) for w in caught]
        assert not [m for m in messages if "never awaited" in m or "never retrieved" in m], (
            f"{what}: {messages}"
        )


@pytest.fixture(autouse=True)
async def _debug_mode() -> AsyncIterator[None]:
    # The session shares one loop (pyproject): turn debug on for these tests only.
    loop = asyncio.get_running_loop()
    was = loop.get_debug()
    loop.set_debug(True)
    try:
        yield
    finally:
        loop.set_debug(was)


def _client(server: LocalServer, http: Literal["lean", "aiohttp"] = "lean") -> Client:
    # A small in-flight limit: chunks and pages queue behind it, so a cancellation finds
    # requests waiting as well as requests on the wire.
    return Client(
        region="us-east-1",
        endpoint_url=server.endpoint_url,
        credentials=("testing", "testing"),
        retry=RetryPolicy(deadline=30.0),
        max_concurrency=4,
        http=http,
    )


@pytest.fixture(scope="module")
def dynalite(local_servers: Callable[[str], LocalServer]) -> LocalServer:
    return local_servers("dynalite")


@pytest.fixture(scope="module")
async def seeded(dynalite: LocalServer) -> AsyncIterator[str]:
    """A table of 10 partitions of 150 items and one partition of 2.4 MB."""
    name = f"cancel-{uuid.uuid4().hex[:12]}"
    async with _client(dynalite) as db:
        table = await db.create_table(name, partition_key="PK", sort_key="SK")
        items = [
            {"PK": p, "SK": f"{i:05d}", "pad": "x" * 200} for p in PARTITIONS for i in range(150)
        ]
        items += [{"PK": "BIG", "SK": f"{i:05d}", "pad": "y" * 20_000} for i in range(BIG_ITEMS)]
        await table.batch_write(puts=items)
        yield name
        await db.delete_table(name, wait=False)


@pytest.fixture
async def db(dynalite: LocalServer) -> AsyncIterator[Client]:
    async with _client(dynalite) as client:
        yield client


KEYS = [{"PK": p, "SK": f"{i:05d}"} for p in PARTITIONS for i in range(PER_PARTITION)]


async def _drain(iterator: Any) -> int:
    count = 0
    async with contextlib.aclosing(iterator) as items:
        async for _ in items:
            count += 1
    return count


async def _slow_drain(iterator: Any) -> int:
    """A consumer slower than the producer, so that prefetched pages wait in buffers."""
    count = 0
    async with contextlib.aclosing(iterator) as items:
        async for _ in items:
            count += 1
            if count % 50 == 0:
                await asyncio.sleep(0.001)
    return count


def _write_items(tag: str, n: int) -> list[dict[str, Any]]:
    return [{"PK": f"W-{tag}", "SK": f"{i:05d}", "pad": "z" * 100} for i in range(n)]


async def _writer(table: Table, tag: str) -> int:
    async with table.writer(max_in_flight=2) as writer:
        for item in _write_items(tag, 600):
            await writer.put(item)
    return writer.stats.written


Operation = Callable[[Table, str], Awaitable[Any]]

OPERATIONS: dict[str, Operation] = {
    "batch_get": lambda t, tag: t.batch_get(KEYS),
    "batch_get_iter": lambda t, tag: _slow_drain(t.batch_get_iter(KEYS, window=3)),
    "batch_write": lambda t, tag: t.batch_write(puts=_write_items(tag, 800)),
    "writer": _writer,
    "query_partitions": lambda t, tag: _slow_drain(t.query_partitions(PARTITIONS)),
    "query_partitions unmerged": lambda t, tag: _drain(t.query_partitions(PARTITIONS, merge=False)),
    "parallel scan": lambda t, tag: _slow_drain(t.scan(segments=4)),
    "query paging": lambda t, tag: _slow_drain(t.query(Key("PK").eq("BIG"))),
    "query_page with a filter": lambda t, tag: t.query_page(
        Key("PK").eq("BIG"), filter=Attr("pad").eq("none"), limit=5
    ),
}


async def _cancel_at(operation: Awaitable[Any], delay: float) -> bool:
    """Run ``operation``, cancel it after ``delay`` seconds; whether it was cut short."""
    task = asyncio.ensure_future(operation)
    await asyncio.sleep(delay)
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=10)
    assert done, "the operation did not end within 10 s of its cancellation"
    if not task.cancelled():
        task.result()  # finished before the cancellation: it must have succeeded
        return False
    return True


def _points(name: str, duration: float) -> Iterator[float]:
    rng = random.Random(f"cancel {name}")
    yield 0.0  # before the first request is answered
    for _ in range(POINTS - 1):
        # Within the first half: run times vary on a busy machine, and a point past the end
        # would prove nothing.
        yield rng.uniform(0.0, 0.5 * duration)


@pytest.mark.parametrize("name", list(OPERATIONS))
async def test_cancel_at_random_points(name: str, db: Client, seeded: str) -> None:
    table = db.table(seeded)
    operation = OPERATIONS[name]
    leaks = LeakCheck(db)
    try:
        durations = []
        for run in ("cold", "warm"):  # the first run also opens connections, reads the schema
            started = time.perf_counter()
            await operation(table, run)
            durations.append(time.perf_counter() - started)
            await leaks.check(f"{name} run to the end")
        duration = min(durations)
        cut = 0
        for n, delay in enumerate(_points(name, duration)):
            cut += await _cancel_at(operation(table, str(n)), delay)
            await leaks.check(f"{name} cancelled after {delay * 1000:.1f} ms")
            assert await table.get({"PK": "P3", "SK": "00007"}) is not None
        assert cut >= POINTS - 2, f"{name}: only {cut} of {POINTS} points cancelled mid-run"
        await leaks.check(f"{name} after the checks")
    finally:
        leaks.close()


@pytest.mark.parametrize("kind", ["query", "parallel scan", "query_partitions", "batch_get_iter"])
async def test_leaving_a_listing_early_without_aclosing(kind: str, db: Client, seeded: str) -> None:
    """Dropping an iterator mid-way (no ``aclose``) cancels its prefetch once collected."""
    table = db.table(seeded)
    listings: dict[str, Callable[[], Any]] = {
        "query": lambda: table.query(Key("PK").eq("BIG")),
        "parallel scan": lambda: table.scan(segments=4),
        "query_partitions": lambda: table.query_partitions(PARTITIONS),
        "batch_get_iter": lambda: table.batch_get_iter(KEYS, window=3),
    }
    leaks = LeakCheck(db)
    try:
        rng = random.Random(f"leave {kind}")
        for _ in range(3):
            stop_after = rng.randrange(1, 400)
            iterator = listings[kind]()
            seen = 0
            async for _ in iterator:
                seen += 1
                if seen == stop_after:
                    break
            del iterator
            # The async generator finaliser and ItemIterator.__del__ act on collection;
            # their cleanup then takes a few turns of the loop.
            gc.collect()
            for _ in range(50):
                if not asyncio.all_tasks() - leaks.tasks:
                    break
                await asyncio.sleep(0.01)
            await leaks.check(f"{kind} left after {stop_after} items")
    finally:
        leaks.close()


@pytest.mark.parametrize("http", ["lean", "aiohttp"])
async def test_close_closes_every_connection(
    dynalite: LocalServer, seeded: str, http: Literal["lean", "aiohttp"]
) -> None:
    before = _socket_fds()
    db = _client(dynalite, http)
    table = db.table(seeded)
    await table.batch_get(KEYS)  # opens up to max_concurrency connections
    assert 1 <= len(_socket_fds() - before) <= 4
    await db.close()
    await asyncio.sleep(0.01)  # aiohttp closes its sockets on the next turns of the loop
    if http == "lean":
        assert _pool(db)._all == set() and _pool(db)._idle == []
    assert _socket_fds() - before == set()
    # A closed client fails at once (no retries), and opens nothing again.
    started = time.perf_counter()
    with pytest.raises(TransportError, match="closed"):
        await table.get({"PK": "P0", "SK": "00000"})
    assert time.perf_counter() - started < 0.5
    assert _socket_fds() - before == set()


@pytest.mark.parametrize("http", ["lean", "aiohttp"])
async def test_close_while_requests_are_in_flight(
    dynalite: LocalServer, seeded: str, http: Literal["lean", "aiohttp"]
) -> None:
    before = _socket_fds()
    tasks_before = asyncio.all_tasks()
    db = _client(dynalite, http)
    table = db.table(seeded)
    rng = random.Random("close in flight")
    for _ in range(3):
        running = [
            asyncio.ensure_future(table.batch_get(KEYS)),
            asyncio.ensure_future(_slow_drain(table.scan(segments=4))),
            asyncio.ensure_future(table.batch_write(puts=_write_items("close", 300))),
        ]
        await asyncio.sleep(rng.uniform(0.005, 0.03))
        await db.close()
        done, pending = await asyncio.wait(running, timeout=10)
        assert not pending, "an operation hung after the transport was closed"
        for task in done:
            # Failed at once, as closed: the error (or what stopped the chunks) says so.
            error = task.exception()
            if error is not None and not isinstance(error, TransportError):
                error = error.__cause__
            assert error is None or isinstance(error, TransportError), error
        await asyncio.sleep(0.01)
        assert _socket_fds() - before == set()
        assert asyncio.all_tasks() - tasks_before == set()
        db = _client(dynalite, http)
        table = db.table(seeded)
    assert await table.get({"PK": "P1", "SK": "00001"}) is not None
    await db.close()
    await asyncio.sleep(0.01)
    assert _socket_fds() - before == set()


@pytest.mark.moto_only
async def test_cancel_the_stream_consumer(moto_server: LocalServer) -> None:
    if not hasattr(Client, "stream"):
        pytest.skip("asyncdyn has no stream consumer yet")
    async with _client(moto_server) as db:
        name = f"cancel-stream-{uuid.uuid4().hex[:8]}"
        table = await db.create_table(
            name, partition_key="PK", sort_key="SK", stream="NEW_AND_OLD_IMAGES"
        )
        await table.batch_write(puts=[{"PK": "S", "SK": f"{i:04d}"} for i in range(200)])
        leaks = LeakCheck(db)
        try:
            rng = random.Random("cancel stream")
            received = []
            first = asyncio.Event()

            async def consume() -> None:
                stream = db.stream(name, poll_interval=0.01)
                async with stream.records() as records:
                    async for record in records:
                        received.append(record)
                        first.set()

            for delay in [0.0, *(rng.uniform(0.0, 1.0) for _ in range(POINTS - 1))]:
                assert await _cancel_at(consume(), delay)
                await leaks.check(f"stream consumer cancelled after {delay * 1000:.1f} ms")
            # And once records are surely flowing.
            first.clear()
            task = asyncio.ensure_future(consume())
            await asyncio.wait_for(first.wait(), 20)
            task.cancel()
            await asyncio.wait([task], timeout=10)
            assert task.cancelled()
            await leaks.check("stream consumer cancelled while records flow")
            assert received
            assert await table.get({"PK": "S", "SK": "0001"}) is not None
        finally:
            leaks.close()
            await db.delete_table(name, wait=False)
