"""Partition-key schemes and the fan-out over them.

One hot partition key caps a DynamoDB table at one partition's throughput. The usual
remedies split a logical key over many physical ones, and a reader then has to fan out over
all of them. This module names those physical keys:

``WriteSharding``
    ``N`` shards of one logical key: ``"SHARD#{shard}#USER"`` becomes ``SHARD#0#USER`` ...
    ``SHARD#{N-1}#USER``. With ``strategy="hash"`` an entity always lands on the same shard
    (``partition_for``), so it can be read back from one partition; ``random_partition``
    spreads writes that are only ever read by fanning out over ``partitions()``.

``TimeBuckets``
    One partition per year, month, ISO week, day or hour: ``"SENSOR#{sensor}#{bucket}"``
    becomes ``SENSOR#42#2024-01``. ``partitions(start, end)`` lists every bucket a time
    range touches, oldest first or newest first.

::

    shards = WriteSharding("SHARD#{shard}#ORDERS", shards=10)
    shards.partition_for("order-17")     # 'SHARD#6#ORDERS', on every machine, forever
    shards.partitions()                  # ['SHARD#0#ORDERS', ..., 'SHARD#9#ORDERS']

    months = TimeBuckets("SENSOR#{sensor}#{bucket}", granularity="month")
    months.partition_for(datetime(2024, 1, 15, tzinfo=UTC), sensor=42)
    # 'SENSOR#42#2024-01'

Templates use ``str.format`` syntax with named fields only; the scheme's own field
(``{shard}`` or ``{bucket}``) is required and every other field is a keyword argument of
each call. A missing or unknown field is a ``ConfigurationError``, never a silently
wrong key.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import random
import string
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from .errors import ConfigurationError, InvalidCursor
from .marshal import encode_value
from .paging import FetchPage, Item, WireKey, check_key_shape

__all__ = [
    "MAX_BUCKETS",
    "MAX_SHARDS",
    "FanOutPlan",
    "Granularity",
    "Leg",
    "LegState",
    "Order",
    "ShardStrategy",
    "TimeBuckets",
    "WriteSharding",
    "check_states",
    "fan_out",
    "stable_shard",
]

ShardStrategy = Literal["hash", "random"]
Granularity = Literal["year", "month", "week", "day", "hour"]

MAX_SHARDS = 10_000
"""The most shards a ``WriteSharding`` accepts: a read fans out over every one of them."""

MAX_BUCKETS = 1_000_000
"""The most buckets ``TimeBuckets.partitions`` lists at once (``iter_partitions`` is lazy)."""

_STRATEGIES: frozenset[str] = frozenset(get_args(ShardStrategy))
_GRANULARITIES: frozenset[str] = frozenset(get_args(Granularity))

_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
_WEEK = timedelta(weeks=1)


def stable_shard(entity_id: str | int | bytes, shards: int) -> int:
    """The shard of ``entity_id`` among ``shards``: the same in every process, on every
    machine, in every Python version.

    Exactly::

        data = entity_id.encode("utf-8")   # str
        data = entity_id                   # bytes, as they are
        data = str(entity_id).encode()     # int: its decimal digits, "-" for negatives
        int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") % shards

    So ``42`` and ``"42"`` share a shard. Stored keys depend on this function, so it must
    never change; the built-in ``hash()`` would not do, being salted per process for
    ``str`` and ``bytes``. The modulo bias of a 64-bit hash over at most ``MAX_SHARDS``
    shards is below 1e-15.

    >>> stable_shard("order-17", 10)
    6
    """
    if isinstance(entity_id, bool):
        # str(True) is "True": almost certainly a bug, and not an id anyone means.
        raise ConfigurationError("an entity id must be str, int or bytes, not bool")
    if isinstance(entity_id, str):
        try:
            data = entity_id.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ConfigurationError(f"entity id {entity_id!r} is not valid Unicode") from exc
    elif isinstance(entity_id, int):
        # int.__repr__, not str(): an IntEnum or other int subclass hashes as its value.
        data = int.__repr__(entity_id).encode("ascii")
    elif isinstance(entity_id, bytes):
        data = bytes(entity_id)
    else:
        raise ConfigurationError(
            f"an entity id must be str, int or bytes, not {type(entity_id).__name__}"
        )
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") % shards


@dataclass(frozen=True, slots=True)
class _Template:
    """A parsed template: literal text alternating with named fields.

    ``own`` is the scheme's field (``shard`` / ``bucket``), filled in by the scheme;
    ``names`` are the caller's fields, passed as keyword arguments.
    """

    owner: str
    own: str
    pieces: tuple[tuple[str, str | None, str], ...]  # (literal, field name or None, spec)
    names: frozenset[str]

    @classmethod
    def parse(
        cls, owner: str, template: object, own: str, reserved: Mapping[str, str] | None = None
    ) -> _Template:
        """Parse ``template``; ``reserved`` maps a name the methods take as a keyword argument
        to where it is used, and a template field of that name is refused (passed as a
        keyword, it would fill the parameter instead of the field)."""
        reserved = reserved or {}
        if not isinstance(template, str):
            raise ConfigurationError(
                f"{owner} template must be a str, not {type(template).__name__}"
            )
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            raise ConfigurationError(f"{owner} template {template!r} is malformed: {exc}") from exc
        pieces: list[tuple[str, str | None, str]] = []
        names: set[str] = set()
        for literal, name, spec, conversion in parsed:
            if name is None:
                pieces.append((literal, None, ""))
                continue
            if not name.isidentifier():
                # "" and "0" are positional; "a.b" and "a[0]" reach into objects. Keys built
                # from either would depend on more than the named values the caller passes.
                raise ConfigurationError(
                    f"{owner} template {template!r}: field {{{name}}} must be a plain name "
                    f"such as {{{own}}} or {{user}} (no positional, attribute or index fields)"
                )
            if conversion is not None:
                raise ConfigurationError(
                    f"{owner} template {template!r}: field {{{name}!{conversion}}} must not "
                    "have a conversion"
                )
            if spec and "{" in spec:
                raise ConfigurationError(
                    f"{owner} template {template!r}: the format spec of {{{name}}} must not "
                    "contain fields"
                )
            if name in reserved:
                raise ConfigurationError(
                    f"{owner} template {template!r}: {{{name}}} is reserved, being the name "
                    f"of a parameter ({reserved[name]}) that it could not be passed beside; "
                    f"rename the field, e.g. {{{name}_field}}"
                )
            pieces.append((literal, name, spec or ""))
            if name != own:
                names.add(name)
        if all(name != own for _, name, _ in pieces):
            raise ConfigurationError(f"{owner} template {template!r} needs a {{{own}}} field")
        return cls(owner, own, tuple(pieces), frozenset(names))

    def check(self, fields: Mapping[str, object]) -> None:
        """Raise unless ``fields`` names exactly the caller's fields of the template."""
        if fields.keys() == self.names:
            return
        if self.own in fields:
            raise ConfigurationError(
                f"{self.owner} fills in {{{self.own}}} itself; do not pass {self.own}="
            )
        missing = sorted(self.names - fields.keys())
        if missing:
            raise ConfigurationError(
                f"{self.owner} template needs field(s) {', '.join(missing)}: "
                f"pass them as keyword arguments, e.g. {missing[0]}=..."
            )
        unknown = sorted(fields.keys() - self.names)
        raise ConfigurationError(
            f"{self.owner} template has no field(s) {', '.join(unknown)}"
            + (f" (its fields: {', '.join(sorted(self.names))})" if self.names else "")
        )

    def render(self, own: object, fields: Mapping[str, object]) -> str:
        """The template with ``own`` and ``fields`` filled in (``fields`` already checked)."""
        out: list[str] = []
        for literal, name, spec in self.pieces:
            out.append(literal)
            if name is None:
                continue
            value = own if name == self.own else fields[name]
            try:
                out.append(format(value, spec))
            except (ValueError, TypeError) as exc:
                raise ConfigurationError(
                    f"{self.owner}: cannot format {name}={value!r} with spec {spec!r}: {exc}"
                ) from exc
        return "".join(out)


# The parameters that the methods take by keyword as well as by position
# (``partitions(start=..., end=...)`` reads naturally): no template field may share a name.
_SHARDING_PARAMETERS = {"entity_id": "partition_for(entity_id=...), shard_of(entity_id=...)"}
_BUCKET_PARAMETERS = {
    "at": "partition_for(at=...), bucket_of(at=...), bucket_range(at=...)",
    "start": "partitions(start=..., end=...)",
    "end": "partitions(start=..., end=...)",
    "descending": "partitions(..., descending=...)",
}


@dataclass(frozen=True, slots=True)
class WriteSharding:
    """A logical partition key split over ``shards`` physical ones.

    Args:
        template: a ``str.format`` template with a ``{shard}`` field and any other named
            fields, e.g. ``"SHARD#{shard}#USER"`` or ``"{tenant}#{shard:02d}"`` (not
            ``{entity_id}``, a parameter name of ``partition_for``).
        shards: how many shards, 1 to ``MAX_SHARDS``. Changing it moves almost every
            entity to another shard, so choose it once per table.
        strategy: ``"hash"`` places an entity by a stable hash of its id
            (``partition_for``) so a point read needs one partition; ``"random"`` is for
            data that is only ever read by fanning out, and forbids ``partition_for``
            (a random shard cannot be found again).

    ``random_partition`` works with either strategy; ``partitions`` lists every shard, for
    the fan-out read.

    >>> ws = WriteSharding("SHARD#{shard}#{kind}", shards=4)
    >>> ws.partition_for("order-17", kind="ORDER")
    'SHARD#0#ORDER'
    >>> ws.partitions(kind="ORDER")
    ['SHARD#0#ORDER', 'SHARD#1#ORDER', 'SHARD#2#ORDER', 'SHARD#3#ORDER']
    """

    template: str
    shards: int
    strategy: ShardStrategy = "hash"
    _parsed: _Template = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.shards, bool) or not isinstance(self.shards, int):
            raise ConfigurationError(
                f"WriteSharding.shards must be an int, not {type(self.shards).__name__}"
            )
        if not 1 <= self.shards <= MAX_SHARDS:
            raise ConfigurationError(
                f"WriteSharding.shards must be between 1 and {MAX_SHARDS}, got {self.shards}"
            )
        if self.strategy not in _STRATEGIES:
            raise ConfigurationError(
                f"WriteSharding.strategy must be 'hash' or 'random', got {self.strategy!r}"
            )
        parsed = _Template.parse("WriteSharding", self.template, "shard", _SHARDING_PARAMETERS)
        # A spec such as {shard:.0e} would give shards 10 and 11 the same key; render every
        # shard once now, so a bad spec fails here rather than as silently merged shards.
        specs = tuple(spec for _, name, spec in parsed.pieces if name == "shard")
        seen: set[tuple[str, ...]] = set()
        for shard in range(self.shards):
            try:
                seen.add(tuple(format(shard, spec) for spec in specs))
            except ValueError as exc:
                raise ConfigurationError(
                    f"WriteSharding template {self.template!r}: cannot format the shard "
                    f"number: {exc}"
                ) from exc
        if len(seen) != self.shards:
            raise ConfigurationError(
                f"WriteSharding template {self.template!r} gives different shards the same key"
            )
        object.__setattr__(self, "_parsed", parsed)

    def shard_of(self, /, entity_id: str | int | bytes) -> int:
        """The shard number of ``entity_id``, by ``stable_shard`` (``strategy="hash"`` only)."""
        if self.strategy != "hash":
            raise ConfigurationError(
                "WriteSharding(strategy='random') does not place entities: use "
                "random_partition() to write and partitions() to read"
            )
        return stable_shard(entity_id, self.shards)

    def partition_for(self, /, entity_id: str | int | bytes, **fields: object) -> str:
        """The partition key of ``entity_id``: the same on every call and every machine."""
        shard = self.shard_of(entity_id)
        self._parsed.check(fields)
        return self._parsed.render(shard, fields)

    def random_partition(self, /, **fields: object) -> str:
        """The partition key of a uniformly random shard, to spread writes."""
        self._parsed.check(fields)
        return self._parsed.render(random.randrange(self.shards), fields)

    def partitions(self, /, **fields: object) -> list[str]:
        """Every shard's partition key, shard 0 first: what a fan-out read queries."""
        self._parsed.check(fields)
        render = self._parsed.render
        return [render(shard, fields) for shard in range(self.shards)]


def _utc(at: object, what: str) -> datetime:
    """``at`` as an aware UTC datetime, or a ``ConfigurationError`` saying why not."""
    if not isinstance(at, datetime):
        raise ConfigurationError(f"{what} must be a datetime, not {type(at).__name__}")
    if at.tzinfo is None or at.utcoffset() is None:
        # A naive time is local to some unknown zone: guessing would file data an offset
        # away from where a reader in another zone looks for it.
        raise ConfigurationError(
            f"{what} must be timezone-aware, e.g. datetime(2024, 1, 15, tzinfo=timezone.utc); "
            f"got naive {at.isoformat()}"
        )
    try:
        return at.astimezone(UTC)
    except OverflowError as exc:
        raise ConfigurationError(f"{what} {at.isoformat()} is out of range in UTC") from exc


@dataclass(frozen=True, slots=True)
class TimeBuckets:
    """A partition key per period of time.

    Args:
        template: a ``str.format`` template with a ``{bucket}`` field (no format spec) and
            any other named fields, e.g. ``"SENSOR#{sensor}#{bucket}"``. ``at``, ``start``,
            ``end`` and ``descending`` are parameter names of the methods, so no field may be
            called that.
        granularity: the period of one bucket, in UTC.

    Bucket texts, which sort as strings in time order::

        year    2024
        month   2024-01
        week    2024-W03          ISO 8601 week, with the ISO year: 2024-12-30 is 2025-W01
        day     2024-01-15
        hour    2024-01-15T07

    Times must be timezone-aware and are bucketed in UTC.

    >>> tb = TimeBuckets("SENSOR#{sensor}#{bucket}", granularity="month")
    >>> tb.partition_for(datetime(2024, 1, 15, tzinfo=UTC), sensor=42)
    'SENSOR#42#2024-01'
    """

    template: str
    granularity: Granularity = "month"
    _parsed: _Template = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.granularity not in _GRANULARITIES:
            raise ConfigurationError(
                "TimeBuckets.granularity must be one of year, month, week, day, hour; "
                f"got {self.granularity!r}"
            )
        parsed = _Template.parse("TimeBuckets", self.template, "bucket", _BUCKET_PARAMETERS)
        if any(spec for _, name, spec in parsed.pieces if name == "bucket"):
            # A spec could truncate or pad the bucket text and break its time order.
            raise ConfigurationError(
                f"TimeBuckets template {self.template!r}: {{bucket}} takes no format spec"
            )
        object.__setattr__(self, "_parsed", parsed)

    def bucket_of(self, /, at: datetime) -> str:
        """The bucket text of ``at``, e.g. ``"2024-01"`` for a month."""
        return self._text(self._floor(_utc(at, "at")))

    def partition_for(self, /, at: datetime, **fields: object) -> str:
        """The partition key of the bucket holding ``at``."""
        text = self.bucket_of(at)
        self._parsed.check(fields)
        return self._parsed.render(text, fields)

    def bucket_range(self, /, at: datetime) -> tuple[datetime, datetime]:
        """The bucket holding ``at`` as UTC ``(start, end)``: start inclusive, end exclusive.

        Raises ``ConfigurationError`` for the last bucket before ``datetime.max``, whose end
        is not representable.
        """
        start = self._floor(_utc(at, "at"))
        end = self._step(start, 1)
        if end is None:
            raise ConfigurationError(f"the bucket of {at.isoformat()} ends after datetime.max")
        return start, end

    def partitions(
        self, /, start: datetime, end: datetime, *, descending: bool = False, **fields: object
    ) -> list[str]:
        """The partition key of every bucket overlapping ``[start, end]``, both inclusive.

        Oldest first, or newest first with ``descending=True``. More than ``MAX_BUCKETS``
        buckets is a ``ConfigurationError``; ``iter_partitions`` has no such limit.
        """
        first, last = self._span(start, end, fields)
        count = self._count(first, last)
        if count > MAX_BUCKETS:
            raise ConfigurationError(
                f"{start.isoformat()}..{end.isoformat()} spans {count} {self.granularity} "
                f"buckets, more than {MAX_BUCKETS}: use a coarser granularity, a shorter "
                "range, or iter_partitions()"
            )
        return list(self._walk(first, last, descending, fields))

    def iter_partitions(
        self, /, start: datetime, end: datetime, *, descending: bool = False, **fields: object
    ) -> Iterator[str]:
        """Like ``partitions``, lazily and without a size limit: a newest-first reader that
        stops once it has enough items never builds the rest.

        Arguments are checked at the call, not at the first ``next()``.
        """
        first, last = self._span(start, end, fields)
        return self._walk(first, last, descending, fields)

    def _span(
        self, start: datetime, end: datetime, fields: Mapping[str, object]
    ) -> tuple[datetime, datetime]:
        """The first and last bucket starts of ``[start, end]``, after checking everything."""
        s = _utc(start, "start")
        e = _utc(end, "end")
        if s > e:
            raise ConfigurationError(
                f"start {start.isoformat()} is after end {end.isoformat()}; "
                "pass descending=True for newest-first order"
            )
        self._parsed.check(fields)
        return self._floor(s), self._floor(e)

    def _walk(
        self, first: datetime, last: datetime, descending: bool, fields: Mapping[str, object]
    ) -> Iterator[str]:
        render = self._parsed.render
        text = self._text
        sign = -1 if descending else 1
        at, stop = (last, first) if descending else (first, last)
        while True:
            yield render(text(at), fields)
            if at == stop:
                return
            # Never past ``stop``, which is a representable bucket start: no overflow here.
            step = self._step(at, sign)
            assert step is not None
            at = step

    def _floor(self, t: datetime) -> datetime:
        """The start of the bucket holding the UTC time ``t``."""
        g = self.granularity
        if g == "hour":
            return t.replace(minute=0, second=0, microsecond=0)
        day = t.replace(hour=0, minute=0, second=0, microsecond=0)
        if g == "day":
            return day
        if g == "week":
            # 0001-01-01 is a Monday, so this never goes below datetime.min.
            return day - timedelta(days=day.weekday())
        if g == "month":
            return day.replace(day=1)
        return day.replace(month=1, day=1)

    def _step(self, b: datetime, sign: int) -> datetime | None:
        """The bucket start ``sign`` (+1 / -1) buckets from ``b``; ``None`` out of range."""
        g = self.granularity
        try:
            if g == "hour":
                return b + sign * _HOUR
            if g == "day":
                return b + sign * _DAY
            if g == "week":
                return b + sign * _WEEK
            if g == "month":
                year, month0 = divmod(b.year * 12 + b.month - 1 + sign, 12)
                return b.replace(year=year, month=month0 + 1)
            return b.replace(year=b.year + sign)
        except (OverflowError, ValueError):
            return None

    def _count(self, first: datetime, last: datetime) -> int:
        """How many buckets from the one starting at ``first`` to the one at ``last``."""
        g = self.granularity
        if g == "year":
            return last.year - first.year + 1
        if g == "month":
            return (last.year - first.year) * 12 + last.month - first.month + 1
        step = _HOUR if g == "hour" else _DAY if g == "day" else _WEEK
        return (last - first) // step + 1

    def _text(self, b: datetime) -> str:
        """The bucket text of the bucket starting at ``b``."""
        g = self.granularity
        if g == "year":
            return f"{b.year:04d}"
        if g == "month":
            return f"{b.year:04d}-{b.month:02d}"
        if g == "week":
            iso = b.isocalendar()
            return f"{iso.year:04d}-W{iso.week:02d}"
        if g == "day":
            return f"{b.year:04d}-{b.month:02d}-{b.day:02d}"
        return f"{b.year:04d}-{b.month:02d}-{b.day:02d}T{b.hour:02d}"


# --------------------------------------------------------------------------------------------
# The fan-out engine: many listings (one query per partition, one scan per segment) read
# concurrently through the client's in-flight limit, each a page ahead of its consumer, and
# handed out in one of three orders.
# --------------------------------------------------------------------------------------------

Order = Literal["sorted", "sequential", "arrival"]
"""How the items of the legs are handed out:

* ``"sorted"`` — a k-way merge on one attribute (the sort key), ties in leg order: every leg
  is read at once, because any of them may hold the next item;
* ``"sequential"`` — leg after leg, for legs that hold consecutive ranges (time buckets):
  legs start in waves of 1, 2, 4... so a ``limit`` met by the first leg reads no other;
* ``"arrival"`` — pages as they come (parallel scan segments, unmerged fan-outs).
"""

# A leg's position in a cursor: None = from its start, False = finished, else the key of the
# last item handed out (DynamoDB resumes after any key given as ExclusiveStartKey).
LegState = WireKey | Literal[False] | None

_Page = tuple[list[Item], bool]  # the items of one page, and whether it was the last


class Leg:
    """One listing of a fan-out. A pump task fetches its pages, at most one page ahead of
    the consumer (a bounded queue): at most three pages per leg are held (the one being
    handed out, one queued, one waiting to be queued)."""

    __slots__ = (
        "_fetch",
        "_items",
        "_last_page",
        "_pages",
        "_pos",
        "_task",
        "_wanted",
        "last",
        "start",
    )

    def __init__(self, fetch: FetchPage, start: WireKey | None = None) -> None:
        self._fetch = fetch
        self.start = start
        self.last: Item | None = None
        self._items: list[Item] = []
        self._pos = 0
        self._last_page = False
        self._pages: asyncio.Queue[_Page | BaseException] = asyncio.Queue(maxsize=1)
        self._task: asyncio.Task[None] | None = None
        self._wanted = asyncio.Event()

    @property
    def buffered(self) -> bool:
        """An item of the current page is still to be handed out."""
        return self._pos < len(self._items)

    @property
    def finished(self) -> bool:
        """Every item of the listing has been handed out."""
        return self._last_page and self._pos >= len(self._items)

    def begin(self, page_limit: Callable[[], int | None], notify: Callable[[Leg], None]) -> None:
        self._task = asyncio.get_running_loop().create_task(self._pump(page_limit, notify))

    async def _pump(
        self, page_limit: Callable[[], int | None], notify: Callable[[Leg], None]
    ) -> None:
        start = self.start
        try:
            while True:
                asked = page_limit()
                items, last_key = await self._fetch(start, asked)
                await self._pages.put((items, last_key is None))
                notify(self)
                if last_key is None:
                    return
                start = last_key
                if asked is not None and len(items) >= asked:
                    # This page may be all that is wanted ("the latest 10"): fetch on only
                    # when the consumer comes back for more.
                    self._wanted.clear()
                    await self._wanted.wait()
        except Exception as exc:  # handed to the consumer, who raises it
            await self._pages.put(exc)
            notify(self)

    def _accept(self, got: _Page | BaseException) -> None:
        if isinstance(got, BaseException):
            raise got
        self._items, self._last_page = got
        self._pos = 0

    def take_page(self) -> None:
        """Load the page the pump just announced (``"arrival"`` order)."""
        self._accept(self._pages.get_nowait())

    def want(self) -> None:
        """The consumer is done with the current page and wants the next."""
        self._wanted.set()

    async def ready(self) -> bool:
        """Whether the leg has an item to hand out, waiting for its next page if need be."""
        while self._pos >= len(self._items):
            if self._last_page:
                return False
            if self._pages.empty():  # a page already waiting is not a request for another
                self._wanted.set()
            self._accept(await self._pages.get())
        return True

    def peek(self) -> Item:
        return self._items[self._pos]

    def pop(self) -> Item:
        item = self._items[self._pos]
        self._pos += 1
        self.last = item
        return item

    def state(self, key_of: Callable[[Item], WireKey]) -> LegState:
        if self.finished:
            return False
        return self.start if self.last is None else key_of(self.last)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])


class _Descending:
    """Reverses the order of a sort-key value inside the merge heap."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Descending) -> bool:
        return bool(other.value < self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and bool(self.value == other.value)

    __hash__ = None  # type: ignore[assignment]


async def fan_out(
    legs: Sequence[Leg],
    order: Order,
    *,
    limit: int | None = None,
    sort_key: str | None = None,
    descending: bool = False,
) -> AsyncGenerator[Item, None]:
    """The items of ``legs`` in ``order``, at most ``limit`` of them. Closing the generator
    (or meeting the limit) cancels every page still being fetched."""
    taken = 0

    def page_limit() -> int | None:
        # A page need not hold more than what is still wanted (never 0: DynamoDB refuses it).
        return None if limit is None else max(1, limit - taken)

    arrived: asyncio.Queue[Leg] = asyncio.Queue()
    try:
        if limit == 0:
            return
        if order == "arrival":
            for leg in legs:
                leg.begin(page_limit, arrived.put_nowait)
            active = len(legs)
            while active:
                leg = await arrived.get()
                leg.take_page()
                while leg.buffered:
                    yield leg.pop()
                    taken += 1
                    if taken == limit:
                        return
                leg.want()
                if leg.finished:
                    active -= 1
        elif order == "sequential":
            wave, started = 1, 0
            for i, leg in enumerate(legs):
                if i >= started:
                    for later in legs[i : i + wave]:
                        later.begin(page_limit, _ignore)
                    started, wave = i + wave, wave * 2
                while await leg.ready():
                    yield leg.pop()
                    taken += 1
                    if taken == limit:
                        return
        else:
            if sort_key is None:
                raise ConfigurationError("a sorted fan-out needs the sort key to merge on")
            for leg in legs:
                leg.begin(page_limit, _ignore)
            wrap: Callable[[Any], Any] = _Descending if descending else _same
            heap: list[tuple[Any, int]] = []
            for i, leg in enumerate(legs):
                if await leg.ready():
                    heap.append((wrap(leg.peek()[sort_key]), i))
            heapq.heapify(heap)
            while heap:
                i = heap[0][1]
                leg = legs[i]
                yield leg.pop()
                taken += 1
                if taken == limit:
                    return
                if await leg.ready():
                    heapq.heapreplace(heap, (wrap(leg.peek()[sort_key]), i))
                else:
                    heapq.heappop(heap)
    finally:
        for leg in legs:
            await leg.stop()


def _ignore(leg: Leg) -> None:
    return None


def _same(value: Any) -> Any:
    return value


def check_states(state: Any, legs: int) -> list[LegState]:
    """The leg positions inside a fan-out cursor, or ``InvalidCursor``."""
    if not isinstance(state, list) or len(state) != legs:
        raise InvalidCursor("cursor does not belong to this fan-out")
    for position in state:
        if position is not None and position is not False:
            check_key_shape(position)
    return state


@dataclass(slots=True)
class FanOutPlan:
    """The listings of one fan-out and what its items need: the attributes that give a leg
    its position (the table's key, and the index's), the attribute to merge on, and the
    ones fetched only for those reasons, removed again before items are handed out."""

    requests: list[dict[str, Any]]
    key_names: Sequence[str]
    sort_key: str | None = None
    strip: Sequence[str] = ()
    descending: bool = False
    convert: Callable[[Item], Item] | None = None
    """Applied to each item handed out: legs decode numbers exactly, so that positions and
    the merge stay exact, and ``convert`` gives the caller the client's number mode."""

    def key_of(self, item: Item) -> WireKey:
        """The position of ``item`` in its listing, as an ExclusiveStartKey."""
        return {name: encode_value(item[name], name) for name in self.key_names}

    def shown(self, item: Item) -> Item:
        """``item`` without the attributes fetched only for the fan-out's own use."""
        if self.strip:
            item = {name: value for name, value in item.items() if name not in self.strip}
        return item if self.convert is None else self.convert(item)

    def run(
        self, legs: Sequence[Leg], *, merge: bool, ordered: bool, limit: int | None
    ) -> AsyncGenerator[Item, None]:
        """The items of ``legs`` (a subset of the plan's, in plan order) in the order asked."""
        if ordered:
            return fan_out(legs[::-1] if self.descending else legs, "sequential", limit=limit)
        if not merge:
            return fan_out(legs, "arrival", limit=limit)
        if self.sort_key is None:  # no sort key: one item per partition, in partition order
            return fan_out(legs, "sequential", limit=limit)
        return fan_out(
            legs, "sorted", limit=limit, sort_key=self.sort_key, descending=self.descending
        )
