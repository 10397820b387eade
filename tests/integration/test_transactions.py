"""Transactions, optimistic locking and TTL on moto (dynalite has no transactions)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from asyncdyn import (
    Attr,
    Client,
    ConditionalCheckFailed,
    InvalidItem,
    InvalidTransaction,
    Table,
    TransactionCanceled,
    expires_at,
)

pytestmark = pytest.mark.moto_only


async def _all(table: Table) -> list[dict[str, Any]]:
    return [item async for item in table.scan(consistent=True)]


async def test_follow_transaction_is_atomic(db: Client, table: Table) -> None:
    def follow(follower: str, followed: str) -> list[Any]:
        return [
            table.tx_put(
                {"PK": f"USER#{follower}", "SK": f"FOLLOWS#USER#{followed}"},
                condition=Attr("PK").not_exists(),
            ),
            table.tx_put(
                {"PK": f"USER#{followed}", "SK": f"FOLLOWED_BY#USER#{follower}"},
                condition=Attr("PK").not_exists(),
            ),
        ]

    await db.transact_write(follow("ann", "bob"))
    assert len(await _all(table)) == 2

    # The reverse edge already exists: the second action fails, nothing is written.
    await table.put({"PK": "USER#bob", "SK": "FOLLOWED_BY#USER#cat"})
    with pytest.raises(TransactionCanceled) as raised:
        await db.transact_write(follow("cat", "bob"))
    assert [reason.code for reason in raised.value.reasons] == [None, "ConditionalCheckFailed"]
    assert {(i["PK"], i["SK"]) for i in await _all(table)} == {
        ("USER#ann", "FOLLOWS#USER#bob"),
        ("USER#bob", "FOLLOWED_BY#USER#ann"),
        ("USER#bob", "FOLLOWED_BY#USER#cat"),
    }


async def test_order_with_items_commits_together_and_reads_as_a_snapshot(
    db: Client, table: Table
) -> None:
    order = {"PK": "CUSTOMER#1", "SK": "ORDER#9", "status": "PENDING", "total": 30}
    lines = [{"PK": "ORDER#9", "SK": f"ITEM#{n}", "qty": n} for n in range(1, 4)]
    await db.transact_write(
        [
            table.tx_put(order, condition=Attr("PK").not_exists()),
            *(table.tx_put(line) for line in lines),
            table.tx_update({"PK": "CUSTOMER#1", "SK": "METADATA"}, Attr("orders").add(1)),
        ],
        token="order-9-create",
    )
    got = await db.transact_get(
        [
            table.tx_get({"PK": "CUSTOMER#1", "SK": "ORDER#9"}),
            table.tx_get({"PK": "ORDER#9", "SK": "ITEM#2"}, attributes=["qty"]),
            table.tx_get({"PK": "ORDER#9", "SK": "ITEM#404"}),
            table.tx_get({"PK": "CUSTOMER#1", "SK": "METADATA"}),
        ]
    )
    assert got[0] == order and got[2] is None
    assert got[1] is not None and got[1]["qty"] == 2  # moto ignores the projection here
    assert got[3] == {"PK": "CUSTOMER#1", "SK": "METADATA", "orders": 1}
    # (moto does not replay a ClientRequestToken, so idempotency is proven by the unit test.)


async def test_bad_transactions_are_refused_before_sending(db: Client, table: Table) -> None:
    before = db.stats().requests.get("TransactWriteItems", 0)
    with pytest.raises(InvalidTransaction, match="1 to 100"):
        await db.transact_write([table.tx_put({"PK": "P", "SK": str(n)}) for n in range(101)])
    with pytest.raises(InvalidTransaction, match=r"actions\[0\] and actions\[1\]"):
        await db.transact_write(
            [
                table.tx_put({"PK": "P", "SK": "1", "v": 1}),
                table.tx_update({"SK": "1", "PK": "P"}, Attr("v").add(1)),
            ]
        )
    with pytest.raises(InvalidItem):
        table.tx_put({"PK": "P", "SK": "2", "bad": float("nan")})
    assert db.stats().requests.get("TransactWriteItems", 0) == before
    assert await _all(table) == []


async def test_optimistic_locking_loses_no_update(table: Table) -> None:
    key = {"PK": "COUNTER", "SK": "1"}
    await table.put_versioned({**key, "hits": 0})
    conflicts = 0

    async def bump() -> None:
        nonlocal conflicts
        for _ in range(10):
            while True:
                current = await table.get(key, consistent=True)
                assert current is not None
                try:
                    await table.put_versioned({**current, "hits": current["hits"] + 1})
                    break
                except ConditionalCheckFailed as exc:
                    conflicts += 1
                    assert exc.item is not None and exc.item["version"] > current["version"]

    await asyncio.gather(*(bump() for _ in range(20)))
    final = await table.get(key, consistent=True)
    assert final is not None
    assert final["hits"] == 200
    assert final["version"] == 201  # the first write made version 1
    assert conflicts > 0  # the tasks really raced

    # The read-modify-write helper does the same loop.
    written = await table.modify(key, lambda item: {**(item or key), "hits": 0})
    assert written["version"] == 202 and written["hits"] == 0


async def test_expired_items_are_hidden_on_request(db: Client, table: Table) -> None:
    await table.enable_ttl("expires")
    await table.put({"PK": "S", "SK": "old", "expires": expires_at(timedelta(hours=-1))})
    await table.put({"PK": "S", "SK": "new", "expires": expires_at(timedelta(hours=1))})
    await table.put({"PK": "S", "SK": "forever"})
    everything = [i["SK"] async for i in table.query_partitions(["S"])]
    assert everything == ["forever", "new", "old"]  # DynamoDB has not deleted it yet

    table.hide_expired("expires")
    try:
        assert await table.get({"PK": "S", "SK": "old"}) is None
        assert sorted([i["SK"] async for i in table.scan()]) == ["forever", "new"]
        fresh = await table.get({"PK": "S", "SK": "new"})
        assert fresh is not None
        keys = [{"PK": "S", "SK": "old"}, {"PK": "S", "SK": "new"}]
        assert await table.batch_get(keys) == [None, fresh]
        got = await table.get({"PK": "S", "SK": "new"}, attributes=["SK"])
        assert got is not None and got["SK"] == "new"
    finally:
        table.hide_expired(None)
    assert (await table.get({"PK": "S", "SK": "old"})) is not None
