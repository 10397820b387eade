"""Client and Table over a scripted transport: requests built, answers decoded, pages, cursors."""

from __future__ import annotations

import asyncio
import gc
from decimal import Decimal
from typing import Any

import orjson
import pytest

from asyncdyn import (
    Attr,
    Client,
    ConfigurationError,
    GlobalIndex,
    InvalidCursor,
    InvalidItem,
    Key,
    LocalIndex,
)
from asyncdyn.schema import create_table_request
from asyncdyn.testing import ScriptedTransport, answer
from asyncdyn.transport import HttpResponse


def wire(n: int) -> dict[str, Any]:
    return {"PK": {"S": "P"}, "SK": {"N": str(n)}}


def page(first: int, count: int, last: bool) -> HttpResponse:
    items = [wire(n) for n in range(first, first + count)]
    body: dict[str, Any] = {"Items": items, "Count": count}
    if not last:
        body["LastEvaluatedKey"] = wire(first + count - 1)
    return answer(body)


async def test_put_update_delete_requests(client: Client, transport: ScriptedTransport) -> None:
    transport.default = answer({})
    table = client.table("T")
    await table.put({"PK": "a", "total": 99.99, "tags": {"x"}}, condition=Attr("PK").not_exists())
    await table.update(
        {"PK": "a"},
        Attr("status").set("SHIPPED") & Attr("views").add(1),
        condition=Attr("status").ne("SHIPPED"),
        returns="ALL_NEW",
    )
    await table.delete(
        {"PK": "a"}, condition="#s = :s", names={"#s": "status"}, values={":s": "DONE"}
    )
    put, update, delete = transport.payloads
    assert transport.operations == ["PutItem", "UpdateItem", "DeleteItem"]
    assert put["Item"] == {"PK": {"S": "a"}, "total": {"N": "99.99"}, "tags": {"SS": ["x"]}}
    assert put["ExpressionAttributeNames"] == {
        put["ConditionExpression"].split("(")[1].rstrip(")"): "PK"
    }
    assert "ExpressionAttributeValues" not in put
    assert update["ReturnValues"] == "ALL_NEW"
    assert sorted(update["ExpressionAttributeNames"].values()) == ["status", "views"]
    assert update["UpdateExpression"].startswith("SET ")
    assert " ADD " in update["UpdateExpression"]
    assert delete["ConditionExpression"] == "#s = :s"
    assert delete["ExpressionAttributeNames"] == {"#s": "status"}
    assert delete["ExpressionAttributeValues"] == {":s": {"S": "DONE"}}


async def test_returns_decoded(client: Client, transport: ScriptedTransport) -> None:
    transport.steps = [answer({"Attributes": {"PK": {"S": "a"}, "n": {"N": "1.5"}}}), answer({})]
    table = client.table("T")
    assert await table.put({"PK": "a"}, returns="ALL_OLD") == {"PK": "a", "n": Decimal("1.5")}
    assert await table.put({"PK": "a"}, returns="ALL_OLD") is None


async def test_get_with_projection_and_consistency(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [answer({"Item": {"name": {"S": "x"}}})]
    item = await client.table("T").get({"PK": "a"}, consistent=True, attributes=["name", "data"])
    assert item == {"name": "x"}
    (request,) = transport.payloads
    assert request["ConsistentRead"] is True
    assert sorted(request["ExpressionAttributeNames"].values()) == ["data", "name"]


@pytest.mark.parametrize(
    "bad",
    [{"PK": float("nan")}, {"PK": "a", "s": set()}, {"PK": "a", "x": object()}],
)
async def test_bad_items_are_refused_before_sending(
    client: Client, transport: ScriptedTransport, bad: dict[str, Any]
) -> None:
    with pytest.raises(InvalidItem):
        await client.table("T").put(bad)
    assert transport.requests == []


async def test_bad_arguments_are_refused_before_sending(
    client: Client, transport: ScriptedTransport
) -> None:
    table = client.table("T")
    with pytest.raises(ConfigurationError):
        await table.put({"PK": "a"}, returns="ALL_NEW")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        await table.query_page(Key("PK").eq("a"), limit=0)
    with pytest.raises(InvalidItem):
        await table.get({"PK": ""})
    assert transport.requests == []


async def test_query_reads_every_page_with_prefetch(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [page(0, 3, False), page(3, 3, False), page(6, 2, True)]
    table = client.table("T")
    seen = []
    async for item in table.query(Key("PK").eq("P"), descending=True):
        if not seen:
            # The second page was asked for before the caller finished the first.
            await asyncio.sleep(0.01)
            assert len(transport.requests) == 2
        seen.append(item["SK"])
    assert seen == list(range(8))
    first, second, third = transport.payloads
    assert first["ScanIndexForward"] is False
    assert "ExclusiveStartKey" not in first
    assert second["ExclusiveStartKey"] == wire(2)
    assert third["ExclusiveStartKey"] == wire(5)


async def test_query_limit_stops_early(client: Client, transport: ScriptedTransport) -> None:
    transport.steps = [page(0, 3, False), page(3, 2, False)]
    got = [i["SK"] async for i in client.table("T").query(Key("PK").eq("P"), limit=5)]
    assert got == [0, 1, 2, 3, 4]
    assert [p["Limit"] for p in transport.payloads] == [5, 2]


async def test_leaving_a_query_early_cancels_the_prefetch(
    client: Client, transport: ScriptedTransport
) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def hang(headers: object, body: bytes) -> HttpResponse:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    transport.steps = [page(0, 3, False), hang]
    async with client.table("T").query(Key("PK").eq("P")) as items:
        async for _ in items:
            await started.wait()
            break
    assert cancelled.is_set()

    # Without the context manager, dropping the iterator cancels the prefetch too.
    started.clear()
    cancelled.clear()
    transport.steps = [page(0, 3, False), hang]
    iterator = client.table("T").query(Key("PK").eq("P"))
    await iterator.__anext__()
    await started.wait()
    del iterator
    gc.collect()
    await asyncio.wait_for(cancelled.wait(), 1.0)


async def test_query_page_cursor_round_trip(client: Client, transport: ScriptedTransport) -> None:
    table = client.table("T")
    transport.steps = [page(0, 3, False)]
    first = await table.query_page(Key("PK").eq("P"), limit=3)
    assert [i["SK"] for i in first.items] == [0, 1, 2]
    assert first.cursor is not None
    assert all(c.isalnum() or c in "-_" for c in first.cursor)

    transport.steps = [page(3, 2, True)]
    second = await table.query_page(Key("PK").eq("P"), limit=3, cursor=first.cursor)
    assert [i["SK"] for i in second.items] == [3, 4]
    assert second.cursor is None
    assert transport.payloads[1]["ExclusiveStartKey"] == wire(2)


async def test_query_page_fills_past_filtered_pages(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [page(0, 0, False), page(0, 2, False), page(2, 1, False)]
    result = await client.table("T").query_page(
        Key("PK").eq("P"), filter=Attr("x").exists(), limit=3
    )
    assert len(result.items) == 3
    assert [p["Limit"] for p in transport.payloads] == [3, 3, 1]
    assert result.cursor is not None


async def test_tampered_and_foreign_cursors_are_refused(
    client: Client, transport: ScriptedTransport
) -> None:
    table = client.table("T")
    transport.steps = [page(0, 3, False)]
    cursor = (await table.query_page(Key("PK").eq("P"), limit=3)).cursor
    assert cursor is not None
    flipped = cursor[:20] + ("A" if cursor[20] != "A" else "B") + cursor[21:]
    for bad in [flipped, cursor[:-4], "not a cursor!", "", "A" * 30]:
        with pytest.raises(InvalidCursor):
            await table.query_page(Key("PK").eq("P"), limit=3, cursor=bad)
    # Same cursor on another partition, another table, or the other direction: foreign.
    with pytest.raises(InvalidCursor):
        await table.query_page(Key("PK").eq("Q"), limit=3, cursor=cursor)
    with pytest.raises(InvalidCursor):
        await client.table("U").query_page(Key("PK").eq("P"), limit=3, cursor=cursor)
    with pytest.raises(InvalidCursor):
        await table.query_page(Key("PK").eq("P"), limit=3, cursor=cursor, descending=True)
    with pytest.raises(InvalidCursor):
        await table.scan_page(cursor=cursor)
    assert len(transport.requests) == 1
    assert issubclass(InvalidCursor, ValueError)


async def test_count_sums_pages(client: Client, transport: ScriptedTransport) -> None:
    transport.steps = [answer({"Count": 5, "LastEvaluatedKey": wire(4)}), answer({"Count": 2})]
    assert await client.table("T").count(Key("PK").eq("P")) == 7
    assert [p["Select"] for p in transport.payloads] == ["COUNT", "COUNT"]
    assert transport.operations == ["Query", "Query"]


async def test_scan_pages(client: Client, transport: ScriptedTransport) -> None:
    transport.steps = [page(0, 2, False), page(2, 2, True)]
    got = [i["SK"] async for i in client.table("T").scan(filter=Attr("SK").gte(0))]
    assert got == [0, 1, 2, 3]
    assert transport.operations == ["Scan", "Scan"]


async def test_consumed_capacity_is_counted(transport: ScriptedTransport) -> None:
    transport.default = answer({"ConsumedCapacity": {"TableName": "T", "CapacityUnits": 0.5}})
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("a", "b"),
        transport=transport,
        consumed_capacity="TOTAL",
    ) as db:
        await db.table("T").get({"PK": "a"})
        await db.table("T").get({"PK": "b"})
        assert db.stats().consumed_capacity == {"T": 1.0}
    assert transport.payloads[0]["ReturnConsumedCapacity"] == "TOTAL"


def test_create_table_request() -> None:
    request = create_table_request(
        "Shop",
        partition_key="PK",
        sort_key="SK",
        indexes=[
            GlobalIndex("GSI1", "GSI1PK", ("GSI1SK", "N"), projection=["email"]),
            LocalIndex("LSI1", "created"),
        ],
        stream="NEW_AND_OLD_IMAGES",
    )
    assert request["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    assert {d["AttributeName"]: d["AttributeType"] for d in request["AttributeDefinitions"]} == {
        "PK": "S",
        "SK": "S",
        "GSI1PK": "S",
        "GSI1SK": "N",
        "created": "S",
    }
    gsi = request["GlobalSecondaryIndexes"][0]
    assert gsi["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["email"]}
    assert request["LocalSecondaryIndexes"][0]["KeySchema"][0]["AttributeName"] == "PK"
    assert request["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert orjson.dumps(request)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "x", "partition_key": "PK"},
        {"name": "Tab", "partition_key": ("PK", "BOOL")},
        {"name": "Tab", "partition_key": "PK", "billing": "PROVISIONED"},
        {"name": "Tab", "partition_key": "PK", "indexes": [LocalIndex("L", "s")]},
        {"name": "Tab", "partition_key": "PK", "sort_key": ("PK", "N")},
    ],
)
def test_bad_table_definitions(kwargs: dict[str, Any]) -> None:
    name = kwargs.pop("name")
    with pytest.raises(ConfigurationError):
        create_table_request(name, **kwargs)


async def test_a_declared_key_spares_describe_table(
    client: Client, transport: ScriptedTransport
) -> None:
    from asyncdyn import ConfigurationError

    table = client.table("Declared", key=("PK", "SK"))
    assert client.table("Declared") is table
    transport.steps = [answer({})]
    await table.batch_write(puts=[{"PK": "a", "SK": "1"}])
    assert transport.operations == ["BatchWriteItem"]
    with pytest.raises(ConfigurationError):
        client.table("Declared", key=("id",))
    with pytest.raises(ConfigurationError):
        client.table("Other", key=("PK", "SK", "X"))  # type: ignore[arg-type]


async def test_consumed_capacity_sent_unasked_is_not_counted(
    transport: ScriptedTransport,
) -> None:
    # moto sends ConsumedCapacity whether or not it was asked for.
    transport.default = answer({"ConsumedCapacity": {"TableName": "T", "CapacityUnits": 0.5}})
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("a", "b"),
        transport=transport,
    ) as db:
        await db.table("T").get({"PK": "a"})
        assert db.stats().consumed_capacity == {}
    assert "ReturnConsumedCapacity" not in transport.payloads[0]
