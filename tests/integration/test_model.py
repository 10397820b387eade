"""The entity layer on moto and dynalite: the e-commerce design written and read back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from asyncdyn import Client, ConditionalCheckFailed, InvalidItem, Key, UniqueConflict
from asyncdyn.model import Design, Raw, Repository
from tests.model_shop import Customer, Order, OrderItem, customer_page, order_page, shop
from tests.unit.test_model import Account, Like, Ticket, User, accounts, mixed, profile, sparse

T0 = datetime(2024, 1, 3, 9, 30, tzinfo=UTC)


async def bound(db: Client, design: Design) -> AsyncIterator[Repository]:
    repo = design.bind(db, table=f"t-{uuid.uuid4().hex[:16]}")
    await repo.create_table()
    yield repo
    await db.delete_table(repo.table.name, wait=False)


@pytest.fixture
async def repo(db: Client) -> AsyncIterator[Repository]:
    async for r in bound(db, shop):
        yield r


def order(n: int, status: str = "PENDING", **more: Any) -> Order:
    return Order(
        customer_id="123",
        order_id=f"{n:03d}",
        total=Decimal("19.99") * n,
        status=status,
        placed_at=T0 + timedelta(days=n),
        **more,
    )


async def seed(repo: Repository) -> Customer:
    customer = await repo.put(Customer(customer_id="123", email="ada@example.com", name="Ada"))
    for n in range(1, 6):
        await repo.put(order(n, "PENDING" if n % 2 else "SHIPPED"))
    for n in range(1, 4):
        await repo.put(OrderItem(order_id="001", item_id=n, sku=f"SKU-{n}", qty=n))
    return customer


async def test_put_and_get_round_trip_with_derived_attributes(repo: Repository) -> None:
    customer = await seed(repo)
    assert customer.version == 1 and customer.created_at is not None
    got = await repo.get(Customer, customer_id="123", consistent=True)
    assert got == customer
    raw = await repo.table.get({"PK": "CUSTOMER#123", "SK": "METADATA"})
    assert raw is not None
    assert raw["GSI1PK"] == "CUSTOMER_EMAIL#ada@example.com" and raw["Type"] == "Customer"
    assert await repo.get(Order, customer_id="123", order_id="999") is None
    assert await repo.get(Order, customer_id="123", order_id="002") == order(2, "SHIPPED")


async def test_queries_entity_collection_and_index(repo: Repository) -> None:
    customer = await seed(repo)
    orders = [o async for o in repo.query(Order, customer_id="123")]
    assert orders == [order(n, "PENDING" if n % 2 else "SHIPPED") for n in range(1, 6)]
    page = [row async for row in repo.query(customer_page, customer_id="123")]
    assert page == [customer, *orders]  # METADATA sorts before ORDER#
    items = [i async for i in repo.query(order_page, order_id="001")]
    assert [type(i).__name__ for i in items] == ["Order"] + ["OrderItem"] * 3  # CUSTOMER# < ITEM#
    # A range on a template field, on GSI2: pending orders placed in days 2..4.
    pending = repo.query(
        Order.by_status,
        status="PENDING",
        where=Order.placed_at.between(T0 + timedelta(days=2), T0 + timedelta(days=4)),
    )
    assert [o.order_id async for o in pending] == ["003"]
    later = repo.query(
        Order.by_status, status="PENDING", where=Order.placed_at.gt(T0 + timedelta(days=3))
    )
    assert [o.order_id async for o in later] == ["005"]
    newest = repo.query(Order, customer_id="123", descending=True, limit=2)
    assert [o.order_id async for o in newest] == ["005", "004"]


async def test_pages_follow_signed_cursors(repo: Repository) -> None:
    await seed(repo)
    seen: list[str] = []
    cursor = None
    while True:
        page = await repo.page(Order, customer_id="123", limit=2, cursor=cursor)
        seen += [o.order_id for o in page.items]
        cursor = page.cursor
        if cursor is None:
            break
    assert seen == ["001", "002", "003", "004", "005"]


async def test_batch_get_of_several_types_is_aligned(repo: Repository) -> None:
    customer = await seed(repo)
    got = await repo.batch_get(
        [
            OrderItem.ref(order_id="001", item_id=2),
            Customer.ref(customer_id="123"),
            Order.ref(customer_id="123", order_id="404"),
            Order.ref(customer_id="123", order_id="001"),
        ]
    )
    assert got == [
        OrderItem(order_id="001", item_id=2, sku="SKU-2", qty=2),
        customer,
        None,
        order(1),
    ]


async def test_update_keeps_index_keys_right(repo: Repository) -> None:
    await seed(repo)
    ref = Order.ref(customer_id="123", order_id="001")
    with pytest.raises(InvalidItem, match="placed_at"):
        await repo.update(ref, status="SHIPPED")
    shipped = await repo.update(ref, status="SHIPPED", derive="fetch")
    assert shipped == order(1, "SHIPPED")
    pending = [o.order_id async for o in repo.query(Order.by_status, status="PENDING")]
    assert pending == ["003", "005"]
    done = [o.order_id async for o in repo.query(Order.by_status, status="SHIPPED")]
    assert done == ["001", "002", "004"]
    moved = await repo.update(ref, status="RETURNED", placed_at=T0)
    assert moved is not None and moved.placed_at == T0
    raw = await repo.table.get({"PK": "CUSTOMER#123", "SK": "ORDER#001"})
    assert raw is not None and raw["GSI2SK"] == "2024-01-03T09:30:00.000000Z#ORDER#001"
    assert await repo.update(Order.ref(customer_id="123", order_id="777"), note="x") is None
    assert await repo.get(Order, customer_id="123", order_id="777") is None


async def test_versions_lock_every_write(repo: Repository) -> None:
    first = await repo.put(Customer(customer_id="9", email="a@example.com", name="A"))
    second = await repo.put(first)
    assert second.version == 2
    with pytest.raises(ConditionalCheckFailed):
        await repo.put(first)  # stale: version 1 is no longer stored
    with pytest.raises(ConditionalCheckFailed):
        await repo.put(Customer(customer_id="9", email="b@example.com", name="B"))  # not new
    renamed = await repo.update(Customer.ref(customer_id="9"), email="c@example.com")
    assert renamed is not None and renamed.version == 3 and renamed.created_at == first.created_at
    by_email = [c async for c in repo.query(Customer.by_email, email="c@example.com")]
    assert by_email == [renamed]
    assert [c async for c in repo.query(Customer.by_email, email="a@example.com")] == []
    with pytest.raises(ConditionalCheckFailed):
        await repo.delete(second)
    await repo.delete(renamed)
    assert await repo.get(Customer, customer_id="9") is None


async def test_delete_scan_and_ttl(repo: Repository) -> None:
    await seed(repo)
    await repo.delete(OrderItem.ref(order_id="001", item_id=1))
    items = [i.item_id async for i in repo.scan(OrderItem)]
    assert sorted(items) == [2, 3]
    await repo.put(order(6, expires=datetime.now(UTC) - timedelta(minutes=1)))
    assert await repo.get(Order, customer_id="123", order_id="006") is None
    assert len([o async for o in repo.query(Order, customer_id="123")]) == 5
    raw = await repo.table.get({"PK": "CUSTOMER#123", "SK": "ORDER#006"})
    assert raw is not None and isinstance(raw["expires"], int)  # epoch seconds for DynamoDB


async def test_unknown_items_are_never_dropped_silently(repo: Repository) -> None:
    customer = await seed(repo)
    stranger = {"PK": "CUSTOMER#123", "SK": "NOTE#1", "Type": "Note", "text": "hi"}
    await repo.table.put(stranger)
    with pytest.raises(InvalidItem, match="no entity"):
        [r async for r in repo.query(customer_page, customer_id="123")]
    rows = [r async for r in repo.query(customer_page, customer_id="123", unknown="raw")]
    assert rows[0] == customer and rows[1] == Raw(stranger) and len(rows) == 7
    skipped = [r async for r in repo.query(customer_page, customer_id="123", unknown="skip")]
    assert len(skipped) == 6


async def test_sparse_index_and_merged_ranges(db: Client) -> None:
    async for tickets in bound(db, sparse):
        await tickets.put(Ticket(ticket_id="1", assignee="ann"))
        await tickets.put(Ticket(ticket_id="2", assignee="ann"))
        await tickets.update(Ticket.ref(ticket_id="1"), assignee=None)
        mine = [t async for t in tickets.query(Ticket.by_assignee, assignee="ann")]
        assert mine == [Ticket(ticket_id="2", assignee="ann")]
        raw = await tickets.table.get({"PK": "TICKET#1", "SK": "T"})
        assert raw is not None and "G1" not in raw and "G1S" not in raw
    async for social in bound(db, mixed):
        await social.put(User(user_id="1"))
        for post in ("b", "a", "c"):
            await social.table.put(
                {
                    "PK": "USER#1",
                    "SK": f"POST#{post}",
                    "Type": "Post",
                    "user_id": "1",
                    "post_id": post,
                }
            )
            await social.put(Like(user_id="1", post_id=post))
        rows = [r async for r in social.query(profile, user_id="1")]
        assert rows == [Like(user_id="1", post_id=p) for p in "abc"] + [User(user_id="1")]
        sent = [k async for k in social.table.query(Key("PK").eq("USER#1"))]
        assert len(sent) == 7


@pytest.mark.moto_only
async def test_transactions_write_entities(repo: Repository, db: Client) -> None:
    customer = Customer(customer_id="7", email="t@example.com", name="T")
    await db.transact_write([repo.tx_put(customer), repo.tx_put(order(1))])
    stored = await repo.get(Customer, customer_id="7")
    assert stored is not None and stored.version == 1
    with pytest.raises(Exception, match="ConditionalCheckFailed|TransactionCanceled"):
        await db.transact_write([repo.tx_put(customer)])  # version 0 again: not new


async def test_writer_and_batch_write_keep_derived_keys(repo: Repository) -> None:
    async with repo.writer() as w:
        for n in range(1, 31):
            await w.put(order(n, "PENDING" if n % 3 else "SHIPPED"))
    shipped = [o.order_id async for o in repo.query(Order.by_status, status="SHIPPED")]
    assert shipped == [f"{n:03d}" for n in range(3, 31, 3)]
    await repo.batch_write(
        puts=[OrderItem(order_id="001", item_id=n, sku="S") for n in range(1, 4)],
        deletes=[Order.ref(customer_id="123", order_id=f"{n:03d}") for n in range(1, 31)],
    )
    assert [o async for o in repo.query(Order, customer_id="123")] == []
    items = [i async for i in repo.query(OrderItem.by_order, order_id="001")]
    assert [i.item_id for i in items] == [1, 2, 3]


@pytest.mark.moto_only
async def test_unique_values_are_guarded_moved_and_released(db: Client) -> None:
    async for repo in bound(db, accounts):
        ann = await repo.put(Account(account_id="1", email="ann@example.com"))
        with pytest.raises(UniqueConflict) as caught:
            await repo.put(Account(account_id="2", email="ann@example.com"))
        assert (caught.value.entity, caught.value.field) == ("Account", "email")
        assert await repo.get(Account, account_id="2") is None  # nothing of it was written
        moved = await repo.update(Account.ref(account_id="1"), email="ann@new.example.com")
        assert moved is not None and moved.version == 2
        # The old value is free again, the new one is taken.
        bob = await repo.put(Account(account_id="2", email="ann@example.com"))
        with pytest.raises(UniqueConflict):
            await repo.update(Account.ref(account_id="2"), email="ann@new.example.com")
        assert await repo.get(Account, account_id="2") == bob
        with pytest.raises(ConditionalCheckFailed):
            await repo.delete(ann)  # stale version
        await repo.delete(moved)
        again = await repo.put(Account(account_id="3", email="ann@new.example.com"))
        assert again.version == 1
        guards = [i async for i in repo.table.scan() if str(i["PK"]).startswith("UNIQUE#")]
        assert sorted(g["PK"] for g in guards) == [
            "UNIQUE#Account#email#ann@example.com",
            "UNIQUE#Account#email#ann@new.example.com",
        ]


async def test_month_rotated_readings(db: Client) -> None:
    from tests.model_sensors import Reading, iot

    start = datetime(2024, 11, 28, tzinfo=UTC)
    async for repo in bound(db, iot):
        readings = [
            Reading(sensor_id="s1", at=start + timedelta(days=2 * n), value=Decimal(n))
            for n in range(40)  # 2024-11-28 .. 2025-03-14: five months
        ]
        async with repo.writer() as w:
            for r in readings:
                await w.put(r)
        await repo.put(Reading(sensor_id="s2", at=start, value=Decimal(99)))
        t0, t1 = datetime(2024, 12, 25, tzinfo=UTC), datetime(2025, 2, 10, tzinfo=UTC)
        wanted = [r for r in readings if t0 <= r.at <= t1]
        got = [
            r async for r in repo.query(Reading, sensor_id="s1", where=Reading.at.between(t0, t1))
        ]
        assert got == wanted
        newest = repo.query(
            Reading, sensor_id="s1", where=Reading.at.between(t0, t1), descending=True, limit=3
        )
        assert [r async for r in newest] == wanted[::-1][:3]
        seen: list[Reading] = []
        cursor = None
        while True:
            page = await repo.page(
                Reading, sensor_id="s1", where=Reading.at.between(t0, t1), limit=5, cursor=cursor
            )
            seen += page.items
            cursor = page.cursor
            if cursor is None:
                break
        assert seen == wanted
        assert await repo.get(Reading, sensor_id="s1", at=readings[3].at) == readings[3]


async def test_sharded_partition_fans_out_and_merges(db: Client) -> None:
    from tests.model_users import ShardedUser, accounts_by_shard

    async for repo in bound(db, accounts_by_shard):
        users = [ShardedUser(user_id=f"u{n:02d}", name=f"N{n}") for n in range(20)]
        written = [await repo.put(u) for u in users]
        assert len({u.shard for u in written}) > 1  # spread over several shards
        everyone = [u async for u in repo.query(ShardedUser)]
        assert everyone == written  # merged across shards in sort-key order (USER#u00...)
        assert await repo.get(ShardedUser, user_id="u07") == written[7]
        seen: list[ShardedUser] = []
        cursor = None
        while True:
            page = await repo.page(ShardedUser, limit=6, cursor=cursor)
            seen += page.items
            cursor = page.cursor
            if cursor is None:
                break
        assert seen == written
        renamed = await repo.update(ShardedUser.ref(user_id="u07"), name="Renamed")
        assert renamed is not None and renamed.shard == written[7].shard


@pytest.mark.moto_only
async def test_stream_records_read_as_entities(db: Client) -> None:
    repo = shop.bind(db, table=f"t-{uuid.uuid4().hex[:16]}")
    await repo.create_table(stream="NEW_AND_OLD_IMAGES")
    try:
        placed = await repo.put(order(1))
        ref = Order.ref(customer_id="123", order_id="001")
        shipped = await repo.update(ref, status="SHIPPED", placed_at=placed.placed_at)
        await repo.delete(ref)
        records = []
        stream = db.stream(repo.table.name, poll_interval=0.02)
        async with asyncio.timeout(20), stream.records() as feed:
            async for record in feed:
                records.append(record)
                if len(records) == 3:
                    break
        images = [shop.parse_record(r) for r in records]
        assert images == [(None, placed), (placed, shipped), (shipped, None)]
    finally:
        await db.delete_table(repo.table.name, wait=False)
