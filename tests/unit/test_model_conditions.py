"""Conditions on entity fields for writes, and transaction actions that carry the entity
as written: the requests sent, without sockets."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from asyncdyn import (
    Attr,
    Client,
    ConditionalCheckFailed,
    ConfigurationError,
    InvalidExpression,
)
from asyncdyn.model import Design, Entity, EntityAction, field
from asyncdyn.testing import ScriptedTransport, answer, error
from tests.model_shop import Customer, Order, shop

T0 = datetime(2024, 1, 3, 9, 30, tzinfo=UTC)
T0_TEXT = "2024-01-03T09:30:00.000000Z"
STORED_ORDER = {
    "PK": {"S": "CUSTOMER#1"},
    "SK": {"S": "ORDER#9"},
    "customer_id": {"S": "1"},
    "order_id": {"S": "9"},
    "total": {"N": "3"},
    "status": {"S": "PAID"},
    "placed_at": {"S": T0_TEXT},
    "Type": {"S": "Order"},
}


def an_order(**changes: Any) -> Order:
    values: dict[str, Any] = {
        "customer_id": "1",
        "order_id": "9",
        "total": Decimal("3"),
        "status": "PENDING",
        "placed_at": T0,
    }
    values.update(changes)
    return Order(**values)


def failed(item: dict[str, Any] | None = None) -> Any:
    extra = {} if item is None else {"Item": item}
    return error("ConditionalCheckFailedException", "The conditional request failed", **extra)


def names_of(payload: dict[str, Any]) -> set[str]:
    return set(payload.get("ExpressionAttributeNames", {}).values())


def values_of(payload: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for value in payload.get("ExpressionAttributeValues", {}).values():
        ((_, raw),) = value.items()
        out.append(raw)
    return out


async def test_field_conditions_use_stored_names_and_encoded_values(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({})
    repo = shop.bind(client)
    await repo.put(
        an_order(),
        condition=(Order.note.eq("gift") & Order.placed_at.lt(T0))
        | ~Order.status.is_in(["PAID", "SHIPPED"])
        | Order.total.between(Decimal("1.5"), 10),
    )
    (put,) = transport.payloads
    expression = put["ConditionExpression"]
    assert " OR " in expression and "NOT" in expression and " IN " in expression
    assert "BETWEEN" in expression
    # ``note`` is stored as ``n``, the datetime as its ISO text, the decimal as a number.
    assert {"n", "placed_at", "status", "total"} <= names_of(put)
    assert "note" not in names_of(put)
    assert put["ExpressionAttributeValues"][next(iter(put["ExpressionAttributeValues"]))]
    got = values_of(put)
    assert "gift" in got and T0_TEXT in got and "PAID" in got and "SHIPPED" in got
    assert "1.5" in got and "10" in got


async def test_none_compares_as_absence(client: Client, transport: ScriptedTransport) -> None:
    transport.default = answer({})
    repo = shop.bind(client)
    await repo.put(an_order(), condition=Order.note.eq(None) & Order.expires.ne(None))
    (put,) = transport.payloads
    assert "attribute_not_exists" in put["ConditionExpression"]
    assert "attribute_exists" in put["ConditionExpression"].replace("attribute_not_exists", "")
    assert {"n", "expires"} <= names_of(put)
    with pytest.raises(InvalidExpression, match=r"Order\.total"):
        await repo.put(an_order(), condition=Order.total.gt(None))
    assert len(transport.requests) == 1


async def test_update_ands_the_condition_with_the_item_existing(
    client: Client, transport: ScriptedTransport
) -> None:
    after = {**STORED_ORDER, "status": {"S": "PAID"}}
    transport.default = answer({"Attributes": after})
    repo = shop.bind(client)
    got = await repo.update(
        Order.ref(customer_id="1", order_id="9"),
        status="PAID",
        placed_at=T0,
        condition=Order.status.eq("PENDING"),
    )
    assert isinstance(got, Order) and got.status == "PAID"
    (u,) = transport.payloads
    assert "attribute_exists" in u["ConditionExpression"] and " AND " in u["ConditionExpression"]
    assert "PENDING" in values_of(u) and "status" in names_of(u)
    assert u["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"


async def test_a_failed_update_condition_names_table_key_and_the_stored_entity(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [failed(STORED_ORDER)]
    repo = shop.bind(client)
    with pytest.raises(ConditionalCheckFailed) as caught:
        await repo.update(
            Order.ref(customer_id="1", order_id="9"),
            status="PAID",
            placed_at=T0,
            condition=Order.status.eq("PENDING"),
        )
    exc = caught.value
    assert exc.table == "Shop" and exc.key == {"PK": "CUSTOMER#1", "SK": "ORDER#9"}
    assert isinstance(exc.current, Order) and exc.current.status == "PAID"
    assert exc.item is not None and exc.item["status"] == "PAID"
    assert "'Shop'" in str(exc) and "ORDER#9" in str(exc) and "Order" in str(exc)
    assert len(transport.requests) == 1


async def test_an_update_of_no_item_still_returns_none_with_a_condition(
    client: Client, transport: ScriptedTransport
) -> None:
    # No item returned, and the consistent read that makes sure finds none either.
    transport.steps = [failed(), answer({})]
    repo = shop.bind(client)
    got = await repo.update(
        Order.ref(customer_id="1", order_id="9"),
        status="PAID",
        placed_at=T0,
        condition=Order.status.eq("PENDING"),
    )
    assert got is None
    assert transport.operations == ["UpdateItem", "GetItem"]


async def test_fetch_update_fails_on_the_users_condition_without_retrying(
    client: Client, transport: ScriptedTransport
) -> None:
    # The inputs read are still stored: the failed part is the caller's condition.
    transport.steps = [answer({"Item": STORED_ORDER}), failed(STORED_ORDER)]
    repo = shop.bind(client)
    with pytest.raises(ConditionalCheckFailed) as caught:
        await repo.update(
            Order.ref(customer_id="1", order_id="9"),
            status="SHIPPED",
            derive="fetch",
            condition=Order.status.eq("PENDING"),
        )
    assert isinstance(caught.value.current, Order)
    assert transport.operations == ["GetItem", "UpdateItem"]
    update = transport.payloads[1]
    assert T0_TEXT in values_of(update) and "PENDING" in values_of(update)


async def test_fetch_update_rereads_when_a_derived_input_moved(
    client: Client, transport: ScriptedTransport
) -> None:
    moved = {**STORED_ORDER, "placed_at": {"S": "2024-02-01T00:00:00.000000Z"}}
    after = {**moved, "status": {"S": "SHIPPED"}}
    transport.steps = [
        answer({"Item": STORED_ORDER}),
        failed(moved),
        answer({"Item": moved}),
        answer({"Attributes": after}),
    ]
    repo = shop.bind(client)
    got = await repo.update(
        Order.ref(customer_id="1", order_id="9"),
        status="SHIPPED",
        derive="fetch",
        condition=Order.status.is_in(["PENDING", "PAID"]),
    )
    assert got is not None and got.status == "SHIPPED"
    assert transport.operations == ["GetItem", "UpdateItem", "GetItem", "UpdateItem"]


async def test_versioned_update_ands_the_condition_with_the_version(
    client: Client, transport: ScriptedTransport
) -> None:
    stored = {
        "PK": {"S": "CUSTOMER#1"},
        "SK": {"S": "METADATA"},
        "customer_id": {"S": "1"},
        "email": {"S": "a@example.com"},
        "name": {"S": "A"},
        "version": {"N": "3"},
        "Type": {"S": "Customer"},
    }
    transport.steps = [answer({"Item": stored}), failed(stored)]
    repo = shop.bind(client)
    with pytest.raises(ConditionalCheckFailed) as caught:
        await repo.update(Customer.ref(customer_id="1"), name="B", condition=Customer.name.eq("Z"))
    # The version stored is the one read: the caller's condition failed, no retry.
    assert transport.operations == ["GetItem", "PutItem"]
    put = transport.payloads[1]
    assert "version" in names_of(put) and "name" in names_of(put)
    assert "3" in values_of(put) and "Z" in values_of(put)
    current = caught.value.current
    assert isinstance(current, Customer) and current.version == 3


async def test_delete_takes_a_condition(client: Client, transport: ScriptedTransport) -> None:
    transport.steps = [answer({}), failed(STORED_ORDER)]
    repo = shop.bind(client)
    ref = Order.ref(customer_id="1", order_id="9")
    await repo.delete(ref, condition=Order.status.eq("PENDING"))
    with pytest.raises(ConditionalCheckFailed) as caught:
        await repo.delete(ref, condition=Order.status.eq("PENDING"))
    assert isinstance(caught.value.current, Order)
    first = transport.payloads[0]
    assert "PENDING" in values_of(first) and "status" in names_of(first)
    action = repo.tx_delete(ref, condition=Order.status.ne("SHIPPED"))
    assert "SHIPPED" in str(action.body)


def test_tx_put_carries_the_entity_as_written() -> None:
    repo = shop.bind(
        Client(region="us-east-1", endpoint_url="http://127.0.0.1:9", credentials=("a", "b"))
    )
    action = repo.tx_put(
        Customer(customer_id="1", email="a@example.com", name="A"),
        condition=Customer.email.begins_with("a@"),
    )
    assert isinstance(action, EntityAction)
    written: Customer = action.entity
    assert written.version == 1 and written.created_at is not None
    assert written.updated_at == written.created_at
    item = action.body["Item"]
    # The entity given back is the very item the transaction writes.
    assert item["version"] == {"N": "1"}
    assert item["updated_at"] == {"S": written.updated_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    assert "begins_with" in action.body["ConditionExpression"]
    assert "attribute_not_exists" in action.body["ConditionExpression"]


bodies = Design("Bodies")


@bodies.entity("Doc")
class Doc(Entity):
    doc_id: str
    body: str = field(compress=True, default="")
    key = bodies.key(pk="DOC#{doc_id}", sk="DOC")


async def test_bad_conditions_are_refused_before_sending(
    client: Client, transport: ScriptedTransport
) -> None:
    docs = bodies.bind(client)
    with pytest.raises(InvalidExpression, match=r"Doc\.body.*compressed or offloaded"):
        await docs.put(Doc(doc_id="1", body="x"), condition=Doc.body.eq("x"))
    with pytest.raises(InvalidExpression, match=r"Doc\.body"):
        await docs.update(Doc.ref(doc_id="1"), body="y", condition=Doc.body.exists())
    repo = shop.bind(client)
    with pytest.raises(ConfigurationError, match=r"Customer\.name.*Order"):
        await repo.put(an_order(), condition=Customer.name.eq("A"))
    with pytest.raises(InvalidExpression, match="is_in"):
        async for _ in repo.query(Order, customer_id="1", where=Order.order_id.is_in(["1"])):
            pass
    with pytest.raises(InvalidExpression, match="where="):
        async for _ in repo.query(
            Order, customer_id="1", where=Order.order_id.gt("1") & Order.status.eq("A")
        ):
            pass
    with pytest.raises(InvalidExpression, match=r"Order\.total"):
        await repo.put(an_order(), condition=Order.total.begins_with("1"))
    with pytest.raises(ConfigurationError, match=r"Order\.status\.is_in takes a list"):
        Order.status.is_in("PAID")
    with pytest.raises(InvalidExpression, match="at least one"):
        await repo.put(an_order(), condition=Order.status.is_in([]))
    assert transport.requests == []
    # Stored names stay possible: a plain Condition passes through as it is.
    transport.default = answer({})
    await repo.put(an_order(), condition=Attr("status").eq("PENDING"))
    assert "PENDING" in values_of(transport.payloads[0])
