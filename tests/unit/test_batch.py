"""The batch engine end to end over an in-memory DynamoDB: batch_get, batch_get_iter,
batch_write and the buffered writer — chunking, alignment, retries of unprocessed work,
exhaustion, validation before sending, cancellation, backpressure and last-wins."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

import orjson
import pytest

from asyncdyn import (
    AsyncDynError,
    Client,
    InvalidItem,
    Throttled,
    UnprocessedItemsError,
    UnprocessedKeysError,
    ValidationError,
)
from asyncdyn.batch import MAX_REQUEST_BYTES
from asyncdyn.marshal import encode_item
from asyncdyn.testing import ScriptedTransport, answer, error, throttled
from asyncdyn.transport import HttpResponse

# ------------------------------------------------------------------------- an in-memory DynamoDB

Identity = tuple[tuple[str, str], ...]


def ident(wire: Mapping[str, Any], names: tuple[str, ...]) -> Identity:
    """The fake's own key identity (numbers compared by value), independent of the library's."""
    parts = []
    for name in names:
        ((kind, raw),) = wire[name].items()
        if kind == "N":
            raw = str(Decimal(raw).normalize())
        parts.append((kind, raw))
    return tuple(parts)


class FakeDynamo:
    """A dict-backed DynamoDB for DescribeTable, GetItem, BatchGetItem and BatchWriteItem.

    Knobs: ``faults[(operation, n)]`` answers the n-th call of that operation (0-based) with
    the given response; ``leave(table, identity, times)`` decides whether a key or write
    request asked for the ``times``-th time is left unprocessed; while ``gate`` is set, batch
    calls (from the ``gated_from``-th on) wait for it. It refuses what DynamoDB refuses (too
    many keys or writes, duplicate keys in one request, a body over 16 MB), so that the tests
    notice a bad request.
    """

    def __init__(self, tables: Mapping[str, tuple[str, ...]] | None = None) -> None:
        self.schemas = dict(tables or {"T": ("PK", "SK")})
        self.data: dict[str, dict[Identity, dict[str, Any]]] = {t: {} for t in self.schemas}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.sizes: list[int] = []
        self.counts: Counter[str] = Counter()
        self.faults: dict[tuple[str, int], HttpResponse] = {}
        self.leave: Callable[[str, Identity, int], bool] = lambda table, key, times: False
        self.asked: Counter[tuple[str, Identity]] = Counter()
        self.gate: asyncio.Event | None = None
        self.gated_from = 0  # batch calls before this one (per operation) pass the gate
        self.in_flight = 0
        self.max_in_flight = 0
        self.completed = 0
        self.events: list[tuple[str, int]] = []

    # -- helpers for the tests

    def seed(self, table: str, *items: Mapping[str, Any]) -> None:
        for item in items:
            wire = encode_item(item)
            self.data[table][ident(wire, self.schemas[table])] = wire

    def batch(self, operation: str) -> list[dict[str, Any]]:
        return [payload for op, payload in self.calls if op == operation]

    def stored(self, table: str = "T") -> dict[Identity, dict[str, Any]]:
        return self.data[table]

    # -- the transport step

    async def __call__(self, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        operation = headers["X-Amz-Target"].rpartition(".")[2]
        payload = orjson.loads(body)
        call = len(self.calls)
        self.calls.append((operation, payload))
        self.sizes.append(len(body))
        nth = self.counts[operation]
        self.counts[operation] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.events.append(("start", call))
        try:
            if self.gate is not None and operation.startswith("Batch") and nth >= self.gated_from:
                await self.gate.wait()
            fault = self.faults.get((operation, nth))
            if fault is not None:
                return fault
            handler: Callable[[dict[str, Any], int], HttpResponse] = getattr(self, operation)
            return handler(payload, len(body))
        finally:
            self.in_flight -= 1
            self.completed += 1
            self.events.append(("end", call))

    def DescribeTable(self, payload: dict[str, Any], size: int) -> HttpResponse:
        name = payload["TableName"]
        names = self.schemas[name]
        schema = [{"AttributeName": names[0], "KeyType": "HASH"}]
        if len(names) > 1:
            schema.append({"AttributeName": names[1], "KeyType": "RANGE"})
        return answer({"Table": {"TableName": name, "KeySchema": schema, "TableStatus": "ACTIVE"}})

    def GetItem(self, payload: dict[str, Any], size: int) -> HttpResponse:
        table = payload["TableName"]
        item = self.data[table].get(ident(payload["Key"], self.schemas[table]))
        return answer({} if item is None else {"Item": item})

    def BatchGetItem(self, payload: dict[str, Any], size: int) -> HttpResponse:
        requests = payload["RequestItems"]
        if sum(len(spec["Keys"]) for spec in requests.values()) > 100:
            return error("ValidationException", "Too many items requested for the BatchGetItem")
        for table, spec in requests.items():
            seen = set()
            for key in spec["Keys"]:
                if set(key) != set(self.schemas[table]):
                    return error("ValidationException", "key does not match the schema")
                seen.add(ident(key, self.schemas[table]))
            if len(seen) != len(spec["Keys"]):
                return error("ValidationException", "Provided list of item keys has duplicates")
        responses: dict[str, list[Any]] = {}
        unprocessed: dict[str, Any] = {}
        for table, spec in requests.items():
            names = self.schemas[table]
            found = responses[table] = []
            for key in spec["Keys"]:
                identity = ident(key, names)
                self.asked[(table, identity)] += 1
                if self.leave(table, identity, self.asked[(table, identity)]):
                    echo = {k: v for k, v in spec.items() if k != "Keys"}
                    unprocessed.setdefault(table, {**echo, "Keys": []})["Keys"].append(key)
                    continue
                item = self.data[table].get(identity)
                if item is not None:
                    found.append(project(item, spec))
        return answer({"Responses": responses, "UnprocessedKeys": unprocessed})

    def BatchWriteItem(self, payload: dict[str, Any], size: int) -> HttpResponse:
        requests = payload["RequestItems"]
        if sum(len(writes) for writes in requests.values()) > 25:
            return error("ValidationException", "Too many items requested for BatchWriteItem")
        if size > MAX_REQUEST_BYTES:
            return error("ValidationException", "Request size exceeds 16 MB")
        for table, writes in requests.items():
            keys = {ident(wire_of(write), self.schemas[table]) for write in writes}
            if len(keys) != len(writes):
                return error("ValidationException", "Provided list of item keys has duplicates")
        unprocessed: dict[str, list[Any]] = {}
        for table, writes in requests.items():
            for write in writes:
                identity = ident(wire_of(write), self.schemas[table])
                self.asked[(table, identity)] += 1
                if self.leave(table, identity, self.asked[(table, identity)]):
                    unprocessed.setdefault(table, []).append(write)
                elif "PutRequest" in write:
                    self.data[table][identity] = write["PutRequest"]["Item"]
                else:
                    self.data[table].pop(identity, None)
        return answer({"UnprocessedItems": unprocessed})


def wire_of(write: Mapping[str, Any]) -> dict[str, Any]:
    if "PutRequest" in write:
        item: dict[str, Any] = write["PutRequest"]["Item"]
        return item
    key: dict[str, Any] = write["DeleteRequest"]["Key"]
    return key


def project(item: dict[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    expression = spec.get("ProjectionExpression")
    if expression is None:
        return item
    names = spec.get("ExpressionAttributeNames", {})
    wanted = [names.get(token.strip(), token.strip()) for token in expression.split(",")]
    return {name: item[name] for name in wanted if name in item}


def sk(identity: Identity) -> int:
    """The sort key number of a fake identity (``(("S", "P"), ("N", "12"))`` -> 12)."""
    return int(Decimal(identity[1][1]))


def keys_sent(payload: Mapping[str, Any], table: str = "T") -> list[tuple[str, Any]]:
    return [(k["PK"]["S"], k["SK"]["N"]) for k in payload["RequestItems"][table]["Keys"]]


def writes_sent(payload: Mapping[str, Any], table: str = "T") -> list[dict[str, Any]]:
    writes: list[dict[str, Any]] = payload["RequestItems"][table]
    return writes


def key(n: int, pk: str = "P") -> dict[str, Any]:
    return {"PK": pk, "SK": n}


def item(n: int, pk: str = "P", **extra: Any) -> dict[str, Any]:
    return {"PK": pk, "SK": n, "v": f"value-{n}", **extra}


@pytest.fixture
def fake(transport: ScriptedTransport) -> FakeDynamo:
    server = FakeDynamo()
    transport.default = server
    return server


async def settle_tasks(before: set[asyncio.Task[Any]], rounds: int = 1) -> set[asyncio.Task[Any]]:
    """The tasks created since ``before`` still alive after ``rounds`` loop iterations."""
    for _ in range(rounds):
        await asyncio.sleep(0)
    return {task for task in asyncio.all_tasks() - before if not task.done()}


async def until(condition: Callable[[], bool], rounds: int = 1000) -> None:
    for _ in range(rounds):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


# ------------------------------------------------------------------------------------ batch_get


async def test_batch_get_chunks_aligns_and_fills_missing_with_none(
    client: Client, fake: FakeDynamo
) -> None:
    fake.seed("T", *(item(n) for n in range(250) if n % 10 != 3))
    keys = [key(n) for n in range(250)]
    got = await client.table("T").batch_get(keys)

    requests = fake.batch("BatchGetItem")
    assert len(requests) == 3
    sent = [keys_sent(p) for p in requests]
    assert all(len(chunk) <= 100 for chunk in sent)
    assert all(len(set(chunk)) == len(chunk) for chunk in sent)
    assert sorted(k for chunk in sent for k in chunk) == sorted(("P", str(n)) for n in range(250))
    assert got == [None if n % 10 == 3 else item(n) for n in range(250)]


async def test_batch_get_duplicates_get_equal_but_distinct_items(
    client: Client, fake: FakeDynamo
) -> None:
    fake.seed("T", item(1, tags=["a", "b"]), item(2))
    keys = [key(1), key(2), key(1), key(3), key(1)]
    got = await client.table("T").batch_get(keys)

    (request,) = fake.batch("BatchGetItem")
    assert sorted(keys_sent(request)) == [("P", "1"), ("P", "2"), ("P", "3")]
    expected = item(1, tags=["a", "b"])
    assert got == [expected, item(2), expected, None, expected]
    first, third, fifth = got[0], got[2], got[4]
    assert first is not None and third is not None and fifth is not None
    assert first is not third and third is not fifth
    assert first["tags"] is not third["tags"]
    first["v"] = "changed"
    first["tags"].append("c")
    assert third == expected and fifth == expected


async def test_batch_get_of_nothing_sends_nothing(client: Client, fake: FakeDynamo) -> None:
    assert await client.table("T").batch_get([]) == []
    assert await client.table("T").batch_get(iter([])) == []
    assert fake.calls == []


async def test_unprocessed_keys_are_resent_alone_until_done(
    client: Client, fake: FakeDynamo
) -> None:
    fake.seed("T", *(item(n) for n in range(250)))
    stubborn = {ident({"PK": {"S": "P"}, "SK": {"N": str(n)}}, ("PK", "SK")) for n in (0, 7, 160)}
    fake.leave = lambda table, k, times: k in stubborn and times <= 2
    got = await client.table("T").batch_get([key(n) for n in range(250)])

    assert got == [item(n) for n in range(250)]
    # Each stubborn key was asked three times, every other key exactly once.
    assert {k: c for (_, k), c in fake.asked.items() if c != 1} == dict.fromkeys(stubborn, 3)
    requests = fake.batch("BatchGetItem")
    assert len(requests) == 3 + 2 * 2  # the chunk with 0 and 7, and the one with 160: twice each
    for retry in requests[3:]:
        assert {("P", str(n)) for n in (0, 7, 160)} >= set(keys_sent(retry))


async def test_a_throttled_chunk_is_retried(client: Client, fake: FakeDynamo) -> None:
    fake.seed("T", *(item(n) for n in range(0, 250, 2)))
    keys = [key(n) for n in range(250)]
    expected = [item(n) if n % 2 == 0 else None for n in range(250)]
    fake.faults[("BatchGetItem", 1)] = throttled()
    assert await client.table("T").batch_get(keys) == expected

    requests = fake.batch("BatchGetItem")
    assert len(requests) == 4
    assert sorted(keys_sent(requests[3])) == sorted(keys_sent(requests[1]))
    assert client.stats().throttles == 1


async def test_unprocessed_after_every_retry_raises_with_aligned_partial(
    client: Client, fake: FakeDynamo
) -> None:
    fake.seed("T", *(item(n) for n in range(150)))
    never = {ident({"PK": {"S": "P"}, "SK": {"N": str(n)}}, ("PK", "SK")) for n in (5, 120)}
    fake.leave = lambda table, k, times: k in never
    keys = [key(n) for n in range(150)] + [key(5)]  # 5 asked twice: reported once
    with pytest.raises(UnprocessedKeysError) as info:
        await client.table("T").batch_get(keys)

    error = info.value
    assert isinstance(error.partial, list)
    assert len(error.partial) == len(keys)
    expected = [None if n in (5, 120) else item(n) for n in range(150)] + [None]
    assert error.partial == expected
    assert isinstance(error.unprocessed, list)
    assert sorted(error.unprocessed, key=lambda k: k["SK"]) == [key(5), key(120)]
    assert isinstance(error.__cause__, AsyncDynError)
    # max_attempts=4 per chunk: each never-answered key was asked 4 times (after progress).
    assert {k: c for (_, k), c in fake.asked.items() if c != 1} == dict.fromkeys(never, 4)


async def test_throttled_to_exhaustion_chains_the_throttling(
    client: Client, fake: FakeDynamo
) -> None:
    fake.seed("T", item(1))
    for n in range(4):
        fake.faults[("BatchGetItem", n)] = throttled()
    with pytest.raises(UnprocessedKeysError) as info:
        await client.table("T").batch_get([key(1), key(2)])
    assert info.value.partial == [None, None]
    assert info.value.unprocessed == [key(1), key(2)]
    assert isinstance(info.value.__cause__, Throttled)
    assert len(fake.batch("BatchGetItem")) == 4


async def test_number_keys_match_in_canonical_form(client: Client, fake: FakeDynamo) -> None:
    fake.schemas["N"] = ("id",)
    fake.data["N"] = {
        ident({"id": {"N": "1"}}, ("id",)): {"id": {"N": "1"}, "v": {"S": "one"}},
        ident({"id": {"N": "100"}}, ("id",)): {"id": {"N": "100"}, "v": {"S": "hundred"}},
    }
    keys: list[dict[str, Any]] = [
        {"id": Decimal("1.0")},
        {"id": 1.0},
        {"id": Decimal("1E+2")},
        {"id": 2},
    ]
    got = await client.table("N").batch_get(keys)
    assert got == [{"id": 1, "v": "one"}, {"id": 1, "v": "one"}, {"id": 100, "v": "hundred"}, None]
    (request,) = fake.batch("BatchGetItem")
    assert len(request["RequestItems"]["N"]["Keys"]) == 3  # 1.0 twice is one key


async def test_projection_fetches_key_attributes_and_strips_them(
    client: Client, fake: FakeDynamo
) -> None:
    fake.seed("T", item(1, other="x"), item(2, other="y"))
    table = client.table("T")
    got = await table.batch_get([key(1), key(2), key(3)], attributes=["v"])
    assert got == [{"v": "value-1"}, {"v": "value-2"}, None]

    got = await table.batch_get([key(2), key(1)], attributes=["PK", "v"], consistent=True)
    assert got == [{"PK": "P", "v": "value-2"}, {"PK": "P", "v": "value-1"}]

    first, second = fake.batch("BatchGetItem")
    for request, wanted in ((first, {"v", "PK", "SK"}), (second, {"PK", "v", "SK"})):
        spec = request["RequestItems"]["T"]
        tokens = [t.strip() for t in spec["ProjectionExpression"].split(",")]
        assert all(t.startswith("#") for t in tokens)
        assert {spec["ExpressionAttributeNames"][t] for t in tokens} == wanted
    assert "ConsistentRead" not in first["RequestItems"]["T"]
    assert second["RequestItems"]["T"]["ConsistentRead"] is True


async def test_a_refused_chunk_raises_its_error(client: Client, fake: FakeDynamo) -> None:
    fake.seed("T", *(item(n) for n in range(250)))
    fake.faults[("BatchGetItem", 1)] = error("ValidationException", "nope")
    with pytest.raises(ValidationError):
        await client.table("T").batch_get([key(n) for n in range(250)])
    assert len(fake.batch("BatchGetItem")) <= 3  # not retried


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        ({"PK": "P", "SK": [1]}, "keys[3].SK"),
        ({"PK": "P"}, "keys[3]"),
        ({"PK": "P", "XX": 3}, "keys[3]"),
        ({"PK": "", "SK": 3}, "keys[3].PK"),
        ({"PK": "P", "SK": 3, "v": 1}, "keys[3]"),
        ("PK", "keys[3]"),
    ],
)
async def test_a_bad_key_is_refused_with_its_position_before_sending(
    client: Client, fake: FakeDynamo, bad: Any, path: str
) -> None:
    keys: list[Any] = [key(0), key(1), key(2), bad, key(4)]
    with pytest.raises(InvalidItem) as info:
        await client.table("T").batch_get(keys)
    assert info.value.path == path
    assert fake.calls == []


async def test_a_first_key_that_is_not_a_mapping_is_named(client: Client, fake: FakeDynamo) -> None:
    keys: list[Any] = ["PK", key(1)]
    with pytest.raises(InvalidItem) as info:
        await client.table("T").batch_get(keys)
    assert info.value.path == "keys[0]"
    assert fake.calls == []


async def test_client_batch_get_mixes_tables_in_chunks(client: Client, fake: FakeDynamo) -> None:
    fake.schemas["U"] = ("id",)
    fake.data["U"] = {}
    fake.seed("T", *(item(n) for n in range(60)))
    fake.seed("U", *({"id": n, "w": n * 2} for n in range(0, 60, 2)))
    got = await client.batch_get(
        {"T": [key(n) for n in range(60)], "U": [{"id": n} for n in range(60)]}
    )
    assert got == {
        "T": [item(n) for n in range(60)],
        "U": [{"id": n, "w": n * 2} if n % 2 == 0 else None for n in range(60)],
    }
    requests = fake.batch("BatchGetItem")
    assert len(requests) == 2  # 120 distinct keys: 100 + 20, tables mixed
    assert sorted(requests[0]["RequestItems"]) == ["T", "U"]
    assert sum(len(spec["Keys"]) for spec in requests[0]["RequestItems"].values()) == 100


async def test_client_batch_get_unprocessed_by_table(client: Client, fake: FakeDynamo) -> None:
    fake.schemas["U"] = ("id",)
    fake.data["U"] = {}
    fake.seed("T", item(1), item(2))
    fake.seed("U", {"id": 1})
    fake.leave = lambda table, k, times: table == "U"
    with pytest.raises(UnprocessedKeysError) as info:
        await client.batch_get({"T": [key(1), key(2)], "U": [{"id": 1}]})
    assert info.value.partial == {"T": [item(1), item(2)], "U": [None]}
    assert info.value.unprocessed == {"U": [{"id": 1}]}


async def test_client_batch_get_bad_key_names_table_and_position(
    client: Client, fake: FakeDynamo
) -> None:
    with pytest.raises(InvalidItem) as info:
        await client.batch_get({"T": [key(1)], "U": [{"id": 1}, {"id": 2}, {"id": 3}, {"id": []}]})
    assert info.value.path == "requests['U'][3].id"
    assert fake.calls == []


async def test_client_batch_get_with_a_generator_of_attributes(
    client: Client, fake: FakeDynamo
) -> None:
    fake.schemas["U"] = ("PK", "SK")
    fake.data["U"] = {}
    fake.seed("T", item(1))
    fake.seed("U", item(1))
    got = await client.batch_get(
        {"T": [key(1)], "U": [key(1)]}, attributes=(name for name in ["v"])
    )
    assert got == {"T": [{"v": "value-1"}], "U": [{"v": "value-1"}]}


# ------------------------------------------------------------------------------- batch_get_iter


async def test_batch_get_iter_yields_every_pair(client: Client, fake: FakeDynamo) -> None:
    fake.seed("T", *(item(n) for n in range(0, 300, 3)))
    keys = [key(n) for n in range(300)] + [key(0), key(1), key(299)]
    pairs = [pair async for pair in client.table("T").batch_get_iter(iter(keys))]

    assert len(pairs) == len(keys)
    assert Counter((k["PK"], k["SK"]) for k, _ in pairs) == Counter(
        (k["PK"], k["SK"]) for k in keys
    )
    for k, got in pairs:
        assert got == (item(k["SK"]) if k["SK"] % 3 == 0 else None)
    zeros = [got for k, got in pairs if k["SK"] == 0]
    assert zeros[0] is not zeros[1]


async def test_batch_get_iter_stays_within_its_window(client: Client, fake: FakeDynamo) -> None:
    fake.seed("T", *(item(n) for n in range(1000)))
    received = 0
    async for k, got in client.table("T").batch_get_iter((key(n) for n in range(1000)), window=1):
        received += 1
        assert got == item(k["SK"])
        # Chunk c+1 is asked for only once chunk c has been consumed.
        assert len(fake.batch("BatchGetItem")) <= (received + 99) // 100
        if received % 37 == 0:
            await asyncio.sleep(0)  # give a runaway producer every chance
    assert received == 1000
    assert fake.max_in_flight == 1
    assert len(fake.batch("BatchGetItem")) == 10


async def test_batch_get_iter_break_cancels_the_chunks(client: Client, fake: FakeDynamo) -> None:
    fake.seed("T", *(item(n) for n in range(1000)))
    before = asyncio.all_tasks()
    async for _ in client.table("T").batch_get_iter(key(n) for n in range(1000)):
        break
    # The generators are closed by the loop's finalizer hook (one after the other, each in a
    # task of its own): give it a few iterations.
    assert not await settle_tasks(before, rounds=10)
    assert fake.in_flight == 0
    sent = len(fake.batch("BatchGetItem"))
    await asyncio.sleep(0.01)
    assert len(fake.batch("BatchGetItem")) == sent  # nothing sent after the break


async def test_batch_get_iter_aclose_cancels_the_chunks_at_once(
    client: Client, fake: FakeDynamo
) -> None:
    fake.seed("T", *(item(n) for n in range(1000)))
    fake.gate = asyncio.Event()  # never set
    fake.gated_from = 1  # the first chunk is answered, the others hang
    before = asyncio.all_tasks()
    pairs = client.table("T").batch_get_iter(key(n) for n in range(1000))
    # (batch_get_iter is typed as returning an AsyncIterator, which has no aclose().)
    async with contextlib.aclosing(pairs):  # type: ignore[type-var]
        k, got = await pairs.__anext__()
        assert got == item(k["SK"])
        await until(lambda: fake.in_flight >= 2)
    # aclose() has returned: nothing of the iteration may still be running.
    assert fake.in_flight == 0
    assert not {task for task in asyncio.all_tasks() - before if not task.done()}


async def test_batch_get_iter_bad_key_raises_when_reached(client: Client, fake: FakeDynamo) -> None:
    fake.seed("T", *(item(n) for n in range(300)))
    keys: list[Any] = [key(n) for n in range(300)]
    keys[250] = {"PK": "P", "SK": None}
    before = asyncio.all_tasks()
    got: list[Any] = []
    with pytest.raises(InvalidItem) as info:
        async for pair in client.table("T").batch_get_iter(iter(keys)):
            got.append(pair)  # noqa: PERF401 (the loop ends by raising)
    assert info.value.path == "keys[250].SK"
    assert all(pair[1] == item(pair[0]["SK"]) for pair in got)
    assert not await settle_tasks(before, rounds=10)
    assert fake.in_flight == 0


async def test_batch_get_iter_unprocessed_raises_after_the_rest(
    client: Client, fake: FakeDynamo
) -> None:
    fake.seed("T", *(item(n) for n in range(10)))
    never = ident({"PK": {"S": "P"}, "SK": {"N": "4"}}, ("PK", "SK"))
    fake.leave = lambda table, k, times: k == never
    pairs: list[Any] = []
    with pytest.raises(UnprocessedKeysError) as info:
        async for pair in client.table("T").batch_get_iter([key(n) for n in range(10)]):
            pairs.append(pair)  # noqa: PERF401 (the loop ends by raising)
    assert sorted(k["SK"] for k, _ in pairs) == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert info.value.partial == []
    assert info.value.unprocessed == [key(4)]


async def test_cancelling_a_batch_get_leaves_nothing_running(
    client: Client, fake: FakeDynamo
) -> None:
    fake.seed("T", item(1))
    fake.gate = asyncio.Event()  # never set: every batch request hangs
    before = asyncio.all_tasks()
    task = asyncio.create_task(client.table("T").batch_get([key(n) for n in range(10_000)]))
    await until(lambda: fake.in_flight >= 10)
    started = len(fake.calls)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not await settle_tasks(before)
    assert fake.in_flight == 0
    assert len(fake.calls) == started
    assert started <= client.max_concurrency  # the in-flight limit held

    fake.gate = None
    async with asyncio.timeout(1):
        assert await client.table("T").get(key(1)) == item(1)
        assert await client.table("T").batch_get([key(1), key(2)]) == [item(1), None]


# --------------------------------------------------------------------------------- batch_write


async def test_batch_write_chunks_of_25(client: Client, fake: FakeDynamo) -> None:
    await client.table("T").batch_write(puts=[item(n) for n in range(60)])
    assert fake.calls[0][0] == "DescribeTable"
    requests = fake.batch("BatchWriteItem")
    assert sorted(len(writes_sent(p)) for p in requests) == [10, 25, 25]
    assert fake.stored() == {
        ident(encode_item(item(n)), ("PK", "SK")): encode_item(item(n)) for n in range(60)
    }
    # The key schema is described once per client.
    await client.table("T").batch_write(deletes=[key(0)])
    assert fake.counts["DescribeTable"] == 1
    assert len(fake.stored()) == 59


async def test_batch_write_last_request_for_a_key_wins(client: Client, fake: FakeDynamo) -> None:
    fake.seed("T", item(9))
    table = client.table("T")
    await table.batch_write(
        puts=[item(1), item(2, v="first"), item(2, v="second"), item(3)],
        deletes=[key(1), key(9)],
    )
    (request,) = fake.batch("BatchWriteItem")
    writes = writes_sent(request)
    assert len(writes) == 4
    assert {"DeleteRequest": {"Key": {"PK": {"S": "P"}, "SK": {"N": "1"}}}} in writes
    puts = [w["PutRequest"]["Item"] for w in writes if "PutRequest" in w]
    assert sorted(p["SK"]["N"] for p in puts) == ["2", "3"]
    assert [p["v"]["S"] for p in puts if p["SK"]["N"] == "2"] == ["second"]
    assert sorted(sk(k) for k in fake.stored()) == [2, 3]


async def test_batch_write_last_wins_across_chunks(client: Client, fake: FakeDynamo) -> None:
    # The put of key 0 is in the first full chunk, already on its way when the delete arrives:
    # the delete goes after it, so the key ends up deleted.
    await client.table("T").batch_write(puts=[item(n) for n in range(30)], deletes=[key(0)])
    assert 0 not in [sk(k) for k in fake.stored()]
    assert len(fake.stored()) == 29


def big_item(n: int, chars: int) -> dict[str, Any]:
    # A control character is 1 byte to DynamoDB but 6 in JSON ("\u0001"), so the 16 MB
    # request limit binds long before 25 items of at most 400 KB.
    return {"PK": "P", "SK": n, "blob": "\x01" * chars}


async def test_batch_write_splits_at_16_mb(client: Client, fake: FakeDynamo) -> None:
    items = [big_item(n, 300_000) for n in range(20)]
    entry = len(orjson.dumps({"PutRequest": {"Item": encode_item(items[0])}}))
    assert entry > 1_800_000
    per_request = (MAX_REQUEST_BYTES - 64 * 1024) // entry
    assert per_request < 25
    await client.table("T").batch_write(puts=items)

    requests = fake.batch("BatchWriteItem")
    counts = sorted((len(writes_sent(p)) for p in requests), reverse=True)
    full, rest = divmod(len(items), per_request)
    assert counts == [per_request] * full + ([rest] if rest else [])
    sizes = [s for (op, _), s in zip(fake.calls, fake.sizes, strict=True) if op == "BatchWriteItem"]
    assert len(sizes) == len(counts)
    assert max(sizes) <= MAX_REQUEST_BYTES
    assert len(fake.stored()) == 20


async def test_batch_write_retries_unprocessed_until_done(client: Client, fake: FakeDynamo) -> None:
    fake.leave = lambda table, k, times: sk(k) % 4 == 0 and times <= 2
    fake.faults[("BatchWriteItem", 0)] = throttled()
    await client.table("T").batch_write(puts=[item(n) for n in range(60)])
    assert len(fake.stored()) == 60
    assert all(c == 3 for (_, k), c in fake.asked.items() if sk(k) % 4 == 0)
    assert all(c == 1 for (_, k), c in fake.asked.items() if sk(k) % 4 != 0)


async def test_batch_write_exhaustion_lists_exactly_the_unwritten(
    client: Client, fake: FakeDynamo
) -> None:
    fake.seed("T", item(100), item(101))
    never = {4, 33, 101}
    fake.leave = lambda table, k, times: sk(k) in never
    puts = [item(n) for n in range(40)]
    deletes = [key(100), key(101)]
    with pytest.raises(UnprocessedItemsError) as info:
        await client.table("T").batch_write(puts=puts, deletes=deletes)
    assert sorted(info.value.puts, key=lambda i: i["SK"]) == [item(4), item(33)]
    assert info.value.deletes == [key(101)]
    assert isinstance(info.value.__cause__, AsyncDynError)
    stored = sorted(sk(k) for k in fake.stored())
    assert stored == [n for n in range(40) if n not in never] + [101]


async def test_batch_write_refused_chunk_is_reported_unprocessed(
    client: Client, fake: FakeDynamo
) -> None:
    fake.faults[("BatchWriteItem", 0)] = error("ValidationException", "nope")
    with pytest.raises(UnprocessedItemsError) as info:
        await client.table("T").batch_write(puts=[item(n) for n in range(30)])
    # The first full chunk goes out (and is refused) first; the last five are written.
    assert sorted(info.value.puts, key=lambda i: i["SK"]) == [item(n) for n in range(25)]
    assert sorted(sk(k) for k in fake.stored()) == list(range(25, 30))
    assert len(fake.batch("BatchWriteItem")) == 2  # a refusal is not retried
    assert isinstance(info.value.__cause__, ValidationError)


@pytest.mark.parametrize(
    ("bad", "path"),
    [
        ({"PK": "P", "SK": 2, "x": float("nan")}, "puts[2].x"),
        ({"PK": "P", "SK": 2, "x": set()}, "puts[2].x"),
        ({"PK": "P", "SK": 2, "x": {"deep": [1, {"y": float("inf")}]}}, "puts[2].x.deep[1].y"),
        ({"PK": "P", "SK": 2, "x": "a" * 410_000}, "puts[2]"),
        ({"PK": "P", "x": 1}, "puts[2]"),
        ({"PK": "P", "SK": [2]}, "puts[2]"),
        ({"PK": "", "SK": 2}, "puts[2]"),
    ],
)
async def test_batch_write_bad_item_refused_before_sending(
    client: Client, fake: FakeDynamo, bad: dict[str, Any], path: str
) -> None:
    with pytest.raises(InvalidItem) as info:
        await client.table("T").batch_write(puts=[item(0), item(1), bad, item(3)])
    assert info.value.path == path
    assert fake.batch("BatchWriteItem") == []


@pytest.mark.parametrize(
    ("bad", "path"),
    [({"PK": "P"}, "deletes[1]"), ({"PK": "P", "SK": 1, "v": 2}, "deletes[1]"), ({}, "deletes[1]")],
)
async def test_batch_write_bad_delete_refused_before_sending(
    client: Client, fake: FakeDynamo, bad: dict[str, Any], path: str
) -> None:
    with pytest.raises(InvalidItem) as info:
        await client.table("T").batch_write(puts=[item(0)] * 30, deletes=[key(0), bad])
    assert info.value.path == path
    assert fake.batch("BatchWriteItem") == []


# -------------------------------------------------------------------------------------- writer


async def test_writer_from_many_tasks(client: Client, fake: FakeDynamo) -> None:
    async with client.table("T").writer() as w:

        async def worker(start: int) -> None:
            for n in range(start, start + 37):
                await w.put(item(n))
                if n % 5 == 0:
                    await asyncio.sleep(0)

        await asyncio.gather(*(worker(i * 1000) for i in range(20)))
    assert len(fake.stored()) == 20 * 37
    assert w.stats.written == 20 * 37
    assert w.stats.unprocessed == w.stats.superseded == 0
    requests = fake.batch("BatchWriteItem")
    assert all(len(writes_sent(p)) <= 25 for p in requests)
    assert len(requests) == -(-20 * 37 // 25)  # every chunk full but the last


async def test_writer_backpressure(client: Client, fake: FakeDynamo) -> None:
    fake.gate = asyncio.Event()
    async with client.table("T").writer(buffer=50) as w:
        for n in range(50):
            await w.put(item(n))
        await until(lambda: fake.in_flight == 2)
        late = asyncio.create_task(w.put(item(50)))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not late.done()
        assert fake.completed == 1  # only the DescribeTable
        fake.gate.set()
        await late
        assert fake.completed >= 2  # a chunk finished first
    assert len(fake.stored()) == 51


async def test_writer_body_error_still_writes_and_propagates(
    client: Client, fake: FakeDynamo
) -> None:
    with pytest.raises(KeyError, match="boom"):
        async with client.table("T").writer() as w:
            for n in range(30):
                await w.put(item(n))
            raise KeyError("boom")
    assert len(fake.stored()) == 30
    assert w.stats.written == 30


async def test_writer_failures_chain_to_the_body_error(client: Client, fake: FakeDynamo) -> None:
    fake.leave = lambda table, k, times: True
    boom = RuntimeError("boom")
    with pytest.raises(UnprocessedItemsError) as info:
        async with client.table("T").writer() as w:
            for n in range(3):
                await w.put(item(n))
            await w.delete(key(7))
            raise boom
    assert info.value.__cause__ is boom or info.value.__context__ is boom
    assert sorted(info.value.puts, key=lambda i: i["SK"]) == [item(0), item(1), item(2)]
    assert info.value.deletes == [key(7)]
    assert w.stats.unprocessed == 4
    assert w.stats.written == 0


async def test_writer_failures_without_body_error(client: Client, fake: FakeDynamo) -> None:
    fake.leave = lambda table, k, times: sk(k) == 1
    with pytest.raises(UnprocessedItemsError) as info:
        async with client.table("T").writer() as w:
            for n in range(3):
                await w.put(item(n))
    assert info.value.puts == [item(1)]
    assert isinstance(info.value.__cause__, AsyncDynError)
    assert w.stats.written == 2


async def test_writer_skip_invalid_records_and_continues(client: Client, fake: FakeDynamo) -> None:
    bad = {"PK": "P", "SK": 2, "x": float("nan")}
    async with client.table("T").writer(skip_invalid=True) as w:
        for value in (item(0), item(1), bad, item(3), {"SK": 4}):
            await w.put(value)
    assert sorted(sk(k) for k in fake.stored()) == [0, 1, 3]
    assert [(r.position, r.value) for r in w.rejected] == [(2, bad), (4, {"SK": 4})]
    assert all(isinstance(r.error, InvalidItem) for r in w.rejected)
    assert w.rejected[0].error.path.endswith("[2].x")
    assert w.stats.rejected == 2
    assert w.stats.written == 3


async def test_writer_without_skip_invalid_raises_from_put(
    client: Client, fake: FakeDynamo
) -> None:
    async with client.table("T").writer() as w:
        await w.put(item(0))
        with pytest.raises(InvalidItem) as info:
            await w.put({"PK": "P", "SK": 1, "x": set()})
        assert info.value.path.endswith("[1].x")
        await w.put(item(2))
    assert sorted(sk(k) for k in fake.stored()) == [0, 2]


async def test_writer_last_wins_across_in_flight_chunks(client: Client, fake: FakeDynamo) -> None:
    fake.gate = asyncio.Event()
    async with client.table("T").writer() as w:
        await w.put(item(0, v="v1"))
        for n in range(1, 25):
            await w.put(item(n))
        await until(lambda: fake.in_flight == 1)  # the chunk with v1 is on its way
        await w.put(item(0, v="v2"))
        for n in range(25, 49):
            await w.put(item(n))
        for _ in range(20):
            await asyncio.sleep(0)
        # The second chunk must not go while v1 is in flight: key 0 would race.
        assert len(fake.batch("BatchWriteItem")) == 1
        fake.gate.set()
    calls = [(i, p) for i, (op, p) in enumerate(fake.calls) if op == "BatchWriteItem"]

    def call_with(value: str) -> int:
        (found,) = [
            i
            for i, p in calls
            for write in writes_sent(p)
            if write["PutRequest"]["Item"].get("v") == {"S": value}
        ]
        return found

    v1, v2 = call_with("v1"), call_with("v2")
    assert fake.events.index(("end", v1)) < fake.events.index(("start", v2))
    assert fake.stored()[ident({"PK": {"S": "P"}, "SK": {"N": "0"}}, ("PK", "SK"))]["v"] == {
        "S": "v2"
    }
    assert len(fake.stored()) == 49


async def test_writer_stats(client: Client, fake: FakeDynamo) -> None:
    fake.faults[("BatchWriteItem", 0)] = throttled()
    fake.leave = lambda table, k, times: sk(k) == 3
    with pytest.raises(UnprocessedItemsError):
        async with client.table("T").writer(skip_invalid=True) as w:
            for n in range(30):
                await w.put(item(n))
            await w.put(item(27, v="again"))  # replaces one still buffered
            await w.put({"PK": "P", "SK": 99, "x": set()})
    # Chunk 0..24: throttled once (25 retried), then 24 written and 3 left; 3 retried 3
    # more times until the 4 attempts since the last progress are spent.
    assert w.stats.throttled == 1
    assert w.stats.retried == 25 + 3
    assert w.stats.unprocessed == 1
    assert w.stats.written == 29
    assert w.stats.rejected == 1
    assert w.stats.superseded == 1


@pytest.mark.parametrize(("max_in_flight", "workers", "per_worker"), [(1, 100, 1), (3, 20, 37)])
async def test_writer_with_few_slots_and_many_putters_does_not_deadlock(
    client: Client, fake: FakeDynamo, max_in_flight: int, workers: int, per_worker: int
) -> None:
    w = client.table("T").writer(max_in_flight=max_in_flight, buffer=50 * max_in_flight)

    async def worker(start: int) -> None:
        for n in range(start, start + per_worker):
            await w.put(item(n))

    async with w:
        # A deadlock never ends; a loaded machine only slows this down (it takes ~20 ms).
        async with asyncio.timeout(5.0):
            await asyncio.gather(*(worker(i * 1000) for i in range(workers)))
    assert len(fake.stored()) == workers * per_worker
    assert fake.max_in_flight <= max_in_flight


# --------------------------------------------------------------- concurrent flushes (issue 16)


class LoopBlocked(Exception):
    """Raised into the main thread by the watchdog when the event loop stopped turning."""


@contextlib.contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """Fail, instead of hanging, when code spins without awaiting: a timer thread raises
    ``LoopBlocked`` inside the main thread, where the spinning task runs (``asyncio.timeout``
    cannot fire while the loop is blocked)."""
    main = threading.main_thread().ident
    assert main is not None

    def fire() -> None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(main), ctypes.py_object(LoopBlocked)
        )

    timer = threading.Timer(seconds, fire)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


async def test_overlapping_flushes_both_return_without_blocking_the_loop(
    client: Client, fake: FakeDynamo
) -> None:
    # One task flushes and puts at once when its flush returns; another flush, woken by the
    # same answer, must neither spin (the old shared drain flag was already reset) nor wait
    # for that later put.
    fake.gate = asyncio.Event()
    async with client.table("T").writer() as w:
        await w.put(item(0))

        async def flush_then_put() -> None:
            await w.flush()
            await w.put(item(1))

        first = asyncio.create_task(flush_then_put())
        await until(lambda: fake.in_flight == 1)
        second = asyncio.create_task(w.flush())
        for _ in range(5):
            await asyncio.sleep(0)  # the second flush is waiting for the same answer
        with watchdog(2.0):
            fake.gate.set()
            async with asyncio.timeout(1.0):
                await asyncio.gather(first, second)
        assert 0 in [sk(k) for k in fake.stored()]
        third = asyncio.create_task(w.flush())
        with watchdog(2.0):
            async with asyncio.timeout(1.0):
                await third
        assert sorted(sk(k) for k in fake.stored()) == [0, 1]


# ------------------------------------------------------------ cancelled writers (issue 16)


def by_sk(values: list[dict[str, Any]]) -> list[int]:
    return sorted(int(v["SK"]) for v in values)


async def test_a_writer_cancelled_while_draining_reports_every_unwritten_request(
    client: Client, fake: FakeDynamo
) -> None:
    fake.gate = asyncio.Event()  # never set: the server does not answer
    fake.gated_from = 0
    before = set(asyncio.all_tasks())
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(None) as deadline:
            async with client.table("T").writer(max_in_flight=2) as w:
                for n in range(60):
                    await w.put(item(n))
                # Counted from here: the block is cancelled while draining, however slowly
                # a loaded machine accepted the puts.
                deadline.reschedule(asyncio.get_running_loop().time() + 0.1)
    assert await settle_tasks(before, rounds=3) == set()
    report = w.unwritten
    assert isinstance(report, UnprocessedItemsError)
    assert by_sk(report.puts) == list(range(60))
    assert report.deletes == []
    # Two full chunks were on their way when the block was cancelled: they may have been
    # applied. The last ten waited for a slot and were never sent.
    assert by_sk(report.maybe_puts) == list(range(50))
    assert all(any(m is p for p in report.puts) for m in report.maybe_puts)
    assert report.maybe_deletes == []
    assert report.maybe_applied
    assert w.stats.unprocessed == 60 and w.stats.written == 0
    assert len(fake.batch("BatchWriteItem")) == 2
    # Resending what is reported writes everything.
    fake.gate.set()
    await client.table("T").batch_write(puts=report.puts)
    assert len(fake.stored()) == 60


async def test_a_writer_cancelled_between_retries_reports_only_what_is_unwritten(
    client: Client, fake: FakeDynamo, transport: ScriptedTransport
) -> None:
    # Key 3 is left unprocessed, then the retry never gets an answer: the other 24 of the
    # chunk are written and must not be reported; key 3 may be (it was resent).
    fake.leave = lambda table, k, times: sk(k) == 3 and times == 1
    fake.gate = asyncio.Event()
    fake.gated_from = 1
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(None) as deadline:
            async with client.table("T").writer() as w:
                for n in range(25):
                    await w.put(item(n))
                deadline.reschedule(asyncio.get_running_loop().time() + 0.1)
    report = w.unwritten
    assert report is not None
    assert by_sk(report.puts) == [3] and by_sk(report.maybe_puts) == [3]
    assert w.stats.written == 24 and w.stats.unprocessed == 1


async def test_a_cancelled_writer_block_whose_drain_fails_stays_cancelled(
    client: Client, fake: FakeDynamo
) -> None:
    fake.leave = lambda table, k, times: sk(k) in (1, 2)
    started = asyncio.Event()

    async def body() -> None:
        async with client.table("T").writer() as w:
            for n in range(5):
                await w.put(item(n))
            await w.delete(key(9))
            started.set()
            await asyncio.sleep(10)
        raise AssertionError("not reached")

    task = asyncio.create_task(body())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The drain still ran: the others are written, the two refused ones are reported.
    assert sorted(sk(k) for k in fake.stored()) == [0, 3, 4]


async def test_a_timed_out_writer_block_whose_drain_fails_raises_timeout(
    client: Client, fake: FakeDynamo
) -> None:
    fake.leave = lambda table, k, times: sk(k) == 1
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(None) as deadline:
            async with client.table("T").writer() as w:
                for n in range(3):
                    await w.put(item(n))
                deadline.reschedule(asyncio.get_running_loop().time() + 0.05)
                await asyncio.sleep(10)
    report = w.unwritten
    assert report is not None
    assert report.puts == [item(1)] and report.maybe_puts == []
    assert not report.maybe_applied
    assert w.stats.written == 2 and w.stats.unprocessed == 1


async def test_unwritten_is_the_raised_report_and_none_when_all_is_written(
    client: Client, fake: FakeDynamo
) -> None:
    async with client.table("T").writer() as ok:
        await ok.put(item(0))
    assert ok.unwritten is None
    fake.leave = lambda table, k, times: sk(k) == 1
    with pytest.raises(UnprocessedItemsError) as info:
        async with client.table("T").writer() as w:
            await w.put(item(1))
    assert w.unwritten is info.value


# ------------------------------------------------------------ superseded failures (issue 16)


async def test_a_failed_put_replaced_by_a_later_written_put_is_not_reported(
    client: Client, fake: FakeDynamo
) -> None:
    failing = True
    fake.leave = lambda table, k, times: failing and sk(k) == 0
    acknowledged: list[int] = []
    async with client.table("T").writer() as w:
        w.on_acknowledged = acknowledged.extend
        await w.put(item(0, v="v1"))
        await w.flush()  # v1 fails after every retry
        failing = False
        await w.put(item(0, v="v2"))
    stored = fake.stored()[ident({"PK": {"S": "P"}, "SK": {"N": "0"}}, ("PK", "SK"))]
    assert stored["v"] == {"S": "v2"}
    assert w.unwritten is None
    assert (w.stats.written, w.stats.unprocessed, w.stats.superseded) == (1, 0, 1)
    assert sorted(acknowledged) == [0, 1]  # v1 settled by v2 replacing it


async def test_a_failed_delete_replaced_by_a_later_written_put_is_not_reported(
    client: Client, fake: FakeDynamo
) -> None:
    failing = True
    fake.leave = lambda table, k, times: failing and sk(k) == 0
    async with client.table("T").writer() as w:
        await w.delete(key(0))
        await w.flush()
        failing = False
        await w.put(item(0))
    assert [sk(k) for k in fake.stored()] == [0]
    assert w.unwritten is None


async def test_when_both_fail_only_the_later_request_is_reported(
    client: Client, fake: FakeDynamo
) -> None:
    fake.leave = lambda table, k, times: sk(k) == 0
    with pytest.raises(UnprocessedItemsError) as info:
        async with client.table("T").writer() as w:
            await w.put(item(0, v="v1"))
            await w.flush()
            await w.delete(key(0))
    assert info.value.puts == [] and info.value.deletes == [key(0)]
    assert (w.stats.unprocessed, w.stats.superseded) == (1, 1)


async def test_a_failure_in_flight_replaced_by_a_waiting_request_is_not_reported(
    client: Client, fake: FakeDynamo
) -> None:
    fake.gate = asyncio.Event()
    fake.leave = lambda table, k, times: sk(k) == 0 and times <= 4  # v1's four attempts
    async with client.table("T").writer() as w:
        for n in range(25):
            await w.put(item(n, v="v1"))
        await until(lambda: fake.in_flight == 1)
        await w.put(item(0, v="v2"))  # waits for v1's chunk, which fails on key 0
        fake.gate.set()
    stored = fake.stored()[ident({"PK": {"S": "P"}, "SK": {"N": "0"}}, ("PK", "SK"))]
    assert stored["v"] == {"S": "v2"}
    assert w.unwritten is None


async def test_batch_write_duplicates_report_only_the_last_request_of_a_key(
    client: Client, fake: FakeDynamo
) -> None:
    # The put of key 0 goes in the first full chunk and fails; the delete of key 0, which
    # waited for it, is written: nothing is left to report.
    fake.leave = lambda table, k, times: sk(k) == 0 and times <= 4
    await client.table("T").batch_write(puts=[item(n) for n in range(30)], deletes=[key(0)])
    assert sorted(sk(k) for k in fake.stored()) == list(range(1, 30))
    # Both fail: only the delete is reported.
    fake.leave = lambda table, k, times: sk(k) == 5
    with pytest.raises(UnprocessedItemsError) as info:
        await client.table("T").batch_write(puts=[item(n) for n in range(30)], deletes=[key(5)])
    assert info.value.puts == [] and info.value.deletes == [key(5)]


@pytest.mark.parametrize(
    ("first_answer", "maybe"),
    [(lambda: error("InternalServerError", "oops", status=500), True), (throttled, False)],
)
async def test_a_lost_answer_marks_what_it_carried_as_maybe_written(
    client: Client, fake: FakeDynamo, first_answer: Callable[[], HttpResponse], maybe: bool
) -> None:
    # The first attempt gets a 5xx (it may have been applied) or is throttled (it was not);
    # key 1 is then left unprocessed until the retries run out.
    fake.faults[("BatchWriteItem", 0)] = first_answer()
    fake.leave = lambda table, k, times: sk(k) == 1
    with pytest.raises(UnprocessedItemsError) as info:
        async with client.table("T").writer() as w:
            for n in range(3):
                await w.put(item(n))
    assert info.value.puts == [item(1)]
    assert info.value.maybe_puts == ([item(1)] if maybe else [])
    assert info.value.maybe_applied is maybe
    assert w.stats.written == 2


async def test_a_chunk_cancelled_before_it_ever_ran_is_reported(
    client: Client, fake: FakeDynamo
) -> None:
    # asyncio.Runner cancels every task at shutdown, some before their first step: a chunk
    # task that never ran must still report its requests (never sent, so not maybe written).
    with pytest.raises(UnprocessedItemsError) as info:
        async with client.table("T").writer() as w:
            before = set(asyncio.all_tasks())
            for n in range(25):
                await w.put(item(n))  # the 25th starts a chunk task, not yet run
            for task in asyncio.all_tasks() - before:
                task.cancel()
    assert by_sk(info.value.puts) == list(range(25))
    assert info.value.maybe_puts == []
    assert fake.batch("BatchWriteItem") == []
    assert (w.stats.written, w.stats.unprocessed) == (0, 25)
