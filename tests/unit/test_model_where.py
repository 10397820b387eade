"""``where=`` beyond one entity: a collection with one member narrowed, and ranges open at one
end over time-bucketed partitions. The requests sent, without sockets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from asyncdyn import Client, ConfigurationError, InvalidItem
from asyncdyn.testing import ScriptedTransport, answer
from tests.model_journal import Login, Note, Payment, account_page, journal
from tests.model_sensors import Reading, iot
from tests.model_shop import Order, customer_page, shop
from tests.unit.test_model import values_of

T0 = datetime(2024, 3, 1, tzinfo=UTC)
T1 = datetime(2024, 3, 31, tzinfo=UTC)


async def test_collection_where_narrows_one_member_and_reads_the_others_whole(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({"Items": [], "Count": 0})
    repo = journal.bind(client)
    got = repo.query(account_page, account_id="a1", where=Payment.paid_at.between(T0, T1))
    assert [r async for r in got] == []
    # One range per member; logins share the partition, and the ranges keep them out: no
    # filter at all.
    assert len(transport.payloads) == 3
    assert all("FilterExpression" not in q for q in transport.payloads)
    ranges = sorted(tuple(v for v in values_of(q) if v != "ACCOUNT#a1") for q in transport.payloads)
    assert ranges == [
        ("NOTE#",),
        ("PAYMENT#2024-03-01T00:00:00.000000Z", "PAYMENT#2024-03-31T00:00:00.000000Z#\U0010ffff"),
        ("PROFILE",),
    ]
    assert all(
        "BETWEEN" in q["KeyConditionExpression"]
        for q in transport.payloads
        if "PAYMENT#2024-03-01T00:00:00.000000Z" in values_of(q)
    )


async def test_collection_where_open_ranges_and_descending(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({"Items": [], "Count": 0})
    repo = journal.bind(client)
    got = repo.query(
        account_page, account_id="a1", where=Payment.paid_at.gt(T0), descending=True, limit=5
    )
    assert [r async for r in got] == []
    assert all(q["ScanIndexForward"] is False for q in transport.payloads)
    ranged = [
        q for q in transport.payloads if "PAYMENT#2024-03-01T00:00:00.000000Z" in values_of(q)
    ]
    assert len(ranged) == 1 and values_of(ranged[0])[-1] == "PAYMENT#\U0010ffff"


def test_collection_where_errors_name_the_collection_and_field(client: Client) -> None:
    repo = journal.bind(client)
    with pytest.raises(InvalidItem, match="account_page") as caught:
        repo.query(account_page, account_id="a1", where=Payment.amount.gte(1))
    assert caught.value.path == "Payment.amount"
    assert "no member's sort key" in str(caught.value)
    with pytest.raises(InvalidItem, match="not a member of collection 'account_page'"):
        repo.query(account_page, account_id="a1", where=Login.at.gte(T0))
    with pytest.raises(InvalidItem, match="first sort-key field"):
        repo.query(account_page, account_id="a1", where=Payment.payment_id.eq("p"))
    shop_repo = shop.bind(client)
    with pytest.raises(InvalidItem, match="customer_page") as shop_caught:
        shop_repo.query(customer_page, customer_id="1", where=Order.placed_at.between(T0, T1))
    assert shop_caught.value.path == "Order.placed_at"


async def test_collection_where_has_no_single_cursor(client: Client) -> None:
    repo = journal.bind(client)
    with pytest.raises(ConfigurationError, match="several sort-key ranges"):
        await repo.page(account_page, account_id="a1", where=Payment.paid_at.gte(T0), limit=10)


async def test_open_range_over_buckets_takes_its_bound_from_until(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({"Items": [], "Count": 0})
    repo = iot.bind(client)
    t0 = datetime(2024, 11, 20, tzinfo=UTC)
    got = repo.query(
        Reading, sensor_id="s1", where=Reading.at.gte(t0), until=datetime(2025, 1, 5, tzinfo=UTC)
    )
    assert [r async for r in got] == []
    partitions = [values_of(p)[0] for p in transport.payloads]
    assert partitions == ["SENSOR#s1#2024-11", "SENSOR#s1#2024-12", "SENSOR#s1#2025-01"]
    # The sort-key range is the where's own (open above): until bounds the buckets only.
    assert all(
        values_of(p)[1:] == ["2024-11-20T00:00:00.000000Z", "\U0010ffff"]
        for p in transport.payloads
    )


async def test_range_below_a_bound_needs_since_and_derives_the_last_bucket(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({"Items": [], "Count": 0})
    repo = iot.bind(client)
    t1 = datetime(2025, 2, 3, tzinfo=UTC)
    got = repo.query(
        Reading,
        sensor_id="s1",
        where=Reading.at.lt(t1),
        since=datetime(2024, 12, 31, tzinfo=UTC),
        descending=True,
    )
    assert [r async for r in got] == []
    # Descending: the newest bucket first.
    partitions = [values_of(p)[0] for p in transport.payloads]
    assert partitions == ["SENSOR#s1#2025-02", "SENSOR#s1#2025-01", "SENSOR#s1#2024-12"]
    assert all(values_of(p)[1:] == ["2025-02-03T00:00:00.000000Z"] for p in transport.payloads)


async def test_since_and_until_alone_read_whole_buckets(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({"Items": [], "Count": 0})
    repo = iot.bind(client)
    got = repo.query(
        Reading,
        sensor_id="s1",
        since=datetime(2024, 1, 10, tzinfo=UTC),
        until=datetime(2024, 2, 1, tzinfo=UTC),
    )
    assert [r async for r in got] == []
    assert [values_of(p) for p in transport.payloads] == [
        ["SENSOR#s1#2024-01"],
        ["SENSOR#s1#2024-02"],
    ]


def test_open_ranges_over_buckets_without_a_bound_say_what_to_add(client: Client) -> None:
    repo = iot.bind(client)
    with pytest.raises(ConfigurationError, match="until="):
        repo.query(Reading, sensor_id="s1", where=Reading.at.gte(T0))
    with pytest.raises(ConfigurationError, match="since="):
        repo.query(Reading, sensor_id="s1", where=Reading.at.lte(T0))
    with pytest.raises(ConfigurationError, match="since=<datetime> and until="):
        repo.query(Reading, sensor_id="s1", where=Reading.at.begins_with("2024"))
    with pytest.raises(ConfigurationError, match="since="):
        repo.query(Reading, sensor_id="s1", until=T0)
    with pytest.raises(ConfigurationError, match="before"):
        repo.query(Reading, sensor_id="s1", where=Reading.at.gte(T1), until=T0)
    with pytest.raises(InvalidItem, match="timezone-aware"):
        repo.query(Reading, sensor_id="s1", where=Reading.at.gte(T0), until=datetime(2025, 1, 1))
    # since=/until= bound time buckets: on a query whose partition is fixed they mean nothing.
    with pytest.raises(ConfigurationError, match="time buckets"):
        journal.bind(client).query(Note, account_id="a1", since=T0)


async def test_strict_designs_take_a_collection_range_declared_as_a_pattern(
    client: Client, transport: ScriptedTransport
) -> None:
    from asyncdyn import UndeclaredAccess
    from asyncdyn.model import Design, Entity

    ledger = Design("Ledger", strict=True)

    @ledger.entity("Owner")
    class Owner(Entity):
        owner_id: str
        key = ledger.key(pk="OWNER#{owner_id}", sk="OWNER")

    @ledger.entity("Entry")
    class Entry(Entity):
        owner_id: str
        at: datetime
        memo: str = ""
        key = ledger.key(pk="OWNER#{owner_id}", sk="ENTRY#{at}")

    book = ledger.collection("book", Owner, Entry)
    transport.default = answer({"Items": [], "Count": 0})
    repo = ledger.bind(client)
    with pytest.raises(UndeclaredAccess):
        repo.query(book, owner_id="o", where=Entry.field_ref("at").gte(T0))
    ledger.pattern("an owner's book since a date", book, range=Entry.field_ref("at"))
    got = repo.query(book, owner_id="o", where=Entry.field_ref("at").gte(T0))
    assert [r async for r in got] == []
    assert len(transport.payloads) == 2 and ledger.check().ok
    ledger.pattern("by memo", book, range=Entry.field_ref("memo"))
    report = ledger.check()
    assert not report.ok
    assert any("first sort-key field of a member" in f.message for f in report.errors)


def test_collection_where_refuses_members_whose_ranges_meet(client: Client) -> None:
    from asyncdyn.model import Design, Entity

    forum = Design("Forum")

    @forum.entity("Post")
    class Post(Entity):
        user_id: str
        post_id: str
        key = forum.key(pk="USER#{user_id}", sk="POST#{post_id}")

    @forum.entity("Comment")
    class Comment(Entity):
        user_id: str
        post_id: str
        n: int
        key = forum.key(pk="USER#{user_id}", sk="POST#{post_id}#C#{n}")

    threads = forum.collection("threads", Post, Comment)
    repo = forum.bind(client)
    # Comments' keys (POST#{post_id}#C#{n}) start like posts' (POST#...): narrowing posts
    # would still read every comment's post range, so the plan is refused, not half-kept.
    with pytest.raises(ConfigurationError, match="share a range") as caught:
        repo.query(threads, user_id="1", where=Post.field_ref("post_id").eq("p"))
    assert "threads" in str(caught.value) and "query Post with where=" in str(caught.value)


async def test_a_limit_over_buckets_stops_at_the_newest_bucket_that_fills_it(
    client: Client, transport: ScriptedTransport
) -> None:
    def reading(day: int) -> dict[str, object]:
        at = f"2025-02-{day:02d}T00:00:00.000000Z"
        return {"PK": {"S": "SENSOR#s1#2025-02"}, "SK": {"S": at}, "value": {"N": str(day)}}

    transport.default = answer({"Items": [reading(9), reading(8), reading(7)], "Count": 3})
    repo = iot.bind(client)
    newest = repo.query(
        Reading,
        sensor_id="s1",
        where=Reading.at.lte(datetime(2025, 2, 10, tzinfo=UTC)),
        since=datetime(2024, 6, 1, tzinfo=UTC),
        descending=True,
        limit=2,
    )
    got = [r async for r in newest]
    assert [r.at.day for r in got] == [9, 8]
    # Nine months of buckets, and only February's was read: it held the two asked for.
    assert [values_of(p)[0] for p in transport.payloads] == ["SENSOR#s1#2025-02"]
