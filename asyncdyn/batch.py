"""The batch engine: BatchGetItem and BatchWriteItem pipelines and the buffered writer.

A batch call turns any number of keys or write requests into requests DynamoDB accepts
(100 keys; 25 writes and 16 MB), sends them concurrently through the client's in-flight
limit, and *settles* each chunk: whatever DynamoDB leaves unprocessed, or refuses with a
retryable error, goes again after a backoff under the operation's deadline, and tells the
table's ``AdaptiveRate`` to slow down. Nothing is dropped and nothing is invented: every key
is answered or reported unprocessed, every write request is applied or reported.

Keys are matched by *identity*: the key attributes' wire values with numbers in canonical
form, since DynamoDB answers ``{"N": "1"}`` for a key asked as ``{"N": "1.0"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections import deque
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from types import TracebackType
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

import orjson

from .errors import (
    AsyncDynError,
    ConfigurationError,
    InvalidItem,
    OffloadError,
    OutcomeUnknown,
    RetriesExhausted,
    Throttled,
    UnprocessedItemsError,
)
from .expressions import Attr, Placeholders, projection_with
from .marshal import Decoder, WireItem, encode_item, encode_key
from .retry import AdaptiveRate, RateLimiter, RetryBudget, RetryPolicy
from .transport import Dispatcher

__all__ = [
    "MAX_GET_KEYS",
    "MAX_REQUEST_BYTES",
    "MAX_WRITE_REQUESTS",
    "BatchEngine",
    "Outcome",
    "BatchWriter",
    "Lane",
    "Rejected",
    "WriterStats",
    "key_identity",
]

MAX_GET_KEYS = 100
MAX_WRITE_REQUESTS = 25
MAX_REQUEST_BYTES = 16 * 1024 * 1024
# encode_key's limit on a key string (bytes; an ASCII string's length).
_MAX_KEY_STRING = 2048
# Room for the envelope around the write requests ({"RequestItems": {"<table>": [...]}}).
_ENVELOPE_BYTES = 64 * 1024

Identity = tuple[str, ...]


# normalize() rounds to its context's precision, and the default context keeps 28 digits
# where DynamoDB keeps 38: 10**28 + 1 and 10**28 + 2 would share an identity. This context
# never rounds and never clamps an exponent, so equal numbers (1, 1.0, 1E+0) share one
# form and distinct ones never do, whatever their digits or magnitude.
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)


def canonical_number(text: str) -> str:
    """The one text of a DynamoDB number that equal numbers share (``"1.0"`` -> ``"1"``).

    Every path that asks "is this the same key?" (batch reads and writes, the writer,
    coalesced gets, transactions, the loader) goes through ``key_identity`` and so here.
    """
    number = Decimal(text)
    return "0" if number.is_zero() else str(number.normalize(_EXACT))


def _key_part(name: str, value: Mapping[str, Any]) -> str:
    # One key attribute has one type for the whole table, so the bare string identifies an
    # S value; N and B get a tag only so that a mistyped key cannot pass for another.
    if len(value) == 1:
        raw = value.get("S")
        if raw.__class__ is str and raw:
            return raw
        raw = value.get("N")
        if raw.__class__ is str:
            return "\x00N" + canonical_number(raw)
        raw = value.get("B")
        if raw.__class__ is str and raw:
            return "\x00B" + raw
    raise ValueError(f"key attribute {name!r} must be a non-empty string, number or binary")


def key_identity(wire: Mapping[str, Any], names: Sequence[str]) -> Identity:
    """A hashable identity of the key ``names`` of a wire item or key.

    Raises ``KeyError`` when a key attribute is missing and ``ValueError`` when it is not a
    single non-empty S, N or B value.
    """
    if len(names) == 2:
        first, second = names
        a = wire[first]
        b = wire[second]
        # Two string attributes, the usual key: inlined, as every item of a batch answer
        # comes through here (a fifth of the cost of matching it to its key).
        if len(a) == 1 and len(b) == 1:
            x = a.get("S")
            y = b.get("S")
            if x.__class__ is str and y.__class__ is str and x and y:
                return (x, y)
        return (_key_part(first, a), _key_part(second, b))
    return tuple([_key_part(name, wire[name]) for name in names])


def _error_at(exc: InvalidItem, where: str) -> InvalidItem:
    """``exc`` again, its path prefixed with the position of the bad input (``puts[17]``)."""
    path = f"{where}.{exc.path}" if exc.path and not exc.path.startswith("[") else where + exc.path
    error = InvalidItem(exc.reason, path)
    error.__cause__ = exc.__cause__
    return error


class Prerequisite(Protocol):
    """Work a write request waits for before it may be sent: the S3 uploads of its
    offloaded attributes (``asyncdyn.offload.Uploads``). If ``run`` fails, the request is
    reported unwritten with that error and never sent."""

    async def run(self) -> None: ...

    def release(self) -> None: ...


# A table's way of turning an item into what is written (compressed, offloaded attributes
# replaced by references: ``asyncdyn.large``), and what must be done before sending it.
Prepare = Callable[[Mapping[str, Any]], tuple[Mapping[str, Any], Prerequisite | None]]


class Lane:
    """One table's side of a batch call: its name, key names, extra request fields, limits.

    ``adaptive`` is the table's shared ``AdaptiveRate`` (per client, table and direction);
    ``limits`` are the rate limiters a request waits on (the adaptive one and a fixed cap).
    """

    __slots__ = (
        "adaptive",
        "fields",
        "invalidate",
        "key_names",
        "limits",
        "name",
        "prepare",
        "strip",
    )

    def __init__(
        self,
        name: str,
        key_names: Sequence[str],
        *,
        adaptive: AdaptiveRate | None = None,
        rate: float | None = None,
        fields: Mapping[str, Any] | None = None,
        strip: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.key_names = tuple(key_names)
        self.adaptive = adaptive
        limits: list[RateLimiter] = [] if adaptive is None else [adaptive]
        if rate is not None:
            limits.append(RateLimiter(rate))
        self.limits = tuple(limits)
        self.fields = dict(fields or {})
        self.strip = tuple(strip)
        # Writes only: drops a written key from the table's item cache (``None``: none).
        self.invalidate: Callable[[Identity], None] | None = None
        # Writes only: the table's large attributes (``None``: items go as they are).
        self.prepare: Prepare | None = None

    async def acquire(self, n: int, budget: RetryBudget) -> float:
        """Wait for the rate limits; returns the time the request was scheduled, to give
        back to ``feedback`` (taken before waiting: the rate it waited under is the one its
        answer speaks about). A wait that would outlast ``budget``'s deadline raises
        ``RetriesExhausted`` instead."""
        stamp = 0.0 if self.adaptive is None else self.adaptive.stamp()
        for limit in self.limits:
            await limit.acquire(n, budget)
        return stamp

    def feedback(self, sent_at: float, sent: int, processed: int, throttled: bool) -> None:
        if self.adaptive is not None:
            self.adaptive.feedback(sent_at, sent, processed, throttled=throttled)


class _Leftover(AsyncDynError):
    """DynamoDB answered but left part of a chunk unprocessed: retried like throttling."""

    retryable = True


@dataclass(slots=True)
class WriterStats:
    """What a batch writer did: requests ``written``; requests sent again after throttling
    or being left unprocessed (``retried``); throttling answers (``throttled``); requests
    not written, those its ``UnprocessedItemsError`` lists (``unprocessed``: given up on,
    or left unsent by a cancellation); inputs refused before sending (``rejected``);
    requests replaced by a later one for the same key before they were written, or after
    they failed (``superseded``). Once closed, ``written + unprocessed + superseded`` is the
    number of requests accepted."""

    written: int = 0
    retried: int = 0
    throttled: int = 0
    unprocessed: int = 0
    rejected: int = 0
    superseded: int = 0


class Rejected(NamedTuple):
    """An input a writer refused: its position among the writer's inputs, what was given,
    and why."""

    position: int
    value: Mapping[str, Any]
    error: InvalidItem


@dataclass(slots=True, eq=False)
class _Get:
    """One distinct key of a batch read; ``item`` is filled in once DynamoDB answers."""

    lane: Lane
    identity: Identity
    key: WireItem
    source: Mapping[str, Any]
    again: list[Mapping[str, Any]] | None = None  # the same key given again, if it was
    item: dict[str, Any] | None = None
    wire: WireItem | None = None  # kept only for a key asked more than once (one copy each)

    def copy(self, decode: Callable[[WireItem], dict[str, Any]]) -> dict[str, Any]:
        """Another decoded copy of the item (for a duplicate position)."""
        if self.wire is None:  # the duplicate came after the answer: copy the decoded item
            assert self.item is not None
            return copy.deepcopy(self.item)
        item = decode(self.wire)
        for attribute in self.lane.strip:
            item.pop(attribute, None)
        return item


@dataclass(slots=True, eq=False)
class _Write:
    """One write request, serialized once; ``source`` is the item or key as given."""

    lane: Lane
    identity: Identity
    request: orjson.Fragment
    size: int
    source: Mapping[str, Any]
    is_put: bool
    position: int = -1  # among a writer's inputs; -1 outside a writer
    seq: int = 0  # order of acceptance by a writer (a flush waits for those before it)
    maybe_applied: bool = False  # sent, and no answer came back: it may have been applied
    # Its S3 uploads, while they are not done: the request is not sent until then.
    prerequisite: Prerequisite | None = None


E = TypeVar("E", _Get, _Write)


def _unwrap(exc: BaseException) -> BaseException:
    """The first real error inside a task group's exception group."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


@dataclass(slots=True)
class Outcome(Generic[E]):
    """What a whole batch call could not do, and the error that stopped it."""

    leftovers: list[E] = field(default_factory=list)
    error: BaseException | None = None

    def fail(self, left: list[E], error: BaseException | None) -> None:
        self.leftovers.extend(left)
        if self.error is None:
            self.error = error


class _Chunk(Generic[E]):
    """The entries of one request grouped by table, and found again by the key of an answer."""

    __slots__ = ("index", "tables")

    def __init__(self, pending: list[E]) -> None:
        self.tables: dict[str, list[E]] = {}
        # Per table, not per (table, identity): no tuple to build per entry and per answer.
        self.index: dict[str, dict[Identity, E]] = {}
        for entry in pending:
            name = entry.lane.name
            same = self.tables.get(name)
            if same is None:
                self.tables[name] = same = []
                self.index[name] = {}
            same.append(entry)
            self.index[name][entry.identity] = entry

    def lane(self, table: str) -> Lane:
        return self.tables[table][0].lane

    def find(self, table: str, wire: Mapping[str, Any]) -> E | None:
        """The entry an answer's item or key of ``table`` stands for (``None``: not ours)."""
        return self.index[table].get(key_identity(wire, self.lane(table).key_names))


class BatchEngine:
    """Chunks, sends and settles batch requests for one client."""

    __slots__ = ("_adaptive", "_capacity", "_decode", "_dispatcher", "_rates")

    def __init__(
        self,
        dispatcher: Dispatcher,
        decoder: Decoder,
        *,
        consumed_capacity: str | None = None,
        adaptive: bool = True,
    ) -> None:
        self._dispatcher = dispatcher
        self._decode = decoder.item
        self._capacity = consumed_capacity
        self._adaptive = adaptive
        self._rates: dict[tuple[str, str], AdaptiveRate] = {}

    @property
    def policy(self) -> RetryPolicy:
        return self._dispatcher.retry

    def rate(self, table: str, direction: str) -> AdaptiveRate | None:
        """The adaptive rate of ``table`` for ``"read"`` or ``"write"``, shared by every call
        (``None`` when the client was made with ``adaptive_rate=False``)."""
        if not self._adaptive:
            return None
        rate = self._rates.get((table, direction))
        if rate is None:
            rate = self._rates[(table, direction)] = AdaptiveRate()
        return rate

    # -- settling one chunk ----------------------------------------------------------------

    async def _settle(
        self,
        chunk: list[E],
        budget: RetryBudget,
        send: Callable[[list[E], RetryBudget], Awaitable[list[E]]],
        stats: WriterStats | None = None,
    ) -> tuple[list[E], BaseException | None]:
        """Send ``chunk`` until all of it is done; returns what is still left when the
        budget runs out, with the last error. A non-retryable error is raised."""
        pending = chunk
        while True:
            counts: dict[Lane, int] = {}
            for entry in pending:
                counts[entry.lane] = counts.get(entry.lane, 0) + 1
            try:
                sent_at = {lane: await lane.acquire(n, budget) for lane, n in counts.items()}
            except RetriesExhausted as exc:  # the deadline leaves no room for the wait
                return pending, exc.last_error
            error: AsyncDynError
            try:
                left = await send(pending, budget)
            except AsyncDynError as exc:
                if not exc.retryable:
                    raise
                if isinstance(exc, Throttled):  # a 5xx or a lost answer says nothing of rate
                    for lane, n in counts.items():
                        lane.feedback(sent_at[lane], n, 0, True)
                    if stats is not None:
                        stats.throttled += 1
                error, left = exc, pending
            else:
                left_counts: dict[Lane, int] = {}
                for entry in left:
                    left_counts[entry.lane] = left_counts.get(entry.lane, 0) + 1
                for lane, n in counts.items():
                    lane.feedback(sent_at[lane], n, n - left_counts.get(lane, 0), False)
                if not left:
                    return [], None
                if len(left) < len(pending):
                    budget.progressed()
                error = _Leftover(f"DynamoDB left {len(left)} of {len(pending)} unprocessed")
            try:
                await self._dispatcher.backoff(error, budget)
            except RetriesExhausted as exc:
                return left, exc.last_error
            if stats is not None:
                stats.retried += len(left)
            pending = left

    def _payload(self, request_items: dict[str, Any]) -> dict[str, Any]:
        payload: dict[str, Any] = {"RequestItems": request_items}
        if self._capacity is not None:
            payload["ReturnConsumedCapacity"] = self._capacity
        return payload

    # -- reads -----------------------------------------------------------------------------

    async def _send_gets(self, pending: list[_Get], budget: RetryBudget) -> list[_Get]:
        chunk = _Chunk(pending)
        request_items = {
            name: {"Keys": [entry.key for entry in entries], **entries[0].lane.fields}
            for name, entries in chunk.tables.items()
        }
        decode = self._decode
        index = chunk.index

        def settle(data: dict[str, Any]) -> list[_Get]:
            # Run by the dispatcher as it decodes the answer, so the wire form dies with it:
            # a big batch kept in both forms until the end costs the garbage collector dearly.
            for name, items in (data.get("Responses") or {}).items():
                lane = chunk.lane(name)
                names = lane.key_names
                by_key = index[name]
                for item in items:
                    found = by_key.get(key_identity(item, names))
                    if found is not None:
                        found.item = decoded = decode(item)
                        for attribute in lane.strip:
                            decoded.pop(attribute, None)
                        if found.again:
                            found.wire = item
            left: list[_Get] = []
            for name, unprocessed in (data.get("UnprocessedKeys") or {}).items():
                for key in unprocessed.get("Keys") or ():
                    missed = chunk.find(name, key)
                    if missed is not None and missed.item is None:
                        left.append(missed)
            return left

        return await self._dispatcher.attempt_read(
            "BatchGetItem", self._payload(request_items), budget, settle
        )

    async def gets(
        self, entries: Iterable[_Get], outcome: Outcome[_Get], *, window: int
    ) -> AsyncGenerator[list[_Get], None]:
        """Settled chunks of ``entries`` as they complete, at most ``window`` chunks ahead
        of the consumer. What cannot be fetched goes to ``outcome``; a non-retryable error
        is raised. Closing the iterator cancels every chunk still running."""
        queue: asyncio.Queue[list[_Get] | BaseException | None] = asyncio.Queue()
        slots = asyncio.Semaphore(window)
        root = self.policy.start()

        async def settle(chunk: list[_Get]) -> None:
            left, error = await self._settle(chunk, root.fork(), self._send_gets)
            if left:
                outcome.fail(left, error)
                done = set(map(id, left))
                chunk = [entry for entry in chunk if id(entry) not in done]
            queue.put_nowait(chunk)

        async def produce() -> None:
            try:
                async with asyncio.TaskGroup() as group:
                    chunk: list[_Get] = []
                    for entry in entries:
                        chunk.append(entry)
                        if len(chunk) == MAX_GET_KEYS:
                            await slots.acquire()
                            group.create_task(settle(chunk))
                            chunk = []
                    if chunk:
                        await slots.acquire()
                        group.create_task(settle(chunk))
            except Exception as exc:
                queue.put_nowait(_unwrap(exc))
            else:
                queue.put_nowait(None)

        producer = asyncio.create_task(produce())
        try:
            while True:
                got = await queue.get()
                if got is None:
                    return
                if isinstance(got, BaseException):
                    raise got
                yield got
                slots.release()
        finally:
            producer.cancel()
            await asyncio.wait([producer])

    # -- writes ----------------------------------------------------------------------------

    async def _send_writes(self, pending: list[_Write], budget: RetryBudget) -> list[_Write]:
        chunk = _Chunk(pending)
        request_items = {
            name: [entry.request for entry in entries] for name, entries in chunk.tables.items()
        }
        data = await self._dispatcher.attempt(
            "BatchWriteItem", self._payload(request_items), budget
        )
        left: list[_Write] = []
        for name, requests in (data.get("UnprocessedItems") or {}).items():
            for request in requests:
                put = request.get("PutRequest")
                wire = put["Item"] if put is not None else request["DeleteRequest"]["Key"]
                unwritten = chunk.find(name, wire)
                if unwritten is not None:
                    left.append(unwritten)
        return left


async def fetch_all(engine: BatchEngine, entries: Iterable[_Get], *, window: int) -> Outcome[_Get]:
    """Settle every entry (each keeps its item); what could not be fetched is returned."""
    outcome: Outcome[_Get] = Outcome()
    if isinstance(entries, list) and len(entries) <= MAX_GET_KEYS:
        # One request: settled right here, without the producer task, queue and task group
        # that keep many chunks going (3% of the instructions of a 100-key batch_get).
        if entries:
            root = engine.policy.start()
            left, error = await engine._settle(entries, root.fork(), engine._send_gets)
            if left:
                outcome.fail(left, error)
        return outcome
    chunks = engine.gets(entries, outcome, window=window)
    async with contextlib.aclosing(chunks):
        async for _ in chunks:
            pass
    return outcome


# ------------------------------------------------------------------------------ read entries


def read_lane(
    engine: BatchEngine,
    table: str,
    key_names: Sequence[str],
    *,
    consistent: bool,
    attributes: Iterable[str | Attr | tuple[str | int, ...]] | None,
    rate: float | None,
) -> Lane:
    """The lane of a batch read: projection (with the key attributes alignment needs)."""
    fields: dict[str, Any] = {}
    if consistent:
        fields["ConsistentRead"] = True
    projection, strip = projection_with(attributes, key_names)
    if projection is not None:
        ph = Placeholders()
        fields["ProjectionExpression"] = ph.projection(projection)
        ph.apply(fields)
    return Lane(
        table,
        key_names,
        adaptive=engine.rate(table, "read"),
        rate=rate,
        fields=fields,
        strip=strip,
    )


def _key_entry(
    lane: Lane, key: Mapping[str, Any], where: str, index: int = -1
) -> tuple[Identity, WireItem]:
    """Encode and identify one key; a bad one raises ``InvalidItem`` at ``where`` (with
    ``[index]`` appended when given: formatted only then, not for every good key)."""
    names = lane.key_names
    if len(names) == 2 and key.__class__ is dict and len(key) == 2:
        # The usual key, two short ASCII strings, encoded and identified in one step: what
        # encode_key and key_identity would do for it, in a quarter of their time. Anything
        # else (and every error) takes the general path below.
        first, second = names
        x = key.get(first)
        y = key.get(second)
        if (
            x.__class__ is str
            and y.__class__ is str
            and first.__class__ is str
            and second.__class__ is str
            and first
            and second
            and 0 < len(x) <= _MAX_KEY_STRING
            and 0 < len(y) <= _MAX_KEY_STRING
            and x.isascii()
            and y.isascii()
        ):
            # The wire key keeps the caller's attribute order, as encode_key does.
            if next(iter(key)) == first:
                return (x, y), {first: {"S": x}, second: {"S": y}}
            return (x, y), {second: {"S": y}, first: {"S": x}}
    try:
        wire = encode_key(key)
        if len(wire) != len(names):
            raise InvalidItem(
                f"a key of table {lane.name!r} has exactly the attributes {', '.join(names)}"
            )
        return key_identity(wire, names), wire
    except InvalidItem as exc:
        raise _error_at(exc, _at(where, index)) from None
    except KeyError as exc:
        raise InvalidItem(
            f"missing key attribute {exc.args[0]!r} (keys of {lane.name!r} are {', '.join(names)})",
            _at(where, index),
        ) from None


def _at(where: str, index: int) -> str:
    return where if index < 0 else f"{where}[{index}]"


def read_entries(
    lane: Lane, keys: Iterable[Mapping[str, Any]], where: str = "keys"
) -> tuple[list[_Get], list[_Get]]:
    """Encode ``keys``: (one entry per distinct key, the entry of each input position).

    Raises ``InvalidItem`` naming the position of the first bad key, before anything is sent.
    """
    distinct: dict[Identity, _Get] = {}
    positions: list[_Get] = []
    for i, key in enumerate(keys):
        identity, wire = _key_entry(lane, key, where, i)
        entry = distinct.get(identity)
        if entry is None:
            entry = distinct[identity] = _Get(lane, identity, wire, key)
        elif entry.again is None:
            entry.again = [key]
        else:
            entry.again.append(key)
        positions.append(entry)
    return list(distinct.values()), positions


def stream_entries(lane: Lane, keys: Iterable[Mapping[str, Any]]) -> Iterator[_Get]:
    """Encode ``keys`` lazily, merging duplicates only within each chunk of 100 distinct
    keys (DynamoDB refuses a duplicate in one request); memory stays one chunk deep.

    A bad key raises ``InvalidItem`` naming its position when the stream reaches it.
    """
    block: dict[Identity, _Get] = {}
    for i, key in enumerate(keys):
        identity, wire = _key_entry(lane, key, "keys", i)
        entry = block.get(identity)
        if entry is not None:
            if entry.again is None:
                entry.again = [key]
            else:
                entry.again.append(key)
            continue
        entry = block[identity] = _Get(lane, identity, wire, key)
        if len(block) == MAX_GET_KEYS:
            block = {}  # that chunk may be on its way: later duplicates start afresh
        yield entry


def key_names_of(keys: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The key attribute names of a batch read, taken from its first key (each key holds
    exactly the table's key attributes), in a stable order."""
    if not keys:
        return ()
    first = keys[0]
    if not isinstance(first, Mapping):
        return ()  # encoding it reports the problem with its position
    return tuple(sorted(first))


# ----------------------------------------------------------------------------- write entries


def write_lane(
    engine: BatchEngine, table: str, key_names: Sequence[str], *, rate: float | None
) -> Lane:
    return Lane(table, key_names, adaptive=engine.rate(table, "write"), rate=rate)


def put_entry(lane: Lane, item: Mapping[str, Any], where: str) -> _Write:
    """Encode and check one put; ``InvalidItem`` names ``where`` (``puts[3]``). A table
    with large attributes prepares the item first: compressed, and its offloaded attributes
    replaced by references to objects that ``prerequisite`` uploads."""
    stored: Mapping[str, Any] = item
    prerequisite: Prerequisite | None = None
    try:
        if lane.prepare is not None:
            stored, prerequisite = lane.prepare(item)
        wire = encode_item(stored)
        identity = key_identity(wire, lane.key_names)
    except InvalidItem as exc:
        raise _error_at(exc, where) from None
    except KeyError as exc:
        raise InvalidItem(
            f"the item has no key attribute {exc.args[0]!r} (keys of {lane.name!r} are "
            f"{', '.join(lane.key_names)})",
            where,
        ) from None
    except ValueError as exc:
        raise InvalidItem(str(exc), where) from None
    raw = orjson.dumps({"PutRequest": {"Item": wire}})
    entry = _Write(lane, identity, orjson.Fragment(raw), len(raw), item, True)
    entry.prerequisite = prerequisite
    return entry


def delete_entry(lane: Lane, key: Mapping[str, Any], where: str) -> _Write:
    """Encode and check one delete; ``InvalidItem`` names ``where`` (``deletes[3]``)."""
    identity, wire = _key_entry(lane, key, where)
    raw = orjson.dumps({"DeleteRequest": {"Key": wire}})
    return _Write(lane, identity, orjson.Fragment(raw), len(raw), key, False)


_NONE = float("inf")  # the sequence number of the oldest unsettled request when there is none
# What a request's own uploads raise (``OffloadError``): named as the cause only when no
# DynamoDB error stopped a request too.
_PREREQUISITE_ERRORS: tuple[type[BaseException], ...] = (OffloadError,)


class BatchWriter:
    """Buffers puts and deletes for one table and writes them in background batches.

    Get one from ``Table.writer()`` and use it as an async context manager::

        async with table.writer() as w:
            for item in items:
                await w.put(item)          # waits when the buffer is full (backpressure)
        print(w.stats)

    Full chunks of 25 go out in the background, at most ``max_in_flight`` at a time; the
    rest goes when the block ends or on ``flush()``. Many tasks may share one writer, and
    flush it concurrently. Two requests for the same key: the later one wins, always, even
    when the earlier one is already in flight (the later one waits for it) or already
    failed (it is then no longer reported). Every accepted request is written, even when
    the block raises; those that cannot be written after every retry raise
    ``UnprocessedItemsError`` (chained to the block's exception, if any). A cancellation
    (or ``KeyboardInterrupt``) is never turned into another error: cancelled in the body,
    the block still writes what it accepted and then the cancellation propagates; cancelled
    while it writes, it stops at once. Either way ``unwritten`` reports what was accepted but
    not written. A bad item raises ``InvalidItem`` from ``put`` — or, with
    ``skip_invalid=True``, is only recorded — and never stops the others; either way it is
    listed in ``rejected``.
    """

    def __init__(
        self,
        engine: BatchEngine,
        lane: Lane | Callable[[], Awaitable[Lane]],
        *,
        max_in_flight: int,
        buffer: int | None,
        skip_invalid: bool = False,
    ) -> None:
        if max_in_flight < 1:
            raise ConfigurationError("max_in_flight must be at least 1")
        if buffer is not None and buffer < MAX_WRITE_REQUESTS:
            raise ConfigurationError(f"buffer must hold at least {MAX_WRITE_REQUESTS} requests")
        self._engine = engine
        self._lane_source = lane
        self._lane: Lane | None = lane if isinstance(lane, Lane) else None
        self._max_in_flight = max_in_flight
        self._limit = buffer
        self.skip_invalid = skip_invalid
        self.stats = WriterStats()
        self.rejected: list[Rejected] = []
        # What the writer accepted and could not write, once it is closed: the report it
        # raised, or, when it was cancelled, the one it could not raise. ``None`` otherwise.
        self.unwritten: UnprocessedItemsError | None = None
        # Resumable loads need to know *which* inputs are done, not just how many: chunks
        # complete out of order. Called with input positions (as in ``Rejected.position``:
        # put/delete calls numbered from 0) once DynamoDB acknowledged them or a later request
        # for the same key replaced them (also one that had failed); never for a request that
        # failed and stays failed. Must not raise.
        self.on_acknowledged: Callable[[list[int]], None] | None = None
        # Requests accepted and not sent yet, in the order accepted (a replaced one leaves
        # and its replacement goes to the end), so the first is the oldest.
        self._buffer: dict[Identity, _Write] = {}
        self._in_flight: set[Identity] = set()
        self._in_flight_count = 0
        # The oldest sequence number of each chunk in flight (by the chunk's id).
        self._flying: dict[int, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiters: list[asyncio.Future[None]] = []
        # Requests given up on, with the error that stopped them; one per key at most, as a
        # later request for the key takes its place.
        self._failed: dict[Identity, tuple[_Write, BaseException | None]] = {}
        self._position = 0
        self._accepted = 0
        self._draining = 0  # flushes under way: partial chunks go out while there is one
        self._closed = False
        self._aborted = False
        # Requests in the buffer whose S3 uploads are not done (``_Write.prerequisite``):
        # queued, or running in ``_uploads``, at most ``max_in_flight`` at once. A request
        # keeps its place in the buffer meanwhile, so order, flushes and replacement by a
        # later request for its key work as for any other.
        self._unready = 0
        self._to_upload: deque[_Write] = deque()
        self._uploads: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> BatchWriter:
        await self._ready()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._finish(exc)

    async def _ready(self) -> Lane:
        if self._lane is None:
            assert not isinstance(self._lane_source, Lane)
            self._lane = await self._lane_source()
        return self._lane

    # -- input -----------------------------------------------------------------------------

    async def put(self, item: Mapping[str, Any]) -> None:
        """Queue a PutItem of ``item`` (replacing any earlier request for its key)."""
        await self._submit(put_entry, item)

    async def delete(self, key: Mapping[str, Any]) -> None:
        """Queue a DeleteItem of ``key`` (replacing any earlier request for it)."""
        await self._submit(delete_entry, key)

    async def _submit(
        self, encode: Callable[[Lane, Mapping[str, Any], str], _Write], value: Mapping[str, Any]
    ) -> None:
        if self._closed:
            raise RuntimeError("this writer is closed")
        lane = await self._ready()
        position = self._position
        self._position += 1
        try:
            entry = encode(lane, value, f"[{position}]")
        except InvalidItem as exc:
            self.stats.rejected += 1
            self.rejected.append(Rejected(position, value, exc))
            if self.skip_invalid:
                return
            raise
        entry.position = position
        await self._room()
        if self._closed:  # closed while this put waited for room: it was never accepted
            raise RuntimeError("this writer is closed")
        self._add(entry)

    async def _room(self) -> None:
        limit = self._limit
        # Requests waiting for their uploads hold their values (megabytes each): no more
        # of them than uploads can run at once, whatever the buffer's size.
        while (
            limit is not None and len(self._buffer) + self._in_flight_count >= limit
        ) or self._unready >= self._max_in_flight:
            self._pump()
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _add(self, entry: _Write) -> None:
        """Accept ``entry``: it replaces whatever earlier request for its key is waiting or
        has failed (one still in flight is replaced when it completes)."""
        self._accepted += 1
        entry.seq = self._accepted
        replaced = self._buffer.pop(entry.identity, None)
        if replaced is not None and replaced.prerequisite is not None:
            self._unready -= 1  # its upload, if running, ends unheeded
        if replaced is None:
            failed = self._failed.pop(entry.identity, None)
            if failed is not None:
                # Resending the failed one would undo this one: it is moot, not unwritten.
                replaced = failed[0]
                self.stats.unprocessed -= 1
        if replaced is not None:
            self.stats.superseded += 1
            if self.on_acknowledged is not None:
                self.on_acknowledged([replaced.position])
        self._buffer[entry.identity] = entry
        if entry.prerequisite is not None:
            self._unready += 1
            self._to_upload.append(entry)
            self._start_uploads()
        self._pump()

    # -- uploads (offloaded attributes) ----------------------------------------------------

    def _start_uploads(self) -> None:
        while self._to_upload and len(self._uploads) < self._max_in_flight and not self._aborted:
            entry = self._to_upload.popleft()
            if self._buffer.get(entry.identity) is not entry:
                continue  # replaced by a later request while it waited: never uploaded
            task = asyncio.get_running_loop().create_task(self._upload(entry))
            self._uploads.add(task)
            task.add_done_callback(self._uploads.discard)

    async def _upload(self, entry: _Write) -> None:
        """Upload ``entry``'s objects; then it may be sent. If S3 fails, the request is
        reported unwritten with the ``OffloadError`` (never sent, so never applied) and
        the others go on. Cancelled (an abort), it stays in the buffer, reported unsent."""
        prerequisite = entry.prerequisite
        assert prerequisite is not None
        error: Exception | None = None
        try:
            await prerequisite.run()
        except Exception as exc:
            error = exc
        live = self._buffer.get(entry.identity) is entry
        if live:
            self._unready -= 1
            if error is None:
                prerequisite.release()
                entry.prerequisite = None
            else:
                del self._buffer[entry.identity]
                self.stats.unprocessed += 1
                self._failed[entry.identity] = (entry, error)
        task = asyncio.current_task()
        if task is not None:
            self._uploads.discard(task)
        self._start_uploads()
        self._pump()
        self._wake()

    # -- sending ---------------------------------------------------------------------------

    def _take(self) -> list[_Write]:
        """The next chunk: up to 25 requests within 16 MB, none for a key already in flight.
        Only a full chunk unless a flush is under way; nothing once the writer was aborted."""
        ready = len(self._buffer) - self._unready
        if self._aborted or not ready or (not self._draining and ready < MAX_WRITE_REQUESTS):
            return []
        chunk: list[_Write] = []
        size = _ENVELOPE_BYTES
        full = False
        for identity, entry in self._buffer.items():
            if identity in self._in_flight or entry.prerequisite is not None:
                continue
            if size + entry.size > MAX_REQUEST_BYTES:
                full = True  # as full as 16 MB allows
                break
            chunk.append(entry)
            size += entry.size
            if len(chunk) == MAX_WRITE_REQUESTS:
                full = True
                break
        if not chunk or not (full or self._draining):
            return []
        for entry in chunk:
            del self._buffer[entry.identity]
            self._in_flight.add(entry.identity)
        self._in_flight_count += len(chunk)
        self._flying[id(chunk)] = chunk[0].seq  # taken in buffer order: the oldest first
        return chunk

    def _pump(self) -> None:
        while len(self._tasks) < self._max_in_flight:
            chunk = self._take()
            if not chunk:
                return
            task = asyncio.get_running_loop().create_task(self._send(chunk))
            self._tasks.add(task)
            task.add_done_callback(self._on_done(chunk))

    def _on_done(self, chunk: list[_Write]) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            if id(chunk) in self._flying:
                # Cancelled before its first step (asyncio.Runner cancels every task at
                # exit): ``_send`` never ran, nothing of it was sent; it is reported here.
                self._settled(chunk, chunk, None)

        return done

    async def _send(self, chunk: list[_Write]) -> None:
        # What no answer has settled yet: the whole chunk until the first answer, then what
        # each answer left unprocessed. The rest of the chunk is written.
        unsettled = chunk

        async def send(pending: list[_Write], budget: RetryBudget) -> list[_Write]:
            nonlocal unsettled
            unsettled = pending
            # An item cache drops each key before the request and again after it, whatever
            # became of it (a lost answer may have been applied).
            _invalidate(pending)
            try:
                left = await self._engine._send_writes(pending, budget)
            except BaseException as exc:
                _invalidate(pending)
                # No answer: the request may have been applied (a lost answer, or cancelled
                # on its way) unless the error says it was not (throttled, refused, never
                # left the client). Sticky: a later "unprocessed" cannot undo an earlier
                # attempt that may have gone through.
                if isinstance(exc, OutcomeUnknown) or getattr(exc, "maybe_applied", True):
                    for entry in pending:
                        entry.maybe_applied = True
                raise
            _invalidate(pending)
            unsettled = left
            return left

        error: BaseException | None = None
        try:
            _, error = await self._engine._settle(
                chunk, self._engine.policy.start(), send, self.stats
            )
        except Exception as exc:  # a refused chunk must be reported, never lost
            error = exc
        finally:  # a cancellation too: what was not written is reported
            self._settled(chunk, unsettled, error)
        # This task is done with its slot: free it before refilling, or a writer with every
        # slot taken would never start the next chunk (its done-callback comes too late).
        task = asyncio.current_task()
        if task is not None:
            self._tasks.discard(task)
        self._pump()

    def _settled(
        self, chunk: list[_Write], left: list[_Write], error: BaseException | None
    ) -> None:
        """Account for a chunk that is done: written but ``left``, which failed."""
        self._in_flight_count -= len(chunk)
        del self._flying[id(chunk)]
        for entry in chunk:
            self._in_flight.discard(entry.identity)
        self.stats.written += len(chunk) - len(left)
        failed: set[int] = set()
        for entry in left:
            # A later request for the same key is waiting: it wins, this one is moot.
            if entry.identity in self._buffer:
                self.stats.superseded += 1
            else:
                self.stats.unprocessed += 1
                self._failed[entry.identity] = (entry, error)
                failed.add(id(entry))
        if self.on_acknowledged is not None:
            self.on_acknowledged([e.position for e in chunk if id(e) not in failed])
        self._wake()

    def _oldest(self) -> float:
        """The sequence number of the oldest request not settled yet (infinity: none)."""
        oldest = min(self._flying.values(), default=_NONE)
        for entry in self._buffer.values():
            return min(oldest, entry.seq)
        return oldest

    async def flush(self) -> None:
        """Send everything buffered, partial chunks included, and wait until every request
        accepted before this call is settled: written, failed, or replaced by a later one.
        Flushes may overlap (each waits for its own requests, not for later ones)."""
        mark = self._accepted
        self._draining += 1
        try:
            while self._oldest() <= mark:
                self._pump()
                # Woken whenever a chunk completes; something is always in flight here (a
                # flush sends whatever is not blocked by a key in flight), so this wakes.
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                await waiter
        finally:
            self._draining -= 1

    async def close(self) -> None:
        """Flush and close (what leaving ``async with`` does)."""
        await self._finish(None)

    async def _finish(self, body_error: BaseException | None) -> None:
        self._closed = True
        self._wake()  # puts waiting for room are refused: the drain must not wait for them
        try:
            await self.flush()
        except BaseException:
            # Cancelled while draining: stop now, but keep what was not written reachable.
            try:
                await self._abort()
            finally:
                self.unwritten = self._report() or self.unwritten
            raise
        report = self._report()
        if report is None:
            return
        self.unwritten = report
        if body_error is not None and not isinstance(body_error, Exception):
            # A cancellation or interrupt of the block propagates as it is; the report
            # waits in ``unwritten``.
            return
        cause = body_error if body_error is not None else report.__cause__
        raise report from cause

    async def _abort(self) -> None:
        """Cancel every chunk in flight and wait until each has recorded what it left."""
        self._aborted = True
        tasks = [*self._tasks, *self._uploads]
        for task in tasks:
            task.cancel()
        interrupted: BaseException | None = None
        while not all(task.done() for task in tasks):
            try:
                await asyncio.wait(tasks)
            except BaseException as exc:  # cancelled again: finish the bookkeeping first
                interrupted = exc
        if interrupted is not None and not isinstance(interrupted, asyncio.CancelledError):
            raise interrupted

    def _report(self) -> UnprocessedItemsError | None:
        """Everything accepted and not written (failed, and after an abort never sent), as
        the error to raise; ``None`` when there is nothing. Takes it out of the writer."""
        failed = list(self._failed.values())
        self._failed = {}
        # The cause: DynamoDB's refusal before an S3 failure, when both happened.
        errors = [e for _, e in failed if e is not None]
        error = next((e for e in errors if not isinstance(e, _PREREQUISITE_ERRORS)), None)
        if error is None and errors:
            error = errors[0]
        entries = [entry for entry, _ in failed]
        causes = {id(entry): e for entry, e in failed if e is not None}
        if self._buffer:  # left only by an abort: never sent, so never applied
            self.stats.unprocessed += len(self._buffer)
            entries.extend(self._buffer.values())
            self._buffer = {}
            self._wake()
        if not entries:
            return None
        entries.sort(key=lambda entry: entry.seq)
        report = _unprocessed(entries, error, causes)
        report.__cause__ = error
        return report


def _invalidate(entries: Iterable[_Write]) -> None:
    for entry in entries:
        invalidate = entry.lane.invalidate
        if invalidate is not None:
            invalidate(entry.identity)


def _unprocessed(
    failed: Iterable[_Write],
    error: BaseException | None,
    causes: Mapping[int, BaseException] | None = None,
) -> UnprocessedItemsError:
    puts: list[dict[str, Any]] = []
    deletes: list[dict[str, Any]] = []
    maybe_puts: list[dict[str, Any]] = []
    maybe_deletes: list[dict[str, Any]] = []
    failures: list[tuple[dict[str, Any], BaseException]] = []
    for entry in failed:
        value = dict(entry.source)
        (puts if entry.is_put else deletes).append(value)
        if entry.maybe_applied:
            (maybe_puts if entry.is_put else maybe_deletes).append(value)
        cause = None if causes is None else causes.get(id(entry))
        if cause is not None:
            failures.append((value, cause))
    return UnprocessedItemsError(
        puts,
        deletes,
        "" if error is None else f"last error: {error}",
        maybe_puts=maybe_puts,
        maybe_deletes=maybe_deletes,
        failures=failures,
    )


def aligned(
    positions: Sequence[_Get], decode: Callable[[WireItem], dict[str, Any]]
) -> list[dict[str, Any] | None]:
    """The answer of a batch read, aligned with its input positions. A key given more than
    once gets its own copy of the item at each later position."""
    out: list[dict[str, Any] | None] = []
    seen: set[int] = set()
    for entry in positions:
        item = entry.item
        # A key given again (``again``) gets a copy at each later position: from the wire
        # item kept for it, or, for one the item cache answered, of the decoded item.
        if item is not None and entry.again:
            if id(entry) in seen:
                item = entry.copy(decode)
            else:
                seen.add(id(entry))
        out.append(item)
    return out
