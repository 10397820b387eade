"""The batch engine against real servers, through injected faults: nothing lost, nothing
duplicated, nothing altered.

The FaultInjector sits between the client and the real transport: it answers some requests
with throttling errors or 5xx itself, and leaves a fraction of every BatchGetItem /
BatchWriteItem unprocessed (forwarding only what it reports as processed), which no
emulator does on its own.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any

import pytest

from asyncdyn import (
    Client,
    InvalidItem,
    RetryPolicy,
    Table,
    UnprocessedItemsError,
    UnprocessedKeysError,
)
from asyncdyn.local import LocalServer
from asyncdyn.testing import FaultInjector
from asyncdyn.transport import AiohttpTransport, HttpResponse

from .conftest import MakeTable

# Under these faults a one-item remainder fails 55 % of its attempts (throttled, 5xx or
# left unprocessed): 30 attempts make exhausting one chance in 10^8. Short waits keep the
# suite fast.
FAULT_RETRY = RetryPolicy(max_attempts=30, base=0.002, cap=0.05, deadline=240.0)
FAULTS: dict[str, Any] = {"unprocessed": 0.4, "throttle": 0.2, "server_error": 0.05}


def _client(server: LocalServer, injector: FaultInjector, **options: Any) -> Client:
    return Client(
        region="us-east-1",
        endpoint_url=server.endpoint_url,
        credentials=("testing", "testing"),
        transport=injector,
        **options,
    )


@pytest.fixture
async def faulty(server: LocalServer) -> AsyncIterator[tuple[Client, FaultInjector]]:
    """A client whose every request goes through a fault injector (off until enabled).

    The adaptive rate is off: it would rightly slow down a table that keeps throttling,
    but these faults come at a fixed rate whatever the load, so it would only make the
    test slow; ``test_adaptive_rate_under_throttling`` covers it.
    """
    injector = FaultInjector(AiohttpTransport(server.endpoint_url), seed=1234, **FAULTS)
    injector.enabled = False
    async with _client(server, injector, retry=FAULT_RETRY, adaptive_rate=False) as client:
        yield client, injector


async def _load(table: Table, items: list[dict[str, Any]]) -> None:
    """Seed without faults, one PutItem at a time (independent of the code under test)."""
    limit = asyncio.Semaphore(16)

    async def put(item: dict[str, Any]) -> None:
        async with limit:
            await table.put(item)

    await asyncio.gather(*(put(item) for item in items))


async def _contents(table: Table) -> dict[tuple[str, str], dict[str, Any]]:
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    async for item in table.scan(consistent=True):
        key = (item["PK"], item["SK"])
        assert key not in by_key, f"scan returned {key} twice"
        by_key[key] = item
    return by_key


async def test_batch_get_through_faults_equals_a_loop_of_gets(
    faulty: tuple[Client, FaultInjector], make_table: MakeTable, db: Client
) -> None:
    client, injector = faulty
    await make_table()  # created through the plain client, used through the faulty one
    name = (await db.list_tables())[-1]
    rng = random.Random(7)
    present = [
        {"PK": f"P#{n % 40}", "SK": f"S#{n:05d}", "n": n, "pad": "x" * rng.randrange(1, 2000)}
        for n in range(2250)
    ]
    table = client.table(name)
    await _load(table, present)
    keys: list[dict[str, Any]] = [{"PK": item["PK"], "SK": item["SK"]} for item in present]
    keys += [{"PK": f"P#{n}", "SK": "MISSING"} for n in range(125)]  # 5 % missing
    keys += [dict(rng.choice(keys)) for _ in range(250)]  # 10 % duplicates
    rng.shuffle(keys)
    limit = asyncio.Semaphore(16)

    async def get(key: dict[str, Any]) -> dict[str, Any] | None:
        async with limit:
            return await table.get(key)

    expected = await asyncio.gather(*(get(key) for key in keys))  # one GetItem per key

    injector.enabled = True
    got = await table.batch_get(keys)
    injector.enabled = False

    assert got == expected
    assert sum(item is None for item in got) >= 125
    assert injector.injected["unprocessed_keys"] > 0
    assert injector.injected["throttle"] > 0 and injector.injected["server_error"] > 0


async def test_batch_write_through_faults_writes_exactly_the_input(
    faulty: tuple[Client, FaultInjector], make_table: MakeTable
) -> None:
    client, injector = faulty
    table = client.table((await make_table()).name)
    rng = random.Random(11)
    items: list[dict[str, Any]] = []
    for n in range(10_000):
        # Mostly small items, 1 % between 100 KB and 350 KB: a few chunks hit many MB.
        size = rng.randrange(100_000, 350_000) if n % 100 == 0 else rng.randrange(10, 3000)
        items.append(
            {
                "PK": f"P#{n % 97}",
                "SK": f"S#{n:06d}",
                "n": n,
                "price": Decimal(n) / 100,
                "body": rng.randbytes(size) if n % 2 else "y" * size,
                "tags": {f"t{n % 5}", "all"},
            }
        )
    injector.enabled = True
    await table.batch_write(puts=items)
    injector.enabled = False

    contents = await _contents(table)
    assert len(contents) == len(items)
    for item in items:
        assert contents[(item["PK"], item["SK"])] == item
    assert injector.injected["unprocessed_items"] > 0
    assert injector.injected["throttle"] > 0


async def test_exhausted_writes_report_exactly_what_is_missing(
    server: LocalServer, make_table: MakeTable
) -> None:
    name = (await make_table()).name
    injector = FaultInjector(AiohttpTransport(server.endpoint_url), seed=5, unprocessed=0.5)
    retry = RetryPolicy(max_attempts=2, base=0.0)
    async with _client(server, injector, retry=retry, adaptive_rate=False) as client:
        table = client.table(name)
        items = [{"PK": "P", "SK": f"S#{n:04d}", "n": n} for n in range(500)]
        with pytest.raises(UnprocessedItemsError) as raised:
            await table.batch_write(puts=items)
        injector.enabled = False
        missing = raised.value.puts
        assert 0 < len(missing) < len(items)
        assert raised.value.deletes == []
        contents = await _contents(table)
        written = {key[1] for key in contents}
        assert written.isdisjoint(item["SK"] for item in missing)
        assert written | {item["SK"] for item in missing} == {item["SK"] for item in items}

        with pytest.raises(UnprocessedKeysError) as raised_keys:
            injector.enabled = True
            await table.batch_get([{"PK": "P", "SK": f"S#{n:04d}"} for n in range(500)])
        injector.enabled = False
        error = raised_keys.value
        assert isinstance(error.partial, list) and isinstance(error.unprocessed, list)
        unanswered = {key["SK"] for key in error.unprocessed}
        assert 0 < len(unanswered) < 500
        for n, item in enumerate(error.partial):
            sk = f"S#{n:04d}"
            if sk in unanswered:
                assert item is None
            else:
                assert (item is not None) == (sk in written)


async def test_writer_shared_by_50_tasks(table: Table) -> None:
    async with table.writer() as w:

        async def worker(k: int) -> None:
            for n in range(100):
                await w.put({"PK": f"W#{k}", "SK": f"{n:03d}", "k": k, "n": n})

        await asyncio.gather(*(worker(k) for k in range(50)))
    assert w.stats.written == 5000 and w.stats.unprocessed == 0
    contents = await _contents(table)
    assert len(contents) == 5000
    assert all(item["n"] == int(item["SK"]) for item in contents.values())


async def test_writer_body_raising_still_writes_what_it_accepted(table: Table) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with table.writer() as w:
            for n in range(1000):
                await w.put({"PK": "B", "SK": f"{n:04d}"})
            raise Boom
    assert len(await _contents(table)) == 1000


async def test_writer_reports_bad_items_and_writes_the_others(table: Table) -> None:
    bad = {"PK": "X", "SK": "big", "blob": b"z" * 410_000}
    async with table.writer(skip_invalid=True) as w:
        await w.put({"PK": "X", "SK": "1"})
        await w.put(bad)
        await w.put({"PK": "X", "SK": "2", "nan": float("nan")})
        await w.put({"SK": "no partition key"})
        await w.put({"PK": "X", "SK": "3"})
    assert [r.position for r in w.rejected] == [1, 2, 3]
    assert all(isinstance(r.error, InvalidItem) for r in w.rejected)
    assert w.rejected[1].error.path == "[2].nan"
    assert set(await _contents(table)) == {("X", "1"), ("X", "3")}

    with pytest.raises(InvalidItem) as raised:
        await table.batch_write(puts=[{"PK": "Y", "SK": "1"}, bad])
    assert raised.value.path == "puts[1]"
    assert ("Y", "1") not in await _contents(table)  # nothing was sent


async def test_cancelling_a_big_batch_get_leaves_nothing_running(
    faulty: tuple[Client, FaultInjector], table: Table
) -> None:
    client, injector = faulty
    injector.enabled = True  # slow it down so that it is surely running when cancelled
    injector.throttle = 0.0
    keys = [{"PK": "C", "SK": f"{n:05d}"} for n in range(10_000)]
    before = asyncio.all_tasks()
    task = asyncio.create_task(client.table(table.name).batch_get(keys))
    for _ in range(2000):  # until the first requests are out
        if injector.forwarded >= 5:
            break
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - before - {asyncio.current_task()} == set()
    injector.enabled = False
    await client.table(table.name).put({"PK": "C", "SK": "after"})
    assert await client.table(table.name).batch_get([{"PK": "C", "SK": "after"}]) == [
        {"PK": "C", "SK": "after"}
    ]


async def test_adaptive_rate_against_a_table_at_capacity(
    server: LocalServer, make_table: MakeTable
) -> None:
    """A table at capacity (well below what the server can do): the adaptive client
    completes with far fewer rejected requests than one that only backs off."""
    capacity = 250 if server.kind == "moto" else 800  # moto itself does ~1,000 items/s
    count = 4 * capacity
    wasted: dict[bool, int] = {}
    for adaptive in (False, True):
        name = (await make_table()).name
        injector = FaultInjector(AiohttpTransport(server.endpoint_url), capacity=capacity)
        retry = RetryPolicy(max_attempts=30, deadline=120.0)
        # A modest window: everything sent before the first answer is sent blind.
        async with _client(
            server, injector, retry=retry, adaptive_rate=adaptive, max_concurrency=8
        ) as client:
            table = client.table(name)
            await table.key_schema()
            await asyncio.sleep(1.0)  # let the simulated table's burst refill
            await table.batch_write(puts=[{"PK": "R", "SK": f"{n:05d}"} for n in range(count)])
            injector.enabled = False
            assert len(await _contents(table)) == count
            wasted[adaptive] = (
                25 * injector.injected["throttle"] + injector.injected["unprocessed_items"]
            )
            rate = client._batch.rate(name, "write")
            assert (rate is not None) == adaptive
    assert wasted[True] * 2 < wasted[False], wasted


async def test_client_batch_get_across_tables(db: Client, make_table: MakeTable) -> None:
    first, second = await make_table(), await make_table(partition_key=("id", "N"), sort_key=None)
    await first.batch_write(puts=[{"PK": "A", "SK": str(n)} for n in range(30)])
    await second.batch_write(puts=[{"id": n, "v": n * 2} for n in range(30)])
    got = await db.batch_get(
        {
            first.name: [{"PK": "A", "SK": "3"}, {"PK": "A", "SK": "missing"}],
            second.name: [{"id": 5}, {"id": Decimal("7.0")}, {"id": 99}],
        }
    )
    assert got == {
        first.name: [{"PK": "A", "SK": "3"}, None],
        second.name: [{"id": 5, "v": 10}, {"id": 7, "v": 14}, None],
    }


async def test_batch_write_deletes_and_last_one_wins(table: Table) -> None:
    await table.batch_write(puts=[{"PK": "D", "SK": str(n), "v": 0} for n in range(60)])
    await table.batch_write(
        puts=[{"PK": "D", "SK": "100", "v": 1}, {"PK": "D", "SK": "100", "v": 2}],
        deletes=[{"PK": "D", "SK": str(n)} for n in range(0, 60, 2)] + [{"PK": "D", "SK": "1"}],
    )
    contents = await _contents(table)
    assert set(contents) == {("D", str(n)) for n in range(3, 60, 2)} | {("D", "100")}
    assert contents[("D", "100")]["v"] == 2


async def test_batch_get_iter_streams_every_pair(table: Table) -> None:
    await table.batch_write(puts=[{"PK": "I", "SK": f"{n:04d}"} for n in range(1000)])
    keys = [{"PK": "I", "SK": f"{n:04d}"} for n in range(1100)]
    seen: dict[str, Any] = {}
    async for key, item in table.batch_get_iter(keys, window=2, attributes=["SK"]):
        seen[key["SK"]] = item
    assert len(seen) == 1100
    assert all(seen[f"{n:04d}"] == {"SK": f"{n:04d}"} for n in range(1000))
    assert all(seen[f"{n:04d}"] is None for n in range(1000, 1100))


# ---------------------------------------------------- cancelled writers, superseded failures


class LateAnswers:
    """Forwards each BatchWriteItem at once (the server applies it) and holds its answer
    back while ``hold`` is set: what a slow network does to a writer that gets cancelled."""

    def __init__(self, inner: AiohttpTransport) -> None:
        self.inner = inner
        self.hold = True
        self.forwarded: list[bytes] = []

    async def send(self, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        response = await self.inner.send(headers, body)
        if self.hold and headers["X-Amz-Target"].endswith("BatchWriteItem"):
            self.forwarded.append(body)
            await asyncio.sleep(30)
        return response

    async def close(self) -> None:
        await self.inner.close()


async def test_a_writer_timed_out_while_draining_reports_what_it_did_not_write(
    server: LocalServer, make_table: MakeTable, db: Client
) -> None:
    table = await make_table()
    late = LateAnswers(AiohttpTransport(server.endpoint_url))
    async with Client(
        region="us-east-1",
        endpoint_url=server.endpoint_url,
        credentials=("testing", "testing"),
        transport=late,
    ) as client:
        slow = client.table(table.name)
        items = [{"PK": "C", "SK": f"{n:03d}", "n": n} for n in range(60)]
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.0):
                async with slow.writer(max_in_flight=2) as w:
                    for item in items:
                        await w.put(item)
    report = w.unwritten
    assert report is not None
    assert sorted(p["SK"] for p in report.puts) == [item["SK"] for item in items]
    assert len(late.forwarded) == 2
    # The two chunks that reached the server are there, their answers never came: reported
    # as maybe written. The last ten never left and are not there.
    contents = await _contents(table)
    maybe = sorted(p["SK"] for p in report.maybe_puts)
    assert maybe == sorted(sk for _, sk in contents) and len(maybe) == 50
    assert w.stats.unprocessed == 60 and w.stats.written == 0
    await table.batch_write(puts=report.puts)  # resending is safe and completes the load
    assert {key: value["n"] for key, value in (await _contents(table)).items()} == {
        ("C", item["SK"]): item["n"] for item in items
    }


async def test_failures_replaced_by_later_requests_are_never_reported(
    server: LocalServer, make_table: MakeTable, db: Client
) -> None:
    table = await make_table()
    await table.put({"PK": "R", "SK": "deleted-then-put", "v": 0})
    injector = FaultInjector(AiohttpTransport(server.endpoint_url), unprocessed=1.0)
    retry = RetryPolicy(max_attempts=2, base=0.0)
    async with _client(server, injector, retry=retry, adaptive_rate=False) as client:
        faulty = client.table(table.name)
        injector.enabled = False
        async with faulty.writer() as w:
            injector.enabled = True
            await w.put({"PK": "R", "SK": "put-then-put", "v": 1})
            await w.delete({"PK": "R", "SK": "deleted-then-put"})
            await w.flush()  # both fail: every request is left unprocessed
            injector.enabled = False
            await w.put({"PK": "R", "SK": "put-then-put", "v": 2})
            await w.put({"PK": "R", "SK": "deleted-then-put", "v": 3})
        assert w.unwritten is None
        assert (w.stats.written, w.stats.unprocessed, w.stats.superseded) == (2, 0, 2)

        # batch_write with duplicate keys, everything failing: only the last request of each
        # key is reported, and resending the report gives what was asked.
        puts = [{"PK": "B", "SK": f"{n:02d}", "v": 1} for n in range(30)]
        injector.enabled = True
        with pytest.raises(UnprocessedItemsError) as raised:
            await faulty.batch_write(puts=puts, deletes=[{"PK": "B", "SK": "00"}])
        injector.enabled = False
    report = raised.value
    assert sorted(p["SK"] for p in report.puts) == [f"{n:02d}" for n in range(1, 30)]
    assert report.deletes == [{"PK": "B", "SK": "00"}]
    await table.batch_write(puts=report.puts, deletes=report.deletes)
    contents = await _contents(table)
    assert {key: item["v"] for key, item in contents.items() if key[0] == "R"} == {
        ("R", "put-then-put"): 2,
        ("R", "deleted-then-put"): 3,
    }
    assert sorted(sk for pk, sk in contents if pk == "B") == [f"{n:02d}" for n in range(1, 30)]
