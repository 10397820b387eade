"""The entity layer without sockets: classes, discrimination, and the requests it sends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from asyncdyn import Client, ConfigurationError, InvalidItem, UnprocessedItemsError
from asyncdyn.model import Design, Entity, Raw, field
from asyncdyn.testing import ScriptedTransport, answer
from tests.model_shop import Customer, Order, OrderItem, customer_page, order_page, shop

T0 = datetime(2024, 1, 3, 9, 30, tzinfo=UTC)


def an_order(**changes: Any) -> Order:
    values: dict[str, Any] = {
        "customer_id": "123",
        "order_id": "456",
        "total": Decimal("9.99"),
        "status": "PENDING",
        "placed_at": T0,
    }
    values.update(changes)
    return Order(**values)


def values_of(payload: dict[str, Any]) -> list[Any]:
    """The plain values a request's placeholders stand for (strings and numbers)."""
    out = []
    for value in payload.get("ExpressionAttributeValues", {}).values():
        ((kind, raw),) = value.items()
        out.append(raw)
    return out


def test_entity_class_is_a_slotted_keyword_record() -> None:
    o = an_order()
    assert o == an_order() and o != an_order(order_id="457")
    assert "placed_at=datetime.datetime(2024" in repr(o) and repr(o).startswith("Order(")
    assert not hasattr(o, "__dict__")
    assert o.note is None and o.expires is None
    with pytest.raises(TypeError):
        Order("123", "456")  # type: ignore[misc]
    with pytest.raises(TypeError):
        Order(customer_id="123")  # type: ignore[call-arg]
    c = Customer(customer_id="1", email="a@b", name="A")
    assert c.version == 0 and c.created_at is None
    assert Order.__name__ == "Order" and Order.placed_at.name == "placed_at"
    assert Order.field_ref("placed_at") is Order.placed_at


def test_declaration_errors() -> None:
    d = Design("D")
    with pytest.raises(ConfigurationError, match="no table key"):

        @d.entity("A")
        class A:
            a: str

    with pytest.raises(ConfigurationError, match="already"):

        @d.entity("Customer")
        class B:
            b: str
            key = d.key(pk="B#{b}", sk="B")

        @d.entity("Customer")
        class C:
            c: str
            key = d.key(pk="C#{c}", sk="C")

    with pytest.raises(ConfigurationError, match="overwritten"):

        @d.entity("E")
        class E:
            e: str
            PK: str
            key = d.key(pk="E#{e}", sk="E")

    with pytest.raises(ConfigurationError, match="no index"):
        d.index("GSI9", pk="X")


def test_parse_discriminates_by_key_then_type_and_never_drops() -> None:
    order = {
        "PK": "CUSTOMER#1",
        "SK": "ORDER#9",
        "total": 3,
        "status": "NEW",
        "placed_at": "2024-01-03T09:30:00.000000Z",
        "Type": "Order",
        "GSI1PK": "ORDER#9",
    }
    parsed = shop.parse(order)
    assert parsed == an_order(customer_id="1", order_id="9", total=Decimal(3), status="NEW")
    assert type(parsed.total) is Decimal
    # Key structure wins: an item without a type attribute is still an order.
    no_type = {k: v for k, v in order.items() if k != "Type"}
    assert shop.parse(no_type) == parsed
    # Fields absent from the item are read from the key (a KEYS_ONLY projection).
    assert shop.parse({"PK": "ORDER#7", "SK": "ITEM#00002", "sku": "S"}) == OrderItem(
        order_id="7", item_id=2, sku="S"
    )
    # An alias still reads as the entity when the key says nothing.
    renamed = {k: v for k, v in order.items() if k not in ("PK", "SK", "Type")}
    renamed.update(Type="Purchase", customer_id="1", order_id="9")
    assert shop.parse(renamed) == parsed
    stranger = {"PK": "INVOICE#1", "SK": "X", "Type": "Invoice"}
    with pytest.raises(InvalidItem, match="no entity of the design"):
        shop.parse(stranger)
    assert shop.parse(stranger, unknown="skip") is None
    assert shop.parse(stranger, unknown="raw") == Raw(stranger)
    with pytest.raises(InvalidItem, match="placed_at"):
        shop.parse({"PK": "CUSTOMER#1", "SK": "ORDER#9", "total": 1, "status": "S"})


async def test_put_writes_derived_attributes_and_returns_the_entity(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({})
    repo = shop.bind(client)
    written = await repo.put(an_order(note="gift"))
    assert written == an_order(note="gift")
    (put,) = transport.payloads
    item = put["Item"]
    assert item["PK"] == {"S": "CUSTOMER#123"} and item["SK"] == {"S": "ORDER#456"}
    assert item["GSI1PK"] == {"S": "ORDER#456"} and item["GSI1SK"] == {"S": "CUSTOMER#123"}
    assert item["GSI2PK"] == {"S": "ORDER_STATUS#PENDING"}
    assert item["GSI2SK"] == {"S": "2024-01-03T09:30:00.000000Z#ORDER#456"}
    assert item["Type"] == {"S": "Order"} and item["n"] == {"S": "gift"}
    assert "note" not in item and "expires" not in item
    assert "ConditionExpression" not in put


async def test_versioned_put_is_conditional_and_stamps(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({})
    repo = shop.bind(client)
    first = await repo.put(Customer(customer_id="1", email="a@example.com", name="A"))
    assert first.version == 1 and first.created_at is not None
    assert first.updated_at == first.created_at
    second = await repo.put(first)
    assert second.version == 2 and second.created_at == first.created_at
    p1, p2 = transport.payloads
    assert "attribute_not_exists" in p1["ConditionExpression"]
    assert p1["Item"]["version"] == {"N": "1"}
    assert p2["Item"]["version"] == {"N": "2"} and values_of(p2) == ["1"]
    assert p1["Item"]["GSI1PK"] == {"S": "CUSTOMER_EMAIL#a@example.com"}


async def test_bad_input_is_refused_before_sending(
    client: Client, transport: ScriptedTransport
) -> None:
    repo = shop.bind(client)
    with pytest.raises(InvalidItem, match="separator") as caught:
        await repo.put(an_order(customer_id="1#ORDER#9"))
    assert caught.value.path == "Order.customer_id"
    with pytest.raises(InvalidItem, match="naive"):
        await repo.put(an_order(placed_at=datetime(2024, 1, 1)))
    with pytest.raises(InvalidItem, match="lacks order_id"):
        await repo.get(Order, customer_id="1")
    with pytest.raises(InvalidItem, match="not key fields"):
        await repo.get(Customer, customer_id="1", email="x")
    assert transport.requests == []


async def test_entity_query_adds_the_sort_prefix_and_no_filter(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({"Items": [], "Count": 0})
    repo = shop.bind(client)
    assert [o async for o in repo.query(Order, customer_id="123")] == []
    (q,) = transport.payloads
    assert "begins_with" in q["KeyConditionExpression"]
    assert sorted(values_of(q)) == ["CUSTOMER#123", "ORDER#"]
    assert "FilterExpression" not in q


async def test_collection_proven_alone_has_no_filter_and_no_sort_condition(
    client: Client, transport: ScriptedTransport
) -> None:
    order = {
        "PK": {"S": "CUSTOMER#1"},
        "SK": {"S": "ORDER#9"},
        "Type": {"S": "Order"},
        "total": {"N": "3"},
        "status": {"S": "NEW"},
        "placed_at": {"S": "2024-01-03T09:30:00.000000Z"},
    }
    customer = {
        "PK": {"S": "CUSTOMER#1"},
        "SK": {"S": "METADATA"},
        "Type": {"S": "Customer"},
        "customer_id": {"S": "1"},
        "email": {"S": "e"},
        "name": {"S": "N"},
        "version": {"N": "1"},
    }
    transport.default = answer({"Items": [customer, order], "Count": 2})
    repo = shop.bind(client)
    rows = [r async for r in repo.query(customer_page, customer_id="1")]
    assert [type(r) for r in rows] == [Customer, Order]
    (q,) = transport.payloads
    assert "FilterExpression" not in q and values_of(q) == ["CUSTOMER#1"]
    assert "IndexName" not in q
    # On a GSI too (overloading): Order and OrderItem under ORDER#{order_id} of GSI1.
    transport.requests.clear()
    transport.default = answer({"Items": [], "Count": 0})
    assert [r async for r in repo.query(order_page, order_id="9")] == []
    (q,) = transport.payloads
    assert q["IndexName"] == "GSI1" and "FilterExpression" not in q
    assert values_of(q) == ["ORDER#9"]


async def test_where_ranges_a_template_field_on_an_index(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({"Items": [], "Count": 0})
    repo = shop.bind(client)
    t1 = datetime(2024, 2, 1, tzinfo=UTC)
    got = repo.query(Order.by_status, status="PENDING", where=Order.placed_at.between(T0, t1))
    assert [o async for o in got] == []
    (q,) = transport.payloads
    assert q["IndexName"] == "GSI2" and "BETWEEN" in q["KeyConditionExpression"]
    assert values_of(q) == [
        "ORDER_STATUS#PENDING",
        "2024-01-03T09:30:00.000000Z",
        "2024-02-01T00:00:00.000000Z#ORDER#\U0010ffff",
    ]
    with pytest.raises(InvalidItem, match="first sort-key field"):
        repo.query(Order.by_status, status="P", where=Order.order_id.eq("1"))


# A design where other types share the partition, to drive the planner's other branches.
mixed = Design("Mixed")


@mixed.entity("User")
class User(Entity):
    user_id: str
    key = mixed.key(pk="USER#{user_id}", sk="PROFILE")


@mixed.entity("Post")
class Post(Entity):
    user_id: str
    post_id: str
    key = mixed.key(pk="USER#{user_id}", sk="POST#{post_id}")


@mixed.entity("Like")
class Like(Entity):
    user_id: str
    post_id: str
    key = mixed.key(pk="USER#{user_id}", sk="LIKE#{post_id}")


@mixed.entity("Comment")
class Comment(Entity):
    user_id: str
    post_id: str
    n: int
    key = mixed.key(pk="USER#{user_id}", sk="POST#{post_id}#C#{n}")


profile = mixed.collection("profile", User, Like)
posts = mixed.collection("posts", Post, User)


async def test_interleaved_types_are_excluded_by_ranges_merged_in_order(
    client: Client, transport: ScriptedTransport
) -> None:
    def page(*sks: str) -> Any:
        items = [
            {
                "PK": {"S": "USER#1"},
                "SK": {"S": sk},
                "user_id": {"S": "1"},
                "post_id": {"S": sk.rpartition("#")[2]},
            }
            for sk in sks
        ]
        return answer({"Items": items, "Count": len(items)})

    transport.steps = [page("LIKE#a", "LIKE#c"), page("PROFILE")]
    repo = mixed.bind(client)
    rows = [r async for r in repo.query(profile, user_id="1")]
    assert [type(r).__name__ for r in rows] == ["Like", "Like", "User"]
    q1, q2 = transport.payloads
    assert "FilterExpression" not in q1 and "FilterExpression" not in q2
    assert sorted(values_of(q1) + values_of(q2)) == ["LIKE#", "PROFILE", "USER#1", "USER#1"]


async def test_a_type_filter_only_when_ranges_cannot_exclude(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({"Items": [], "Count": 0})
    repo = mixed.bind(client)
    # Comments live inside the POST# range: the last resort, a filter on the type.
    assert [r async for r in repo.query(Post, user_id="1")] == []
    (q,) = transport.payloads
    assert "FilterExpression" in q and "Post" in values_of(q)
    transport.requests.clear()
    assert [r async for r in repo.query(posts, user_id="1")] == []
    (q,) = transport.payloads
    assert sorted(v for v in values_of(q) if v != "USER#1") == ["Post", "User"]
    # A full key is exact: no filter.
    transport.requests.clear()
    assert [r async for r in repo.query(Post, user_id="1", post_id="p")] == []
    assert "FilterExpression" not in transport.payloads[0]


async def test_update_needs_every_input_of_a_derived_key(
    client: Client, transport: ScriptedTransport
) -> None:
    repo = shop.bind(client)
    with pytest.raises(InvalidItem, match="placed_at") as caught:
        await repo.update(Order.ref(customer_id="1", order_id="9"), status="SHIPPED")
    assert caught.value.path == "Order.placed_at"
    with pytest.raises(InvalidItem, match="table key"):
        await repo.update(Order.ref(customer_id="1", order_id="9"), order_id="10")
    assert transport.requests == []
    transport.default = answer(
        {
            "Attributes": {
                "PK": {"S": "CUSTOMER#1"},
                "SK": {"S": "ORDER#9"},
                "total": {"N": "3"},
                "status": {"S": "SHIPPED"},
                "placed_at": {"S": "2024-01-03T09:30:00.000000Z"},
            }
        }
    )
    got = await repo.update(
        Order.ref(customer_id="1", order_id="9"), status="SHIPPED", placed_at=T0
    )
    assert got.status == "SHIPPED"
    (u,) = transport.payloads
    assert "ORDER_STATUS#SHIPPED" in values_of(u)
    assert "2024-01-03T09:30:00.000000Z#ORDER#9" in values_of(u)
    assert "attribute_exists" in u["ConditionExpression"]


async def test_update_fetch_reads_then_writes_on_what_it_read(
    client: Client, transport: ScriptedTransport
) -> None:
    stored = {
        "PK": {"S": "CUSTOMER#1"},
        "SK": {"S": "ORDER#9"},
        "total": {"N": "3"},
        "status": {"S": "NEW"},
        "placed_at": {"S": "2024-01-03T09:30:00.000000Z"},
    }
    after = {**stored, "status": {"S": "SHIPPED"}}
    transport.steps = [answer({"Item": stored}), answer({"Attributes": after})]
    repo = shop.bind(client)
    got = await repo.update(
        Order.ref(customer_id="1", order_id="9"), status="SHIPPED", derive="fetch"
    )
    assert got is not None and got.status == "SHIPPED"
    get, update = transport.payloads
    assert get["ConsistentRead"] is True
    assert "2024-01-03T09:30:00.000000Z" in values_of(update)  # the condition on what was read
    assert "2024-01-03T09:30:00.000000Z#ORDER#9" in values_of(update)


sparse = Design("Sparse", indexes={"GSI1": ("G1", "G1S")})


@sparse.entity("Ticket")
class Ticket(Entity):
    ticket_id: str
    assignee: str | None = None
    key = sparse.key(pk="TICKET#{ticket_id}", sk="T")
    by_assignee = sparse.index("GSI1", pk="ASSIGNEE#{assignee}", sk="TICKET#{ticket_id}")


async def test_sparse_index_membership_follows_none(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({})
    repo = sparse.bind(client)
    await repo.put(Ticket(ticket_id="1"))
    await repo.put(Ticket(ticket_id="2", assignee="ann"))
    p1, p2 = transport.payloads
    assert "G1" not in p1["Item"] and p2["Item"]["G1"] == {"S": "ASSIGNEE#ann"}
    await repo.update(Ticket.ref(ticket_id="2"), assignee=None)
    update = transport.payloads[2]["UpdateExpression"]
    assert update.count("REMOVE") == 1 and "SET" in update  # assignee and G1/G1S removed
    names = transport.payloads[2]["ExpressionAttributeNames"].values()
    assert {"assignee", "G1", "G1S"} <= set(names)


async def test_batch_get_aligns_refs_of_several_types(
    client: Client, transport: ScriptedTransport
) -> None:
    def respond(headers: Any, body: bytes) -> Any:
        return answer(
            {
                "Responses": {
                    "Shop": [{"PK": {"S": "ORDER#7"}, "SK": {"S": "ITEM#00001"}, "sku": {"S": "S"}}]
                }
            }
        )

    transport.default = respond
    repo = shop.bind(client)
    got = await repo.batch_get(
        [
            Customer.ref(customer_id="1"),
            OrderItem.ref(order_id="7", item_id=1),
        ]
    )
    assert got == [None, OrderItem(order_id="7", item_id=1, sku="S")]


async def test_ttl_hides_expired_entities(client: Client, transport: ScriptedTransport) -> None:
    gone = {
        "PK": {"S": "CUSTOMER#1"},
        "SK": {"S": "ORDER#9"},
        "total": {"N": "3"},
        "status": {"S": "NEW"},
        "placed_at": {"S": "2024-01-03T09:30:00.000000Z"},
        "expires": {"N": "1000"},
    }
    transport.default = answer({"Item": gone})
    repo = shop.bind(client)
    assert await repo.get(Order, customer_id="1", order_id="9") is None
    transport.requests.clear()
    transport.default = answer({})
    later = datetime(2030, 1, 1, tzinfo=UTC)
    await repo.put(an_order(expires=later))
    assert transport.payloads[0]["Item"]["expires"] == {"N": str(int(later.timestamp()))}


def test_top_level_exports() -> None:
    import asyncdyn

    assert asyncdyn.Design is Design and asyncdyn.field is field and asyncdyn.Raw is Raw


def test_local_classes_resolve_string_annotations() -> None:
    local = Design("Local")

    @local.entity("When")
    class When:  # string annotations (this module's __future__ import) of a local class
        at: datetime
        key = local.key(pk="W#{at}", sk="W")

    assert When(at=T0).at == T0  # type: ignore[call-arg]
    assert local.parse({"PK": "W#2024-01-03T09:30:00.000000Z", "SK": "W"}) == When(at=T0)  # type: ignore[call-arg]


def test_stream_records_parse_to_entities() -> None:
    from asyncdyn import Record

    before = {
        "PK": "CUSTOMER#1",
        "SK": "ORDER#9",
        "total": 3,
        "status": "NEW",
        "placed_at": "2024-01-03T09:30:00.000000Z",
    }
    after = {**before, "status": "SHIPPED"}
    record = Record(
        "MODIFY",
        {"PK": "CUSTOMER#1", "SK": "ORDER#9"},
        after,
        before,
        "1",
        "s",
        None,
        "NEW_AND_OLD_IMAGES",
    )
    old, new = shop.parse_record(record)
    assert (old.status, new.status) == ("NEW", "SHIPPED") and isinstance(new, Order)
    removed = Record(
        "REMOVE",
        {"PK": "X", "SK": "Y"},
        None,
        {"PK": "X", "SK": "Y"},
        "2",
        "s",
        None,
        "NEW_AND_OLD_IMAGES",
    )
    assert shop.parse_record(removed, unknown="raw") == (Raw({"PK": "X", "SK": "Y"}), None)


async def test_batch_writes_carry_derived_attributes_and_refuse_versions(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({})
    repo = shop.bind(client)
    with pytest.raises(ConfigurationError, match="version"):
        await repo.batch_write(puts=[Customer(customer_id="1", email="e", name="n")])
    await repo.batch_write(puts=[an_order()], deletes=[OrderItem.ref(order_id="1", item_id=2)])
    (batch,) = transport.payloads
    put, delete = batch["RequestItems"]["Shop"]
    assert put["PutRequest"]["Item"]["GSI2PK"] == {"S": "ORDER_STATUS#PENDING"}
    assert delete["DeleteRequest"]["Key"] == {"PK": {"S": "ORDER#1"}, "SK": {"S": "ITEM#00002"}}
    transport.requests.clear()
    async with repo.writer() as w:
        written = await w.put(an_order(order_id="457"))
        await w.delete(Order.ref(customer_id="123", order_id="456"))
        with pytest.raises(ConfigurationError, match="version"):
            await w.put(Customer(customer_id="1", email="e", name="n"))
    assert written == an_order(order_id="457")
    requests = [r for p in transport.payloads for r in p["RequestItems"]["Shop"]]
    assert requests[0]["PutRequest"]["Item"]["Type"] == {"S": "Order"}
    assert requests[1]["DeleteRequest"]["Key"]["SK"] == {"S": "ORDER#456"}


async def test_the_entity_writer_reports_what_it_did_not_write(
    client: Client, transport: ScriptedTransport
) -> None:
    # Every chunk is refused for good: the block raises the core writer's report, and the
    # entity writer keeps it reachable as ``unwritten`` (its items as written, raw).
    transport.default = answer({"__type": "ValidationException", "message": "no"}, status=400)
    repo = shop.bind(client)
    with pytest.raises(UnprocessedItemsError) as info:
        async with repo.writer() as w:
            await w.put(an_order(order_id="457"))
    assert w.unwritten is info.value
    (item,) = info.value.puts
    assert item["SK"] == "ORDER#457" and item["GSI2PK"] == "ORDER_STATUS#PENDING"


accounts = Design("Accounts")


@accounts.entity("Account")
class Account(Entity):
    account_id: str
    email: str = field(unique=True)
    version: int = field(version=True, default=0)
    key = accounts.key(pk="ACCOUNT#{account_id}", sk="A")


async def test_unique_guard_is_claimed_in_the_same_transaction(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [answer({}), answer({})]  # GetItem: no item; TransactWriteItems
    repo = accounts.bind(client)
    written = await repo.put(Account(account_id="1", email="a@example.com"))
    assert written.version == 1
    assert transport.operations == ["GetItem", "TransactWriteItems"]
    actions = transport.payloads[1]["TransactItems"]
    assert [next(iter(a)) for a in actions] == ["Put", "Put"]
    guard = actions[1]["Put"]["Item"]
    assert guard["PK"] == {"S": "UNIQUE#Account#email#a@example.com"}
    assert guard["owner_PK"] == {"S": "ACCOUNT#1"} and guard["Type"] == {
        "S": "asyncdyn.UniqueGuard"
    }
    assert "attribute_not_exists" in actions[1]["Put"]["ConditionExpression"]
    with pytest.raises(ConfigurationError, match="unique"):
        repo.tx_put(Account(account_id="2", email="b@example.com"))
    with pytest.raises(ConfigurationError, match="unique"):
        await repo.batch_write(puts=[Account(account_id="2", email="b@example.com")])


async def test_query_follows_pages_and_limit(client: Client, transport: ScriptedTransport) -> None:
    def item(n: int) -> dict[str, Any]:
        return {
            "PK": {"S": "CUSTOMER#1"},
            "SK": {"S": f"ORDER#{n}"},
            "total": {"N": "1"},
            "status": {"S": "S"},
            "placed_at": {"S": "2024-01-03T09:30:00.000000Z"},
        }

    transport.steps = [
        answer(
            {
                "Items": [item(1), item(2)],
                "LastEvaluatedKey": {"PK": {"S": "CUSTOMER#1"}, "SK": {"S": "ORDER#2"}},
            }
        ),
        answer({"Items": [item(3)]}),
    ]
    repo = shop.bind(client)
    got = [o.order_id async for o in repo.query(Order, customer_id="1")]
    assert got == ["1", "2", "3"]
    first, second = transport.payloads
    assert "ExclusiveStartKey" not in first
    assert second["ExclusiveStartKey"] == {"PK": {"S": "CUSTOMER#1"}, "SK": {"S": "ORDER#2"}}
    transport.requests.clear()
    transport.steps = [
        answer(
            {
                "Items": [item(1), item(2)],
                "LastEvaluatedKey": {"PK": {"S": "CUSTOMER#1"}, "SK": {"S": "ORDER#2"}},
            }
        )
    ]
    assert [o.order_id async for o in repo.query(Order, customer_id="1", limit=2)] == ["1", "2"]
    assert len(transport.requests) == 1 and transport.payloads[0]["Limit"] == 2


async def test_a_range_over_time_buckets_queries_each_month_in_order(
    client: Client, transport: ScriptedTransport
) -> None:
    from tests.model_sensors import Reading, iot

    transport.default = answer({"Items": [], "Count": 0})
    repo = iot.bind(client)
    t0 = datetime(2024, 11, 20, tzinfo=UTC)
    t1 = datetime(2025, 2, 3, 12, tzinfo=UTC)
    got = repo.query(Reading, sensor_id="s1", where=Reading.at.between(t0, t1))
    assert [r async for r in got] == []
    partitions = [values_of(p)[0] for p in transport.payloads]
    assert sorted(partitions) == [
        "SENSOR#s1#2024-11",
        "SENSOR#s1#2024-12",
        "SENSOR#s1#2025-01",
        "SENSOR#s1#2025-02",
    ]
    assert all(
        values_of(p)[1:] == ["2024-11-20T00:00:00.000000Z", "2025-02-03T12:00:00.000000Z"]
        for p in transport.payloads
    )
    with pytest.raises(ConfigurationError, match="add until="):
        repo.query(Reading, sensor_id="s1", where=Reading.at.gte(t0))
    with pytest.raises(InvalidItem, match="needs at"):
        repo.query(Reading, sensor_id="s1")


tenants = Design(
    "Tenants",
    indexes={
        "GSI1": ("G1PK", "G1SK"),
        "BY_REGION": (("tenant", "region"), ("created", "order_id")),
    },
)


@tenants.entity("TenantOrder")
class TenantOrder(Entity):
    tenant: str
    region: str
    created: datetime
    order_id: str
    total: int = 0
    key = tenants.key(pk="TENANT#{tenant}#ORDER#{order_id}", sk="ORDER")
    by_region = tenants.index("BY_REGION")


async def test_multi_attribute_index_create_and_query(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({"TableDescription": {"TableStatus": "ACTIVE"}})
    repo = tenants.bind(client)
    await repo.create_table(wait=False)
    (create,) = transport.payloads
    gsi = {g["IndexName"]: g["KeySchema"] for g in create["GlobalSecondaryIndexes"]}
    assert gsi["BY_REGION"] == [
        {"AttributeName": "tenant", "KeyType": "HASH"},
        {"AttributeName": "region", "KeyType": "HASH"},
        {"AttributeName": "created", "KeyType": "RANGE"},
        {"AttributeName": "order_id", "KeyType": "RANGE"},
    ]
    types = {d["AttributeName"]: d["AttributeType"] for d in create["AttributeDefinitions"]}
    assert types["tenant"] == "S" and types["created"] == "S"
    transport.requests.clear()
    transport.default = answer(
        {
            "Items": [
                {
                    "PK": {"S": "TENANT#t1#ORDER#9"},
                    "SK": {"S": "ORDER"},
                    "tenant": {"S": "t1"},
                    "region": {"S": "eu"},
                    "created": {"S": "2024-01-03T09:30:00.000000Z"},
                    "order_id": {"S": "9"},
                    "total": {"N": "5"},
                }
            ]
        }
    )
    rows = repo.query(
        TenantOrder.by_region,
        tenant="t1",
        region="eu",
        where=TenantOrder.created.between(T0, T0 + timedelta(days=1)),
    )
    assert [r async for r in rows] == [
        TenantOrder(tenant="t1", region="eu", created=T0, order_id="9", total=5)
    ]
    (q,) = transport.payloads
    assert q["IndexName"] == "BY_REGION" and "FilterExpression" not in q
    expression = q["KeyConditionExpression"]
    for name, value in q["ExpressionAttributeNames"].items():
        expression = expression.replace(name, value)
    for name, value in q["ExpressionAttributeValues"].items():
        expression = expression.replace(name, value["S"])
    assert expression == (
        "tenant = t1 AND region = eu AND created BETWEEN 2024-01-03T09:30:00.000000Z AND "
        "2024-01-04T09:30:00.000000Z"
    )
    with pytest.raises(InvalidItem, match="give region"):
        repo.query(TenantOrder.by_region, tenant="t1")
    with pytest.raises(InvalidItem, match="prefix"):
        repo.query(TenantOrder.by_region, tenant="t1", region="eu", order_id="9")
    with pytest.raises(ConfigurationError, match="no templates"):
        tenants.index("BY_REGION", pk="X#{tenant}")


def test_global_index_multi_attribute_keys_in_create_table() -> None:
    from asyncdyn import GlobalIndex
    from asyncdyn.schema import create_table_request

    request = create_table_request(
        "Tbl",
        partition_key="PK",
        indexes=[
            GlobalIndex("G", ("a", ("b", "N")), ("c", "d", "e", "f")),
            GlobalIndex("H", ("x", "N")),
        ],
    )
    g, h = request["GlobalSecondaryIndexes"]
    assert [(k["AttributeName"], k["KeyType"]) for k in g["KeySchema"]] == [
        ("a", "HASH"),
        ("b", "HASH"),
        ("c", "RANGE"),
        ("d", "RANGE"),
        ("e", "RANGE"),
        ("f", "RANGE"),
    ]
    assert h["KeySchema"] == [{"AttributeName": "x", "KeyType": "HASH"}]  # a typed single key
    types = {d["AttributeName"]: d["AttributeType"] for d in request["AttributeDefinitions"]}
    assert types["b"] == "N" and types["x"] == "N" and types["a"] == "S"
    with pytest.raises(ConfigurationError, match="1 to 4"):
        create_table_request(
            "Tbl", partition_key="PK", indexes=[GlobalIndex("G", ("a", "b", "c", "d", "e"))]
        )


async def test_shard_fields_spread_writes_and_reads_fan_out(
    client: Client, transport: ScriptedTransport
) -> None:
    from asyncdyn import WriteSharding
    from tests.model_users import ShardedUser, accounts_by_shard

    transport.default = answer({})
    repo = accounts_by_shard.bind(client)
    written = await repo.put(ShardedUser(user_id="u42", name="Ann"))
    expected = WriteSharding("USERS#{shard}", shards=4).partition_for("u42")
    assert transport.payloads[0]["Item"]["PK"] == {"S": expected}
    assert written.shard == WriteSharding("{shard}", shards=4).shard_of("u42")
    transport.requests.clear()
    transport.default = answer({"Item": transport_item(expected)})
    got = await repo.get(ShardedUser, user_id="u42")
    assert got == written and transport.payloads[0]["Key"]["PK"] == {"S": expected}
    transport.requests.clear()
    transport.default = answer({"Items": [], "Count": 0})
    assert [u async for u in repo.query(ShardedUser)] == []
    assert sorted(values_of(p)[0] for p in transport.payloads) == [
        "USERS#0",
        "USERS#1",
        "USERS#2",
        "USERS#3",
    ]
    assert all("FilterExpression" not in p for p in transport.payloads)


def transport_item(pk: str) -> dict[str, Any]:
    from asyncdyn import WriteSharding

    shard = WriteSharding("{shard}", shards=4).shard_of("u42")
    return {
        "PK": {"S": pk},
        "SK": {"S": "USER#u42"},
        "user_id": {"S": "u42"},
        "name": {"S": "Ann"},
        "shard": {"N": str(shard)},
    }


def test_a_query_by_a_non_key_field_is_refused(client: Client) -> None:
    repo = shop.bind(client)
    with pytest.raises(InvalidItem, match="status are not in the key") as caught:
        repo.query(Order, customer_id="1", status="PENDING")
    assert caught.value.path == "Order.status"
