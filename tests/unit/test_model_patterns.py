"""Access patterns: declared, checked (each class of finding triggered and not), run, and
enforced by strict designs. No sockets: requests go to a scripted transport."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Literal

import pytest

from asyncdyn import Client, ConfigurationError, InvalidItem, UndeclaredAccess
from asyncdyn.model import Design, DesignReport, Entity, Finding, field
from asyncdyn.testing import ScriptedTransport, answer
from tests.model_shop import (
    Customer,
    Order,
    OrderItem,
    customer_by_email,
    customer_by_id,
    customer_page,
    customer_with_orders,
    items_of_order,
    order_by_id,
    order_page,
    order_with_items,
    orders_of_customer,
    pending_orders,
    shop,
)

T0 = datetime(2024, 1, 3, tzinfo=UTC)
T1 = datetime(2024, 2, 1, tzinfo=UTC)


def values_of(payload: dict[str, Any]) -> list[Any]:
    return [next(iter(v.values())) for v in payload.get("ExpressionAttributeValues", {}).values()]


def codes(report: DesignReport, severity: str | None = None) -> list[str]:
    return [f.code for f in report.findings if severity is None or f.severity == severity]


def one(report: DesignReport, code: str) -> Finding:
    (found,) = [f for f in report.findings if f.code == code]
    return found


# -- the playbook's e-commerce design -----------------------------------------------------


def test_the_ecommerce_design_checks_clean() -> None:
    report = shop.check()
    assert report.ok and report.errors == [] and report.warnings == []
    assert sorted(codes(report, "info")) == ["index-map", "index-map", "sparse-map"]
    # The deliberate low-cardinality GSI2 is accepted by the pattern that reads it.
    (accepted,) = report.allowed
    assert accepted.code == "hot-key-enum" and accepted.index == "GSI2"
    assert accepted.allowed is not None and "1,000 WCU/s" in accepted.allowed
    gsi1 = next(f for f in report.infos if f.code == "index-map" and f.index == "GSI1")
    assert gsi1.entities == ("Customer", "Order", "OrderItem") and "overloaded" in gsi1.message
    sparse = one(report, "sparse-map")
    assert sparse.index == "GSI2" and sparse.entities == ("Customer", "OrderItem")


def test_patterns_resolve_to_the_key_index_or_collection_that_serves_them() -> None:
    assert customer_by_id.resolve() is Customer and orders_of_customer.resolve() is Order
    assert items_of_order.resolve() is OrderItem
    assert customer_by_email.resolve() is Customer.by_email
    assert order_by_id.resolve() is Order.by_id
    assert pending_orders.resolve() is Order.by_status
    assert customer_with_orders.resolve() is customer_page
    assert order_with_items.resolve() is order_page
    assert pending_orders.inputs == ("status",) and pending_orders.by == ()
    assert orders_of_customer.by == ("customer_id",)


def test_pattern_declaration_errors() -> None:
    d = Design("P")

    @d.entity("A")
    class A(Entity):
        a: str
        key = d.key(pk="A#{a}", sk="A")

    d.pattern("a", A)
    with pytest.raises(ConfigurationError, match="already"):
        d.pattern("a", A)
    with pytest.raises(ConfigurationError, match="no field 'b' to fix"):
        d.pattern("b", A, b="x")
    with pytest.raises(ConfigurationError, match="reason"):
        d.pattern("c", A, allow={"hot-key-constant": ""})
    with pytest.raises(ConfigurationError, match="by="):
        d.pattern("d", (A,))
    with pytest.raises(ConfigurationError, match="writes_per_second"):
        d.pattern("e", A, writes_per_second=0)
    with pytest.raises(ConfigurationError, match="target"):
        d.pattern("f", "A")


# -- unservable patterns -------------------------------------------------------------------


def order_design(*, items_on_gsi1: bool) -> tuple[Design, type, type]:
    d = Design("Orders", indexes={"GSI1": ("GSI1PK", "GSI1SK"), "GSI2": ("GSI2PK", "GSI2SK")})

    @d.entity("Order")
    class Ord(Entity):
        customer_id: str
        order_id: str
        key = d.key(pk="CUSTOMER#{customer_id}", sk="ORDER#{order_id}")
        by_id = d.index("GSI1", pk="ORDER#{order_id}", sk="ORDER")

    if items_on_gsi1:

        @d.entity("Item")
        class Item1(Entity):
            order_id: str
            item_id: str
            key = d.key(pk="ORDER#{order_id}", sk="ITEM#{item_id}")
            by_order = d.index("GSI1", pk="ORDER#{order_id}", sk="ITEM#{item_id}")

        return d, Ord, Item1

    @d.entity("Item")
    class Item2(Entity):
        order_id: str
        item_id: str
        key = d.key(pk="ORDER#{order_id}", sk="ITEM#{item_id}")

    return d, Ord, Item2


def test_an_order_with_its_items_in_two_partitions_is_an_error_with_the_fix() -> None:
    d, Ord, Itm = order_design(items_on_gsi1=False)
    d.pattern("order with its items", (Ord, Itm), by=("order_id",))
    report = d.check()
    assert not report.ok
    f = one(report, "unservable")
    assert f.severity == "error" and f.pattern == "order with its items"
    assert f.entities == ("Order", "Item") and "Scan" in f.message
    assert f.suggestion is not None
    assert "write Item into GSI1 under 'ORDER#{order_id}'" in f.suggestion
    assert "design.collection(\"order with its items\", Ord, Item2, index='GSI1')" in f.suggestion


def test_types_sharing_a_partition_without_a_collection_are_told_to_declare_one() -> None:
    d, Ord, Itm = order_design(items_on_gsi1=True)
    p = d.pattern("order with its items", (Ord, Itm), by=("order_id",))
    f = one(d.check(), "unservable")
    assert f.suggestion == (
        "declare design.collection(\"order with its items\", Ord, Item1, index='GSI1')"
    )
    d.collection("order_page", Ord, Itm, index="GSI1")
    report = d.check()
    assert report.ok and "unservable" not in codes(report)
    assert p.resolve() is d.collections["order_page"]


def test_a_lookup_by_a_field_no_key_holds_suggests_an_index() -> None:
    d, Ord, _ = order_design(items_on_gsi1=False)
    d.pattern("order by id", Ord, by=("order_id",))  # GSI1 serves it
    d.pattern("orders by customer and id", Ord, by=("customer_id", "order_id"))  # the table key
    assert d.check().ok
    d.pattern("orders of a customer by status", Ord, by=("customer_id", "status"))
    f = one(d.check(), "unservable")
    assert f.pattern == "orders of a customer by status"
    assert f.suggestion is not None and "design.index('GSI2'" in f.suggestion


def test_an_explicit_pattern_whose_range_is_not_the_next_sort_field_is_an_error() -> None:
    report_ok = shop.check()
    assert "unservable" not in codes(report_ok)
    d = Design("R", indexes={"GSI1": ("GSI1PK", "GSI1SK")})

    @d.entity("Ev")
    class Ev(Entity):
        device: str
        at: datetime
        seq: int
        key = d.key(pk="DEV#{device}", sk="{seq:08d}#{at}")

    d.pattern("events in a time range", Ev, range=Ev.at)
    f = one(d.check(), "unservable")
    assert "next sort-key field" in f.message and "FilterExpression" in f.message


# -- filters, collisions, prefix overlaps --------------------------------------------------


def nested_design(*, shadowing: bool) -> tuple[Design, type]:
    d = Design("Nested")

    @d.entity("Order")
    class Ord(Entity):
        customer_id: str
        order_id: str
        key = d.key(pk="CUSTOMER#{customer_id}", sk="ORDER#{order_id}")

    @d.entity("Line")
    class L(Entity):
        customer_id: str
        order_id: str
        n: int
        sk = "ORDER#{order_id}#ITEM#{n}" if shadowing else "LINE#{order_id}#{n}"
        key = d.key(pk="CUSTOMER#{customer_id}", sk=sk)

    return d, Ord


def test_a_sort_range_shared_with_another_type_needs_a_filter_and_overlaps() -> None:
    d, Ord = nested_design(shadowing=True)
    d.pattern("orders of a customer", Ord)
    report = d.check()
    f = one(report, "needs-filter")
    assert f.severity == "error" and f.entities == ("Order", "Line")
    # Both ranges start with ORDER#: each type's read meets the other's items.
    overlaps = [f for f in report.findings if f.code == "prefix-overlap"]
    assert [(f.severity, f.entities) for f in overlaps] == [
        ("warning", ("Order", "Line")),
        ("warning", ("Line", "Order")),
    ]
    assert "ORDER#{order_id}#ITEM#{n}" in overlaps[0].message
    assert "key-collision" not in codes(report)  # no key is both an Order's and a Line's
    d2, Ord2 = nested_design(shadowing=False)
    d2.pattern("orders of a customer", Ord2)
    report2 = d2.check()
    assert report2.ok and not {"needs-filter", "prefix-overlap"} & set(codes(report2))


def collision_design(*, same: bool, on_index: bool) -> Design:
    d = Design("Coll", indexes={"GSI1": ("GSI1PK", "GSI1SK")})

    @d.entity("A")
    class A(Entity):
        x: str
        key = d.key(pk="X#{x}", sk="A")
        if on_index:
            by = d.index("GSI1", pk="K#{x}", sk="V")

    @d.entity("B")
    class B(Entity):
        x: str
        key = d.key(pk="X#{x}", sk="A" if same and not on_index else "B")
        if on_index:
            by = d.index("GSI1", pk="K#{x}", sk="V" if same else "W")

    return d


def test_template_collisions_on_the_table_and_on_an_index() -> None:
    f = one(collision_design(same=True, on_index=False).check(), "key-collision")
    assert f.severity == "error" and f.index is None and "overwrite" in f.message
    g = one(collision_design(same=True, on_index=True).check(), "key-collision")
    assert g.severity == "warning" and g.index == "GSI1"
    for on_index in (False, True):
        assert "key-collision" not in codes(collision_design(same=False, on_index=on_index).check())


# -- index maps ----------------------------------------------------------------------------


def test_index_map_and_sparse_map_and_an_unused_index() -> None:
    d = Design("Maps", indexes={"GSI1": ("GSI1PK", "GSI1SK"), "GSI2": ("GSI2PK", "GSI2SK")})

    @d.entity("U")
    class U(Entity):
        u: str
        nick: str | None = None
        key = d.key(pk="U#{u}", sk="U")
        by_nick = d.index("GSI1", pk="NICK#{nick}", sk="U#{u}")

    report = d.check()
    idx = one(report, "index-map")
    assert idx.index == "GSI1" and "holds U (NICK#{nick} / U#{u})" in idx.message
    sparse = one(report, "sparse-map")
    assert sparse.index == "GSI1" and "U (when nick is None) leaves it" in sparse.message
    unused = one(report, "index-unused")
    assert unused.severity == "warning" and unused.index == "GSI2"
    assert report.maps["GSI1"] == [
        {"entity": "U", "pk": "NICK#{nick}", "sk": "U#{u}", "sparse": "when nick is None"}
    ]


# -- projections ---------------------------------------------------------------------------


def projected(projection: Any) -> Design:
    d = Design("Proj", indexes={"GSI1": ("GSI1PK", "GSI1SK")}, projections={"GSI1": projection})

    @d.entity("Order")
    class Ord(Entity):
        order_id: str
        status: str
        total: Decimal
        note: str | None = None
        key = d.key(pk="ORDER#{order_id}", sk="ORDER")
        by_status = d.index("GSI1", pk="STATUS#{status}", sk="ORDER#{order_id}")

    d.pattern("orders by status", Ord.by_status)
    return d


def test_projection_gaps() -> None:
    keys_only = projected("KEYS_ONLY").check()
    (gap,) = [f for f in keys_only.errors if f.code == "projection-gap"]
    assert "total" in gap.message and "status" not in gap.message  # status parses from GSI1PK
    assert gap.pattern == "orders by status" and gap.index == "GSI1"
    assert gap.suggestion is not None and "['note', 'total']" in gap.suggestion
    include = projected(["total"]).check()
    assert include.ok
    (soft,) = [f for f in include.warnings if f.code == "projection-gap"]
    assert "note" in soft.message and "defaults" in soft.message
    everything = projected(["total", "n", "note"]).check()
    assert "projection-gap" not in codes(everything)
    assert "projection-gap" not in codes(projected("ALL").check())
    with pytest.raises(ConfigurationError, match="no index"):
        Design("X", projections={"GSI9": "ALL"})


# -- the live table ------------------------------------------------------------------------


def described(**changes: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "TableName": "Shop",
        "KeySchema": [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": "S"}
            for n in ("PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK")
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": name,
                "KeySchema": [
                    {"AttributeName": f"{name}PK", "KeyType": "HASH"},
                    {"AttributeName": f"{name}SK", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for name in ("GSI1", "GSI2")
        ],
    }
    table.update(changes)
    return table


def test_against_a_live_table() -> None:
    good = shop.check(described())
    assert good.ok and good.live and not [c for c in codes(good) if c.startswith("live")]
    gsis = described()["GlobalSecondaryIndexes"]
    missing = shop.check(described(GlobalSecondaryIndexes=gsis[:1]))
    f = one(missing, "live-missing-index")
    assert f.severity == "error" and f.index == "GSI2" and not missing.ok
    renamed = described(
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ]
    )
    assert "live-key" in codes(shop.check(renamed), "error")
    typed = described()
    typed["AttributeDefinitions"][2] = {"AttributeName": "GSI1PK", "AttributeType": "N"}
    f = one(shop.check(typed), "live-key-type")
    assert "'GSI1PK' is N" in f.message
    keys_only = described()
    keys_only["GlobalSecondaryIndexes"][1]["Projection"] = {"ProjectionType": "KEYS_ONLY"}
    gap = [f for f in shop.check(keys_only).errors if f.code == "projection-gap"]
    assert gap and gap[0].pattern == "pending orders in a date range" and "total" in gap[0].message


def test_multi_attribute_key_order_against_the_live_table() -> None:
    d = Design("Multi", indexes={"BY_REGION": (("tenant", "region"), ("created",))})

    @d.entity("Ev")
    class Ev(Entity):
        tenant: str
        region: str
        created: int
        ev: str
        key = d.key(pk="EV#{ev}", sk="EV")
        by_region = d.index("BY_REGION")

    def table(order: tuple[str, str]) -> dict[str, Any]:
        return {
            "TableName": "Multi",
            "KeySchema": [
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "SK", "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": [
                {"AttributeName": "PK", "AttributeType": "S"},
                {"AttributeName": "SK", "AttributeType": "S"},
                {"AttributeName": "tenant", "AttributeType": "S"},
                {"AttributeName": "region", "AttributeType": "S"},
                {"AttributeName": "created", "AttributeType": "N"},
            ],
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "BY_REGION",
                    "KeySchema": [
                        {"AttributeName": order[0], "KeyType": "HASH"},
                        {"AttributeName": order[1], "KeyType": "HASH"},
                        {"AttributeName": "created", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        }

    assert d.check(table(("tenant", "region"))).ok
    f = one(d.check(table(("region", "tenant"))), "live-key-order")
    assert f.severity == "error" and f.index == "BY_REGION"


# -- hot keys ------------------------------------------------------------------------------


class Tier(Enum):
    FREE = "free"
    PAID = "paid"


def hot_design(pk: str, **pattern: Any) -> Design:
    d = Design("Hot", indexes={"GSI1": ("GSI1PK", "GSI1SK")})

    @d.entity("User")
    class U(Entity):
        user_id: str
        country: str
        tier: Tier
        plan: Literal["a", "b"]
        at: datetime
        shard: int = field(shard_of="user_id", shards=4)
        key = d.key(pk="USER#{user_id}", sk="USER")
        listed = d.index("GSI1", pk=pk, sk="USER#{user_id}")

    d.pattern("users", U.listed, **pattern)
    return d


def test_a_constant_partition_is_a_hot_key_with_a_sharding_suggestion() -> None:
    f = one(hot_design("USERS").check(), "hot-key-constant")
    assert f.severity == "warning" and f.index == "GSI1" and f.template == "USERS"
    assert f.suggestion is not None
    assert 'WriteSharding("USERS#SHARD#{shard}", shards=10)' in f.suggestion
    assert 'field(shard_of="user_id", shards=10)' in f.suggestion
    assert "10 Query requests per read" in f.suggestion
    loud = hot_design("USERS", writes_per_second=5000, reads_per_second=200).check()
    g = one(loud, "hot-key-constant")
    assert g.severity == "error" and not loud.ok
    assert "shards=7" in (g.suggestion or "") and "1400 requests/s" in (g.suggestion or "")


def test_an_enum_like_field_as_the_only_partition_input_is_a_hot_key() -> None:
    for pk in ("TIER#{tier}", "PLAN#{plan}"):
        assert "hot-key-enum" in codes(hot_design(pk, tier=Tier.FREE).check())
    # A name that says it holds a handful of values (status, type, ...), on any type.
    d = Design("Named", indexes={"GSI1": ("GSI1PK", "GSI1SK")})

    @d.entity("T")
    class T(Entity):
        t: str
        order_status: str
        key = d.key(pk="T#{t}", sk="T")
        by = d.index("GSI1", pk="S#{order_status}", sk="T#{t}")

    assert "hot-key-enum" in codes(d.check(), "warning")
    assert "hot-key-enum" not in codes(hot_design("C#{country}#U#{user_id}").check())


def test_a_time_bucket_alone_is_a_hot_key_and_the_rate_decides_the_severity() -> None:
    quiet = hot_design("DAY#{at:%Y-%m-%d}", writes_per_second=200).check()
    f = one(quiet, "hot-key-bucket")
    assert f.severity == "warning" and "current bucket" in f.message
    assert "shards=2" in (f.suggestion or "")
    busy = hot_design("DAY#{at:%Y-%m-%d}", writes_per_second=2500).check()
    assert one(busy, "hot-key-bucket").severity == "error"
    # With a high-cardinality input besides the bucket: spread by that input.
    assert not [c for c in codes(hot_design("U#{user_id}#{at:%Y-%m}").check()) if "hot" in c]


def test_a_sharded_partition_is_no_hot_key_until_the_rate_outgrows_its_shards() -> None:
    calm = hot_design("USERS#{shard}", writes_per_second=3000).check()
    assert not [c for c in codes(calm) if c.startswith("hot")]
    loud = hot_design("USERS#{shard}", writes_per_second=5000).check()
    f = one(loud, "hot-key-rate")
    assert f.severity == "error" and "shards=7" in (f.suggestion or "")


def test_allow_accepts_a_finding_with_its_reason_and_it_no_longer_blocks() -> None:
    loud = hot_design("USERS", writes_per_second=5000)
    assert not loud.check().ok
    accepted = hot_design(
        "USERS", writes_per_second=5000, allow={"hot-key-constant": "admin list, cached"}
    ).check()
    assert accepted.ok and accepted.findings and "hot-key-constant" not in codes(accepted)
    assert [(f.code, f.allowed) for f in accepted.allowed] == [
        ("hot-key-constant", "admin list, cached")
    ]


# -- output --------------------------------------------------------------------------------


def test_report_as_json_markdown_and_text() -> None:
    d, Ord, Itm = order_design(items_on_gsi1=False)
    d.pattern("order with its items", (Ord, Itm), by=("order_id",))
    report = d.check()
    data = json.loads(report.to_json())
    assert data["ok"] is False and data["counts"]["error"] == 1
    assert data["findings"][0]["code"] == "unservable"
    assert data["findings"][0]["pattern"] == "order with its items"
    assert data["indexes"]["GSI1"] == [
        {"entity": "Order", "pk": "ORDER#{order_id}", "sk": "ORDER", "sparse": ""}
    ]
    md = report.to_markdown()
    assert md.startswith("# Design check: Orders")
    assert "| error | unservable | order with its items | Order, Item | table |" in md
    assert "## GSI1\n\n| type | partition key | sort key | sparse |" in md
    text = str(report)
    assert text.splitlines()[0] == "design Orders: 1 error, 1 warning, 2 info, 0 allowed"
    assert "fix: write Item into GSI1" in text


# -- running patterns ----------------------------------------------------------------------


async def test_run_reads_a_pattern_through_its_index_with_its_fixed_fields(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({"Items": [], "Count": 0})
    repo = shop.bind(client)
    got = repo.run(pending_orders, where=Order.placed_at.between(T0, T1))
    assert [o async for o in got] == []
    (q,) = transport.payloads
    assert q["IndexName"] == "GSI2" and "BETWEEN" in q["KeyConditionExpression"]
    assert values_of(q)[0] == "ORDER_STATUS#PENDING" and "FilterExpression" not in q
    transport.requests.clear()
    assert [x async for x in repo.run(order_by_id, order_id="9")] == []
    (q,) = transport.payloads
    # The sort prefix keeps the order's items out: a key condition, no filter.
    assert q["IndexName"] == "GSI1" and values_of(q) == ["ORDER#9", "CUSTOMER#"]
    assert "FilterExpression" not in q
    transport.requests.clear()
    assert [x async for x in repo.run(order_with_items, order_id="9")] == []
    (q,) = transport.payloads
    assert q["IndexName"] == "GSI1" and "FilterExpression" not in q


async def test_page_of_a_pattern_and_bad_runs_refused_before_sending(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({"Items": [], "Count": 0})
    repo = shop.bind(client)
    page = await repo.page(orders_of_customer, customer_id="1", limit=5)
    assert page.items == [] and page.cursor is None
    (q,) = transport.payloads
    assert q["Limit"] == 5 and sorted(values_of(q)) == ["CUSTOMER#1", "ORDER#"]
    transport.requests.clear()
    with pytest.raises(InvalidItem, match="not status") as exc:
        repo.run(pending_orders, status="SHIPPED")
    assert exc.value.path == "Order.status"
    with pytest.raises(InvalidItem, match="order_id missing") as exc:
        repo.run(order_by_id)
    assert exc.value.path == "Order.order_id"
    with pytest.raises(InvalidItem, match="ranges placed_at, not total"):
        repo.run(pending_orders, where=Order.total.gte(1))
    with pytest.raises(InvalidItem, match="ranges no field"):
        repo.run(customer_by_email, email="a@b", where=Customer.name.eq("x"))
    d, Ord, Itm = order_design(items_on_gsi1=False)
    bad = d.pattern("order with its items", (Ord, Itm), by=("order_id",))
    with pytest.raises(ConfigurationError, match="design.check"):
        d.bind(client).run(bad, order_id="1")
    with pytest.raises(ConfigurationError, match="another design"):
        repo.run(bad, order_id="1")
    assert transport.requests == []


# -- strict designs ------------------------------------------------------------------------


def strict_design() -> tuple[Design, type, Any]:
    d = Design("Strict", indexes={"GSI1": ("GSI1PK", "GSI1SK")}, strict=True)

    @d.entity("Post")
    class P(Entity):
        author: str
        post_id: str
        day: str
        key = d.key(pk="AUTHOR#{author}", sk="POST#{day}#{post_id}")
        by_id = d.index("GSI1", pk="POST#{post_id}", sk="POST")

    posts = d.pattern("posts of an author", P, range="day")
    return d, P, posts


async def test_strict_design_refuses_scans_and_undeclared_queries_before_sending(
    client: Client, transport: ScriptedTransport
) -> None:
    d, P, posts = strict_design()
    repo = d.bind(client)
    transport.default = answer({"Items": [], "Count": 0})
    with pytest.raises(UndeclaredAccess, match="strict") as exc:
        [p async for p in repo.scan(P)]
    assert exc.value.design == "Strict"
    with pytest.raises(UndeclaredAccess, match=r"query of P.by_id by post_id is none of"):
        repo.query(P.by_id, post_id="1")
    with pytest.raises(UndeclaredAccess):
        await repo.page(P.by_id, post_id="1")
    with pytest.raises(UndeclaredAccess, match="by author, day"):
        repo.query(P, author="a", day="2024-01-01")  # a sort field the pattern does not give
    assert transport.requests == []
    # The declared pattern, run or queried the way it is declared, goes through.
    assert [p async for p in repo.run(posts, author="a", where=P.day.begins_with("2024"))] == []
    assert [p async for p in repo.query(P, author="a")] == []
    assert [p async for p in repo.query(P, author="a", where=P.day.eq("2024-01-01"))] == []
    assert len(transport.requests) == 3
    d.pattern("post by id", P.by_id)
    assert [p async for p in repo.query(P.by_id, post_id="1")] == []
    assert isinstance(UndeclaredAccess("x"), ConfigurationError)


async def test_a_design_that_is_not_strict_reads_anything(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({"Items": [], "Count": 0})
    repo = shop.bind(client)
    assert not shop.strict
    assert [o async for o in repo.query(Order.by_status, status="SHIPPED")] == []
    assert [o async for o in repo.scan(OrderItem)] == []


def test_a_time_bucketed_pattern_is_given_its_other_fields_and_ranges_the_bucket() -> None:
    from tests.model_sensors import Reading, iot

    d = Design("Buckets", strict=True)

    @d.entity("Reading")
    class R(Entity):
        sensor_id: str
        at: datetime
        value: Decimal
        key = d.key(pk="SENSOR#{sensor_id}#{at:%Y-%m}", sk="{at}")

    p = d.pattern("readings of a sensor", R, range=R.at)
    assert p.by == ("sensor_id",) and p.resolve() is R
    assert p.matches(R, {"sensor_id": "s"}, R.at.between(T0, T1))
    assert not p.matches(R, {"sensor_id": "s"}, R.value.gte(1))
    report = d.check()
    assert report.ok and "unservable" not in codes(report)
    assert iot.check().ok and Reading is not R


def test_an_enum_like_multi_attribute_partition_is_a_hot_key() -> None:
    for fields, hot in ((("region", "tier"), True), (("tenant", "tier"), False)):
        d = Design("MultiHot", indexes={"M": (fields, ("created",))})

        @d.entity("Ev")
        class Ev(Entity):
            ev: str
            tenant: str
            region: Literal["eu", "us"]
            tier: Tier
            created: int
            key = d.key(pk="EV#{ev}", sk="EV")
            by_m = d.index("M")

        assert ("hot-key-enum" in codes(d.check())) is hot


def test_an_entity_and_its_table_key_are_one_target_for_strict_matching() -> None:
    d, P, posts = strict_design()
    assert posts.matches(P, {"author": "a"}, None)
    assert posts.matches(P.key, {"author": "a"}, None)  # type: ignore[attr-defined]
    by_key = d.pattern("posts by key", P.key, by=("author",))  # type: ignore[attr-defined]
    assert by_key.matches(P, {"author": "a"}, None)
    assert not posts.matches(P.by_id, {"author": "a"}, None)
