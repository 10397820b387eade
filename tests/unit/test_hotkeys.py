"""Hot keys: the Space-Saving sketch's bound, capacity estimates and reported figures per key,
ThrottlingReasons, and the WriteSharding advice over a sliding window (fake clock)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from asyncdyn import Attr, Client, HotKeys, Key, RetryPolicy, Throttled
from asyncdyn.hotkeys import SpaceSaving
from asyncdyn.testing import ScriptedTransport, answer, error

_TABLE = {
    "TableName": "Shop",
    "KeySchema": [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "ByStatus",
            "KeySchema": [
                {"AttributeName": "status", "KeyType": "HASH"},
                {"AttributeName": "SK", "KeyType": "RANGE"},
            ],
        }
    ],
    "LocalSecondaryIndexes": [
        {
            "IndexName": "ByDate",
            "KeySchema": [
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "date", "KeyType": "RANGE"},
            ],
        }
    ],
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def db(transport: ScriptedTransport, clock: FakeClock) -> AsyncIterator[Client]:
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("AKIDEXAMPLE", "secret"),
        retry=RetryPolicy(max_attempts=3, base=0.0),
        transport=transport,
        hot_keys=HotKeys(capacity=64, window=60.0, clock=clock),
    ) as client:
        yield client


async def _described(db: Client, transport: ScriptedTransport) -> None:
    transport.steps.append(answer({"Table": _TABLE}))
    await db.table("Shop").describe()


def test_sketch_finds_the_heavy_hitters_of_1e5_keys_in_fixed_memory() -> None:
    rng = random.Random(7)
    capacity = 200
    sketch = SpaceSaving(capacity)
    truth: Counter[str] = Counter()
    # A Zipf-like stream over 100,000 distinct keys: key i drawn with weight 1 / (i + 1).
    population = 100_000
    weights = [1.0 / (i + 1) for i in range(population)]
    draws = rng.choices(range(population), weights=weights, k=300_000)
    draws += range(population)  # and every key at least once
    for i in draws:
        load = 1.0 + (i % 3)  # weighted updates, as capacity units are
        truth[f"k{i}"] += load
        sketch.add(("T", None, "PK", "S", f"k{i}"), load)
    assert len(sketch.counters) == capacity
    assert len(sketch._heap) == capacity
    total = sum(truth.values())
    assert sketch.total == pytest.approx(total)
    for key_id, counter in sketch.counters.items():
        true = truth[key_id[4]]
        # Space-Saving's guarantee: never under, over by at most error <= W / capacity.
        assert counter.load - counter.error <= true + 1e-6
        assert true <= counter.load + 1e-6
        assert counter.error <= total / capacity + 1e-6
    # Every key heavier than W / capacity is monitored, and the top ten come out in order.
    for key, true in truth.items():
        if true > total / capacity:
            assert ("T", None, "PK", "S", key) in sketch.counters
    found = [c.key[4] for c in sketch.top(10)]
    assert found == [key for key, _ in truth.most_common(10)]


async def test_off_by_default(client: Client, transport: ScriptedTransport) -> None:
    transport.steps.append(answer({"Item": {"PK": {"S": "a"}}}))
    await client.table("T").get({"PK": "a"})
    assert client._dispatcher.stats.hot_keys is None
    assert client.stats().hot_keys == ()


async def test_estimates_reads_and_writes_from_item_sizes(
    db: Client, transport: ScriptedTransport
) -> None:
    await _described(db, transport)
    shop = db.table("Shop")
    big = "x" * 5000  # ~5 KB: 2 read units of 4 KB, 5 write units of 1 KB
    item = {"PK": "user#1", "SK": "profile", "body": big}
    transport.steps += [answer({}), answer({"Item": _wire(item)}), answer({"Item": _wire(item)})]
    await shop.put(item)
    await shop.get({"PK": "user#1", "SK": "profile"})
    await shop.get({"PK": "user#1", "SK": "profile"}, consistent=True)
    [hot] = db.stats().hot_keys
    assert (hot.table, hot.index, dict(hot.key)) == ("Shop", None, {"PK": "user#1"})
    assert hot.write_units == 5.0
    assert hot.read_units == 1.0 + 2.0  # eventually consistent half of 2, then 2
    assert hot.share == 1.0
    assert hot.shards is None and hot.suggestion is None


async def test_a_put_costs_a_write_on_each_global_index_it_appears_in(
    db: Client, transport: ScriptedTransport
) -> None:
    await _described(db, transport)
    transport.steps += [answer({}), answer({}), answer({})]
    shop = db.table("Shop")
    await shop.put({"PK": "o#1", "SK": "o", "status": "OPEN", "date": "d"})
    await shop.put({"PK": "o#2", "SK": "o", "status": "OPEN", "date": "d"})
    await shop.put({"PK": "o#3", "SK": "o"})  # no index key: the index is not written
    hot = {(h.index, next(iter(h.key.values()))): h for h in db.stats().hot_keys}
    assert hot[("ByStatus", "OPEN")].write_units == 2.0
    assert hot[("ByStatus", "OPEN")].share == 1.0
    # The local index lives in the table's partitions: no key of its own.
    assert {index for index, _ in hot} == {None, "ByStatus"}
    assert hot[(None, "o#1")].share == pytest.approx(1 / 3)


async def test_reported_index_figures_are_divided_among_a_batch_by_size(
    transport: ScriptedTransport, clock: FakeClock
) -> None:
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("AKIDEXAMPLE", "secret"),
        transport=transport,
        consumed_capacity="INDEXES",
        hot_keys=HotKeys(capacity=64, clock=clock),
    ) as db:
        await _reported_batch(db, transport)
        assert transport.payloads[-1]["ReturnConsumedCapacity"] == "INDEXES"


async def test_figures_nobody_asked_for_are_not_used(
    db: Client, transport: ScriptedTransport
) -> None:
    # moto sends ConsumedCapacity unasked (and one unit per batch): estimates stand.
    await _reported_batch(db, transport, asked=False)


async def _reported_batch(db: Client, transport: ScriptedTransport, asked: bool = True) -> None:
    await _described(db, transport)
    small = {"PK": "a", "SK": "1", "status": "S"}
    large = {"PK": "b", "SK": "1", "status": "S", "body": "y" * 3100}  # 4 estimated units
    consumed = [
        {
            "TableName": "Shop",
            "CapacityUnits": 25.0,
            "Table": {"CapacityUnits": 15.0},
            "GlobalSecondaryIndexes": {"ByStatus": {"CapacityUnits": 10.0}},
        }
    ]
    transport.steps.append(answer({"UnprocessedItems": {}, "ConsumedCapacity": consumed}))
    await db.table("Shop").batch_write(puts=[small, large])
    hot = {(h.index, next(iter(h.key.values()))): h for h in db.stats().hot_keys}
    if not asked:
        assert (hot[(None, "a")].write_units, hot[(None, "b")].write_units) == (1.0, 4.0)
        assert hot[("ByStatus", "S")].write_units == 5.0
        return
    # Estimated 1 and 4 units: the reported 15 split 3 and 12.
    assert hot[(None, "a")].write_units == pytest.approx(3.0)
    assert hot[(None, "b")].write_units == pytest.approx(12.0)
    assert hot[("ByStatus", "S")].write_units == pytest.approx(10.0)


async def test_batch_get_counts_the_keys_served_not_the_unprocessed(
    db: Client, transport: ScriptedTransport
) -> None:
    await _described(db, transport)
    keys = [{"PK": "a", "SK": "1"}, {"PK": "b", "SK": "1"}]
    transport.steps += [
        answer(
            {
                "Responses": {"Shop": [_wire({**keys[0], "v": "z" * 5000})]},
                "UnprocessedKeys": {"Shop": {"Keys": [_wire(keys[1])]}},
            }
        ),
        answer({"Responses": {"Shop": []}, "UnprocessedKeys": {}}),
    ]
    await db.table("Shop").batch_get(keys)
    hot = {next(iter(h.key.values())): h for h in db.stats().hot_keys}
    assert hot["a"].read_units == 1.0  # 2 units of 4 KB, eventually consistent
    assert hot["b"].read_units == 0.5  # missing item: the minimum, once (not when unprocessed)


async def test_query_is_charged_to_the_partition_of_its_key_condition(
    db: Client, transport: ScriptedTransport
) -> None:
    await _described(db, transport)
    items = [_wire({"PK": "c", "SK": str(i), "v": "w" * 1000}) for i in range(10)]
    transport.steps.append(answer({"Items": items, "Count": 10}))
    page = await db.table("Shop").query_page(Key("PK").eq("c"))
    assert len(page.items) == 10
    [hot] = db.stats().hot_keys
    assert dict(hot.key) == {"PK": "c"}
    assert hot.read_units == 1.5  # ~10 KB rounded up once to 3 units of 4 KB, halved


async def test_throttling_reasons_are_parsed_and_attributed_to_key_and_index(
    db: Client, transport: ScriptedTransport
) -> None:
    await _described(db, transport)
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/Shop"
    transport.steps += [
        error(
            "ProvisionedThroughputExceededException",
            "Throughput exceeds the current capacity",
            ThrottlingReasons=[
                {"reason": "TableWriteKeyRangeThroughputExceeded", "resource": arn},
                {
                    "reason": "IndexWriteKeyRangeThroughputExceeded",
                    "resource": f"{arn}/index/ByStatus",
                },
            ],
        )
    ] * 3
    with pytest.raises(Exception) as raised:
        await db.table("Shop").put({"PK": "hot", "SK": "1", "status": "NEW"})
    throttled = raised.value.__cause__ or raised.value
    assert isinstance(throttled, Throttled)
    assert [(r.reason, r.table, r.index, r.key_range) for r in throttled.reasons] == [
        ("TableWriteKeyRangeThroughputExceeded", "Shop", None, True),
        ("IndexWriteKeyRangeThroughputExceeded", "Shop", "ByStatus", True),
    ]
    hot = {(h.index, next(iter(h.key.values()))): h for h in db.stats().hot_keys}
    assert hot[(None, "hot")].throttles == 3
    assert hot[(None, "hot")].reasons == {"TableWriteKeyRangeThroughputExceeded": 3}
    assert hot[("ByStatus", "NEW")].reasons == {"IndexWriteKeyRangeThroughputExceeded": 3}
    # Throttled for its key range: sharding is advised whatever its rate.
    assert hot[(None, "hot")].shards == 2
    assert "WriteSharding" in (hot[(None, "hot")].suggestion or "")


async def test_lower_case_throttling_reasons_of_a_throttling_exception(
    db: Client, transport: ScriptedTransport
) -> None:
    transport.steps += [
        error(
            "ThrottlingException",
            "Rate exceeded",
            throttlingReasons=[
                {
                    "reason": "TableReadMaxOnDemandThroughputExceeded",
                    "resource": "arn:aws:dynamodb:us-east-1:1:table/T",
                },
                {"resource": "no reason: skipped"},
            ],
        ),
        answer({"Item": {"PK": {"S": "k"}}}),
    ]
    await db.table("T").get({"PK": "k"})
    [hot] = db.stats().hot_keys
    assert (dict(hot.key), hot.throttles, hot.reasons) == (
        {"PK": "k"},
        1,
        {"TableReadMaxOnDemandThroughputExceeded": 1},
    )
    assert hot.shards is None  # a table limit, not the key's partition


async def test_sharding_is_advised_past_80_percent_of_a_partition(
    db: Client, transport: ScriptedTransport, clock: FakeClock
) -> None:
    await _described(db, transport)
    transport.default = answer({})
    shop = db.table("Shop")
    # 45 writes of 20 units per second (900 WCU/s) on one key, 700 WCU/s on another,
    # for 10 seconds.
    for _ in range(10):
        for _ in range(45):
            await shop.put({"PK": "busy", "SK": "1", "v": "b" * 19_000})
        for _ in range(35):
            await shop.put({"PK": "calm", "SK": "1", "v": "b" * 19_000})
        clock.now += 1.0
    busy, calm = db.stats().hot_keys
    assert dict(busy.key) == {"PK": "busy"}
    # Ten seconds observed in a 60 s window: the decayed rate of a steady one is exact.
    assert busy.write_rate == pytest.approx(900.0, rel=0.06)
    assert busy.shards == 2  # ceil(900 / 800)
    assert "shards=2" in (busy.suggestion or "")
    assert calm.write_rate == pytest.approx(700.0, rel=0.06)
    assert calm.shards is None and calm.suggestion is None
    assert busy.share == pytest.approx(45 / 80, rel=0.02)


async def test_a_key_that_cools_off_sinks_below_a_current_one(
    db: Client, transport: ScriptedTransport, clock: FakeClock
) -> None:
    transport.default = answer({})
    table = db.table("T", key=("PK",))
    for _ in range(100):
        await table.put({"PK": "old"})
    clock.now += 300.0  # five windows later
    for _ in range(10):
        await table.put({"PK": "new"})
    first, second = db.stats().hot_keys
    assert dict(first.key) == {"PK": "new"}
    assert second.write_units == pytest.approx(100 * 2.718281828**-5, rel=1e-6)
    clock.now += 60.0 * 40  # past the renormalisation: counts stay consistent
    await table.put({"PK": "new"})
    [top, *_] = db.stats().hot_keys
    assert dict(top.key) == {"PK": "new"}
    assert top.write_units == pytest.approx(1.0 + 10 * 2.718281828**-40, rel=1e-6)


async def test_unknown_key_schema_counts_in_the_table_total_only(
    db: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({})
    await db.table("Unknown").put({"PK": "a", "SK": "b"})
    assert db.stats().hot_keys == ()
    hot_keys = db._dispatcher.stats.hot_keys
    assert hot_keys is not None
    assert hot_keys.unattributed() == {"Unknown": 1.0}


def test_bad_arguments_are_refused() -> None:
    from asyncdyn import ConfigurationError

    with pytest.raises(ConfigurationError, match="capacity"):
        HotKeys(capacity=0)
    with pytest.raises(ConfigurationError, match="window"):
        HotKeys(window=0)
    shared = HotKeys()
    Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("a", "b"),
        transport=ScriptedTransport(),
        hot_keys=shared,
    )
    with pytest.raises(ConfigurationError, match="one client"):
        Client(
            region="us-east-1",
            endpoint_url="http://127.0.0.1:9",
            credentials=("a", "b"),
            transport=ScriptedTransport(),
            hot_keys=shared,
        )
    with pytest.raises(ConfigurationError, match="hot_keys"):
        Client(
            region="us-east-1",
            endpoint_url="http://127.0.0.1:9",
            credentials=("a", "b"),
            transport=ScriptedTransport(),
            hot_keys="yes",  # type: ignore[arg-type]
        )


def _wire(item: dict[str, Any]) -> dict[str, Any]:
    from asyncdyn.marshal import encode_item

    return dict(encode_item(item))


async def test_an_unreadable_raw_request_is_skipped_not_failed(
    db: Client, transport: ScriptedTransport
) -> None:
    transport.steps += [answer({"Item": {"PK": {"S": "a"}}})] * 2
    # A raw call whose Key is not a map: no key to charge, the table's total only.
    data = await db.call("GetItem", {"TableName": "T", "Key": ["not", "a", "map"]})
    assert data == {"Item": {"PK": {"S": "a"}}}
    # One with no TableName (a scripted server answers anyway): not counted, still answered.
    data = await db.call("GetItem", {"Key": {"PK": {"S": "a"}}})
    assert data == {"Item": {"PK": {"S": "a"}}}
    hot_keys = db._dispatcher.stats.hot_keys
    assert hot_keys is not None
    assert db.stats().hot_keys == () and hot_keys.unattributed() == {"T": 0.5}
    assert hot_keys.skipped == 1
    # Throttled, with a request it cannot read: the caller still gets its Throttled.
    transport.steps.append(error("ThrottlingException", "slow down"))
    with pytest.raises(Throttled):
        await db._dispatcher.attempt("GetItem", {"Key": {}}, db._dispatcher.retry.start())
    assert hot_keys.skipped == 2


def test_sketch_memory_stays_fixed_as_distinct_keys_grow() -> None:
    import tracemalloc

    sketch = SpaceSaving(1000)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for i in range(1000):
            sketch.add(("T", None, "PK", "S", f"CUSTOMER#{i:06d}"), 1.0)
        full = tracemalloc.get_traced_memory()[0] - start
        for i in range(100_000):
            sketch.add(("T", None, "PK", "S", f"CUSTOMER#{i + 5000:06d}"), 1.0 + i % 3)
        after = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert len(sketch.counters) == 1000
    # 100,000 more distinct keys: the same counters, each a little over 500 bytes.
    assert full < 1000 * 600 and after < full * 1.5


async def test_transactions_cost_twice_per_item(db: Client, transport: ScriptedTransport) -> None:
    await _described(db, transport)
    shop = db.table("Shop")
    transport.steps += [
        answer({}),
        answer({"Responses": [{"Item": _wire({"PK": "t#1", "SK": "a", "v": "q" * 5000})}, {}]}),
    ]
    await db.transact_write(
        [
            shop.tx_put({"PK": "t#1", "SK": "a", "status": "X", "v": "p" * 1500}),  # 2 KB
            shop.tx_update({"PK": "t#2", "SK": "a"}, Attr("n").set(1)),
            shop.tx_delete({"PK": "t#3", "SK": "a"}),
        ]
    )
    await db.transact_get(
        [shop.tx_get({"PK": "t#1", "SK": "a"}), shop.tx_get({"PK": "t#4", "SK": "a"})]
    )
    hot = {(h.index, next(iter(h.key.values()))): h for h in db.stats().hot_keys}
    assert hot[(None, "t#1")].write_units == 4.0  # 2 KB, doubled
    assert hot[("ByStatus", "X")].write_units == 4.0
    assert (hot[(None, "t#2")].write_units, hot[(None, "t#3")].write_units) == (2.0, 2.0)
    assert hot[(None, "t#1")].read_units == 4.0  # 2 units of 4 KB, strongly consistent, doubled
    assert hot[(None, "t#4")].read_units == 2.0  # missing: the minimum, doubled


async def test_a_throttled_batch_is_attributed_to_each_of_its_keys(
    db: Client, transport: ScriptedTransport
) -> None:
    await _described(db, transport)
    keys = [{"PK": "x", "SK": "1"}, {"PK": "y", "SK": "1"}, {"PK": "x", "SK": "2"}]
    transport.steps += [
        error("ProvisionedThroughputExceededException", "slow down"),
        answer({"Responses": {"Shop": [_wire(k) for k in keys]}, "UnprocessedKeys": {}}),
    ]
    await db.table("Shop").batch_get(keys)
    hot = {next(iter(h.key.values())): h for h in db.stats().hot_keys}
    assert (hot["x"].throttles, hot["y"].throttles) == (2, 1)
    assert (hot["x"].read_units, hot["y"].read_units) == (1.0, 0.5)
