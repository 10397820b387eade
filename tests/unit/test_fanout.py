"""The fan-out engine (``Leg``, ``fan_out``, ``FanOutPlan``) over in-memory listings, and the
Table methods built on it (``query_partitions[_page]``, ``scan[_page](segments=N)``) over a
scripted transport that answers Query and Scan from an in-memory table."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import zlib
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson
import pytest

from asyncdyn import Attr, Client, ConfigurationError, InvalidCursor, Key
from asyncdyn.errors import ValidationError
from asyncdyn.fanout import FanOutPlan, Leg, Order, check_states, fan_out
from asyncdyn.marshal import encode_item
from asyncdyn.paging import WireKey
from asyncdyn.testing import ScriptedTransport, answer, error
from asyncdyn.transport import HttpResponse

Item = dict[str, Any]
ORDERS: tuple[Order, ...] = ("sorted", "sequential", "arrival")
STALL = 5.0  # seconds: a fan-out that stalls fails the test instead of hanging the run

# --------------------------------------------------------------------------------------------
# Engine level: listings in memory
# --------------------------------------------------------------------------------------------

KEY_OF = FanOutPlan([], ["id"]).key_of  # {"id": "L0-0003"} -> {"id": {"S": "L0-0003"}}


class Listing:
    """One leg's data: rows in listing order, served ``page_size`` rows per page.

    A row with ``hidden`` models an item a filter drops: it counts towards the page (and
    towards ``Limit``, as in DynamoDB) but is not returned, so a page can come back empty
    with a ``LastEvaluatedKey``. Records every fetch, and how many pages were fetched but
    not yet fully consumed (``consumed`` is advanced by the test's consumer).
    """

    def __init__(
        self,
        leg: int,
        values: Sequence[Any],
        page_size: int = 3,
        *,
        hidden: Sequence[bool] = (),
        fail_on_page: int | None = None,
        on_fetch: Callable[[Listing], None] | None = None,
    ) -> None:
        self.leg = leg
        self.rows: list[Item] = [
            {"id": f"L{leg}-{i:04d}", "v": v, "leg": leg} for i, v in enumerate(values)
        ]
        self.hidden = {i for i, h in enumerate(hidden) if h}
        self.page_size = page_size
        self.fail_on_page = fail_on_page
        self.on_fetch = on_fetch
        self.limits: list[int | None] = []
        self.kept_ends: list[int] = []  # per page fetched: visible items up to its end
        self.consumed = 0
        self.max_ahead = 0
        self.error = ValidationError("ValidationException", f"leg {leg} refused")

    @property
    def visible(self) -> list[Item]:
        return [row for i, row in enumerate(self.rows) if i not in self.hidden]

    def ahead(self) -> int:
        """Pages fetched whose items have not all been handed to the consumer yet."""
        return sum(1 for end in self.kept_ends if end > self.consumed)

    async def fetch(self, start: WireKey | None, limit: int | None) -> tuple[list[Item], Any]:
        if self.on_fetch is not None:
            self.on_fetch(self)
        self.limits.append(limit)
        assert limit is None or limit >= 1, "DynamoDB refuses Limit < 1"
        await asyncio.sleep(0)  # a real fetch always yields to the loop
        if self.fail_on_page == len(self.kept_ends):
            raise self.error
        pos = 0
        if start is not None:
            pos = 1 + next(i for i, row in enumerate(self.rows) if KEY_OF(row) == start)
        size = self.page_size if limit is None else min(self.page_size, limit)
        evaluated = range(pos, min(pos + size, len(self.rows)))
        items = [dict(self.rows[i]) for i in evaluated if i not in self.hidden]
        before = self.kept_ends[-1] if self.kept_ends else 0
        self.kept_ends.append(before + len(items))
        self.max_ahead = max(self.max_ahead, self.ahead())
        more = evaluated.stop < len(self.rows)
        return items, KEY_OF(self.rows[evaluated.stop - 1]) if more else None


def legs_of(listings: Sequence[Listing]) -> list[Leg]:
    return [Leg(listing.fetch) for listing in listings]


async def drain(
    gen: AsyncGenerator[Item, None],
    listings: Sequence[Listing] = (),
    *,
    slow: int = 0,
    upto: int | None = None,
) -> list[Item]:
    """Every item of ``gen`` (or the first ``upto``), crediting each to its listing;
    ``slow`` extra loop turns per item let the pumps run as far ahead as they can."""
    out: list[Item] = []
    async with asyncio.timeout(STALL), contextlib.aclosing(gen):
        async for item in gen:
            out.append(item)
            if listings:
                listings[item["leg"]].consumed += 1
            for _ in range(slow):
                await asyncio.sleep(0)
            if upto is not None and len(out) == upto:
                break
    return out


def ids(items: Sequence[Item]) -> list[str]:
    return [item["id"] for item in items]


def merged(listings: Sequence[Listing], *, descending: bool = False) -> list[str]:
    """The expected merge: by value, ties in leg order then listing order (a stable sort)."""
    everything = [row for listing in listings for row in listing.visible]
    return ids(sorted(everything, key=lambda row: row["v"], reverse=descending))


def random_listings(
    rng: random.Random, legs: int = 5, *, descending: bool = False
) -> list[Listing]:
    return [
        Listing(
            leg,
            sorted((rng.randrange(20) for _ in range(rng.randrange(0, 15))), reverse=descending),
            page_size=rng.randrange(1, 5),
        )
        for leg in range(legs)
    ]


async def no_new_tasks(before: set[asyncio.Task[Any]]) -> None:
    await asyncio.sleep(0)
    left = asyncio.all_tasks() - before
    assert not left, f"tasks left behind: {left}"


# --- sorted ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(25))
async def test_sorted_merge_equals_stable_sort(seed: int) -> None:
    rng = random.Random(seed)
    descending = seed % 2 == 1
    listings = random_listings(rng, descending=descending)
    gen = fan_out(legs_of(listings), "sorted", sort_key="v", descending=descending)
    assert ids(await drain(gen)) == merged(listings, descending=descending)


async def test_sorted_ties_go_in_leg_order_both_ways() -> None:
    up = [Listing(leg, [1, 2, 2, 3], page_size=2) for leg in range(3)]
    got = await drain(fan_out(legs_of(up), "sorted", sort_key="v"))
    # Ties across legs in leg order; within a leg, in the leg's own order.
    assert [(item["v"], item["leg"]) for item in got] == [
        (1, 0), (1, 1), (1, 2),
        (2, 0), (2, 0), (2, 1), (2, 1), (2, 2), (2, 2),
        (3, 0), (3, 1), (3, 2),
    ]  # fmt: skip
    assert ids(got)[3:5] == ["L0-0001", "L0-0002"]
    down = [Listing(leg, [3, 2, 1], page_size=2) for leg in range(3)]
    got = await drain(fan_out(legs_of(down), "sorted", sort_key="v", descending=True))
    assert [(item["v"], item["leg"]) for item in got] == [
        (v, leg) for v in (3, 2, 1) for leg in range(3)
    ]


@pytest.mark.parametrize("k", [1, 4, 17])
async def test_sorted_limit_returns_first_k_and_cancels_every_pump(k: int) -> None:
    listings = random_listings(random.Random(k), legs=5)
    for listing in listings:  # long enough that every leg is still running at the limit
        listing.rows += [
            {"id": f"L{listing.leg}-z{i:03d}", "v": 100 + i, "leg": listing.leg} for i in range(30)
        ]
    before = asyncio.all_tasks()
    got = await drain(fan_out(legs_of(listings), "sorted", sort_key="v", limit=k))
    assert ids(got) == merged(listings)[:k]
    await no_new_tasks(before)
    # A page never asks for more than is still wanted.
    assert all(
        limit is not None and 1 <= limit <= k for listing in listings for limit in listing.limits
    )


@pytest.mark.parametrize("order", ORDERS)
async def test_closing_early_cancels_every_pump(order: Order) -> None:
    listings = [Listing(leg, list(range(50)), page_size=2) for leg in range(4)]
    before = asyncio.all_tasks()
    got = await drain(fan_out(legs_of(listings), order, sort_key="v"), listings, upto=3)
    assert len(got) == 3
    await no_new_tasks(before)


@pytest.mark.parametrize("order", ORDERS)
async def test_memory_stays_within_three_pages_per_leg(order: Order) -> None:
    listings = [Listing(leg, list(range(40)), page_size=4) for leg in range(5)]
    got = await drain(fan_out(legs_of(listings), order, sort_key="v"), listings, slow=10)
    assert len(got) == 200
    # The page being handed out, one queued, one fetched and waiting to be queued.
    assert max(listing.max_ahead for listing in listings) <= 3
    # ... and the pumps do run ahead of a slow consumer (this is a prefetch, not lock-step).
    assert max(listing.max_ahead for listing in listings) >= 2


# --- sequential -----------------------------------------------------------------------------


class Clock:
    """How many items the consumer had when each leg's first fetch started."""

    def __init__(self) -> None:
        self.first_fetch: dict[int, int] = {}
        self.listings: list[Listing] = []

    def __call__(self, listing: Listing) -> None:
        consumed = sum(listing.consumed for listing in self.listings)
        self.first_fetch.setdefault(listing.leg, consumed)


async def test_sequential_starts_legs_in_waves_of_1_2_4() -> None:
    clock = Clock()
    clock.listings = [Listing(leg, [leg] * 3, page_size=2, on_fetch=clock) for leg in range(7)]
    got = await drain(fan_out(legs_of(clock.listings), "sequential"), clock.listings)
    assert ids(got) == [row["id"] for listing in clock.listings for row in listing.rows]
    # Leg 0 at once; legs 1-2 when leg 0 is done (3 items); legs 3-6 when leg 2 is (9 items).
    assert clock.first_fetch == {0: 0, 1: 3, 2: 3, 3: 9, 4: 9, 5: 9, 6: 9}


async def test_sequential_limit_met_in_leg_0_fetches_no_other_leg() -> None:
    listings = [Listing(leg, list(range(10)), page_size=3) for leg in range(7)]
    before = asyncio.all_tasks()
    got = await drain(fan_out(legs_of(listings), "sequential", limit=5))
    assert ids(got) == ids(listings[0].rows[:5])
    assert listings[0].limits and all(not listing.limits for listing in listings[1:])
    await no_new_tasks(before)


async def test_sequential_limit_spilling_into_leg_1_starts_one_wave() -> None:
    listings = [Listing(leg, list(range(4)), page_size=4) for leg in range(7)]
    got = await drain(fan_out(legs_of(listings), "sequential", limit=6))
    assert ids(got) == ids(listings[0].rows + listings[1].rows[:2])
    assert [bool(listing.limits) for listing in listings] == [True] * 3 + [False] * 4
    assert listings[0].limits == [6]
    assert listings[1].limits == [2]  # asked for no more than is still wanted


# --- arrival --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(10))
async def test_arrival_yields_every_item_exactly_once(seed: int) -> None:
    rng = random.Random(seed)
    listings = [
        Listing(
            leg,
            list(range(n := rng.randrange(0, 25))),
            page_size=rng.randrange(1, 6),
            hidden=[rng.random() < 0.3 for _ in range(n)],
        )
        for leg in range(5)
    ]
    got = await drain(fan_out(legs_of(listings), "arrival"), listings, slow=seed % 3)
    assert Counter(ids(got)) == Counter(row["id"] for ls in listings for row in ls.visible)
    for listing in listings:  # each leg's items keep their listing order
        assert [item for item in ids(got) if item.startswith(f"L{listing.leg}-")] == ids(
            listing.visible
        )


async def test_arrival_limit_takes_a_prefix_of_each_leg() -> None:
    listings = [Listing(leg, list(range(20)), page_size=3) for leg in range(4)]
    got = await drain(fan_out(legs_of(listings), "arrival", limit=10))
    assert len(got) == len(set(ids(got))) == 10
    for listing in listings:
        mine = [item for item in ids(got) if item.startswith(f"L{listing.leg}-")]
        assert mine == ids(listing.rows[: len(mine)])


@pytest.mark.parametrize("slow", [0, 1, 5])
async def test_arrival_empty_pages_then_more_pages(slow: int) -> None:
    # Two whole pages dropped by the filter, then items; another leg that is all filtered.
    hidden = [True] * 6 + [False] * 3 + [True] * 2 + [False]
    listings = [
        Listing(0, list(range(12)), page_size=3, hidden=hidden),
        Listing(1, list(range(7)), page_size=2, hidden=[True] * 7),
        Listing(2, [], page_size=2),
    ]
    got = await drain(fan_out(legs_of(listings), "arrival"), listings, slow=slow)
    assert ids(got) == ids(listings[0].visible)
    assert len(listings[0].kept_ends) == 4 and len(listings[1].kept_ends) == 4


@pytest.mark.parametrize("order", ORDERS)
async def test_empty_pages_in_every_order(order: Order) -> None:
    listings = [
        Listing(leg, list(range(10)), page_size=2, hidden=[i < 5 for i in range(10)])
        for leg in range(3)
    ]
    got = await drain(fan_out(legs_of(listings), order, sort_key="v", limit=20))
    assert Counter(ids(got)) == Counter(row["id"] for ls in listings for row in ls.visible)


@pytest.mark.parametrize(("order", "failing"), [("arrival", 2), ("sorted", 2), ("sequential", 0)])
async def test_a_failing_leg_raises_and_leaves_no_task(order: Order, failing: int) -> None:
    listings = [Listing(leg, list(range(100)), page_size=2) for leg in range(4)]
    listings[failing].fail_on_page = 1
    before = asyncio.all_tasks()
    with pytest.raises(ValidationError) as caught:
        await drain(fan_out(legs_of(listings), order, sort_key="v"))
    assert caught.value is listings[failing].error
    await no_new_tasks(before)


# --- Leg.state, FanOutPlan, limits ----------------------------------------------------------


async def test_leg_state_none_then_last_key_then_false() -> None:
    listing = Listing(0, list(range(5)), page_size=2)
    leg = Leg(listing.fetch)
    assert leg.state(KEY_OF) is None
    first = await drain(fan_out([leg], "sequential", limit=3))
    assert leg.state(KEY_OF) == KEY_OF(first[-1]) == {"id": {"S": "L0-0002"}}

    resumed = Leg(listing.fetch, start=KEY_OF(first[-1]))
    assert resumed.state(KEY_OF) == {"id": {"S": "L0-0002"}}  # nothing taken: where it starts
    rest = await drain(fan_out([resumed], "sequential"))
    assert ids(first + rest) == ids(listing.rows)
    assert resumed.state(KEY_OF) is False


async def test_leg_finished_exactly_at_the_limit_is_false() -> None:
    listing = Listing(0, list(range(4)), page_size=10)  # one page, no LastEvaluatedKey
    leg = Leg(listing.fetch)
    assert len(await drain(fan_out([leg], "arrival", limit=4))) == 4
    assert leg.state(KEY_OF) is False


def test_fan_out_plan_key_of_and_shown() -> None:
    plan = FanOutPlan([], ["PK", "SK", "GSK"], sort_key="GSK", strip=["PK", "SK"])
    item = {"PK": "a", "SK": 7, "GSK": b"\x01", "x": [1]}
    assert plan.key_of(item) == {"PK": {"S": "a"}, "SK": {"N": "7"}, "GSK": {"B": "AQ=="}}
    assert plan.shown(item) == {"GSK": b"\x01", "x": [1]}
    assert FanOutPlan([], ["PK"]).shown(item) is item


def test_check_states() -> None:
    key = {"PK": {"S": "a"}}
    assert check_states([None, False, key], 3) == [None, False, key]
    for bad in ([None, None], "x", [None, True, key], [None, None, {"PK": "a"}], None):
        with pytest.raises(InvalidCursor):
            check_states(bad, 3)


@pytest.mark.parametrize("order", ORDERS)
async def test_limit_zero_yields_and_fetches_nothing(order: Order) -> None:
    listings = [Listing(leg, [1, 2, 3]) for leg in range(3)]
    before = asyncio.all_tasks()
    assert await drain(fan_out(legs_of(listings), order, sort_key="v", limit=0)) == []
    assert all(not listing.limits for listing in listings)
    await no_new_tasks(before)


async def test_sorted_needs_a_sort_key() -> None:
    listings = [Listing(0, [1])]
    with pytest.raises(ConfigurationError):
        await drain(fan_out(legs_of(listings), "sorted"))
    assert not listings[0].limits


async def test_page_limit_zero_never_reaches_fetch() -> None:
    # Leg 1 is a filter dropping everything: an endless run of empty pages. Its fetch is let
    # go just as the consumer takes the last wanted item, so it asks again while the
    # generator is stopping the legs, with nothing left to want: Limit must still be >= 1.
    calls: list[tuple[int, int | None]] = []
    release = asyncio.Event()
    got: list[Item] = []

    async def everything_filtered(start: WireKey | None, limit: int | None) -> Any:
        calls.append((len(got), limit))
        await release.wait()
        await asyncio.sleep(0)
        return [], {"id": {"S": "L1-x"}}

    data = Listing(0, [1, 2, 3], page_size=1)
    gen = fan_out([Leg(data.fetch), Leg(everything_filtered)], "arrival", limit=1)
    async with asyncio.timeout(STALL):
        got.append(await gen.__anext__())
        release.set()
        with pytest.raises(StopAsyncIteration):
            await gen.__anext__()
    assert calls[0] == (0, 1)
    assert any(taken == 1 for taken, _ in calls), calls  # asked again after the limit was met
    assert all(limit == 1 for _, limit in calls), calls
    assert all(limit == 1 for limit in data.limits)


# --------------------------------------------------------------------------------------------
# Table level: Query and Scan answered from an in-memory table
# --------------------------------------------------------------------------------------------

DESCRIPTION = {
    "Table": {
        "TableName": "T",
        "TableStatus": "ACTIVE",
        "KeySchema": [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "GSI1",
                "KeySchema": [
                    {"AttributeName": "GPK", "KeyType": "HASH"},
                    {"AttributeName": "GSK", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
                "IndexStatus": "ACTIVE",
            }
        ],
    }
}

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: bool(a == b),
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}


def plain(value: Mapping[str, Any]) -> Any:
    (kind, raw), = value.items()  # fmt: skip
    return Decimal(raw) if kind == "N" else raw


class FakeDynamo:
    """Query and Scan over ``items`` as DynamoDB answers them: key conditions, order, Limit
    (a LastEvaluatedKey whenever it is reached), ExclusiveStartKey (whose attributes must be
    exactly the table's and index's keys), projections, and ``page_cap`` items per page in
    place of the 1 MB limit. Scan segments hold the items whose key hashes to them."""

    def __init__(self, items: Sequence[Item], *, page_cap: int = 4) -> None:
        self.rows = [encode_item(item) for item in items]
        self.page_cap = page_cap

    def __call__(self, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        operation = headers["X-Amz-Target"].rpartition(".")[2]
        request = orjson.loads(body)
        if operation == "DescribeTable":
            return answer(DESCRIPTION)
        if "Limit" in request and request["Limit"] < 1:
            return error("ValidationException", "Limit must be at least 1")
        if operation == "Query":
            return self.query(request)
        assert operation == "Scan", operation
        return self.scan(request)

    def query(self, request: dict[str, Any]) -> HttpResponse:
        names = request.get("ExpressionAttributeNames", {})
        values = request.get("ExpressionAttributeValues", {})
        index = request.get("IndexName")
        pk, sk = ("GPK", "GSK") if index == "GSI1" else ("PK", "SK")
        m = re.fullmatch(r"(#\w+) = (:\w+)(?: AND (.+))?", request["KeyConditionExpression"])
        assert m is not None and names[m[1]] == pk, request
        rows = [row for row in self.rows if row.get(pk) == values[m[2]] and sk in row]
        if m[3]:
            rows = [row for row in rows if self.sort_match(m[3], names, values, sk, row)]

        def order(row: Item) -> tuple[Any, ...]:
            return (plain(row[sk]), plain(row["PK"]), plain(row["SK"]))

        forward = request.get("ScanIndexForward", True)
        rows.sort(key=order, reverse=not forward)
        keys = {"PK", "SK", pk, sk}
        return self.page(request, rows, order, forward, keys)

    @staticmethod
    def sort_match(
        condition: str, names: dict[str, str], values: dict[str, Any], sk: str, row: Item
    ) -> bool:
        if m := re.fullmatch(r"(#\w+) BETWEEN (:\w+) AND (:\w+)", condition):
            assert names[m[1]] == sk
            return bool(plain(values[m[2]]) <= plain(row[sk]) <= plain(values[m[3]]))
        if m := re.fullmatch(r"begins_with\((#\w+), (:\w+)\)", condition):
            assert names[m[1]] == sk
            return bool(str(plain(row[sk])).startswith(plain(values[m[2]])))
        m = re.fullmatch(r"(#\w+) (=|<|<=|>|>=) (:\w+)", condition)
        assert m is not None and names[m[1]] == sk, condition
        return _COMPARE[m[2]](plain(row[sk]), plain(values[m[3]]))

    def scan(self, request: dict[str, Any]) -> HttpResponse:
        total, segment = request["TotalSegments"], request["Segment"]
        assert 0 <= segment < total

        def order(row: Item) -> tuple[Any, ...]:
            return (plain(row["PK"]), plain(row["SK"]))

        rows = sorted((row for row in self.rows if segment_of(row, total) == segment), key=order)
        return self.page(request, rows, order, True, {"PK", "SK"})

    def page(
        self,
        request: dict[str, Any],
        rows: list[Item],
        order: Callable[[Item], tuple[Any, ...]],
        forward: bool,
        keys: set[str],
    ) -> HttpResponse:
        start = request.get("ExclusiveStartKey")
        if start is not None:
            if set(start) != keys:
                return error(
                    "ValidationException", f"The provided starting key is invalid: {start}"
                )
            after = order(start)
            rows = [row for row in rows if (order(row) > after if forward else order(row) < after)]
        limit = request.get("Limit")
        size = self.page_cap if limit is None else min(self.page_cap, limit)
        out = rows[:size]
        body: dict[str, Any] = {"Items": [self.project(request, row) for row in out]}
        body["Count"] = body["ScannedCount"] = len(out)
        if out and (len(out) == limit or len(rows) > len(out)):
            body["LastEvaluatedKey"] = {name: out[-1][name] for name in keys}
        return answer(body)

    @staticmethod
    def project(request: dict[str, Any], row: Item) -> Item:
        expression = request.get("ProjectionExpression")
        if expression is None:
            return row
        names = request.get("ExpressionAttributeNames", {})
        wanted = [names.get(part, part) for part in expression.split(", ")]
        return {name: value for name, value in row.items() if name in wanted}


def segment_of(row: Item, total: int) -> int:
    return zlib.crc32(f"{plain(row['PK'])}|{plain(row['SK'])}".encode()) % total


PARTITIONS = ["P0", "P1", "P2", "P3"]


def make_items(seed: int = 7, per_partition: int = 10) -> list[Item]:
    """``per_partition`` items in each of PARTITIONS with sort keys from 0..24: ties across
    partitions, never within one."""
    rng = random.Random(seed)
    return [
        {"PK": pk, "SK": sk, "x": f"{pk}/{sk}", "GPK": "G", "GSK": 1000 * sk + n}
        for n, pk in enumerate(PARTITIONS)
        for sk in rng.sample(range(25), per_partition)
    ]


def expected_merge(items: Sequence[Item], *, descending: bool = False) -> list[tuple[str, int]]:
    """(PK, SK) in sort-key order, ties in partition order."""
    sign = -1 if descending else 1
    ordered = sorted(items, key=lambda it: (sign * it["SK"], PARTITIONS.index(it["PK"])))
    return [(item["PK"], item["SK"]) for item in ordered]


def keys_of(items: Sequence[Item]) -> list[tuple[str, int]]:
    return [(item["PK"], item["SK"]) for item in items]


async def collect(gen: AsyncGenerator[Item, None]) -> list[Item]:
    async with asyncio.timeout(STALL), contextlib.aclosing(gen):
        return [item async for item in gen]


@pytest.fixture
def items(transport: ScriptedTransport) -> list[Item]:
    data = make_items()
    transport.default = FakeDynamo(data)
    return data


def sent(transport: ScriptedTransport, operation: str) -> list[dict[str, Any]]:
    pairs = zip(transport.operations, transport.payloads, strict=True)
    return [payload for op, payload in pairs if op == operation]


def queries(transport: ScriptedTransport) -> list[dict[str, Any]]:
    return sent(transport, "Query")


def partition_of(query: dict[str, Any]) -> Any:
    return plain(query["ExpressionAttributeValues"][":v0"])


async def test_fake_dynamo_answers_like_dynamodb(client: Client, items: list[Item]) -> None:
    # The fake against the plain (non-fan-out) paths the library already trusts.
    table = client.table("T")
    mine = sorted(item["SK"] for item in items if item["PK"] == "P1")
    got = [item["SK"] async for item in table.query(Key("PK").eq("P1"), limit=100)]
    assert got == mine
    page = await table.query_page(Key("PK").eq("P1") & Key("SK").gte(10), limit=3)
    assert [item["SK"] for item in page.items] == [sk for sk in mine if sk >= 10][:3]
    assert page.cursor is not None


async def test_query_partitions_merges_in_sort_key_order(
    client: Client, transport: ScriptedTransport, items: list[Item]
) -> None:
    table = client.table("T")
    got = await collect(table.query_partitions(PARTITIONS))
    assert keys_of(got) == expected_merge(items)
    assert got[0] == next(
        item for item in items if (item["PK"], item["SK"]) == expected_merge(items)[0]
    )
    assert transport.operations[0] == "DescribeTable"
    assert sorted(partition_of(q) for q in queries(transport) if "ExclusiveStartKey" not in q) == (
        PARTITIONS
    )


async def test_query_partitions_descending_reverses(
    client: Client, transport: ScriptedTransport, items: list[Item]
) -> None:
    table = client.table("T")
    got = await collect(table.query_partitions(PARTITIONS, descending=True))
    assert keys_of(got) == expected_merge(items, descending=True)
    assert all(q["ScanIndexForward"] is False for q in queries(transport))


async def test_query_partitions_with_sort_condition(
    client: Client, transport: ScriptedTransport, items: list[Item]
) -> None:
    table = client.table("T")
    got = await collect(table.query_partitions(PARTITIONS, Key("SK").between(5, 15)))
    assert keys_of(got) == [(pk, sk) for pk, sk in expected_merge(items) if 5 <= sk <= 15]
    assert all("BETWEEN" in q["KeyConditionExpression"] for q in queries(transport))


async def test_query_partitions_projection_strips_keys(
    client: Client, transport: ScriptedTransport, items: list[Item]
) -> None:
    table = client.table("T")
    got = await collect(table.query_partitions(PARTITIONS, attributes=["x"]))
    assert got == [{"x": f"{pk}/{sk}"} for pk, sk in expected_merge(items)]
    # The keys were fetched (to merge on, and to resume from), then removed.
    projected = queries(transport)[0]
    names = projected["ExpressionAttributeNames"]
    assert sorted(names[p] for p in projected["ProjectionExpression"].split(", ")) == [
        "PK",
        "SK",
        "x",
    ]


async def test_query_partitions_page_projection_cursors_still_work(
    client: Client, items: list[Item]
) -> None:
    table = client.table("T")
    seen: list[Item] = []
    cursor: str | None = None
    for _ in range(20):
        page = await table.query_partitions_page(
            PARTITIONS, limit=6, cursor=cursor, attributes=["x"]
        )
        assert all(set(item) == {"x"} for item in page.items)
        seen += page.items
        cursor = page.cursor
        if cursor is None:
            break
    assert seen == [{"x": f"{pk}/{sk}"} for pk, sk in expected_merge(items)]


async def test_query_partitions_unmerged_is_the_same_multiset(
    client: Client, items: list[Item]
) -> None:
    table = client.table("T")
    got = await collect(table.query_partitions(PARTITIONS, merge=False))
    assert Counter(keys_of(got)) == Counter(keys_of(items))
    for pk in PARTITIONS:  # each partition still in its own sort-key order
        assert [sk for p, sk in keys_of(got) if p == pk] == sorted(
            item["SK"] for item in items if item["PK"] == pk
        )


async def test_query_partitions_over_an_index(client: Client, transport: ScriptedTransport) -> None:
    # One index partition per table partition; pages resume from keys holding all four
    # key attributes (the fake refuses any other ExclusiveStartKey).
    data = [{**item, "GPK": f"G{item['PK']}"} for item in make_items(seed=3)]
    transport.default = FakeDynamo(data, page_cap=3)
    table = client.table("T")
    gpks = [f"G{pk}" for pk in PARTITIONS]
    want = [item["x"] for item in sorted(data, key=lambda item: item["GSK"])]
    got = await collect(table.query_partitions(gpks, index="GSI1", attributes=["x"]))
    assert [item["x"] for item in got] == want
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(30):
        page = await table.query_partitions_page(
            gpks, index="GSI1", attributes=["x"], limit=5, cursor=cursor
        )
        assert all(set(item) == {"x"} for item in page.items)
        seen += [item["x"] for item in page.items]
        if (cursor := page.cursor) is None:
            break
    assert cursor is None and seen == want
    assert all(q["IndexName"] == "GSI1" for q in queries(transport))


@pytest.mark.parametrize(("merge", "ordered"), [(True, False), (False, False), (True, True)])
async def test_query_partitions_page_seven_at_a_time(
    client: Client, items: list[Item], merge: bool, ordered: bool
) -> None:
    table = client.table("T")
    pages: list[list[Item]] = []
    cursor: str | None = None
    while len(pages) < 20:
        page = await table.query_partitions_page(
            PARTITIONS, limit=7, cursor=cursor, merge=merge, ordered=ordered
        )
        pages.append(page.items)
        if (cursor := page.cursor) is None:
            break
    assert cursor is None
    assert [len(page) for page in pages] == [7, 7, 7, 7, 7, 5]
    got = keys_of([item for page in pages for item in page])
    assert Counter(got) == Counter(keys_of(items))  # each exactly once
    if ordered:  # partition after partition
        assert got == sorted(keys_of(items), key=lambda k: (PARTITIONS.index(k[0]), k[1]))
    elif merge:
        assert got == expected_merge(items)


async def test_query_partitions_page_last_page_exactly_full(
    client: Client, items: list[Item]
) -> None:
    table = client.table("T")
    page = await table.query_partitions_page(PARTITIONS, limit=40)
    assert keys_of(page.items) == expected_merge(items)
    if page.cursor is not None:  # allowed (DynamoDB does it too), but must lead to nothing
        rest = await table.query_partitions_page(PARTITIONS, limit=40, cursor=page.cursor)
        assert rest.items == [] and rest.cursor is None


async def test_query_partitions_page_cursor_belongs_to_its_fan_out(
    client: Client, transport: ScriptedTransport, items: list[Item]
) -> None:
    table = client.table("T")
    first = await table.query_partitions_page(PARTITIONS, Key("SK").gte(3), limit=7)
    cursor = first.cursor
    assert cursor is not None
    tampered = cursor[:5] + ("A" if cursor[5] != "A" else "B") + cursor[6:]
    sent = len(transport.requests)
    attempts: list[dict[str, Any]] = [
        {"partitions": PARTITIONS[:3], "sort_condition": Key("SK").gte(3)},
        {"partitions": PARTITIONS[::-1], "sort_condition": Key("SK").gte(3)},
        {"partitions": PARTITIONS, "sort_condition": Key("SK").gte(4)},
        {"partitions": PARTITIONS, "sort_condition": Key("SK").gt(3)},
        {"partitions": PARTITIONS, "sort_condition": None},
        {"partitions": PARTITIONS, "sort_condition": Key("SK").gte(3), "descending": True},
        {"partitions": PARTITIONS, "sort_condition": Key("SK").gte(3), "merge": False},
        {"partitions": PARTITIONS, "sort_condition": Key("SK").gte(3), "ordered": True},
        {"partitions": PARTITIONS, "sort_condition": Key("SK").gte(3), "attributes": ["x"]},
        {"partitions": PARTITIONS, "sort_condition": Key("SK").gte(3), "index": "GSI1"},
    ]
    for kwargs in attempts:
        with pytest.raises(InvalidCursor):
            await table.query_partitions_page(limit=7, cursor=cursor, **kwargs)
    for bad in (tampered, cursor[:-4], cursor + "AAAA", "", "not a cursor!"):
        with pytest.raises(InvalidCursor):
            await table.query_partitions_page(PARTITIONS, Key("SK").gte(3), limit=7, cursor=bad)
    assert len(transport.requests) == sent  # refused before anything was sent
    # A different page size is the same fan-out: the cursor goes on from where it was.
    second = await table.query_partitions_page(PARTITIONS, Key("SK").gte(3), limit=3, cursor=cursor)
    want = [k for k in expected_merge(items) if k[1] >= 3]
    assert keys_of(first.items + second.items) == want[:10]


async def test_cursor_of_another_client_key_is_refused(
    client: Client, transport: ScriptedTransport, items: list[Item]
) -> None:
    first = await client.table("T").query_partitions_page(PARTITIONS, limit=7)
    assert first.cursor is not None
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("AKIDEXAMPLE", "secret"),
        transport=transport,
        cursor_key=b"another key",
    ) as other:
        with pytest.raises(InvalidCursor):
            await other.table("T").query_partitions_page(PARTITIONS, limit=7, cursor=first.cursor)


@pytest.mark.parametrize("paged", [False, True])
async def test_ordered_descending_latest_reads_only_the_newest_partition(
    client: Client, transport: ScriptedTransport, paged: bool
) -> None:
    buckets = ["B#2024-01", "B#2024-02", "B#2024-03", "B#2024-04", "B#2024-05"]
    data = [{"PK": b, "SK": sk, "x": f"{b}/{sk}"} for b in buckets for sk in range(10)]
    transport.default = FakeDynamo(data, page_cap=100)
    table = client.table("T")
    if paged:
        page = await table.query_partitions_page(buckets, limit=5, ordered=True, descending=True)
        got = page.items
        assert page.cursor is not None
    else:
        got = await collect(table.query_partitions(buckets, limit=5, ordered=True, descending=True))
    assert keys_of(got) == [("B#2024-05", sk) for sk in (9, 8, 7, 6, 5)]
    assert transport.operations == ["DescribeTable", "Query"]
    (query,) = queries(transport)
    assert partition_of(query) == "B#2024-05" and query["Limit"] == 5


async def test_ordered_limit_spilling_over_reads_the_next_wave(
    client: Client, transport: ScriptedTransport
) -> None:
    buckets = ["B#1", "B#2", "B#3", "B#4"]
    data = [{"PK": b, "SK": sk} for b in buckets for sk in range(10)]
    transport.default = FakeDynamo(data, page_cap=100)
    table = client.table("T")
    got = await collect(table.query_partitions(buckets, limit=12, ordered=True))
    assert keys_of(got) == [("B#1", sk) for sk in range(10)] + [("B#2", 0), ("B#2", 1)]
    assert sorted((partition_of(q), q["Limit"]) for q in queries(transport)) == [
        ("B#1", 12),
        ("B#2", 2),
        ("B#3", 2),
    ]


async def test_query_partitions_limit_leaves_no_task(
    client: Client, transport: ScriptedTransport, items: list[Item]
) -> None:
    table = client.table("T")
    await table.key_schema()
    before = asyncio.all_tasks()
    got = await collect(table.query_partitions(PARTITIONS, limit=5))
    assert keys_of(got) == expected_merge(items)[:5]
    await no_new_tasks(before)
    assert all(q["Limit"] <= 5 for q in queries(transport))


# --- library bugs -------------------------------------------------------------------------


async def test_fan_out_cursor_over_many_legs_is_accepted_back(
    client: Client, transport: ScriptedTransport
) -> None:
    # 64 shards, sort keys of 1,000 bytes (DynamoDB allows 1,024): a page of 64 takes the
    # first item of every shard, so the cursor holds 64 positions of ~1 KB each.
    parts = [f"S#{i:02d}" for i in range(64)]
    data = [{"PK": pk, "SK": f"{'x' * 1000}{j}"} for pk in parts for j in range(3)]
    transport.default = FakeDynamo(data)
    table = client.table("T")
    first = await table.query_partitions_page(parts, limit=64)
    assert first.cursor is not None
    second = await table.query_partitions_page(parts, limit=200, cursor=first.cursor)
    assert len(first.items) + len(second.items) == len(data)


async def test_fan_out_keys_are_exact_with_float_numbers(transport: ScriptedTransport) -> None:
    base = 1_700_000_000_000_000_200  # nanosecond timestamps: beyond a float's 53 bits
    data = [{"PK": "AB"[k % 2], "SK": base + k, "n": str(k)} for k in range(10)]
    transport.default = FakeDynamo(data)
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("AKIDEXAMPLE", "secret"),
        transport=transport,
        numbers="float",
    ) as db:
        table = db.table("T")
        # The plain query pages on the raw LastEvaluatedKey: exact, even in float mode.
        plain_first = await table.query_page(Key("PK").eq("A"), limit=1)
        plain_rest = await table.query_page(Key("PK").eq("A"), cursor=plain_first.cursor)
        assert len(plain_first.items) + len(plain_rest.items) == 5
        merged_order = [item["n"] for item in await collect(table.query_partitions(["A", "B"]))]
        first = await table.query_partitions_page(["A", "B"], limit=1)
        rest = await table.query_partitions_page(["A", "B"], limit=20, cursor=first.cursor)
    paged = [item["n"] for item in first.items + rest.items]
    everything = [str(k) for k in range(10)]
    # Positions and the merge use exact numbers (a float cursor would resume past every item
    # left in A, and floats would tie all keys); the caller still gets floats.
    assert paged == everything
    assert merged_order == everything
    assert all(type(item["SK"]) is float for item in first.items + rest.items)


# --- parallel scan --------------------------------------------------------------------------


async def test_scan_segments_yields_every_item_once(
    client: Client, transport: ScriptedTransport, items: list[Item]
) -> None:
    table = client.table("T")
    got = await collect(table.scan(segments=4))
    assert Counter(keys_of(got)) == Counter(keys_of(items))
    scans = sent(transport, "Scan")
    assert {p["TotalSegments"] for p in scans} == {4}
    assert {p["Segment"] for p in scans if "ExclusiveStartKey" not in p} == {0, 1, 2, 3}
    assert len([p for p in scans if "ExclusiveStartKey" not in p]) == 4


async def test_scan_segments_projection_and_limit(
    client: Client, transport: ScriptedTransport, items: list[Item]
) -> None:
    table = client.table("T")
    before = asyncio.all_tasks()
    got = await collect(table.scan(segments=4, attributes=["x"], limit=9))
    await no_new_tasks(before)
    assert len(got) == 9 and all(set(item) == {"x"} for item in got)
    assert {item["x"] for item in got} <= {item["x"] for item in items}
    assert len({item["x"] for item in got}) == 9


async def test_scan_page_segments_pages_through_all(
    client: Client, transport: ScriptedTransport, items: list[Item]
) -> None:
    table = client.table("T")
    seen: list[Item] = []
    sizes: list[int] = []
    cursor: str | None = None
    for _ in range(30):
        page = await table.scan_page(segments=4, limit=5, cursor=cursor)
        seen += page.items
        sizes.append(len(page.items))
        if (cursor := page.cursor) is None:
            break
    assert cursor is None
    assert Counter(keys_of(seen)) == Counter(keys_of(items))
    assert all(size == 5 for size in sizes[:-1]) and sizes[-1] <= 5
    first = await table.scan_page(segments=4, limit=5)
    assert first.cursor is not None
    with pytest.raises(InvalidCursor):  # a cursor of 4 segments does not fit 3
        await table.scan_page(segments=3, limit=5, cursor=first.cursor)
    with pytest.raises(InvalidCursor):  # nor an unsegmented scan
        await table.scan_page(limit=5, cursor=first.cursor)


async def test_scan_segments_configuration_errors(client: Client, items: list[Item]) -> None:
    table = client.table("T")
    with pytest.raises(ConfigurationError):
        await table.scan_page(segments=4)  # a parallel page needs a limit
    bad_segments: list[Any] = [0, -1, 5000, 2.0, "4"]
    for bad in bad_segments:
        with pytest.raises(ConfigurationError):
            await table.scan_page(segments=bad, limit=5)
        with pytest.raises(ConfigurationError):
            await collect(table.scan(segments=bad))


async def test_scan_segments_refuses_bool(client: Client, items: list[Item]) -> None:
    with pytest.raises(ConfigurationError):
        await collect(client.table("T").scan(segments=True))


# --- argument errors ------------------------------------------------------------------------


async def test_query_partitions_configuration_errors(
    client: Client, transport: ScriptedTransport, items: list[Item]
) -> None:
    table = client.table("T")
    bad_conditions: list[Any] = [Attr("SK").gt(3), "#sk > :v", Key("SK")]
    for bad in bad_conditions:
        with pytest.raises(ConfigurationError, match="sort_condition"):
            await collect(table.query_partitions(PARTITIONS, bad))
        with pytest.raises(ConfigurationError, match="sort_condition"):
            await table.query_partitions_page(PARTITIONS, bad, limit=5)
    empties: list[Iterable[str]] = [[], (), iter([])]
    for empty in empties:
        with pytest.raises(ConfigurationError, match="at least one partition"):
            await collect(table.query_partitions(empty))
    with pytest.raises(ConfigurationError, match="at least one partition"):
        await table.query_partitions_page([], limit=5)
    with pytest.raises(ConfigurationError, match="no index"):
        await collect(table.query_partitions(PARTITIONS, index="nope"))
    for limit in (0, -3):
        with pytest.raises(ConfigurationError):
            await collect(table.query_partitions(PARTITIONS, limit=limit))
        with pytest.raises(ConfigurationError):
            await table.query_partitions_page(PARTITIONS, limit=limit)
    assert "Query" not in transport.operations


async def test_query_partitions_takes_any_iterable_once(client: Client, items: list[Item]) -> None:
    table = client.table("T")
    got = await collect(table.query_partitions(pk for pk in PARTITIONS))
    assert keys_of(got) == expected_merge(items)


def test_bad_fan_out_arguments_raise_at_the_call(client: Client) -> None:
    table = client.table("T")
    with pytest.raises(ConfigurationError, match="twice"):
        table.query_partitions(["a", "b", "a"])
    with pytest.raises(ConfigurationError, match="at least one"):
        table.query_partitions([])
    with pytest.raises(ConfigurationError, match="sort_condition"):
        table.query_partitions(["a"], "SK > :x")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="segments"):
        table.scan(segments=0)
    with pytest.raises(ConfigurationError, match="segments"):
        table.scan(segments=True)
