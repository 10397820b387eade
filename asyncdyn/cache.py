"""``ItemCache``: a read-through cache of whole items, in front of eventually consistent reads.

DAX's role without DAX (which has no async Python client): ``Client(cache=ItemCache(...))``
or ``db.table("T", cache=...)`` serves ``get`` and ``batch_get`` (and so an entity
repository's) from memory while an entry is younger than ``ttl``; the ``max_items``
entries used least recently are evicted first.

What it keeps and when it serves:

- Only what a full-item read returns: a read with ``attributes`` neither uses nor fills the
  cache (a projected item is not the item; projecting a cached one would need DynamoDB's
  rules for nested paths and missing attributes).
- "No such item" too (a *negative* entry, with the same ``ttl``), as DAX does: a service
  asking again and again for a key that does not exist is the case a cache saves most on.
  ``negative=False`` turns that off.
- ``consistent=True`` reads always go to DynamoDB, and refresh the entry with what they read.
- Concurrent ``get`` calls missing one key share one read of it (those coming after a write
  of the key began send their own).
- Entries are keyed by table and key *identity* (``batch.key_identity``), so ``{"id": 1}``
  and ``{"id": 1.0}`` are one entry, as they are one item.

What keeps it true:

- Every write made through the client (put, update, delete, conditional ones, the writer,
  ``batch_write``, transactions) drops the entries of the keys it writes, before sending
  and again once it is over, answered or not: a write whose answer was lost, cancelled
  half-way or failed may still have been applied.
- A read that started before an invalidation never fills the cache afterwards: each read
  takes a *generation* before it is sent, and an invalidation later than it makes the fill
  a no-op. Otherwise a read answered before a write but finishing after it would put the
  old value back for a whole ``ttl``.
- Writes made by other processes reach it through their table's stream:
  ``await cache.follow(db.stream("T", start="latest"))``, or ``invalidate_from`` per record.
  Until a record arrives (about a second), a read here may return what another process
  already replaced: that is what ``ttl`` bounds.

Query and scan results are never cached: a cached query result cannot be kept true by
invalidating keys (a new item may join it), which is why DAX's query cache simply ignores
writes until its TTL passes. Use ``get``/``batch_get`` for the hot keys, or read with
``consistent=True`` when a result must be fresh.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from .batch import Identity, _Get, key_identity
from .errors import ConfigurationError, InvalidItem
from .marshal import WireItem, encode_key
from .stats import CacheCounters

__all__ = ["ItemCache", "copy_item"]

Item = dict[str, Any]
_Entry = tuple[float, Item | None]  # (expires at, the item or None for "absent")
_CacheKey = tuple[str, Identity]
# What a read in flight gives the callers waiting for it when it did not get an answer.
_FAILED: Any = object()


class _Flight:
    """A full-item read in flight after a miss: its answer, its generation, its followers."""

    __slots__ = ("answer", "followers", "token")

    def __init__(self, token: int) -> None:
        self.answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.token = token
        self.followers = 0


class _Record(Protocol):
    """What the invalidator needs of a stream record (``streams.Record`` is one)."""

    @property
    def keys(self) -> dict[str, Any]: ...


class _RecordSource(Protocol):
    """What ``follow`` needs of a stream (``streams.Stream`` is one)."""

    @property
    def table_name(self) -> str: ...

    def records(self) -> Any: ...


def copy_item(value: Any) -> Any:
    """A copy of a decoded item deep enough that the caller's changes never reach the cache:
    containers are rebuilt, scalars (str, int, Decimal, bytes, bool...) are immutable and
    shared. A tenth of ``copy.deepcopy``'s time for a flat item."""
    cls = value.__class__
    if cls is dict:
        out = value.copy()
        for name, inner in out.items():
            kind = inner.__class__
            if kind is dict or kind is list or kind is set or kind is bytearray:
                out[name] = copy_item(inner)
        return out
    if cls is list:
        return [copy_item(inner) for inner in value]
    if cls is set:
        return set(value)  # members are hashable, so immutable: str, number or bytes
    if cls is bytearray:
        return bytearray(value)
    return value


def key_names(wire: Mapping[str, Any]) -> tuple[str, ...]:
    """The order of a key's attributes in a cache identity: sorted, so that a key read
    without the table's schema and one written with it meet on one entry."""
    return tuple(sorted(wire))


class ItemCache:
    """An LRU of whole items with a time to live, shared by the reads of a client or table.

    Args:
        max_items: entries kept at most (items and "absent" markers); the least recently
            used go first.
        ttl: seconds an entry is served after it was filled.
        negative: also remember that a key has no item (with the same ``ttl``).
        clock: a monotonic clock in seconds (tests pass a fake one).

    Use it as ``Client(..., cache=ItemCache(max_items=100_000, ttl=60.0))`` or, for one table,
    ``db.table("T", cache=ItemCache(...))``. One cache may serve several tables (entries are
    keyed by table name), but every client reading through it should use the same endpoint
    and ``numbers=`` mode: items are kept decoded.
    """

    __slots__ = (
        "_clock",
        "_entries",
        "_flights",
        "_floor",
        "_generation",
        "_invalidated",
        "counters",
        "max_items",
        "negative",
        "ttl",
    )

    def __init__(
        self,
        max_items: int = 100_000,
        ttl: float = 60.0,
        *,
        negative: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
            raise ConfigurationError(f"max_items must be a positive int, not {max_items!r}")
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl > 0:
            raise ConfigurationError(f"ttl must be a positive number of seconds, not {ttl!r}")
        self.max_items = max_items
        self.ttl = float(ttl)
        self.negative = negative
        self._clock = clock
        self._entries: OrderedDict[_CacheKey, _Entry] = OrderedDict()
        self.counters = CacheCounters()
        # The generation: raised by every invalidation. A read takes it before sending; a
        # key invalidated at a later generation refuses that read's fill.
        self._generation = 0
        # The generation of each key's last invalidation, oldest first, bounded: a key
        # pushed out raises ``_floor`` instead, and a read older than the floor fills
        # nothing (a few fills lost, never a stale one kept).
        self._invalidated: OrderedDict[_CacheKey, int] = OrderedDict()
        self._floor = 0
        # Full-item reads in flight after a miss, with their generation: a caller missing
        # the same key meanwhile waits for that answer instead of sending its own request.
        self._flights: dict[_CacheKey, _Flight] = {}

    def __repr__(self) -> str:
        return f"ItemCache(max_items={self.max_items}, ttl={self.ttl})"

    def __len__(self) -> int:
        return len(self._entries)

    def __bool__(self) -> bool:  # an empty cache is still a cache (``cache or default``)
        return True

    # -- reads -----------------------------------------------------------------------------

    def lookup(self, table: str, identity: Identity) -> tuple[bool, Item | None]:
        """``(True, a copy of the item or None for "absent")`` when the cache holds the key
        and its entry is still live; ``(False, None)`` otherwise. Counts a hit or a miss."""
        key = (table, identity)
        entry = self._entries.get(key)
        if entry is not None:
            if entry[0] > self._clock():
                self._entries.move_to_end(key)
                self.counters.hits += 1
                item = entry[1]
                return True, None if item is None else copy_item(item)
            del self._entries[key]
        self.counters.misses += 1
        return False, None

    def token(self) -> int:
        """The generation to give back to ``fill``: take it before the read is sent."""
        return self._generation

    def fill(self, table: str, identity: Identity, item: Item | None, token: int) -> None:
        """Remember what a read taken at generation ``token`` found (``item`` is copied);
        nothing when the key was invalidated since (the answer may predate that write)."""
        if item is None and not self.negative:
            return
        key = (table, identity)
        if self._stale(key, token):
            return
        entries = self._entries
        entries[key] = (self._clock() + self.ttl, None if item is None else copy_item(item))
        entries.move_to_end(key)
        if len(entries) > self.max_items:
            entries.popitem(last=False)
            self.counters.evictions += 1

    def _stale(self, key: _CacheKey, token: int) -> bool:
        """Whether ``key`` was invalidated after a read that took generation ``token``."""
        return token < self._floor or self._invalidated.get(key, -1) > token

    async def read(
        self,
        table: str,
        identity: Identity,
        fetch: Callable[[], Awaitable[Item | None]],
        *,
        consistent: bool,
    ) -> Item | None:
        """A full-item read of one key through the cache: a live entry answers it (unless
        ``consistent``); else it joins a read of the key already in flight, when no write
        of the key began since that read was sent; else it calls ``fetch`` and remembers
        the answer, unless a write of the key began meanwhile."""
        key = (table, identity)
        if not consistent:
            hit, item = self.lookup(table, identity)
            if hit:
                return item
            flight = self._flights.get(key)
            if flight is not None and not self._stale(key, flight.token):
                flight.followers += 1
                # Shielded: this caller's cancellation must not cancel the others' read.
                item = await asyncio.shield(flight.answer)
                if item is not _FAILED:
                    return None if item is None else copy_item(item)
                # That read failed (its own caller's error, or it was cancelled): this
                # caller tries on its own below.
        token = self._generation
        own: _Flight | None = None
        if not consistent and key not in self._flights:
            own = self._flights[key] = _Flight(token)
        item = _FAILED
        try:
            item = await fetch()
        finally:
            if own is not None:
                del self._flights[key]
                # Followers copy from a copy of their own: this caller may change its item
                # before they run.
                if own.followers and item is not None and item is not _FAILED:
                    own.answer.set_result(copy_item(item))
                else:
                    own.answer.set_result(item)
        self.fill(table, identity, item, token)
        return item

    def serve(
        self, table: str, entries: Sequence[_Get], *, consistent: bool
    ) -> tuple[list[_Get], int]:
        """Answer the entries of a batch read that the cache holds (their ``item`` is set);
        returns the others, to fetch, and the generation to ``fill_entries`` them with."""
        token = self._generation
        if consistent:
            return list(entries), token
        misses: list[_Get] = []
        for entry in entries:
            hit, item = self.lookup(table, entry.identity)
            if hit:
                entry.item = item
            else:
                misses.append(entry)
        return misses, token

    def fill_entries(
        self, table: str, fetched: Iterable[_Get], token: int, left: Iterable[_Get]
    ) -> None:
        """Fill from the entries of a batch read, except those DynamoDB never answered."""
        unanswered = {id(entry) for entry in left}
        for entry in fetched:
            if id(entry) not in unanswered:
                self.fill(table, entry.identity, entry.item, token)

    # -- invalidation ----------------------------------------------------------------------

    def invalidate_identity(self, table: str, identity: Identity) -> None:
        """Drop the entry of one key (by identity) and refuse fills by reads begun before."""
        key = (table, identity)
        self._generation += 1
        invalidated = self._invalidated
        invalidated[key] = self._generation
        invalidated.move_to_end(key)
        if len(invalidated) > self.max_items:
            _, generation = invalidated.popitem(last=False)
            self._floor = max(self._floor, generation)
        self._entries.pop(key, None)
        self.counters.invalidations += 1

    def invalidate(self, table: str, key: Mapping[str, Any]) -> None:
        """Drop the entry of ``key`` (exactly the key attributes) of ``table``: after a
        write this cache did not see. Raises ``InvalidItem`` for a key that is not one."""
        wire = encode_key(key)
        try:
            identity = key_identity(wire, key_names(wire))
        except ValueError as exc:
            raise InvalidItem(f"{exc} (a key of table {table!r})") from None
        self.invalidate_identity(table, identity)

    def invalidate_table(self, table: str) -> None:
        """Drop every entry of ``table`` (and refuse every fill by a read begun before)."""
        self._generation += 1
        self._floor = self._generation
        for key in [key for key in self._entries if key[0] == table]:
            del self._entries[key]
        self.counters.invalidations += 1

    def clear(self) -> None:
        """Drop every entry of every table (and refuse every fill by a read begun before)."""
        self._generation += 1
        self._floor = self._generation
        self._entries.clear()
        self._invalidated.clear()
        self.counters.invalidations += 1

    def invalidate_from(self, record: _Record, *, table: str) -> None:
        """Drop the entry of the item a stream ``record`` of ``table`` changed."""
        self.invalidate(table, record.keys)

    async def follow(self, stream: _RecordSource) -> None:
        """Invalidate the key of every record of ``stream`` (``db.stream("T",
        start="latest")``), until cancelled or the stream ends: how writes made by other
        processes reach this cache. Run it as a task beside the service::

            follower = asyncio.create_task(cache.follow(db.stream("Orders", start="latest")))
        """
        table = table_of(stream.table_name)
        async with stream.records() as records:
            async for record in records:
                self.invalidate_from(record, table=table)


def table_of(name_or_arn: str) -> str:
    """The table of a stream given by table name or by stream ARN
    (``arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>``)."""
    if name_or_arn.startswith("arn:") and "/stream/" in name_or_arn:
        return name_or_arn.split(":table/", 1)[-1].split("/stream/", 1)[0]
    return name_or_arn


class WriteGuard:
    """Invalidates the keys of one write before it is sent and again once it is over (a
    lost answer, a failure or a cancellation may still have been applied). ``keys`` are
    (table, identity) pairs; a ``None`` cache makes it a no-op."""

    __slots__ = ("_keys",)

    def __init__(self, keys: list[tuple[ItemCache, str, Identity]]) -> None:
        self._keys = keys
        self._drop()

    def _drop(self) -> None:
        for cache, table, identity in self._keys:
            cache.invalidate_identity(table, identity)

    def __enter__(self) -> WriteGuard:
        return self

    def __exit__(self, *exc: object) -> None:
        self._drop()


def wire_identity(wire: WireItem, names: Sequence[str]) -> Identity:
    """The cache identity of the key ``names`` of a wire item or key."""
    return key_identity(wire, sorted(names))
