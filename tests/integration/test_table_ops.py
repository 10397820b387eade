"""Single-item operations, query/scan paging and the control plane against real servers."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from asyncdyn import (
    Attr,
    Client,
    ConditionalCheckFailed,
    InvalidCursor,
    InvalidItem,
    Key,
    Table,
    TableNotFound,
    ValidationError,
)

RESERVED = ["status", "name", "data", "size", "year", "timestamp", "comment", "count"]


async def test_every_type_round_trips(table: Table) -> None:
    item = {
        "PK": "types",
        "SK": "1",
        "s": "héllo ✓",
        "empty": "",
        "i": 42,
        "neg": -7,
        "big": 10**37,
        "d": Decimal("3.14159"),
        "tiny": Decimal("1E-130"),
        "f": 0.1,
        "t": True,
        "nothing": None,
        "b": b"\x00\xffbytes",
        "ss": {"a", "b"},
        "ns": {1, 2, Decimal("2.5")},
        "bs": {b"x", b"y"},
        "l": [1, "two", [3], {"four": 4}],
        "m": {"nested": {"deeper": [True, None]}, "dotted.name": 1},
    }
    await table.put(item)
    got = await table.get({"PK": "types", "SK": "1"}, consistent=True)
    expected = dict(item, f=Decimal("0.1"))  # a float goes out as its repr, comes back exact
    assert got == expected


async def test_reserved_words_need_no_escaping(table: Table) -> None:
    key = {"PK": "reserved", "SK": "1"}
    await table.put({**key, **{word: word.upper() for word in RESERVED}})
    got = await table.get(key, attributes=RESERVED)
    assert got == {word: word.upper() for word in RESERVED}
    update = Attr("status").set("SHIPPED") & Attr("year").set(2024) & Attr("size").remove()
    new = await table.update(
        key, update, condition=Attr("name").eq("NAME") & Attr("data").exists(), returns="ALL_NEW"
    )
    assert new is not None
    assert new["status"] == "SHIPPED" and new["year"] == 2024 and "size" not in new
    found = [
        i
        async for i in table.query(
            Key("PK").eq("reserved"), filter=Attr("timestamp").eq("TIMESTAMP")
        )
    ]
    assert len(found) == 1


async def test_put_returns_and_conditions(table: Table) -> None:
    key = {"PK": "c", "SK": "1"}
    assert await table.put({**key, "v": 1}, condition=Attr("PK").not_exists()) is None
    with pytest.raises(ConditionalCheckFailed):
        await table.put({**key, "v": 2}, condition=Attr("PK").not_exists())
    old = await table.put({**key, "v": 3}, returns="ALL_OLD")
    assert old == {**key, "v": 1}
    new = await table.update(key, Attr("v").add(1) & Attr("tags").add({"x"}), returns="UPDATED_NEW")
    assert new == {"v": 4, "tags": {"x"}}
    gone = await table.delete(key, returns="ALL_OLD")
    assert gone == {**key, "v": 4, "tags": {"x"}}
    assert await table.get(key) is None


async def test_condition_failure_returns_the_item(table: Table, server: object) -> None:
    if getattr(server, "kind", "") == "dynalite":
        pytest.skip("dynalite predates ReturnValuesOnConditionCheckFailure")
    key = {"PK": "cf", "SK": "1"}
    await table.put({**key, "v": 1})
    with pytest.raises(ConditionalCheckFailed) as info:
        await table.update(
            key, Attr("v").set(2), condition=Attr("v").eq(5), returns_on_failure="ALL_OLD"
        )
    assert info.value.item == {**key, "v": 1}


async def test_thirty_items_in_pages_of_seven(table: Table) -> None:
    await asyncio.gather(*(table.put({"PK": "p", "SK": f"{n:03}", "n": n}) for n in range(30)))
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await table.query_page(Key("PK").eq("p"), limit=7, cursor=cursor)
        pages += 1
        assert len(page.items) <= 7
        seen.extend(i["n"] for i in page.items)
        cursor = page.cursor
        if cursor is None:
            break
    assert seen == list(range(30))
    assert pages in (5, 6)  # 4 full pages, then 2 items (and maybe an empty last page)
    with pytest.raises(InvalidCursor):
        await table.query_page(
            Key("PK").eq("other"),
            limit=7,
            cursor=(await table.query_page(Key("PK").eq("p"), limit=7)).cursor,
        )


async def test_query_iterator_options(table: Table) -> None:
    await asyncio.gather(
        *(table.put({"PK": "q", "SK": f"{n:03}", "n": n, "odd": n % 2 == 1}) for n in range(25))
    )
    everything = [i["n"] async for i in table.query(Key("PK").eq("q"))]
    assert everything == list(range(25))
    newest = [i["n"] async for i in table.query(Key("PK").eq("q"), descending=True, limit=3)]
    assert newest == [24, 23, 22]
    odd = [
        i["n"]
        async for i in table.query(
            Key("PK").eq("q") & Key("SK").between("005", "012"), filter=Attr("odd").eq(True)
        )
    ]
    assert odd == [5, 7, 9, 11]
    only_n = [i async for i in table.query(Key("PK").eq("q"), attributes=["n"], limit=2)]
    assert only_n == [{"n": 0}, {"n": 1}]
    assert await table.count(Key("PK").eq("q"), filter=Attr("odd").eq(False)) == 13
    scanned = sorted([i["n"] async for i in table.scan(filter=Attr("n").lt(5))])
    assert scanned == [0, 1, 2, 3, 4]
    pages = 0
    cursor: str | None = None
    total = 0
    while True:
        page = await table.scan_page(limit=10, cursor=cursor)
        total += len(page.items)
        pages += 1
        cursor = page.cursor
        if cursor is None:
            break
    assert total == 25


async def test_errors_from_the_server(db: Client, table: Table) -> None:
    with pytest.raises(TableNotFound):
        await db.table("no-such-table").get({"PK": "a"})
    # Sent as is, a wrong key is the server's to refuse, and maps to ValidationError.
    with pytest.raises(ValidationError):
        await db.call("GetItem", {"TableName": table.name, "Key": {"PK": {"S": "a"}}})
    with pytest.raises(ValidationError):
        await table.put({"PK": "a", "SK": 1})  # sort key of the wrong type
    # Once the key schema is known (create_table learnt it), a missing key attribute is
    # refused before sending.
    before = db.stats().total_requests
    with pytest.raises(InvalidItem, match="SK"):
        await table.get({"PK": "a"})
    assert db.stats().total_requests == before


async def test_oversized_item_refused_before_sending(db: Client, table: Table) -> None:
    before = db.stats().total_requests
    with pytest.raises(InvalidItem):
        await table.put({"PK": "big", "SK": "1", "blob": b"x" * 409_600})
    assert db.stats().total_requests == before
    near = {"PK": "big", "SK": "2", "blob": b"x" * 400_000}
    await table.put(near)
    assert await table.get({"PK": "big", "SK": "2"}) == near


async def test_control_plane(db: Client, make_table: object) -> None:
    table = await db.create_table(
        "ctl-" + __import__("uuid").uuid4().hex[:12], partition_key=("id", "N")
    )
    description = await table.describe()
    assert description["TableStatus"] == "ACTIVE"
    schema = await table.key_schema()
    assert (schema.partition_key, schema.sort_key) == ("id", None)
    assert table.name in await db.list_tables()
    await table.put({"id": 1})
    assert await table.get({"id": 1}) == {"id": 1}
    await db.delete_table(table.name)
    assert table.name not in await db.list_tables()


@pytest.mark.moto_only
async def test_ttl(table: Table) -> None:
    await table.enable_ttl("expires")
    description = await table.describe_ttl()
    assert description["AttributeName"] == "expires"
    assert description["TimeToLiveStatus"] in ("ENABLED", "ENABLING")


async def test_create_table_exist_ok_takes_the_same_table_and_names_another(db: Client) -> None:
    import uuid

    from asyncdyn import ConfigurationError, GlobalIndex, ResourceInUse

    name = f"t-{uuid.uuid4().hex[:16]}"
    index = GlobalIndex("GSI1", "GSI1PK", "GSI1SK")
    table = await db.create_table(name, partition_key="PK", sort_key="SK", indexes=[index])
    try:
        await table.put({"PK": "a", "SK": "b"})
        with pytest.raises(ResourceInUse, match=name):
            await db.create_table(name, partition_key="PK", sort_key="SK", indexes=[index])
        again = await db.create_table(
            name, partition_key="PK", sort_key="SK", indexes=[index], exist_ok=True
        )
        assert await again.get({"PK": "a", "SK": "b"}) == {"PK": "a", "SK": "b"}
        # A table of that name keyed otherwise is no table "as asked": named, not taken.
        with pytest.raises(ConfigurationError, match=r"exists, but not as asked.*SK"):
            await db.create_table(name, partition_key="PK", exist_ok=True)
        with pytest.raises(ConfigurationError, match=r"no index 'GSI2'"):
            await db.create_table(
                name,
                partition_key="PK",
                sort_key="SK",
                indexes=[index, GlobalIndex("GSI2", "GSI2PK")],
                exist_ok=True,
            )
    finally:
        await db.delete_table(name, wait=False)
