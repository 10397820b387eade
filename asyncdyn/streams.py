"""DynamoDB Streams consumer: shard discovery and lineage, iterator expiry, checkpoints.

``Client.stream(table)`` returns a ``Stream``; ``records()`` and ``batches()`` run it. A run is
one background *supervisor* task that owns a task group of shard readers:

* The supervisor finds the stream ARN (``DescribeTable``), lists shards with ``DescribeStream``
  (every page) at start, every ``rediscover_interval`` seconds, and soon after a closed shard
  ends without a known child. It starts a shard's reader only once the shard's parent is
  finished (fully read, skipped, or no longer listed because it was trimmed), which is what
  keeps each item's records in order across a shard split.
* A reader holds one shard iterator at a time: one reader per shard, below the two
  concurrent readers DynamoDB allows per shard. An expired or trimmed iterator is replaced
  after the last record read; an empty answer waits ``poll_interval`` before the next call;
  a null ``NextShardIterator`` means the shard is closed and fully read.
* Readers hand whole ``GetRecords`` answers to one bounded queue, so records of one shard
  come out in order, and a parent's records before its children's.

Every request goes through the client's dispatcher machinery (limiter, SigV4 with service
``dynamodb``, retries, stats) with the ``DynamoDBStreams_20120810`` target.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, Protocol, Self, runtime_checkable
from urllib.parse import urlsplit

from .errors import (
    AsyncDynError,
    ConfigurationError,
    ExpiredIterator,
    StreamNotEnabled,
    TableNotFound,
    TrimmedDataAccess,
)
from .marshal import Decoder
from .retry import Clock, Sleep
from .schema import KeySchema
from .transport import Dispatcher


class CheckpointTable(Protocol):
    """What ``TableCheckpoints`` needs of a table (``Table`` is one): its key schema, a
    consistent get and a put. A protocol, so that the stream side never imports the table."""

    @property
    def name(self) -> str: ...

    async def key_schema(self) -> KeySchema: ...

    async def get(
        self, key: Mapping[str, Any], *, consistent: bool = ..., attributes: Any = ...
    ) -> dict[str, Any] | None: ...

    async def put(self, item: Mapping[str, Any]) -> Any: ...


__all__ = [
    "CheckpointStore",
    "EventName",
    "MemoryCheckpoints",
    "Record",
    "RecordBatch",
    "StartPosition",
    "Stream",
    "TableCheckpoints",
    "streams_endpoint_for",
]

EventName = Literal["INSERT", "MODIFY", "REMOVE"]
StartPosition = Literal["trim_horizon", "latest"]

_MAX_LIMIT = 1000  # GetRecords returns at most 1000 records per call
_DESCRIBE_PAGE = 100  # DescribeStream lists at most 100 shards per page
_TTL_PRINCIPAL = "dynamodb.amazonaws.com"

_PENDING = 0
_READING = 1
_FINISHED = 2

# (ShardIteratorType, SequenceNumber or None)
_Position = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class Record:
    """One change to one item.

    ``keys``, ``new`` and ``old`` are decoded like every other item (the client's
    ``numbers=`` mode); ``new`` is ``None`` for ``REMOVE`` and when the view type carries no
    new image (``KEYS_ONLY``, ``OLD_IMAGE``), ``old`` likewise. ``sequence_number`` is a
    decimal string (compare as ``int``, not as text). ``removed_by_ttl`` marks a ``REMOVE``
    done by DynamoDB's TTL process.
    """

    event: EventName
    keys: dict[str, Any]
    new: dict[str, Any] | None
    old: dict[str, Any] | None
    sequence_number: str
    shard_id: str
    approximate_created_at: datetime | None
    view_type: str
    event_id: str = ""
    size_bytes: int = 0
    removed_by_ttl: bool = False


@dataclass(frozen=True, slots=True)
class RecordBatch:
    """The records of one ``GetRecords`` answer (never empty), all from ``shard_id``, in order."""

    shard_id: str
    records: list[Record]

    @property
    def last(self) -> Record:
        """The last record: what ``Stream.checkpoint(batch)`` saves."""
        return self.records[-1]

    def __len__(self) -> int:
        return len(self.records)


@runtime_checkable
class CheckpointStore(Protocol):
    """Where a consumer keeps, per shard, the sequence number of the last record it handled.

    ``load`` returns ``None`` for a shard never saved. A consumer resumes each shard right
    after the saved record.
    """

    async def load(self, shard_id: str) -> str | None: ...

    async def save(self, shard_id: str, sequence_number: str) -> None: ...


class MemoryCheckpoints:
    """Checkpoints in a dict: survive a restarted iteration within the process, not a restart
    of the process. ``positions`` is the dict (shard id -> sequence number)."""

    __slots__ = ("positions",)

    def __init__(self, positions: Mapping[str, str] | None = None) -> None:
        self.positions: dict[str, str] = dict(positions or {})

    async def load(self, shard_id: str) -> str | None:
        return self.positions.get(shard_id)

    async def save(self, shard_id: str, sequence_number: str) -> None:
        self.positions[shard_id] = sequence_number

    def __repr__(self) -> str:
        return f"MemoryCheckpoints({self.positions!r})"


class TableCheckpoints:
    """Checkpoints in a DynamoDB table of your choosing, one item per (consumer, shard).

    With a table keyed ``(partition, sort)`` the item key is ``(consumer, shard_id)``; with a
    partition key only it is ``"<consumer>|<shard_id>"``. The sequence number is stored as a
    string in ``attribute`` (they run to 40 digits, beyond DynamoDB's 38-digit numbers).
    Reads are consistent. ``consumer`` names one logical consumer of one stream: shard ids
    are only unique within a stream, so give each stream's consumer its own name.

    Example::

        store = TableCheckpoints(db.table("Checkpoints"), consumer="orders-indexer")
        stream = db.stream("Orders", checkpoints=store)
    """

    __slots__ = ("_attribute", "_consumer", "_table")

    def __init__(
        self, table: CheckpointTable, consumer: str, *, attribute: str = "sequence_number"
    ) -> None:
        if not isinstance(consumer, str) or not consumer:
            raise ConfigurationError("TableCheckpoints needs a non-empty consumer name")
        if not isinstance(attribute, str) or not attribute:
            raise ConfigurationError("TableCheckpoints needs a non-empty attribute name")
        self._table = table
        self._consumer = consumer
        self._attribute = attribute

    def __repr__(self) -> str:
        return f"TableCheckpoints({self._table.name!r}, consumer={self._consumer!r})"

    async def _key(self, shard_id: str) -> dict[str, str]:
        schema = await self._table.key_schema()
        if schema.sort_key is None:
            return {schema.partition_key: f"{self._consumer}|{shard_id}"}
        return {schema.partition_key: self._consumer, schema.sort_key: shard_id}

    async def load(self, shard_id: str) -> str | None:
        item = await self._table.get(
            await self._key(shard_id), consistent=True, attributes=[self._attribute]
        )
        value = None if item is None else item.get(self._attribute)
        return value if isinstance(value, str) else None

    async def save(self, shard_id: str, sequence_number: str) -> None:
        item: dict[str, Any] = await self._key(shard_id)
        item[self._attribute] = sequence_number
        item["checkpointed_at"] = datetime.now(UTC).isoformat()
        await self._table.put(item)


def streams_endpoint_for(endpoint_url: str, region: str) -> str | None:
    """The public Streams endpoint when ``endpoint_url`` is DynamoDB's own public endpoint of
    ``region``; ``None`` when it is anything else (a local server, a proxy), which then
    serves Streams on the same URL."""
    parts = urlsplit(endpoint_url)
    host = (parts.hostname or "").lower()
    for suffix in ("amazonaws.com", "amazonaws.com.cn"):
        if host == f"dynamodb.{region}.{suffix}":
            return f"{parts.scheme}://streams.{parts.netloc}"
    return None


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return datetime.fromtimestamp(float(value), tz=UTC)
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


class _Shard:
    __slots__ = ("end", "followed", "id", "initial", "last", "parent", "state")

    def __init__(self, shard_id: str, parent: str | None, end: str | None, initial: bool) -> None:
        self.id = shard_id
        self.parent = parent
        self.end = end  # EndingSequenceNumber: set once the shard is closed
        self.initial = initial  # listed by the run's first DescribeStream
        self.state = _PENDING
        self.followed = False  # read (not skipped): its children start at TRIM_HORIZON
        self.last: str | None = None  # sequence number of the last record read


class _End:
    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class Stream:
    """A consumer of one table's stream. Get it from ``Client.stream(table_name)``.

    ``records()`` yields ``Record`` objects, ``batches()`` one ``RecordBatch`` per
    ``GetRecords`` answer that had records. One iteration at a time per ``Stream``. Call
    ``await stream.checkpoint(record)`` after handling a record (or a batch): a consumer
    restarted with the same ``checkpoints`` store resumes right after it, so nothing is
    delivered twice. Iteration ends only when the stream is disabled and fully read; leave
    it with ``break`` (inside ``async with stream.records() as records:`` to stop the shard
    readers at once) or by cancelling the task.
    """

    def __init__(
        self,
        table_name: str,
        *,
        describe_table: Callable[[], Awaitable[Mapping[str, Any]]] | None,
        dispatcher: Callable[[], Dispatcher],
        decoder: Decoder,
        start: StartPosition = "trim_horizon",
        checkpoints: CheckpointStore | None = None,
        poll_interval: float = 1.0,
        rediscover_interval: float = 60.0,
        limit: int = _MAX_LIMIT,
        buffer: int = 8,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        if start not in ("trim_horizon", "latest"):
            raise ConfigurationError(f"start must be 'trim_horizon' or 'latest', not {start!r}")
        if not poll_interval > 0 or not rediscover_interval > 0:
            raise ConfigurationError("poll_interval and rediscover_interval must be positive")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_LIMIT:
            raise ConfigurationError(f"limit must be an int from 1 to {_MAX_LIMIT}, not {limit!r}")
        if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 1:
            raise ConfigurationError(f"buffer must be a positive int, not {buffer!r}")
        if checkpoints is not None and not isinstance(checkpoints, CheckpointStore):
            raise ConfigurationError("checkpoints must have async load(shard_id) and save(...)")
        self.table_name = table_name
        self.start: StartPosition = start
        self.checkpoints: CheckpointStore = (
            checkpoints if checkpoints is not None else MemoryCheckpoints()
        )
        self.poll_interval = float(poll_interval)
        self.rediscover_interval = float(rediscover_interval)
        self.limit = limit
        self.buffer = buffer
        self.arn: str | None = None
        self._describe_table = describe_table
        self._dispatcher = dispatcher
        self._decode = decoder.item
        loop_time: Clock = lambda: asyncio.get_running_loop().time()  # noqa: E731
        self._clock = clock if clock is not None else loop_time
        self._sleep = sleep if sleep is not None else asyncio.sleep
        self._running = False

    def __repr__(self) -> str:
        return f"Stream({self.table_name!r}, start={self.start!r})"

    def records(self) -> RecordIterator:
        """An async iterator of every record, shard by shard in lineage order."""
        return RecordIterator(_Run(self))

    def batches(self) -> BatchIterator:
        """An async iterator of ``RecordBatch``: one per ``GetRecords`` answer with records."""
        return BatchIterator(_Run(self))

    async def checkpoint(self, done: Record | RecordBatch) -> None:
        """Save ``done`` (a record, or a batch's last record) as handled in its shard."""
        record = done.last if isinstance(done, RecordBatch) else done
        await self.checkpoints.save(record.shard_id, record.sequence_number)

    # -- the run ---------------------------------------------------------------------------

    async def _stream_arn(self) -> str:
        if self.arn is not None:
            return self.arn
        if self._describe_table is None:  # table_name was a stream ARN
            self.arn = self.table_name
            return self.arn
        table = await self._describe_table()
        arn = table.get("LatestStreamArn")
        if not isinstance(arn, str) or not arn:
            raise StreamNotEnabled(self.table_name)
        self.arn = arn
        return arn

    async def _supervise(self, queue: asyncio.Queue[RecordBatch | _End]) -> None:
        """The body of a run's background task: ends by queueing an ``_End``."""
        error: BaseException | None = None
        try:
            await self._run_shards(queue)
        except BaseExceptionGroup as group:
            error = _single(group)
        except Exception as exc:
            error = exc
        await queue.put(_End(error))

    async def _run_shards(self, queue: asyncio.Queue[RecordBatch | _End]) -> None:
        streams = self._dispatcher()
        arn = await self._stream_arn()
        shards: dict[str, _Shard] = {}
        readers: dict[str, asyncio.Task[None]] = {}
        clock = self._clock
        async with asyncio.TaskGroup() as tg:
            first = True
            enabled = True
            last_discovery = next_discovery = clock()
            while True:
                if clock() >= next_discovery:
                    enabled = await self._discover(streams, arn, shards, initial=first)
                    first = False
                    last_discovery = clock()
                    next_discovery = last_discovery + self.rediscover_interval
                for shard in _ready(shards):
                    shard.state = _READING
                    readers[shard.id] = tg.create_task(
                        self._read(streams, arn, shard, shards, queue)
                    )
                for shard_id in [sid for sid, task in readers.items() if task.done()]:
                    del readers[shard_id]
                if not enabled and all(s.state == _FINISHED for s in shards.values()):
                    return
                if enabled and _orphaned(shards):
                    # A closed shard's children exist by the time it ends; look for them
                    # now rather than a whole rediscovery interval later.
                    next_discovery = min(next_discovery, last_discovery + self.poll_interval)
                delay = next_discovery - clock()
                if delay <= 0:
                    continue
                if not readers:
                    await self._sleep(delay)
                    continue
                sleeper = tg.create_task(self._nap(delay))
                try:
                    await asyncio.wait([sleeper, *readers.values()], return_when="FIRST_COMPLETED")
                finally:
                    sleeper.cancel()

    async def _nap(self, delay: float) -> None:
        await self._sleep(delay)

    async def _discover(
        self, streams: Dispatcher, arn: str, shards: dict[str, _Shard], *, initial: bool
    ) -> bool:
        """List every shard, add the new ones, note the closed ones, forget the finished ones
        no longer listed. Returns whether more shards may still appear."""
        request: dict[str, Any] = {"StreamArn": arn, "Limit": _DESCRIBE_PAGE}
        listed: list[Mapping[str, Any]] = []
        status: Any = None
        while True:
            data = await streams.call("DescribeStream", request)
            description = data.get("StreamDescription") or {}
            status = description.get("StreamStatus")
            listed.extend(description.get("Shards") or ())
            last = description.get("LastEvaluatedShardId")
            # A server that ignores ExclusiveStartShardId would page forever.
            if not last or last == request.get("ExclusiveStartShardId"):
                break
            request = {**request, "ExclusiveStartShardId": last}
        seen: set[str] = set()
        for raw in listed:
            shard_id = raw.get("ShardId")
            if not isinstance(shard_id, str) or shard_id in seen:
                continue
            seen.add(shard_id)
            end = (raw.get("SequenceNumberRange") or {}).get("EndingSequenceNumber")
            shard = shards.get(shard_id)
            if shard is None:
                shards[shard_id] = _Shard(shard_id, raw.get("ParentShardId"), end, initial)
            elif end is not None:
                shard.end = end
        for shard_id in [sid for sid, s in shards.items() if sid not in seen]:
            if shards[shard_id].state == _FINISHED:  # trimmed: its children count it finished
                del shards[shard_id]
        return bool(status != "DISABLED")

    async def _position(self, shard: _Shard, shards: Mapping[str, _Shard]) -> _Position | None:
        """Where a shard's reading starts; ``None`` when there is nothing to read in it."""
        saved = await self.checkpoints.load(shard.id)
        if saved is not None:
            shard.followed = True
            if shard.end is not None and _seq(saved) >= _seq(shard.end):
                return None  # handled to its end before a restart
            return ("AFTER_SEQUENCE_NUMBER", saved)
        parent = shards.get(shard.parent) if shard.parent else None
        if (
            self.start == "trim_horizon"
            or not shard.initial  # born while we run: all of it is new
            or (parent is not None and parent.followed)  # its parent's successor
        ):
            shard.followed = True
            return ("TRIM_HORIZON", None)
        if shard.end is not None:
            return None  # "latest": a shard closed before we started holds only the past
        shard.followed = True
        return ("LATEST", None)

    async def _iterator(
        self, streams: Dispatcher, arn: str, shard: _Shard, position: _Position
    ) -> str | None:
        kind, sequence = position
        request = {"StreamArn": arn, "ShardId": shard.id, "ShardIteratorType": kind}
        if sequence is not None:
            request["SequenceNumber"] = sequence
        try:
            data = await streams.call("GetShardIterator", request)
        except TrimmedDataAccess:
            if kind == "TRIM_HORIZON":
                raise
            # The position fell past the 24-hour retention: what lay between is gone, so
            # continue with the oldest record still there.
            return await self._iterator(streams, arn, shard, ("TRIM_HORIZON", None))
        except TableNotFound:
            return None  # the whole shard was trimmed away
        iterator = data.get("ShardIterator")
        return iterator if isinstance(iterator, str) and iterator else None

    async def _read(
        self,
        streams: Dispatcher,
        arn: str,
        shard: _Shard,
        shards: Mapping[str, _Shard],
        queue: asyncio.Queue[RecordBatch | _End],
    ) -> None:
        try:
            start = await self._position(shard, shards)
            iterator = None if start is None else await self._iterator(streams, arn, shard, start)
            request: dict[str, Any] = {"Limit": self.limit}
            while iterator is not None:
                request["ShardIterator"] = iterator
                try:
                    data = await streams.call("GetRecords", request)
                except (ExpiredIterator, TrimmedDataAccess) as exc:
                    assert start is not None
                    if isinstance(exc, TrimmedDataAccess):
                        resume: _Position = ("TRIM_HORIZON", None)
                    elif shard.last is not None:
                        resume = ("AFTER_SEQUENCE_NUMBER", shard.last)
                    else:
                        resume = start
                    iterator = await self._iterator(streams, arn, shard, resume)
                    continue
                except TableNotFound:
                    break  # trimmed away under us
                raw_records = data.get("Records") or ()
                following = data.get("NextShardIterator")
                iterator = following if isinstance(following, str) and following else None
                if raw_records:
                    batch = RecordBatch(shard.id, [self._record(r, shard.id) for r in raw_records])
                    shard.last = batch.records[-1].sequence_number
                    await queue.put(batch)
                elif iterator is not None:
                    # Empty answers can come while records lie ahead (the iterator moves on
                    # all the same), so keep going, but at the poll rate rather than spinning.
                    await self._sleep(self.poll_interval)
        finally:
            shard.state = _FINISHED

    def _record(self, raw: Mapping[str, Any], shard_id: str) -> Record:
        body = raw.get("dynamodb") or {}
        decode = self._decode
        new = body.get("NewImage")
        old = body.get("OldImage")
        identity = raw.get("userIdentity")
        return Record(
            event=raw.get("eventName", ""),
            keys=decode(body.get("Keys") or {}),
            new=None if new is None else decode(new),
            old=None if old is None else decode(old),
            sequence_number=str(body.get("SequenceNumber", "")),
            shard_id=shard_id,
            approximate_created_at=_timestamp(body.get("ApproximateCreationDateTime")),
            view_type=str(body.get("StreamViewType", "")),
            event_id=str(raw.get("eventID", "")),
            size_bytes=int(body.get("SizeBytes") or 0),
            removed_by_ttl=isinstance(identity, Mapping)
            and identity.get("type") == "Service"
            and identity.get("principalId") == _TTL_PRINCIPAL,
        )


def _seq(sequence_number: str) -> int:
    try:
        return int(sequence_number)
    except ValueError:
        return -1


def _ready(shards: Mapping[str, _Shard]) -> list[_Shard]:
    ready = []
    for shard in shards.values():
        if shard.state != _PENDING:
            continue
        parent = shards.get(shard.parent) if shard.parent else None
        if parent is None or parent.state == _FINISHED:
            ready.append(shard)
    return ready


def _orphaned(shards: Mapping[str, _Shard]) -> bool:
    """Whether a closed shard has been read to its end but none of its children is known."""
    parents = {s.parent for s in shards.values()}
    return any(
        s.state == _FINISHED and s.end is not None and s.followed and s.id not in parents
        for s in shards.values()
    )


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error a caller should see for a failed run: the first leaf of the group (a reader
    failing makes the task group cancel the others, which adds nothing worth reporting)."""
    leaf: BaseException = group
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf


class _Run:
    """One iteration of a ``Stream``: the supervisor task and the queue it fills."""

    __slots__ = ("__weakref__", "_done", "_queue", "_stream", "_task")

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._queue: asyncio.Queue[RecordBatch | _End] = asyncio.Queue(stream.buffer)
        self._task: asyncio.Task[None] | None = None
        self._done = False

    async def next_batch(self) -> RecordBatch:
        if self._done:
            raise StopAsyncIteration
        if self._task is None:
            stream = self._stream
            if stream._running:
                raise AsyncDynError(f"{stream!r} is already being read: one iteration at a time")
            stream._running = True
            self._task = asyncio.get_running_loop().create_task(stream._supervise(self._queue))
        try:
            item = await self._queue.get()
        except asyncio.CancelledError:
            # The consuming task is being cancelled: take every shard reader down with it.
            await self.aclose()
            raise
        if isinstance(item, RecordBatch):
            return item
        await self.aclose()
        if item.error is not None:
            raise item.error
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self._done = True
        task, self._task = self._task, None
        if task is None:
            return
        try:
            if not task.done():
                task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():  # we were cancelled ourselves, not just the run
                    raise
            except Exception:
                pass  # the caller left: a failure it will never see is moot
        finally:
            self._stream._running = False

    def __del__(self) -> None:
        task = self._task
        if task is not None:
            self._stream._running = False
            if task.done():
                if not task.cancelled():
                    task.exception()  # mark it retrieved: nobody will ever ask for it
            else:
                task.cancel()


class _Closing:
    """``async with`` support for an iterator that ends with ``aclose()``."""

    __slots__ = ()

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class BatchIterator(_Closing):
    """``RecordBatch`` objects of a running stream; see ``Stream.batches``.

    ``aclose()`` or leaving ``async with`` stops every shard reader at once; an iterator
    dropped without it stops them when it is garbage-collected.
    """

    __slots__ = ("_run",)

    def __init__(self, run: _Run) -> None:
        self._run = run

    def __aiter__(self) -> BatchIterator:
        return self

    async def __anext__(self) -> RecordBatch:
        return await self._run.next_batch()

    async def aclose(self) -> None:
        await self._run.aclose()


class RecordIterator(_Closing):
    """``Record`` objects of a running stream; see ``Stream.records`` and ``BatchIterator``."""

    __slots__ = ("_buffer", "_index", "_run")

    def __init__(self, run: _Run) -> None:
        self._run = run
        self._buffer: list[Record] = []
        self._index = 0

    def __aiter__(self) -> RecordIterator:
        return self

    async def __anext__(self) -> Record:
        index = self._index
        if index >= len(self._buffer):
            self._buffer = (await self._run.next_batch()).records
            index = 0
        self._index = index + 1
        return self._buffer[index]

    async def aclose(self) -> None:
        self._buffer = []
        self._index = 0
        await self._run.aclose()
