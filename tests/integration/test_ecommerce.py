"""The seed's e-commerce single-table model, through the public API, on both servers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from asyncdyn import Attr, ConditionalCheckFailed, GlobalIndex, Key, Table

from .conftest import MakeTable

CUSTOMER = {
    "PK": "CUSTOMER#123",
    "SK": "METADATA",
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "GSI1PK": "EMAIL#ada@example.com",
    "GSI1SK": "CUSTOMER#123",
}


def order(n: int, day: str, status: str) -> dict[str, object]:
    return {
        "PK": "CUSTOMER#123",
        "SK": f"ORDER#{n}",
        "order_id": n,
        "status": status,
        "total": Decimal("19.99") * n,
        "created": day,
        "GSI2PK": f"ORDER_STATUS#{status}",
        "GSI2SK": day,
    }


@pytest.fixture
async def shop(make_table: MakeTable) -> Table:
    table = await make_table(
        indexes=[GlobalIndex("GSI1", "GSI1PK", "GSI1SK"), GlobalIndex("GSI2", "GSI2PK", "GSI2SK")]
    )
    await table.put(CUSTOMER)
    days = ["2024-01-03", "2024-01-10", "2024-01-17", "2024-02-01", "2024-02-14"]
    for n, day in enumerate(days, start=1):
        await table.put(order(n, day, "PENDING" if n % 2 else "SHIPPED"))
    for n in range(1, 4):
        await table.put({"PK": "ORDER#1", "SK": f"ITEM#{n}", "sku": f"SKU-{n}", "qty": n})
    return table


async def test_customer_and_orders(shop: Table) -> None:
    assert await shop.get({"PK": "CUSTOMER#123", "SK": "METADATA"}) == CUSTOMER
    orders = [
        o async for o in shop.query(Key("PK").eq("CUSTOMER#123") & Key("SK").begins_with("ORDER#"))
    ]
    assert [o["order_id"] for o in orders] == [1, 2, 3, 4, 5]
    assert orders[1]["total"] == Decimal("39.98")
    items = [i async for i in shop.query(Key("PK").eq("ORDER#1"))]
    assert [(i["sku"], i["qty"]) for i in items] == [("SKU-1", 1), ("SKU-2", 2), ("SKU-3", 3)]
    assert await shop.count(Key("PK").eq("CUSTOMER#123")) == 6


async def test_gsi1_lookup_by_email(shop: Table) -> None:
    found = [c async for c in shop.query(Key("GSI1PK").eq("EMAIL#ada@example.com"), index="GSI1")]
    assert found == [CUSTOMER]


async def test_gsi2_pending_orders_in_a_date_range(shop: Table) -> None:
    pending = [
        o["order_id"]
        async for o in shop.query(
            Key("GSI2PK").eq("ORDER_STATUS#PENDING")
            & Key("GSI2SK").between("2024-01-01", "2024-01-31"),
            index="GSI2",
        )
    ]
    assert pending == [1, 3]
    newest_first = [
        o["order_id"]
        async for o in shop.query(
            Key("GSI2PK").eq("ORDER_STATUS#PENDING"), index="GSI2", descending=True
        )
    ]
    assert newest_first == [5, 3, 1]


async def test_conditional_status_update_fails_the_second_time(shop: Table) -> None:
    key = {"PK": "CUSTOMER#123", "SK": "ORDER#1"}
    ship = Attr("status").set("SHIPPED") & Attr("GSI2PK").set("ORDER_STATUS#SHIPPED")
    new = await shop.update(key, ship, condition=Attr("status").eq("PENDING"), returns="ALL_NEW")
    assert new is not None and new["status"] == "SHIPPED"
    with pytest.raises(ConditionalCheckFailed):
        await shop.update(key, ship, condition=Attr("status").eq("PENDING"))
    assert (await shop.get(key))["status"] == "SHIPPED"  # type: ignore[index]
