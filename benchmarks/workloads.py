"""Workloads: small registered units the harness runs for every client.

A workload says how to seed the table it reads (with asyncdyn, once per run), what its
i-th operation is for a given client adapter, how many items one operation moves, and how
to check one result (outside the timing, so no client skips decoding or returns items in
another order unnoticed).

Adding one is one ``register(Workload(...))`` call; give the adapters in ``peers.py`` the
method it needs. A workload on a method not every adapter has names it in ``requires``; the
harness skips it (reported "n/a") for the others. A workload whose one operation already
fans out into many requests sets its own, smaller ``concurrency``: 4 callers for the fan-out
and the time series, one operation at a time for the bulk ones, which also have a cheap
``warm`` operation and their own default ``rounds``.

Data sizes follow :func:`configure` (``--items``): at the default 10,000, batch_get reads
10,000 keys and batch_write puts 10,000 items, get and put cycle over 1,000 keys, and the
query partition, each fan-out shard and each month of the time series hold 50 items. Against
the canned server (``configure(canned=True)``) every Query answers its fixed 50 items
whatever the partition, so the read checks expect those instead of the seeded data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from asyncdyn import TimeBuckets, WriteSharding

from .canned import QUERY_ITEMS
from .data import ATTRIBUTES, CITY, STATUS, make_item
from .peers import Item, Peer

__all__ = [
    "BATCH_ITEMS",
    "WORKLOADS",
    "Sizes",
    "Workload",
    "check_item",
    "configure",
    "register",
    "seed_items",
    "sizes",
]

# One operation of a run: (adapter, index of the operation in the run) -> its result.
Operation = Callable[[Peer, int], Awaitable[Any]]
# Seed the table through an asyncdyn Table before any client runs.
Seed = Callable[[Any], Awaitable[None]]
Check = Callable[[Peer, Any], None]

BATCH_ITEMS = 10_000
"""The default ``--items``: keys one batch_get reads, items one batch_write puts."""

_SEED_CHUNK = 2000


@dataclass(frozen=True, slots=True)
class Sizes:
    """Every data size of a run, derived from one number (``--items``)."""

    items: int = BATCH_ITEMS
    """Keys one batch_get operation reads, items one batch_write operation puts."""

    @property
    def keys(self) -> int:
        """Distinct keys get reads and put overwrites, in turn."""
        return max(1, self.items // 10)

    @property
    def partition(self) -> int:
        """Items in the query partition, in each fan-out shard and in each month."""
        return max(1, self.items // 200)


@dataclass(slots=True)
class _Config:
    sizes: Sizes
    canned: bool


_config = _Config(Sizes(), canned=False)


def configure(items: int = BATCH_ITEMS, *, canned: bool = False) -> Sizes:
    """Set the data sizes (and whether the server is the canned one) for every workload."""
    if items < 1:
        raise ValueError(f"items must be positive, got {items}")
    _config.sizes = Sizes(items)
    _config.canned = canned
    return _config.sizes


def sizes() -> Sizes:
    """The data sizes in force."""
    return _config.sizes


@dataclass(frozen=True, slots=True)
class Workload:
    """One kind of operation the harness measures for each client."""

    name: str
    summary: str
    operation: Operation
    check: Check
    items_per_op: int = 1
    """Items one operation moves, when ``count_items`` does not say."""
    count_items: Callable[[], int] | None = None
    """Items one operation moves under the sizes in force (``configure``)."""
    default_ops: int = 1000
    """Operations per client and round on a local server (tuned to dynalite on 2 cores)."""
    seed: Seed | None = None
    concurrency: int | None = None
    """Tasks issuing operations at once, instead of the harness's ``--concurrency``."""
    warmup: int | None = None
    """Untimed operations per client before the rounds, instead of the harness's ``--warmup``."""
    warm: Operation | None = None
    """A cheaper operation for the warm-up (its result is not checked): a bulk operation
    only needs its connections opened and its code paths loaded, not 10,000 items moved."""
    rounds: int | None = None
    """Rounds in a run without ``--rounds``, instead of the harness's default."""
    requires: str | None = None
    """The optional :class:`Peer` method the operation calls (adapters without it skip)."""
    in_default_run: bool = True
    """Run when ``--workload`` is not given."""

    def supports(self, peer: Peer) -> bool:
        """Whether ``peer`` can run this workload."""
        return self.requires is None or peer.supports(self.requires)

    def items_moved(self) -> int:
        """Items one operation moves under the sizes in force."""
        return self.count_items() if self.count_items is not None else self.items_per_op


WORKLOADS: dict[str, Workload] = {}
"""Every registered workload by name, in registration order."""


def register(workload: Workload) -> Workload:
    if workload.name in WORKLOADS:
        raise ValueError(f"workload {workload.name!r} is already registered")
    WORKLOADS[workload.name] = workload
    return workload


def check_item(peer: Peer, item: Any) -> None:
    """Fail unless ``item`` is a whole decoded benchmark item (nested map included)."""
    if item is None:
        raise AssertionError(f"{peer.name}: item missing")
    plain = peer.plain(item)
    if len(plain) != ATTRIBUTES or plain["status"] != STATUS:
        raise AssertionError(f"{peer.name}: unexpected item {plain!r:.200}")
    if plain["customer"]["address"]["city"] != CITY:
        raise AssertionError(f"{peer.name}: nested map not decoded: {plain['customer']!r:.200}")


def _check_listing(
    peer: Peer, items: Sequence[Any], expected: Sequence[tuple[str, str]], what: str
) -> None:
    """Fail unless ``items`` are exactly ``expected`` (PK, SK) in that order, and whole.

    Against the canned server every partition answers the same items, so only the sort
    keys (and their order) are compared there.
    """
    got = [(peer.string(item, "PK"), peer.string(item, "SK")) for item in items]
    if _config.canned:
        got = [("", sk) for _, sk in got]
        expected = [("", sk) for _, sk in expected]
    if got != list(expected):
        wrong = next(
            (n for n, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b),
            min(len(got), len(expected)),
        )
        raise AssertionError(
            f"{peer.name}: {what} returned {len(got)} items, {len(expected)} expected; first "
            f"difference at position {wrong}: got {got[wrong : wrong + 1]}, expected "
            f"{list(expected[wrong : wrong + 1])}"
        )
    if items:
        check_item(peer, items[0])
        check_item(peer, items[-1])


async def seed_items(table: Any, items: Sequence[Item]) -> None:
    """Write ``items`` through an asyncdyn ``Table`` (its batch writer: 4x put's items/s)."""
    for start in range(0, len(items), _SEED_CHUNK):
        # Chunks keep one batch's memory (and a failure's report) small.
        await table.batch_write(puts=items[start : start + _SEED_CHUNK])


def _item_keys(prefix: str, count: int) -> tuple[Item, ...]:
    return tuple({"PK": f"{prefix}#{n:06d}", "SK": "ITEM"} for n in range(count))


async def _seed_keys(table: Any, keys: Sequence[Item]) -> None:
    await seed_items(table, [make_item(key["PK"], key["SK"], n) for n, key in enumerate(keys)])


# --------------------------------------------------------------------------- get


@cache
def _get_keys(count: int) -> tuple[Item, ...]:
    return _item_keys("ITEM", count)


async def _seed_get(table: Any) -> None:
    await _seed_keys(table, _get_keys(_config.sizes.keys))


def _get(peer: Peer, i: int) -> Awaitable[Any]:
    keys = _get_keys(_config.sizes.keys)
    return peer.get(keys[i % len(keys)])


register(
    Workload(
        name="get",
        summary="GetItem of one ~1 KB item, keys cycling over --items/10 items (1,000)",
        operation=_get,
        check=check_item,
        default_ops=400,
        seed=_seed_get,
    )
)


# --------------------------------------------------------------------------- put


@cache
def _put_items(count: int) -> tuple[Item, ...]:
    # Built once: making the item is the caller's work, not the client's.
    return tuple(make_item(f"PUT#{n:06d}", "ITEM", n) for n in range(count))


def _put(peer: Peer, i: int) -> Awaitable[Any]:
    items = _put_items(_config.sizes.keys)
    return peer.put(items[i % len(items)])


def _check_none(peer: Peer, result: Any) -> None:
    if result is not None:
        raise AssertionError(f"{peer.name}: returned {result!r:.200}, not None")


register(
    Workload(
        name="put",
        summary="PutItem of one ~1 KB item, overwriting --items/10 keys (1,000) in turn",
        operation=_put,
        check=_check_none,
        default_ops=400,
    )
)


# ------------------------------------------------------------------------- query

QUERY_PARTITION = "ORDERS#QUERY"


def _query_size() -> int:
    return QUERY_ITEMS if _config.canned else _config.sizes.partition


@cache
def _query_expected(count: int) -> tuple[tuple[str, str], ...]:
    return tuple((QUERY_PARTITION, f"ORDER#{n:08d}") for n in range(count))


async def _seed_query(table: Any) -> None:
    await seed_items(
        table,
        [make_item(pk, sk, n) for n, (pk, sk) in enumerate(_query_expected(_query_size()))],
    )


def _query(peer: Peer, i: int) -> Awaitable[Any]:
    return peer.query(QUERY_PARTITION)


def _check_query(peer: Peer, items: Any) -> None:
    # The canned server's items are ORDER#00000000... too: one expectation fits both.
    _check_listing(peer, items, _query_expected(_query_size()), "query")


register(
    Workload(
        name="query",
        summary="Query of one partition of --items/200 items (50, ~50 KB), every page read",
        operation=_query,
        check=_check_query,
        count_items=_query_size,
        default_ops=64,
        seed=_seed_query,
        warmup=32,
    )
)


# ------------------------------------------------------------------------ fanout

SHARDS = 10
SHARD_TEMPLATE = "SHARD#{shard}#USER"
USER_PREFIX = "USER#"


@cache
def _shard_partitions() -> tuple[str, ...]:
    return tuple(WriteSharding(SHARD_TEMPLATE, shards=SHARDS).partitions())


@cache
def _fanout_items(per_shard: int) -> tuple[Item, ...]:
    """``per_shard`` users in each shard, placed by asyncdyn's stable hash of the user id."""
    sharding = WriteSharding(SHARD_TEMPLATE, shards=SHARDS)
    by_shard: dict[str, list[Item]] = {pk: [] for pk in _shard_partitions()}
    n = 0
    while any(len(users) < per_shard for users in by_shard.values()):
        user = f"user-{n:07d}"
        pk = sharding.partition_for(user)
        if len(by_shard[pk]) < per_shard:
            by_shard[pk].append(make_item(pk, f"{USER_PREFIX}{user}", n))
        n += 1
    return tuple(item for users in by_shard.values() for item in users)


@cache
def _fanout_expected(per_shard: int, canned: bool) -> tuple[tuple[str, str], ...]:
    if canned:
        # Every shard answers the same 50 items; a merge by SK puts the copies side by side.
        return tuple(("", f"ORDER#{n:08d}") for n in range(QUERY_ITEMS) for _ in range(SHARDS))
    return tuple(sorted(((i["PK"], i["SK"]) for i in _fanout_items(per_shard)), key=_by_sk))


def _by_sk(key: tuple[str, str]) -> str:
    return key[1]


def _fanout_size() -> int:
    return SHARDS * (QUERY_ITEMS if _config.canned else _config.sizes.partition)


async def _seed_fanout(table: Any) -> None:
    await seed_items(table, _fanout_items(_config.sizes.partition))


def _fanout(peer: Peer, i: int) -> Awaitable[Any]:
    return peer.fan_out(_shard_partitions(), USER_PREFIX)


def _check_fanout(peer: Peer, items: Any) -> None:
    expected = _fanout_expected(_config.sizes.partition, _config.canned)
    _check_listing(peer, items, expected, "fanout")


register(
    Workload(
        name="fanout",
        summary=f"every user of a {SHARDS}-shard write-sharded partition ({SHARD_TEMPLATE}, "
        "--items/200 = 50 per shard) in SK order: asyncdyn query_partitions, the others "
        f"{SHARDS} queries at once (gather) and a sort",
        operation=_fanout,
        check=_check_fanout,
        count_items=_fanout_size,
        # One operation is ten queries (~0.1 s of client CPU for a botocore client), so
        # four callers already ask for 40 requests at once from a pool of 16.
        default_ops=8,
        seed=_seed_fanout,
        concurrency=4,
        warmup=4,
    )
)


# -------------------------------------------------------------------- timeseries

SENSOR = "7"
BUCKET_TEMPLATE = "SENSOR#{sensor}#{bucket}"
SERIES_YEAR = 2024
# Mid-January to mid-June: six month partitions, the first and last read in part.
WINDOW = (datetime(2024, 1, 16, tzinfo=UTC), datetime(2024, 6, 15, 12, tzinfo=UTC))


def _month_start(month: int) -> datetime:
    year, month0 = divmod(month - 1, 12)
    return datetime(SERIES_YEAR + year, month0 + 1, 1, tzinfo=UTC)


@cache
def _month_partitions() -> tuple[str, ...]:
    buckets = TimeBuckets(BUCKET_TEMPLATE, granularity="month")
    return tuple(buckets.partitions(*WINDOW, sensor=SENSOR))


@cache
def _series_items(per_month: int) -> tuple[Item, ...]:
    """A year of readings, ``per_month`` evenly spread over each month, keyed by time."""
    buckets = TimeBuckets(BUCKET_TEMPLATE, granularity="month")
    items: list[Item] = []
    for month in range(1, 13):
        start, end = _month_start(month), _month_start(month + 1)
        step = (end - start) / per_month
        for n in range(per_month):
            at = start + n * step
            # Whole seconds: isoformat() adds ".ffffff" only when there are microseconds,
            # and texts of both forms would not sort as the times do.
            at -= timedelta(microseconds=at.microsecond)
            pk = buckets.partition_for(at, sensor=SENSOR)
            items.append(make_item(pk, at.isoformat(), len(items)))
    return tuple(items)


_WINDOW_TEXT = (WINDOW[0].isoformat(), WINDOW[1].isoformat())


@cache
def _series_expected(per_month: int, canned: bool) -> tuple[tuple[str, str], ...]:
    if canned:
        # Each month answers the same 50 items, read one month after the other.
        return tuple(
            ("", f"ORDER#{n:08d}") for _ in _month_partitions() for n in range(QUERY_ITEMS)
        )
    low, high = _WINDOW_TEXT
    return tuple(
        (item["PK"], item["SK"]) for item in _series_items(per_month) if low <= item["SK"] <= high
    )


def _series_size() -> int:
    return len(_series_expected(_config.sizes.partition, _config.canned))


async def _seed_series(table: Any) -> None:
    await seed_items(table, _series_items(_config.sizes.partition))


def _series(peer: Peer, i: int) -> Awaitable[Any]:
    return peer.time_range(_month_partitions(), *_WINDOW_TEXT)


def _check_series(peer: Peer, items: Any) -> None:
    expected = _series_expected(_config.sizes.partition, _config.canned)
    _check_listing(peer, items, expected, "timeseries")


register(
    Workload(
        name="timeseries",
        summary="readings of one sensor from mid-January to mid-June over month buckets "
        f"({BUCKET_TEMPLATE}, --items/200 = 50 a month; 6 partitions): asyncdyn "
        "TimeBuckets + query_partitions(ordered=True), the others one query per month",
        operation=_series,
        check=_check_series,
        count_items=_series_size,
        default_ops=12,
        seed=_seed_series,
        concurrency=4,
        warmup=4,
    )
)


# ---------------------------------------------------------------------- batch_get

_BULK_WARM = 250
"""Keys or items of a bulk workload's warm-up operation: a few requests per client."""


@cache
def _batch_get_keys(count: int) -> tuple[Item, ...]:
    return _item_keys("BGET", count)


async def _seed_batch_get(table: Any) -> None:
    await _seed_keys(table, _batch_get_keys(_config.sizes.items))


def _batch_get(peer: Peer, i: int) -> Awaitable[Any]:
    return peer.batch_get(_batch_get_keys(_config.sizes.items))


def _warm_batch_get(peer: Peer, i: int) -> Awaitable[Any]:
    return peer.batch_get(_batch_get_keys(_config.sizes.items)[:_BULK_WARM])


def _check_batch_get(peer: Peer, items: Any) -> None:
    # asyncdyn answers one entry per key (None when missing); the others only what was found.
    keys = _batch_get_keys(_config.sizes.items)
    found = [item for item in items if item is not None]
    if len(found) != len(keys):
        raise AssertionError(f"{peer.name}: batch_get returned {len(found)} items, not {len(keys)}")
    if {peer.string(item, "PK") for item in found} != {key["PK"] for key in keys}:
        raise AssertionError(f"{peer.name}: batch_get answered other keys than it asked for")
    check_item(peer, found[0])
    check_item(peer, found[-1])


register(
    Workload(
        name="batch_get",
        summary="--items (10,000) ~1 KB items by key (BatchGetItem), one operation at a time",
        operation=_batch_get,
        check=_check_batch_get,
        count_items=lambda: _config.sizes.items,
        # 1 s (asyncdyn) to 3.5 s (aioboto3) per operation on dynalite.
        default_ops=1,
        seed=_seed_batch_get,
        concurrency=1,
        warmup=1,
        warm=_warm_batch_get,
        rounds=1,
        requires="batch_get",
    )
)


# -------------------------------------------------------------------- batch_write


@cache
def _batch_write_items(count: int) -> tuple[Item, ...]:
    # Built once, like put's: making the items is the caller's work, not the client's.
    return tuple(make_item(f"BPUT#{n:06d}", "ITEM", n) for n in range(count))


def _batch_write(peer: Peer, i: int) -> Awaitable[Any]:
    return peer.batch_write(_batch_write_items(_config.sizes.items))


def _warm_batch_write(peer: Peer, i: int) -> Awaitable[Any]:
    return peer.batch_write(_batch_write_items(_config.sizes.items)[:_BULK_WARM])


register(
    Workload(
        name="batch_write",
        summary="--items (10,000) ~1 KB items put (BatchWriteItem), overwriting the same keys",
        operation=_batch_write,
        check=_check_none,
        count_items=lambda: _config.sizes.items,
        # One op is 400 sequential requests for the botocore clients: ~6 s on dynalite.
        default_ops=1,
        concurrency=1,
        warmup=1,
        warm=_warm_batch_write,
        rounds=1,
        requires="batch_write",
    )
)
