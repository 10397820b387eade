"""Get coalescing against a scripted transport: grouping, fan-back, errors, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
import pytest

from asyncdyn import (
    Attr,
    Client,
    ClientClosed,
    InvalidExpression,
    InvalidItem,
    Key,
    RetryPolicy,
    ValidationError,
)
from asyncdyn.testing import ScriptedTransport, answer, error
from asyncdyn.transport import HttpResponse

STORE = {f"k{n}": {"PK": {"S": f"k{n}"}, "v": {"N": str(n)}} for n in range(300)}


def batch_server(headers: Mapping[str, str], body: bytes) -> HttpResponse:
    """BatchGetItem over STORE; a key "bad" makes the whole request a ValidationException."""
    request = orjson.loads(body)
    responses: dict[str, list[Any]] = {}
    for table, spec in request["RequestItems"].items():
        keys = [key["PK"]["S"] for key in spec["Keys"]]
        if "bad" in keys:
            return error("ValidationException", "bad key")
        responses[table] = [STORE[k] for k in keys if k in STORE]
    return answer({"Responses": responses, "UnprocessedKeys": {}})


@pytest.fixture
async def coalescing(transport: ScriptedTransport) -> AsyncIterator[Client]:
    transport.default = batch_server
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("AKIDEXAMPLE", "secret"),
        retry=RetryPolicy(max_attempts=4, base=0.0),
        transport=transport,
        coalesce_gets=True,
    ) as db:
        yield db


async def test_concurrent_gets_become_one_request_per_100_keys(
    coalescing: Client, transport: ScriptedTransport
) -> None:
    table = coalescing.table("T")
    keys = [{"PK": f"k{n % 250}"} for n in range(400)] + [{"PK": "missing"}]
    got = await asyncio.gather(*(table.get(key) for key in keys))
    assert got[:400] == [{"PK": f"k{n % 250}", "v": n % 250} for n in range(400)]
    assert got[400] is None
    assert set(transport.operations) == {"BatchGetItem"}
    assert len(transport.operations) == 3  # 251 distinct keys, each fetched once
    sent = [key["PK"]["S"] for p in transport.payloads for key in p["RequestItems"]["T"]["Keys"]]
    assert len(sent) == len(set(sent)) == 251  # duplicates fetched once
    assert got[0] is not got[250]  # the same key, each caller its own dict
    stats = coalescing.stats()
    assert stats.coalesced_gets == 401 and stats.coalesced_batches == 3


async def test_groups_by_consistency_and_projection(
    coalescing: Client, transport: ScriptedTransport
) -> None:
    table = coalescing.table("T")
    await asyncio.gather(
        table.get({"PK": "k1"}),
        table.get({"PK": "k2"}, consistent=True),
        table.get({"PK": "k3"}, attributes=["v"]),
        table.get({"PK": "k4"}),
    )
    specs = [p["RequestItems"]["T"] for p in transport.payloads]
    assert len(specs) == 3
    assert sorted(len(spec["Keys"]) for spec in specs) == [1, 1, 2]
    assert any(spec.get("ConsistentRead") for spec in specs)
    assert any("ProjectionExpression" in spec for spec in specs)


async def test_an_error_reaches_only_its_group(coalescing: Client) -> None:
    table = coalescing.table("T")
    results = await asyncio.gather(
        table.get({"PK": "bad"}),
        table.get({"PK": "k1"}, consistent=True),  # another group, another request
        return_exceptions=True,
    )
    assert isinstance(results[0], ValidationError)
    assert results[1] == {"PK": "k1", "v": 1}


async def test_a_cancelled_caller_does_not_disturb_the_others(
    coalescing: Client, transport: ScriptedTransport
) -> None:
    release = asyncio.Event()

    async def slow(headers: Mapping[str, str], body: bytes) -> HttpResponse:
        await release.wait()
        return batch_server(headers, body)

    transport.default = slow
    table = coalescing.table("T")
    tasks = [asyncio.create_task(table.get({"PK": f"k{n}"})) for n in range(5)]
    await asyncio.sleep(0.01)
    tasks[2].cancel()
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[2], asyncio.CancelledError)
    assert [r for n, r in enumerate(results) if n != 2] == [
        {"PK": f"k{n}", "v": n} for n in (0, 1, 3, 4)
    ]


async def test_bad_key_fails_at_the_call(coalescing: Client, transport: ScriptedTransport) -> None:
    from asyncdyn import InvalidItem

    with pytest.raises(InvalidItem):
        await coalescing.table("T").get({"PK": ["not", "a", "key"]})
    assert transport.requests == []


def _client(transport: ScriptedTransport, *, coalesce: bool = True, window: float = 0.0) -> Client:
    return Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("AKIDEXAMPLE", "secret"),
        retry=RetryPolicy(max_attempts=4, base=0.0),
        transport=transport,
        coalesce_gets=coalesce,
        coalesce_window=window,
    )


def _keys_sent(transport: ScriptedTransport) -> list[list[Any]]:
    return [[k["PK"] for k in p["RequestItems"]["T"]["Keys"]] for p in transport.payloads]


# ------------------------------------------------------------- defect 7: never join a sent read


@pytest.mark.parametrize("consistent", [True, False], ids=["consistent", "eventual"])
async def test_a_get_never_joins_a_request_sent_before_it(
    transport: ScriptedTransport, consistent: bool
) -> None:
    """A caller writes, then reads its key while an older read of it is in flight: the
    read must not be answered by that older request (it was read before the write)."""
    store = {"k1": "old"}
    release, arrived = asyncio.Event(), asyncio.Event()

    async def server(headers: Mapping[str, str], body: bytes) -> HttpResponse:
        operation = headers["X-Amz-Target"].rpartition(".")[2]
        request = orjson.loads(body)
        if operation == "PutItem":
            store[request["Item"]["PK"]["S"]] = request["Item"]["v"]["S"]
            return answer({})
        snapshot = [{"PK": {"S": k}, "v": {"S": store[k]}} for k in store]  # read on arrival
        arrived.set()
        await release.wait()
        return answer({"Responses": {"T": snapshot}, "UnprocessedKeys": {}})

    transport.default = server
    async with _client(transport) as db:
        table = db.table("T")
        early = asyncio.create_task(table.get({"PK": "k1"}, consistent=consistent))
        await arrived.wait()
        await table.put({"PK": "k1", "v": "new"})
        late = asyncio.create_task(table.get({"PK": "k1"}, consistent=consistent))
        await asyncio.sleep(0.01)
        release.set()
        assert await early == {"PK": "k1", "v": "old"}
        assert await late == {"PK": "k1", "v": "new"}
    assert transport.operations == ["BatchGetItem", "PutItem", "BatchGetItem"]


# ------------------------------------------------------ defect 8: one bad key poisons no one


async def test_a_key_the_server_refuses_fails_only_its_caller(
    coalescing: Client, transport: ScriptedTransport
) -> None:
    table = coalescing.table("T")
    keys = [{"PK": f"k{n}"} for n in range(40)]
    keys[17] = {"PK": "bad"}
    results = await asyncio.gather(*(table.get(k) for k in keys), return_exceptions=True)
    assert isinstance(results[17], ValidationError)
    assert [r for n, r in enumerate(results) if n != 17] == [
        {"PK": f"k{n}", "v": n} for n in range(40) if n != 17
    ]
    # Bisected: far fewer requests than one per key.
    assert len(transport.requests) <= 2 * 6 + 1


async def test_a_key_of_another_type_never_shares_a_request(transport: ScriptedTransport) -> None:
    def typed_server(headers: Mapping[str, str], body: bytes) -> HttpResponse:
        keys = orjson.loads(body)["RequestItems"]["T"]["Keys"]
        if any("S" not in key["PK"] for key in keys):
            return error("ValidationException", "The provided key element does not match")
        found = [STORE[key["PK"]["S"]] for key in keys if key["PK"]["S"] in STORE]
        return answer({"Responses": {"T": found}, "UnprocessedKeys": {}})

    transport.default = typed_server
    async with _client(transport) as db:
        table = db.table("T")
        results = await asyncio.gather(
            table.get({"PK": "k1"}), table.get({"PK": 7}), table.get({"PK": "k2"}),
            return_exceptions=True,
        )  # fmt: skip
    assert results[0] == {"PK": "k1", "v": 1} and results[2] == {"PK": "k2", "v": 2}
    assert isinstance(results[1], ValidationError)
    for keys in _keys_sent(transport):  # checked before joining: never mixed with good keys
        assert len({next(iter(k)) for k in keys}) == 1


async def test_a_key_against_the_declared_schema_fails_at_the_call(
    transport: ScriptedTransport,
) -> None:
    transport.default = batch_server
    async with _client(transport) as db:
        table = db.table("T", key=("PK",))
        results = await asyncio.gather(
            table.get({"PK": "k1", "SK": "x"}), table.get({"PK": "k2"}), return_exceptions=True
        )
    assert isinstance(results[0], InvalidItem)
    assert results[1] == {"PK": "k2", "v": 2}
    assert _keys_sent(transport) == [[{"S": "k2"}]]


# ------------------------------------------------------- defect 9: close ends waiting gets


async def test_close_ends_a_get_still_gathering(transport: ScriptedTransport) -> None:
    transport.default = batch_server
    db = _client(transport, window=30.0)
    pending = asyncio.create_task(db.table("T").get({"PK": "k1"}))
    await asyncio.sleep(0)
    await db.close()
    async with asyncio.timeout(1):
        with pytest.raises(ClientClosed):
            await pending
    assert transport.requests == []
    with pytest.raises(ClientClosed):
        await db.table("T").get({"PK": "k1"})


async def test_close_between_send_and_start_ends_the_get(transport: ScriptedTransport) -> None:
    transport.default = batch_server
    db = _client(transport)
    pending = asyncio.create_task(db.table("T").get({"PK": "k1"}))
    await asyncio.sleep(0)  # the get joins a group; the flush is scheduled
    await asyncio.sleep(0)  # the flush ran: the fetch task exists but has not started
    assert not pending.done() and transport.requests == []
    await db.close()
    async with asyncio.timeout(1):
        with pytest.raises(ClientClosed):
            await pending


async def test_close_ends_a_get_in_flight_with_a_typed_error(
    transport: ScriptedTransport,
) -> None:
    arrived = asyncio.Event()

    async def never(headers: Mapping[str, str], body: bytes) -> HttpResponse:
        arrived.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    transport.default = never
    db = _client(transport)
    pending = asyncio.create_task(db.table("T").get({"PK": "k1"}))
    await arrived.wait()
    await db.close()
    async with asyncio.timeout(1):
        with pytest.raises(ClientClosed):
            await pending


# ----------------------------------------- defects 16, 17: raw projections and hidden expiry

PAST, FUTURE = 1_000_000, 4_000_000_000
ITEMS = {
    "live": {"PK": {"S": "live"}, "v": {"N": "1"}, "w": {"N": "2"}, "exp": {"N": str(FUTURE)}},
    "dead": {"PK": {"S": "dead"}, "v": {"N": "3"}, "w": {"N": "4"}, "exp": {"N": str(PAST)}},
    "data": {"PK": {"S": "data"}, "data": {"S": "d"}, "a": {"S": "a"}, "c": {"S": "c"}},
}


def _project(item: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level projection as DynamoDB applies it (enough for these tests)."""
    expression = spec.get("ProjectionExpression")
    if expression is None:
        return dict(item)
    names = spec.get("ExpressionAttributeNames") or {}
    tops = set()
    for part in expression.split(","):
        first = part.strip().split(".")[0].split("[")[0].strip()
        tops.add(names.get(first, first))
    return {name: value for name, value in item.items() if name in tops}


def projecting_server(headers: Mapping[str, str], body: bytes) -> HttpResponse:
    operation = headers["X-Amz-Target"].rpartition(".")[2]
    request = orjson.loads(body)
    if operation == "GetItem":
        item = ITEMS.get(request["Key"]["PK"]["S"])
        return answer({} if item is None else {"Item": _project(item, request)})
    if operation == "BatchGetItem":
        responses = {
            table: [
                _project(ITEMS[k["PK"]["S"]], spec) for k in spec["Keys"] if k["PK"]["S"] in ITEMS
            ]
            for table, spec in request["RequestItems"].items()
        }
        return answer({"Responses": responses, "UnprocessedKeys": {}})
    if operation in ("Query", "Scan"):
        wanted = ("live", "dead")
        return answer({"Items": [_project(ITEMS[k], request) for k in wanted]})
    if operation == "TransactGetItems":
        gets = [action["Get"] for action in request["TransactItems"]]
        found = [ITEMS.get(get["Key"]["PK"]["S"]) for get in gets]
        return answer(
            {
                "Responses": [
                    {} if item is None else {"Item": _project(item, get)}
                    for get, item in zip(gets, found, strict=True)
                ]
            }
        )
    raise AssertionError(operation)


@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesced", "plain"])
async def test_a_raw_projection_string_is_one_projection_on_every_read(
    transport: ScriptedTransport, coalesce: bool
) -> None:
    transport.default = projecting_server
    async with _client(transport, coalesce=coalesce) as db:
        table = db.table("T")
        key = {"PK": "data"}
        assert await table.get(key, attributes="data") == {"data": "d"}
        assert await table.get(key, attributes="a, c") == {"a": "a", "c": "c"}
        assert await table.get(key, attributes="#d", names={"#d": "data"}) == {"data": "d"}
        got = await asyncio.gather(table.get(key, attributes="a, c"), table.get(key))
        assert got == [{"a": "a", "c": "c"}, {"PK": "data", "data": "d", "a": "a", "c": "c"}]
        assert await table.batch_get([key], attributes="a, c") == [{"a": "a", "c": "c"}]
        assert await db.batch_get({"T": [key]}, attributes="data") == {"T": [{"data": "d"}]}
        sent = len(transport.requests)
        for call in (
            lambda: table.get(key, attributes="a,,c"),
            lambda: table.get(key, attributes="#nope"),
            lambda: table.batch_get([key], attributes="a c"),
        ):
            with pytest.raises(InvalidExpression):
                await call()
        assert len(transport.requests) == sent  # refused before anything is sent


READS: dict[str, Any] = {
    "raw": {"attributes": "v"},
    "raw with names": {"attributes": "#x", "names": {"#x": "v"}},
    "names": {"attributes": ["v"]},
    "paths": {"attributes": [Attr("v")]},
}


@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesced", "plain"])
@pytest.mark.parametrize("form", list(READS))
async def test_hide_expired_whatever_the_projection(
    transport: ScriptedTransport, coalesce: bool, form: str
) -> None:
    transport.default = projecting_server
    args = READS[form]
    async with _client(transport, coalesce=coalesce) as db:
        table = db.table("T", key=("PK",)).hide_expired("exp")
        live, dead = {"PK": "live"}, {"PK": "dead"}
        assert await table.get(dead, **args) is None
        assert await table.get(live, **args) == {"v": 1}  # exp fetched, and removed again
        assert await table.batch_get([dead, live], **args) == [None, {"v": 1}]
        expected = [{"v": 1}]
        assert [i async for i in table.query("PK = :p", values={":p": "x"}, **args)] == expected
        assert (await table.query_page(Key("PK").eq("x"), **args)).items == expected
        assert [i async for i in table.scan(**args)] == expected
        assert (await table.scan_page(**args)).items == expected
        assert [i async for i in table.scan(segments=2, **args)] == expected * 2
        assert [i async for i in table.query_partitions(["x"], **args)] == expected
        if "names" not in args:
            assert await db.batch_get({"T": [dead, live]}, **args) == {"T": [None, {"v": 1}]}
        got = await db.transact_get([table.tx_get(dead, **args), table.tx_get(live, **args)])
        assert got == [None, {"v": 1}]
        # Asked for, the TTL attribute stays.
        assert await table.get(live, attributes="v, exp") == {"v": 1, "exp": FUTURE}
        assert await table.get(live, attributes=["v", "exp"]) == {"v": 1, "exp": FUTURE}
    for payload in transport.payloads:
        for spec in (payload, *payload.get("RequestItems", {}).values()):
            if "ProjectionExpression" in spec:
                assert "exp" in (spec.get("ExpressionAttributeNames") or {}).values()
