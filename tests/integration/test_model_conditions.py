"""Conditions on entity fields and transaction actions carrying their entity, on moto and
dynalite (transactions: moto only)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from asyncdyn import Client, ConditionalCheckFailed, InvalidExpression
from asyncdyn.model import Repository
from tests.integration.test_model import bound
from tests.model_shop import Customer, Order, shop

T0 = datetime(2024, 1, 3, 9, 30, tzinfo=UTC)


@pytest.fixture
async def repo(db: Client) -> AsyncIterator[Repository]:
    async for r in bound(db, shop):
        yield r


def an_order(order_id: str = "001", status: str = "PENDING", **more: object) -> Order:
    return Order(
        customer_id="123",
        order_id=order_id,
        total=Decimal("19.99"),
        status=status,
        placed_at=T0,
        **more,  # type: ignore[arg-type]
    )


async def statuses(repo: Repository, status: str) -> list[str]:
    return [o.order_id async for o in repo.query(Order.by_status, status=status)]


async def test_status_transitions_only_from_the_status_named(repo: Repository) -> None:
    await repo.put(an_order())
    ref = Order.ref(customer_id="123", order_id="001")
    paid = await repo.update(
        ref, status="PAID", derive="fetch", condition=Order.status.eq("PENDING")
    )
    assert isinstance(paid, Order) and paid.status == "PAID"
    with pytest.raises(ConditionalCheckFailed) as caught:
        await repo.update(ref, status="PAID", derive="fetch", condition=Order.status.eq("PENDING"))
    exc = caught.value
    assert exc.table == repo.table.name
    assert exc.key == {"PK": "CUSTOMER#123", "SK": "ORDER#001"}
    assert isinstance(exc.current, Order) and exc.current.status == "PAID"
    # Nothing was written by the refused transition; the status index followed the one that was.
    got = await repo.get(Order, customer_id="123", order_id="001", consistent=True)
    assert got == paid
    assert await statuses(repo, "PAID") == ["001"] and await statuses(repo, "PENDING") == []
    # All inputs given (no read first), a condition on a renamed field and an ordered one.
    shipped = await repo.update(
        ref,
        status="SHIPPED",
        placed_at=T0,
        condition=Order.status.is_in(["PAID"]) & Order.note.eq(None) & Order.total.gt(10),
    )
    assert shipped is not None and shipped.status == "SHIPPED"
    with pytest.raises(ConditionalCheckFailed):
        await repo.update(ref, note="late", condition=Order.total.gt(Decimal("20")))
    # No such item: None, as without a condition.
    missing = Order.ref(customer_id="123", order_id="404")
    assert await repo.update(missing, note="x", condition=Order.status.eq("PAID")) is None


async def test_concurrent_transitions_apply_once(repo: Repository) -> None:
    await repo.put(an_order())
    ref = Order.ref(customer_id="123", order_id="001")

    async def pay(note: str) -> Order | None:
        try:
            got = await repo.update(
                ref, status="PAID", note=note, derive="fetch", condition=Order.status.eq("PENDING")
            )
        except ConditionalCheckFailed:
            return None
        assert isinstance(got, Order)
        return got

    results = await asyncio.gather(*(pay(f"payer {n}") for n in range(6)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    stored = await repo.get(Order, customer_id="123", order_id="001", consistent=True)
    assert stored == winners[0] and stored.status == "PAID"


async def test_conditions_compare_encoded_values_under_stored_names(repo: Repository) -> None:
    await repo.put(an_order(note="gift"))
    again = an_order(note="gift, wrapped")
    with pytest.raises(ConditionalCheckFailed):
        await repo.put(again, condition=Order.note.eq("other"))
    # ``note`` is stored as ``n``; placed_at as ISO text, compared as such.
    await repo.put(again, condition=Order.note.eq("gift") & Order.placed_at.lt(T0 + timedelta(1)))
    got = await repo.get(Order, customer_id="123", order_id="001", consistent=True)
    assert got is not None and got.note == "gift, wrapped"
    with pytest.raises(ConditionalCheckFailed):
        await repo.delete(
            Order.ref(customer_id="123", order_id="001"), condition=Order.status.ne("PENDING")
        )
    await repo.delete(
        Order.ref(customer_id="123", order_id="001"), condition=Order.status.eq("PENDING")
    )
    assert await repo.get(Order, customer_id="123", order_id="001", consistent=True) is None


async def test_versioned_update_ands_condition_and_version(repo: Repository) -> None:
    ada = await repo.put(Customer(customer_id="1", email="ada@example.com", name="Ada"))
    ref = Customer.ref(customer_id="1")
    with pytest.raises(ConditionalCheckFailed) as caught:
        await repo.update(ref, name="Ada L.", condition=Customer.name.eq("Bob"))
    assert isinstance(caught.value.current, Customer) and caught.value.current.version == 1
    renamed = await repo.update(ref, name="Ada L.", condition=Customer.name.eq("Ada"))
    assert renamed.name == "Ada L." and renamed.version == 2
    assert renamed.created_at == ada.created_at


async def test_a_compressed_field_condition_is_refused_before_sending(db: Client) -> None:
    from tests.unit.test_model_conditions import Doc, bodies

    async for docs in bound(db, bodies):
        with pytest.raises(InvalidExpression, match="compressed or offloaded"):
            await docs.put(Doc(doc_id="1", body="x"), condition=Doc.body.eq("x"))
        assert await docs.get(Doc, doc_id="1", consistent=True) is None


@pytest.mark.moto_only
async def test_tx_put_gives_the_entity_as_written(repo: Repository, db: Client) -> None:
    order_action = repo.tx_put(an_order(), condition=Order.status.not_exists())
    customer_action = repo.tx_put(Customer(customer_id="123", email="a@example.com", name="A"))
    await db.transact_write([order_action, customer_action])
    customer = customer_action.entity
    assert customer.version == 1 and customer.created_at is not None
    assert customer.updated_at == customer.created_at
    stored = await repo.get(Customer, customer_id="123", consistent=True)
    assert stored == customer
    assert await repo.get(Order, customer_id="123", order_id="001") == order_action.entity
    # The next write of the written entity goes on from its version.
    after = repo.tx_put(customer)
    await db.transact_write([after, repo.tx_delete(Order.ref(customer_id="123", order_id="001"))])
    assert after.entity.version == 2
    assert await repo.get(Customer, customer_id="123", consistent=True) == after.entity
