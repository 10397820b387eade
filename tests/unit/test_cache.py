"""The item cache: LRU and TTL on a fake clock, negative entries, the generation that keeps a
read racing a write from filling a stale value, and its wiring into a client (scripted
transport: every request the cache saves is a request not in ``transport.operations``)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
import pytest

from asyncdyn import (
    AsyncDynError,
    Attr,
    Client,
    ConfigurationError,
    InvalidItem,
    ItemCache,
    RetryPolicy,
    TransportError,
    UnprocessedItemsError,
)
from asyncdyn.cache import copy_item, table_of
from asyncdyn.streams import Record
from asyncdyn.testing import ScriptedTransport, answer, error
from asyncdyn.transport import HttpResponse


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ident(pk: str) -> tuple[str, ...]:
    return (pk,)


# -- the cache on its own -------------------------------------------------------------------


def test_an_entry_is_served_until_its_ttl_passes() -> None:
    clock = FakeClock()
    cache = ItemCache(max_items=10, ttl=5.0, clock=clock)
    cache.fill("T", ident("a"), {"PK": "a", "v": 1}, cache.token())
    clock.now += 4.9
    assert cache.lookup("T", ident("a")) == (True, {"PK": "a", "v": 1})
    clock.now += 0.2
    assert cache.lookup("T", ident("a")) == (False, None)
    assert len(cache) == 0  # an expired entry is dropped when found
    assert (cache.counters.hits, cache.counters.misses) == (1, 1)


def test_the_least_recently_used_entry_is_evicted_at_max_items() -> None:
    cache = ItemCache(max_items=3, ttl=60.0, clock=FakeClock())
    for pk in "abc":
        cache.fill("T", ident(pk), {"PK": pk}, cache.token())
    assert cache.lookup("T", ident("a"))[0]  # a is now the most recent; b the least
    cache.fill("T", ident("d"), {"PK": "d"}, cache.token())
    assert len(cache) == 3
    assert [cache.lookup("T", ident(pk))[0] for pk in "abcd"] == [True, False, True, True]
    assert cache.counters.evictions == 1


def test_absent_items_are_remembered_unless_negative_is_off() -> None:
    cache = ItemCache(ttl=1.0, clock=FakeClock())
    cache.fill("T", ident("gone"), None, cache.token())
    assert cache.lookup("T", ident("gone")) == (True, None)
    positive = ItemCache(ttl=1.0, negative=False, clock=FakeClock())
    positive.fill("T", ident("gone"), None, positive.token())
    assert positive.lookup("T", ident("gone")) == (False, None)


def test_a_fill_begun_before_an_invalidation_is_dropped() -> None:
    cache = ItemCache(clock=FakeClock())
    token = cache.token()  # a read is sent...
    cache.invalidate("T", {"PK": "a"})  # ...a write of the same key starts...
    cache.fill("T", ident("a"), {"PK": "a", "v": "old"}, token)  # ...the read comes back
    assert cache.lookup("T", ident("a")) == (False, None)
    # Another key is not affected, and a read begun after the invalidation fills.
    cache.fill("T", ident("b"), {"PK": "b"}, token)
    cache.fill("T", ident("a"), {"PK": "a", "v": "new"}, cache.token())
    assert cache.lookup("T", ident("a")) == (True, {"PK": "a", "v": "new"})
    assert cache.lookup("T", ident("b")) == (True, {"PK": "b"})


def test_the_invalidation_log_is_bounded_and_stays_safe() -> None:
    cache = ItemCache(max_items=2, clock=FakeClock())
    token = cache.token()
    for pk in "abcd":  # a and b are pushed out of the bounded log
        cache.invalidate("T", {"PK": pk})
    assert len(cache._invalidated) == 2
    cache.fill("T", ident("a"), {"PK": "a"}, token)  # still refused: older than the floor
    assert cache.lookup("T", ident("a")) == (False, None)


def test_equal_numbers_are_one_key() -> None:
    cache = ItemCache(clock=FakeClock())
    cache.fill("T", ("\x00N1",), {"id": 1}, cache.token())
    cache.invalidate("T", {"id": 1.0})
    assert len(cache) == 0


def test_tables_are_kept_apart_and_dropped_whole() -> None:
    cache = ItemCache(clock=FakeClock())
    cache.fill("A", ident("k"), {"PK": "k"}, cache.token())
    cache.fill("B", ident("k"), {"PK": "k"}, cache.token())
    cache.invalidate_table("A")
    assert cache.lookup("A", ident("k"))[0] is False
    assert cache.lookup("B", ident("k"))[0] is True
    cache.clear()
    assert len(cache) == 0


def test_callers_never_share_the_cached_dict() -> None:
    cache = ItemCache(clock=FakeClock())
    item = {"PK": "a", "tags": {"x"}, "list": [{"n": 1}], "raw": b"\x00"}
    cache.fill("T", ident("a"), item, cache.token())
    item["tags"].add("y")  # the filler's copy changes
    _, got = cache.lookup("T", ident("a"))
    assert got is not None
    got["list"][0]["n"] = 2  # and so does a reader's
    assert cache.lookup("T", ident("a"))[1] == {
        "PK": "a",
        "tags": {"x"},
        "list": [{"n": 1}],
        "raw": b"\x00",
    }
    assert copy_item([1, {"a": [2]}]) == [1, {"a": [2]}]


def test_bad_configuration_and_bad_keys_are_refused() -> None:
    for bad in ({"max_items": 0}, {"max_items": True}, {"ttl": 0}, {"ttl": "1"}):
        with pytest.raises(ConfigurationError):
            ItemCache(**bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidItem, match="PK"):
        ItemCache().invalidate("T", {"PK": ""})


def test_invalidate_from_a_stream_record_and_table_of_an_arn() -> None:
    cache = ItemCache(clock=FakeClock())
    cache.fill("T", ("a", "1"), {"PK": "a", "SK": "1"}, cache.token())
    record = Record("MODIFY", {"SK": "1", "PK": "a"}, None, None, "1", "shard", None, "KEYS_ONLY")
    cache.invalidate_from(record, table="T")
    assert len(cache) == 0
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/Orders/stream/2026-01-01T00:00:00.000"
    assert table_of(arn) == "Orders" and table_of("Orders") == "Orders"


# -- wired into a client ------------------------------------------------------------------


class Store:
    """A one-table DynamoDB (key ``PK``) answering the operations the cache meets."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {
            f"k{n}": {"PK": {"S": f"k{n}"}, "v": {"N": str(n)}} for n in range(10)
        }

    def __call__(self, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        operation = headers["X-Amz-Target"].rpartition(".")[2]
        request = orjson.loads(body)
        if operation == "GetItem":
            item = self.items.get(request["Key"]["PK"]["S"])
            return answer({} if item is None else {"Item": item})
        if operation == "BatchGetItem":
            keys = [k["PK"]["S"] for k in request["RequestItems"]["T"]["Keys"]]
            found = [self.items[k] for k in keys if k in self.items]
            return answer({"Responses": {"T": found}, "UnprocessedKeys": {}})
        if operation == "PutItem":
            self.items[request["Item"]["PK"]["S"]] = request["Item"]
        elif operation == "DeleteItem":
            self.items.pop(request["Key"]["PK"]["S"], None)
        elif operation == "UpdateItem":
            key = request["Key"]["PK"]["S"]
            self.items[key] = {**self.items.get(key, request["Key"]), "v": {"N": "99"}}
        elif operation == "BatchWriteItem":
            for write in request["RequestItems"]["T"]:
                if "PutRequest" in write:
                    self.items[write["PutRequest"]["Item"]["PK"]["S"]] = write["PutRequest"]["Item"]
                else:
                    self.items.pop(write["DeleteRequest"]["Key"]["PK"]["S"], None)
            return answer({"UnprocessedItems": {}})
        elif operation == "TransactWriteItems":
            for action in request["TransactItems"]:
                if "Put" in action:
                    self.items[action["Put"]["Item"]["PK"]["S"]] = action["Put"]["Item"]
                elif "Delete" in action:
                    self.items.pop(action["Delete"]["Key"]["PK"]["S"], None)
        else:
            return error("ValidationException", f"not scripted: {operation}")
        return answer({})


def make_client(transport: ScriptedTransport, cache: ItemCache | None, **options: Any) -> Client:
    return Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("AKIDEXAMPLE", "secret"),
        retry=RetryPolicy(max_attempts=2, base=0.0),
        transport=transport,
        cache=cache,
        **options,
    )


@pytest.fixture
def store(transport: ScriptedTransport) -> Store:
    transport.default = store = Store()
    return store


@pytest.fixture
async def cached(transport: ScriptedTransport, store: Store) -> AsyncIterator[Client]:
    async with make_client(transport, ItemCache(max_items=100, ttl=60.0)) as db:
        db.table("T", key=("PK",))
        yield db


async def test_a_second_get_is_served_without_a_request(
    cached: Client, transport: ScriptedTransport
) -> None:
    table = cached.table("T")
    first = await table.get({"PK": "k1"})
    second = await table.get({"PK": "k1"})
    assert first == second == {"PK": "k1", "v": 1} and first is not second
    assert await table.get({"PK": "nope"}) is None
    assert await table.get({"PK": "nope"}) is None  # a negative entry
    assert transport.operations == ["GetItem", "GetItem"]
    stats = cached.stats()
    assert (stats.cache_hits, stats.cache_misses) == (2, 2)
    assert stats.total_requests == 2


async def test_consistent_reads_bypass_and_refresh(
    cached: Client, transport: ScriptedTransport, store: Store
) -> None:
    table = cached.table("T")
    await table.get({"PK": "k1"})
    store.items["k1"] = {"PK": {"S": "k1"}, "v": {"N": "7"}}  # written by another process
    assert await table.get({"PK": "k1"}) == {"PK": "k1", "v": 1}  # stale until its ttl
    assert await table.get({"PK": "k1"}, consistent=True) == {"PK": "k1", "v": 7}
    assert await table.get({"PK": "k1"}) == {"PK": "k1", "v": 7}  # refreshed
    assert transport.operations == ["GetItem", "GetItem"]
    assert transport.payloads[1]["ConsistentRead"] is True


async def test_projected_reads_neither_use_nor_fill_the_cache(
    cached: Client, transport: ScriptedTransport
) -> None:
    table = cached.table("T")
    await table.get({"PK": "k1"})
    await table.get({"PK": "k1"}, attributes=["v"])
    await table.get({"PK": "k2"}, attributes=["v"])
    await table.get({"PK": "k2"})
    assert transport.operations == ["GetItem"] * 4


async def test_batch_get_sends_only_the_misses_and_stays_aligned(
    cached: Client, transport: ScriptedTransport
) -> None:
    table = cached.table("T")
    await table.get({"PK": "k1"})
    await table.get({"PK": "absent"})
    keys = [{"PK": "k1"}, {"PK": "k2"}, {"PK": "absent"}, {"PK": "k1"}, {"PK": "k3"}]
    got = await table.batch_get(keys)
    k1, k2, k3 = ({"PK": f"k{n}", "v": n} for n in (1, 2, 3))
    assert got == [k1, k2, None, k1, k3]
    assert got[0] is not got[3]
    sent = [k["PK"]["S"] for k in transport.payloads[-1]["RequestItems"]["T"]["Keys"]]
    assert sorted(sent) == ["k2", "k3"]
    # Everything is cached now: the same batch sends nothing.
    assert await table.batch_get(keys) == got
    assert transport.operations == ["GetItem", "GetItem", "BatchGetItem"]
    # The client-level batch_get of several tables uses each table's cache too.
    assert (await cached.batch_get({"T": keys}))["T"] == got
    assert transport.operations == ["GetItem", "GetItem", "BatchGetItem"]


async def test_every_write_path_invalidates(
    cached: Client, transport: ScriptedTransport, store: Store
) -> None:
    table = cached.table("T")

    async def warm(*pks: str) -> None:
        for pk in pks:
            await table.get({"PK": pk})

    async def fresh(pk: str) -> Any:
        before = len(transport.requests)
        item = await table.get({"PK": pk})
        assert len(transport.requests) == before + 1, f"{pk} was served stale"
        return item

    await warm("k1")
    await table.put({"PK": "k1", "v": 11})
    assert await fresh("k1") == {"PK": "k1", "v": 11}
    await table.update({"PK": "k1"}, Attr("v").set(99))
    assert await fresh("k1") == {"PK": "k1", "v": 99}
    await table.delete({"PK": "k1"})
    assert await fresh("k1") is None
    await warm("k2", "k3")
    await table.batch_write(puts=[{"PK": "k2", "v": 22}], deletes=[{"PK": "k3"}])
    assert await fresh("k2") == {"PK": "k2", "v": 22}
    assert await fresh("k3") is None
    await warm("k4")
    async with table.writer() as w:
        await w.put({"PK": "k4", "v": 44})
    assert await fresh("k4") == {"PK": "k4", "v": 44}
    await warm("k5", "k6")
    await cached.transact_write(
        [table.tx_put({"PK": "k5", "v": 55}), table.tx_delete({"PK": "k6"})]
    )
    assert await fresh("k5") == {"PK": "k5", "v": 55}
    assert await fresh("k6") is None
    await warm("k7")
    await cached.call("PutItem", {"TableName": "T", "Item": {"PK": {"S": "k7"}, "v": {"N": "7"}}})
    assert await fresh("k7") == {"PK": "k7", "v": 7}
    assert cached.stats().cache_invalidations >= 2 * 9


async def test_a_write_that_fails_still_invalidates(
    transport: ScriptedTransport, store: Store
) -> None:
    async with make_client(transport, ItemCache()) as db:
        table = db.table("T", key=("PK",))
        await table.get({"PK": "k1"})
        # The answer of a non-idempotent update is lost: it may have been applied.
        transport.steps = [TransportError("connection reset after sending")]
        with pytest.raises(Exception):  # noqa: B017 - OutcomeUnknown or TransportError
            await table.update({"PK": "k1"}, Attr("v").add(1))
        store.items["k1"] = {"PK": {"S": "k1"}, "v": {"N": "2"}}  # it was applied
        assert await table.get({"PK": "k1"}) == {"PK": "k1", "v": 2}


async def test_a_read_racing_a_write_does_not_refill_a_stale_value(
    transport: ScriptedTransport, store: Store
) -> None:
    release = asyncio.Event()
    read_sent = asyncio.Event()

    async def slow_get(headers: Mapping[str, str], body: bytes) -> HttpResponse:
        old = store(headers, body)  # read now, answered later
        read_sent.set()
        await release.wait()
        return old

    async with make_client(transport, ItemCache()) as db:
        table = db.table("T", key=("PK",))
        transport.steps = [slow_get]
        reader = asyncio.create_task(table.get({"PK": "k1"}))
        await read_sent.wait()
        await table.put({"PK": "k1", "v": 100})  # the write completes first
        release.set()
        assert await reader == {"PK": "k1", "v": 1}  # the reader sees what it read...
        assert await table.get({"PK": "k1"}) == {"PK": "k1", "v": 100}  # ...nobody else
        assert transport.operations == ["GetItem", "PutItem", "GetItem"]


async def test_a_cancelled_write_invalidates_after_too(
    transport: ScriptedTransport, store: Store
) -> None:
    sent = asyncio.Event()

    async def never(headers: Mapping[str, str], body: bytes) -> HttpResponse:
        store(headers, body)  # applied, but the answer never comes
        sent.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async with make_client(transport, ItemCache()) as db:
        table = db.table("T", key=("PK",))
        transport.steps = [never]
        writer = asyncio.create_task(table.put({"PK": "k1", "v": 5}))
        await sent.wait()
        # A read meanwhile fills the cache with the applied value or the old one...
        await table.get({"PK": "k1"})
        writer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writer
        # ...and the cancelled write drops it again: the next read goes to DynamoDB.
        before = len(transport.requests)
        assert await table.get({"PK": "k1"}) == {"PK": "k1", "v": 5}
        assert len(transport.requests) == before + 1


async def test_misses_join_the_coalesced_batch(transport: ScriptedTransport, store: Store) -> None:
    async with make_client(transport, ItemCache(), coalesce_gets=True) as db:
        table = db.table("T", key=("PK",))
        await table.get({"PK": "k1"})
        got = await asyncio.gather(*(table.get({"PK": f"k{n}"}) for n in range(5)))
        assert got == [{"PK": f"k{n}", "v": n} for n in range(5)]
        assert transport.operations == ["BatchGetItem", "BatchGetItem"]
        sent = [k["PK"]["S"] for k in transport.payloads[1]["RequestItems"]["T"]["Keys"]]
        assert sorted(sent) == ["k0", "k2", "k3", "k4"]  # k1 was a hit
        stats = db.stats()
        assert (stats.cache_hits, stats.cache_misses, stats.coalesced_gets) == (1, 5, 5)


async def test_a_table_may_have_its_own_cache_or_none(
    transport: ScriptedTransport, store: Store
) -> None:
    own = ItemCache()
    async with make_client(transport, None) as db:
        table = db.table("T", cache=own)
        await table.get({"PK": "k1"})
        await table.get({"PK": "k1"})
        assert transport.operations == ["GetItem"]
        assert db.stats().cache_hits == 1
        db.table("T", cache=False)
        await table.get({"PK": "k1"})
        assert transport.operations == ["GetItem", "GetItem"]
        with pytest.raises(ConfigurationError):
            db.table("T", cache="yes")  # type: ignore[arg-type]


async def test_hidden_expired_items_are_hidden_on_a_hit(
    cached: Client, transport: ScriptedTransport, store: Store
) -> None:
    store.items["old"] = {"PK": {"S": "old"}, "ttl": {"N": "1"}}
    table = cached.table("T")
    assert await table.get({"PK": "old"}) == {"PK": "old", "ttl": 1}
    table.hide_expired("ttl")
    assert await table.get({"PK": "old"}) is None  # served from the cache, still hidden
    assert transport.operations == ["GetItem"]
    table.hide_expired(None)


async def test_an_ambiguous_batch_write_or_transaction_still_invalidates(
    transport: ScriptedTransport, store: Store
) -> None:
    def applied_but_lost(headers: Mapping[str, str], body: bytes) -> HttpResponse:
        store(headers, body)
        raise TransportError("connection reset after sending")

    async with make_client(transport, ItemCache()) as db:
        table = db.table("T", key=("PK",))
        for pk in ("k1", "k2"):
            await table.get({"PK": pk})
        transport.steps = [applied_but_lost, applied_but_lost]
        with pytest.raises(UnprocessedItemsError) as caught:
            await table.batch_write(puts=[{"PK": "k1", "v": 10}])
        assert caught.value.maybe_puts == [{"PK": "k1", "v": 10}]
        assert await table.get({"PK": "k1"}) == {"PK": "k1", "v": 10}
        transport.steps = [applied_but_lost, applied_but_lost]
        with pytest.raises(AsyncDynError):
            await db.transact_write([table.tx_put({"PK": "k2", "v": 20})])
        assert await table.get({"PK": "k2"}) == {"PK": "k2", "v": 20}
        assert transport.operations.count("GetItem") == 4


async def test_a_raw_partiql_write_drops_every_entry(
    cached: Client, transport: ScriptedTransport
) -> None:
    table = cached.table("T")
    await table.get({"PK": "k1"})
    transport.steps = [answer({"Items": []}), answer({})]
    await cached.call("ExecuteStatement", {"Statement": "SELECT * FROM T"})
    await table.get({"PK": "k1"})  # a read left it alone
    await cached.call("ExecuteStatement", {"Statement": "UPDATE T SET v = 5 WHERE PK = 'k1'"})
    await table.get({"PK": "k1"})
    assert transport.operations == ["GetItem", "ExecuteStatement", "ExecuteStatement", "GetItem"]


async def test_concurrent_misses_of_one_key_share_one_request(
    cached: Client, transport: ScriptedTransport
) -> None:
    table = cached.table("T")
    got = await asyncio.gather(*(table.get({"PK": "k1"}) for _ in range(5)))
    assert got == [{"PK": "k1", "v": 1}] * 5
    assert len({id(item) for item in got}) == 5  # each caller its own dict
    assert transport.operations == ["GetItem"]
    assert (cached.stats().cache_hits, cached.stats().cache_misses) == (0, 5)


async def test_a_miss_after_a_write_began_does_not_join_the_older_read(
    transport: ScriptedTransport, store: Store
) -> None:
    release = asyncio.Event()

    async def slow_get(headers: Mapping[str, str], body: bytes) -> HttpResponse:
        old = store(headers, body)
        await release.wait()
        return old

    async with make_client(transport, ItemCache()) as db:
        table = db.table("T", key=("PK",))
        transport.steps = [slow_get]
        first = asyncio.create_task(table.get({"PK": "k1"}))
        await asyncio.sleep(0.01)  # its GetItem is on its way
        await table.put({"PK": "k1", "v": 2})
        second = await table.get({"PK": "k1"})  # must see the write: a request of its own
        release.set()
        assert await first == {"PK": "k1", "v": 1}
        assert second == {"PK": "k1", "v": 2}
        assert transport.operations == ["GetItem", "PutItem", "GetItem"]


async def test_followers_of_a_failed_or_cancelled_read_fetch_on_their_own(
    transport: ScriptedTransport, store: Store
) -> None:
    started = asyncio.Event()

    async def hang(headers: Mapping[str, str], body: bytes) -> HttpResponse:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async with make_client(transport, ItemCache()) as db:
        table = db.table("T", key=("PK",))
        transport.steps = [hang]
        leader = asyncio.create_task(table.get({"PK": "k1"}))
        await started.wait()
        follower = asyncio.create_task(table.get({"PK": "k1"}))
        await asyncio.sleep(0)
        leader.cancel()
        assert await follower == {"PK": "k1", "v": 1}
        with pytest.raises(asyncio.CancelledError):
            await leader
        transport.steps = [error("ValidationException", "refused once")]
        got = await asyncio.gather(
            table.get({"PK": "k2"}), table.get({"PK": "k2"}), return_exceptions=True
        )
        assert isinstance(got[0], AsyncDynError) and got[1] == {"PK": "k2", "v": 2}
        assert transport.operations == ["GetItem"] * 4


async def test_batch_writes_find_entries_whatever_the_key_order(
    transport: ScriptedTransport,
) -> None:
    def server(headers: Mapping[str, str], body: bytes) -> HttpResponse:
        if headers["X-Amz-Target"].endswith("GetItem"):
            return answer({"Item": {"user": {"S": "u"}, "day": {"S": "d"}}})
        return answer({"UnprocessedItems": {}})

    transport.default = server
    async with make_client(transport, ItemCache()) as db:
        table = db.table("U", key=("user", "day"))  # the schema's order is not sorted
        await table.get({"user": "u", "day": "d"})
        await table.batch_write(deletes=[{"user": "u", "day": "d"}])
        await table.get({"day": "d", "user": "u"})
        async with table.writer() as w:
            await w.put({"user": "u", "day": "d"})
        await table.get({"user": "u", "day": "d"})
        assert transport.operations == ["GetItem", "BatchWriteItem"] * 2 + ["GetItem"]


# -- the cache and large attributes ----------------------------------------------------------


async def test_get_and_batch_get_share_entries_of_compressed_attributes(
    transport: ScriptedTransport,
) -> None:
    # One entry serves both kinds of read: whichever filled it, each returns the value as
    # written (a str decompressed; bytes decompressed once, never twice).
    from asyncdyn import LargeAttributes
    from asyncdyn.compression import compress_value

    text, data = "line of text " * 200, b"\x00\x01 bytes " * 200
    stored = {
        "PK": {"S": "d"},
        "body": {"B": base64.b64encode(compress_value(text, codec="zlib")).decode()},
        "blob": {"B": base64.b64encode(compress_value(data, codec="zlib")).decode()},
    }
    written = {"PK": "d", "body": text, "blob": data}
    for first, second in (("batch_get", "get"), ("get", "batch_get")):
        transport.steps = [answer({"Responses": {"Docs": [stored]}}), answer({"Item": stored})]
        if first == "get":
            transport.steps.reverse()
        async with make_client(transport, ItemCache()) as db:
            table = db.table("Docs", key=("PK",), large=LargeAttributes(compress={"body", "blob"}))
            for read in (first, second):
                if read == "get":
                    assert await table.get({"PK": "d"}) == written, (first, second)
                else:
                    assert await table.batch_get([{"PK": "d"}]) == [written], (first, second)


@pytest.mark.parametrize("numbers", ["auto", "decimal", "float"])
async def test_stream_records_drop_entries_of_number_and_binary_keys(
    transport: ScriptedTransport, numbers: Any
) -> None:
    # A get keyed 1.0 / a record decoded as 1 (or 1.0, or Decimal("1")): one item, one entry;
    # a binary key read and recorded as bytes likewise.
    from decimal import Decimal

    from asyncdyn.marshal import decoder

    decode = decoder(numbers).item
    transport.default = lambda headers, body: answer(
        {"Item": {**orjson.loads(body)["Key"], "v": {"N": "1"}}}
    )
    async with make_client(transport, cache := ItemCache(), numbers=numbers) as db:
        nums, bins = db.table("N", key=("id", "at")), db.table("B", key=("b",))
        for key, wire, table in (
            ({"id": Decimal("1.0"), "at": 10**5}, {"id": {"N": "1"}, "at": {"N": "1E5"}}, nums),
            ({"b": b"\x00\xff"}, {"b": {"B": "AP8="}}, bins),
        ):
            await table.get(key)
            assert len(cache) == 1
            record = Record("MODIFY", decode(wire), None, None, "1", "s", None, "KEYS_ONLY")
            cache.invalidate_from(record, table=table.name)
            assert len(cache) == 0, (key, record.keys)
