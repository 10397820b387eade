"""The item cache on moto and dynalite: hits send nothing (counted in ``stats().requests``),
every write path through the client invalidates, consistent reads bypass, misses join
coalesced batches, entity reads come through it, and (moto) a stream invalidates what
another process wrote."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from asyncdyn import (
    Attr,
    Client,
    ConditionalCheckFailed,
    ItemCache,
    Key,
    RetryPolicy,
    Table,
)
from asyncdyn.local import LocalServer
from asyncdyn.model import Repository
from tests.integration.test_model import bound, order
from tests.model_shop import Order, shop

MakeTable = Callable[..., Awaitable[Table]]
KEY = {"PK": "CUSTOMER#1", "SK": "PROFILE"}


def cached_client(server: LocalServer, cache: ItemCache, **options: bool) -> Client:
    return Client(
        region="us-east-1",
        endpoint_url=server.endpoint_url,
        credentials=("testing", "testing"),
        retry=RetryPolicy(deadline=60.0),
        cache=cache,
        **options,
    )


@pytest.fixture
async def cdb(server: LocalServer) -> AsyncIterator[Client]:
    async with cached_client(server, ItemCache(max_items=1000, ttl=60.0)) as client:
        yield client


def requests(db: Client) -> int:
    return db.stats().total_requests


async def test_hits_send_no_request(cdb: Client, table: Table) -> None:
    cached = cdb.table(table.name)
    await table.put({**KEY, "name": "Ada"})
    before = requests(cdb)
    for _ in range(5):
        assert await cached.get(KEY) == {**KEY, "name": "Ada"}
    assert await cached.get({"PK": "CUSTOMER#2", "SK": "PROFILE"}) is None
    assert await cached.get({"PK": "CUSTOMER#2", "SK": "PROFILE"}) is None
    assert requests(cdb) - before == 2  # one GetItem per key, the rest from memory
    stats = cdb.stats()
    assert (stats.cache_hits, stats.cache_misses) == (5, 2)


async def test_batch_get_mixes_hits_and_misses(cdb: Client, table: Table) -> None:
    await table.batch_write(puts=[{"PK": f"P{n}", "SK": "S", "n": n} for n in range(150)])
    cached = cdb.table(table.name)
    keys = [{"PK": f"P{n}", "SK": "S"} for n in range(0, 150, 2)]
    first = await cached.batch_get(keys)
    assert first == [{"PK": f"P{n}", "SK": "S", "n": n} for n in range(0, 150, 2)]
    before = cdb.stats().requests.get("BatchGetItem", 0)
    everything = [{"PK": f"P{n}", "SK": "S"} for n in range(150)] + [{"PK": "none", "SK": "S"}]
    got = await cached.batch_get(everything)
    assert got == [{"PK": f"P{n}", "SK": "S", "n": n} for n in range(150)] + [None]
    # 76 misses (the odd keys and "none"): one request, where 151 keys would take two.
    assert cdb.stats().requests.get("BatchGetItem", 0) - before == 1
    assert await cached.batch_get(everything) == got
    assert cdb.stats().requests.get("BatchGetItem", 0) - before == 1


async def test_consistent_reads_bypass_and_refresh(cdb: Client, db: Client, table: Table) -> None:
    cached = cdb.table(table.name)
    await table.put({**KEY, "v": 1})
    assert await cached.get(KEY) == {**KEY, "v": 1}
    await table.put({**KEY, "v": 2})  # another client: this cache cannot know
    assert await cached.get(KEY) == {**KEY, "v": 1}
    before = requests(cdb)
    assert await cached.get(KEY, consistent=True) == {**KEY, "v": 2}
    assert requests(cdb) - before == 1
    assert await cached.get(KEY) == {**KEY, "v": 2}  # refreshed by the consistent read
    assert requests(cdb) - before == 1


async def test_every_write_path_invalidates(cdb: Client, db: Client, table: Table) -> None:
    cached = cdb.table(table.name)

    async def check(expected: object) -> None:
        """The cached client sees what the server holds (read by the other client)."""
        assert await table.get(KEY, consistent=True) == expected
        assert await cached.get(KEY) == expected

    await check(None)
    await cached.put({**KEY, "v": 1})
    await check({**KEY, "v": 1})
    await cached.update(KEY, Attr("v").add(1))
    await check({**KEY, "v": 2})
    with pytest.raises(ConditionalCheckFailed):
        await cached.put({**KEY, "v": 9}, condition=Attr("v").not_exists())
    await check({**KEY, "v": 2})
    await cached.put_versioned({**KEY, "v": 3})
    await check({**KEY, "v": 3, "version": 1})
    await cached.modify(KEY, lambda item: {**KEY, "v": 4})
    await check({**KEY, "v": 4, "version": 2})
    await cached.delete(KEY)
    await check(None)
    await cached.batch_write(puts=[{**KEY, "v": 5}])
    await check({**KEY, "v": 5})
    await cached.batch_write(deletes=[KEY])
    await check(None)
    async with cached.writer() as w:
        await w.put({**KEY, "v": 6})
    await check({**KEY, "v": 6})
    async with cached.writer() as w:
        await w.delete(KEY)
    await check(None)
    await cdb.call(
        "PutItem",
        {"TableName": table.name, "Item": {"PK": {"S": KEY["PK"]}, "SK": {"S": "PROFILE"}}},
    )
    await check(KEY)


@pytest.mark.moto_only
async def test_transactions_invalidate(cdb: Client, table: Table) -> None:
    cached = cdb.table(table.name)
    other = {"PK": "CUSTOMER#1", "SK": "OTHER"}
    await cached.put({**KEY, "v": 1})
    await cached.put({**other, "v": 1})
    assert await cached.get(KEY) == {**KEY, "v": 1}
    assert await cached.get(other) == {**other, "v": 1}
    await cdb.transact_write([cached.tx_put({**KEY, "v": 2}), cached.tx_delete(other)])
    assert await cached.get(KEY) == {**KEY, "v": 2}
    assert await cached.get(other) is None
    await cached.update(KEY, Attr("v").add(1), idempotent=True)  # a one-action transaction
    assert await cached.get(KEY) == {**KEY, "v": 3}


async def test_misses_join_coalesced_batches(server: LocalServer, table: Table) -> None:
    await table.batch_write(puts=[{"PK": f"P{n}", "SK": "S", "n": n} for n in range(50)])
    async with cached_client(server, ItemCache(), coalesce_gets=True) as db:
        cached = db.table(table.name)
        await asyncio.gather(*(cached.get({"PK": f"P{n}", "SK": "S"}) for n in range(0, 50, 2)))
        got = await asyncio.gather(*(cached.get({"PK": f"P{n}", "SK": "S"}) for n in range(50)))
        assert got == [{"PK": f"P{n}", "SK": "S", "n": n} for n in range(50)]
        stats = db.stats()
        assert stats.requests == {"BatchGetItem": 2}  # the second round sent only 25 misses
        assert (stats.cache_hits, stats.cache_misses, stats.coalesced_gets) == (25, 50, 50)


@pytest.fixture
async def cached_repo(server: LocalServer) -> AsyncIterator[tuple[Client, Repository]]:
    async with cached_client(server, ItemCache()) as db:
        async for repo in bound(db, shop):
            yield db, repo


async def test_entity_reads_go_through_the_cache(
    cached_repo: tuple[Client, Repository],
) -> None:
    db, repo = cached_repo
    await repo.put(order(1))
    await repo.put(order(2))
    before = requests(db)
    for _ in range(3):
        assert await repo.get(Order, customer_id="123", order_id="001") == order(1)
    refs = [Order.ref(customer_id="123", order_id=f"{n:03d}") for n in (1, 2, 3)]
    assert await repo.batch_get(refs) == [order(1), order(2), None]
    assert await repo.batch_get(refs) == [order(1), order(2), None]
    assert requests(db) - before == 2  # one GetItem, one BatchGetItem of the two misses
    await repo.put(order(1, "SHIPPED"))
    got = await repo.get(Order, customer_id="123", order_id="001")
    assert got is not None and got.status == "SHIPPED"


async def invalidated_since(cache: ItemCache, seen: int) -> None:
    """Wait (up to 20 s) until the cache has counted an invalidation after ``seen``."""
    for _ in range(1000):
        if cache.counters.invalidations > seen:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the stream invalidated nothing in 20 s")


@pytest.mark.moto_only
async def test_a_stream_invalidates_what_another_process_wrote(
    server: LocalServer, db: Client, make_table: MakeTable
) -> None:
    table = await make_table(stream="KEYS_ONLY")
    cache = ItemCache()
    async with cached_client(server, cache) as cdb:
        cached = cdb.table(table.name)
        await table.put({**KEY, "v": 1})  # written by the other client
        assert await cached.get(KEY) == {**KEY, "v": 1}
        follower = asyncio.create_task(
            cache.follow(cdb.stream(table.name, start="trim_horizon", poll_interval=0.02))
        )
        try:
            seen = cache.counters.invalidations
            await invalidated_since(cache, seen)  # the INSERT, replayed from the horizon
            assert await cached.get(KEY) == {**KEY, "v": 1}  # refilled
            seen = cache.counters.invalidations
            await table.put({**KEY, "v": 2})
            await invalidated_since(cache, seen)
            assert await cached.get(KEY) == {**KEY, "v": 2}
            assert cdb.stats().cache_invalidations >= 2
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)


async def test_queries_are_never_cached(cdb: Client, table: Table) -> None:
    cached = cdb.table(table.name)
    await table.put({**KEY, "v": 1})
    assert [i async for i in cached.query(Key("PK").eq(KEY["PK"]))] == [{**KEY, "v": 1}]
    await table.put({**KEY, "v": 2})
    assert [i async for i in cached.query(Key("PK").eq(KEY["PK"]))] == [{**KEY, "v": 2}]
    assert cdb.stats().cache_hits == 0


DOCS = Path(__file__).resolve().parents[2] / "docs" / "cache.md"


def docs_example(n: int, server: LocalServer, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run python block ``n`` of docs/cache.md as a reader would, against ``server``: their
    endpoint, and a table name of this test's own (dynalite cannot be reset)."""
    blocks = re.findall(r"^```python\n(.*?)^```", DOCS.read_text(), re.S | re.M)
    code = blocks[n]
    table = f"t-{uuid.uuid4().hex[:16]}"
    code = code.replace("http://localhost:8000", server.endpoint_url).replace('"Shop"', repr(table))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(DOCS.parents[1])  # this checkout's asyncdyn
    env["HOME"] = str(tmp_path)
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_docs_example_runs(server: LocalServer, tmp_path: Path) -> None:
    done = docs_example(0, server, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "'price': 20" in done.stdout


@pytest.mark.moto_only
def test_the_docs_stream_example_runs(server: LocalServer, tmp_path: Path) -> None:
    done = docs_example(1, server, tmp_path)
    assert done.returncode == 0, done.stderr


async def test_a_design_gets_a_cache_through_its_table(db: Client) -> None:
    name = f"t-{uuid.uuid4().hex[:16]}"
    cache = ItemCache()
    db.table(name, cache=cache)  # the client has none; this table does
    repo = shop.bind(db, table=name)
    await repo.create_table()
    try:
        await repo.put(order(1))
        before = requests(db)
        for _ in range(3):
            assert await repo.get(Order, customer_id="123", order_id="001") == order(1)
        assert requests(db) - before == 1
        assert (cache.counters.hits, db.stats().cache_hits) == (2, 2)
    finally:
        await db.delete_table(name, wait=False)


async def test_get_and_batch_get_share_entries_of_compressed_attributes(
    cdb: Client, table: Table
) -> None:
    # Whichever read filled the entry, both kinds of read return the values as written.
    from asyncdyn import LargeAttributes

    cached = cdb.table(table.name, large=LargeAttributes(compress={"body", "blob"}))
    text, data = "a line of text\n" * 300, b"\x00\x01 some bytes " * 300
    for n, reads in enumerate((("batch_get", "get"), ("get", "batch_get"))):
        key = {"PK": f"DOC#{n}", "SK": "V"}
        written = {**key, "body": text, "blob": data}
        await cached.put(written)
        before = requests(cdb)
        for read in reads:
            if read == "get":
                assert await cached.get(key) == written, reads
            else:
                assert await cached.batch_get([key]) == [written], reads
        assert requests(cdb) - before == 1  # the second read was a hit
