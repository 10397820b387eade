"""The Streams consumer against a scripted, in-memory Streams service, on virtual time.

``FakeStreams`` answers DescribeTable, DescribeStream (paged), GetShardIterator and GetRecords
from shards the test builds, and logs what it was asked; ``FakeTime`` replaces the clock and
sleep so that no test waits for real.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from asyncdyn import (
    Client,
    ExpiredIterator,
    MemoryCheckpoints,
    Record,
    RetryPolicy,
    Stream,
    StreamNotEnabled,
    TrimmedDataAccess,
    ValidationError,
)
from asyncdyn.errors import error_from_response
from asyncdyn.lean import LeanTransport
from asyncdyn.testing import ScriptedTransport, answer, error
from asyncdyn.transport import HttpResponse

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/2026-01-01T00:00:00.000"
POLL = 0.3
REDISCOVER = 1000.0


class FakeShard:
    def __init__(self, shard_id: str, parent: str | None, closed: bool) -> None:
        self.id = shard_id
        self.parent = parent
        self.closed = closed
        self.records: list[dict[str, Any]] = []


class FakeStreams:
    """A Streams service in memory. ``events`` logs ("GetRecords", shard, count),
    ("GetShardIterator", shard, type, sequence) and ("DescribeStream",) in arrival order."""

    def __init__(self, *, view: str = "NEW_AND_OLD_IMAGES", page_size: int = 100) -> None:
        self.shards: dict[str, FakeShard] = {}
        self.status = "ENABLED"
        self.view = view
        self.page_size = page_size
        self.batch_size = 1000
        self.stream_arn: str | None = ARN
        self.events: list[tuple[Any, ...]] = []
        self.expire_on: set[int] = set()  # GetRecords call numbers answered "expired"
        self.empty_first: dict[str, int] = {}  # shard -> empty answers before its records
        self.trimmed_below = 0  # AFTER_SEQUENCE_NUMBER below this: TrimmedDataAccess
        self.fail_get_records: HttpResponse | None = None
        self.get_records_calls = 0
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight = 0
        self._iterators: dict[str, tuple[str, int]] = {}
        self._tokens = itertools.count()
        self._sequence = itertools.count(100_000_000_000_000_000_000)

    def add_shard(
        self, shard_id: str, *, parent: str | None = None, closed: bool = False, records: int = 0
    ) -> FakeShard:
        shard = self.shards[shard_id] = FakeShard(shard_id, parent, closed)
        for _ in range(records):
            self.append(shard_id)
        return shard

    def append(self, shard_id: str, event: str = "MODIFY") -> dict[str, Any]:
        """Add a record; its NewImage carries (shard, position) to check order with."""
        shard = self.shards[shard_id]
        n = len(shard.records)
        body: dict[str, Any] = {
            "ApproximateCreationDateTime": 1767225600 + n,
            "Keys": {"PK": {"S": f"{shard_id}-{n % 3}"}},
            "SequenceNumber": str(next(self._sequence)),
            "SizeBytes": 50,
            "StreamViewType": self.view,
        }
        image = {"PK": {"S": f"{shard_id}-{n % 3}"}, "shard": {"S": shard_id}, "n": {"N": str(n)}}
        if self.view in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES") and event != "REMOVE":
            body["NewImage"] = image
        if self.view in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES") and event != "INSERT":
            body["OldImage"] = {**image, "n": {"N": str(n - 0.5)}}
        record = {"eventID": f"e{n}", "eventName": event, "dynamodb": body}
        shard.records.append(record)
        return record

    def _token(self, shard_id: str, index: int) -> str:
        token = f"it-{next(self._tokens)}"
        self._iterators[token] = (shard_id, index)
        return token

    async def __call__(self, headers: Any, body: bytes) -> HttpResponse:
        operation = headers["X-Amz-Target"].rpartition(".")[2]
        request = orjson.loads(body)
        if operation == "DescribeTable":
            table: dict[str, Any] = {"TableName": "T", "TableStatus": "ACTIVE"}
            table["KeySchema"] = [{"AttributeName": "PK", "KeyType": "HASH"}]
            if self.stream_arn is not None:
                table["LatestStreamArn"] = self.stream_arn
            return answer({"Table": table})
        if operation == "DescribeStream":
            return self._describe(request)
        if operation == "GetShardIterator":
            return self._get_iterator(request)
        if operation == "GetRecords":
            return await self._get_records(request)
        return error("UnknownOperationException", operation)

    def _describe(self, request: dict[str, Any]) -> HttpResponse:
        assert request["StreamArn"] == ARN
        self.events.append(("DescribeStream",))
        ids = list(self.shards)
        after = request.get("ExclusiveStartShardId")
        start = ids.index(after) + 1 if after else 0
        page = ids[start : start + min(self.page_size, request.get("Limit", 100))]
        shards = []
        for shard_id in page:
            shard = self.shards[shard_id]
            numbers: dict[str, str] = {"StartingSequenceNumber": "1"}
            if shard.closed:
                last = shard.records[-1]["dynamodb"]["SequenceNumber"] if shard.records else "1"
                numbers["EndingSequenceNumber"] = last
            entry: dict[str, Any] = {"ShardId": shard_id, "SequenceNumberRange": numbers}
            if shard.parent:
                entry["ParentShardId"] = shard.parent
            shards.append(entry)
        description: dict[str, Any] = {"StreamStatus": self.status, "Shards": shards}
        if start + len(page) < len(ids):
            description["LastEvaluatedShardId"] = page[-1]
        return answer({"StreamDescription": description})

    def _get_iterator(self, request: dict[str, Any]) -> HttpResponse:
        shard_id = request["ShardId"]
        kind = request["ShardIteratorType"]
        sequence = request.get("SequenceNumber")
        self.events.append(("GetShardIterator", shard_id, kind, sequence))
        shard = self.shards.get(shard_id)
        if shard is None:
            return error("ResourceNotFoundException", "no such shard")
        numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in shard.records]
        if kind == "TRIM_HORIZON":
            index = 0
        elif kind == "LATEST":
            index = len(numbers)
        else:
            assert kind == "AFTER_SEQUENCE_NUMBER" and sequence is not None
            if int(sequence) < self.trimmed_below:
                return error("TrimmedDataAccessException", "trimmed")
            index = sum(1 for n in numbers if n <= int(sequence))
        return answer({"ShardIterator": self._token(shard_id, index)})

    async def _get_records(self, request: dict[str, Any]) -> HttpResponse:
        self.get_records_calls += 1
        call = self.get_records_calls
        shard_id, index = self._iterators.pop(request["ShardIterator"])
        self.in_flight[shard_id] += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight[shard_id])
        try:
            await asyncio.sleep(0)  # stay in flight across a turn of the loop
        finally:
            self.in_flight[shard_id] -= 1
        if call in self.expire_on:
            self.events.append(("Expired", shard_id))
            return error("ExpiredIteratorException", "Iterator expired")
        if self.fail_get_records is not None:
            return self.fail_get_records
        shard = self.shards[shard_id]
        if self.empty_first.get(shard_id, 0) > 0:
            self.empty_first[shard_id] -= 1
            got: list[dict[str, Any]] = []
        else:
            got = shard.records[index : index + min(self.batch_size, request["Limit"])]
        self.events.append(("GetRecords", shard_id, len(got)))
        following = index + len(got)
        body: dict[str, Any] = {"Records": got}
        if not (shard.closed and following >= len(shard.records)):
            body["NextShardIterator"] = self._token(shard_id, following)
        return answer(body)


class FakeTime:
    """Virtual time: each sleep logs its delay, moves the clock and yields once."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.log: list[tuple[Any, ...]] | None = None

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        if self.log is not None:
            self.log.append(("sleep", delay))
        self.now += delay
        await asyncio.sleep(0)


@pytest.fixture
def fake() -> FakeStreams:
    return FakeStreams()


@pytest.fixture
def vtime(fake: FakeStreams) -> FakeTime:
    time = FakeTime()
    time.log = fake.events
    return time


@pytest.fixture
async def db(fake: FakeStreams) -> AsyncIterator[Client]:
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("AKIDEXAMPLE", "secret"),
        retry=RetryPolicy(max_attempts=3, base=0.0),
        transport=ScriptedTransport(default=fake),
    ) as client:
        yield client


def stream_of(db: Client, vtime: FakeTime, **options: Any) -> Stream:
    options.setdefault("poll_interval", POLL)
    options.setdefault("rediscover_interval", REDISCOVER)
    return db.stream("T", clock=vtime.clock, sleep=vtime.sleep, **options)


def where(record: Record) -> tuple[str, int]:
    assert record.new is not None
    return record.new["shard"], record.new["n"]


async def collect(stream: Stream, count: int | None = None) -> list[Record]:
    got: list[Record] = []
    async with stream.records() as records:
        async for record in records:
            got.append(record)
            await stream.checkpoint(record)
            if len(got) == count:
                break
    return got


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def until(condition: Callable[[], bool]) -> None:
    """Run the loop until ``condition`` holds: the fake never blocks, so this is bounded by
    the stream's own work, not by time."""
    while not condition():  # noqa: ASYNC110 - the state polled is plain data, not an Event
        await asyncio.sleep(0)


_baseline: set[asyncio.Task[Any]] = set()


@pytest.fixture(autouse=True)
async def _tasks_before() -> None:
    # The event loop is shared by the session: tasks other tests left are not ours to judge.
    _baseline.clear()
    _baseline.update(asyncio.all_tasks())


def no_other_tasks() -> bool:
    return not asyncio.all_tasks() - _baseline - {asyncio.current_task()}


async def test_parent_shard_before_both_children(
    db: Client, fake: FakeStreams, vtime: FakeTime
) -> None:
    # Children listed first, one shard per DescribeStream page: order comes from lineage.
    fake.page_size = 1
    fake.batch_size = 2
    fake.add_shard("child-b", parent="parent", closed=True, records=3)
    fake.add_shard("child-a", parent="parent", closed=True, records=4)
    fake.add_shard("parent", closed=True, records=5)
    fake.status = "DISABLED"

    got = [where(r) for r in await collect(stream_of(db, vtime))]

    assert got[:5] == [("parent", n) for n in range(5)]
    assert sorted(got[5:]) == [("child-a", n) for n in range(4)] + [
        ("child-b", n) for n in range(3)
    ]
    for shard in ("child-a", "child-b"):
        assert [n for s, n in got if s == shard] == sorted(n for s, n in got if s == shard)
    # Read, not just delivered, in lineage order: no child iterator before the parent's end.
    positions = {e: i for i, e in enumerate(fake.events)}
    parent_end = max(i for e, i in positions.items() if e[:2] == ("GetRecords", "parent"))
    child_start = min(
        i for e, i in positions.items() if e[0] == "GetShardIterator" and e[1] != "parent"
    )
    assert parent_end < child_start
    assert fake.max_in_flight == 1
    assert no_other_tasks()


async def test_trimmed_parent_counts_as_finished(
    db: Client, fake: FakeStreams, vtime: FakeTime
) -> None:
    fake.add_shard("child", parent="long-gone", closed=True, records=2)
    fake.status = "DISABLED"
    got = [where(r) for r in await collect(stream_of(db, vtime))]
    assert got == [("child", 0), ("child", 1)]


async def test_expired_iterator_resumes_after_last_record(
    db: Client, fake: FakeStreams, vtime: FakeTime
) -> None:
    fake.batch_size = 2
    fake.add_shard("s", closed=True, records=6)
    fake.status = "DISABLED"
    fake.expire_on = {2, 4}  # after the first batch, and again after the second

    got = [where(r) for r in await collect(stream_of(db, vtime))]

    assert got == [("s", n) for n in range(6)]
    sequences = [r["dynamodb"]["SequenceNumber"] for r in fake.shards["s"].records]
    iterators = [e[2:] for e in fake.events if e[0] == "GetShardIterator"]
    assert iterators == [
        ("TRIM_HORIZON", None),
        ("AFTER_SEQUENCE_NUMBER", sequences[1]),
        ("AFTER_SEQUENCE_NUMBER", sequences[3]),
    ]


async def test_expired_before_any_record_restarts_at_original_position(
    db: Client, fake: FakeStreams, vtime: FakeTime
) -> None:
    fake.add_shard("s", closed=True, records=3)
    fake.status = "DISABLED"
    fake.expire_on = {1}
    first = fake.shards["s"].records[0]["dynamodb"]["SequenceNumber"]
    store = MemoryCheckpoints({"s": first})

    got = [where(r) for r in await collect(stream_of(db, vtime, checkpoints=store))]

    assert got == [("s", 1), ("s", 2)]
    iterators = [e[2:] for e in fake.events if e[0] == "GetShardIterator"]
    assert iterators == [("AFTER_SEQUENCE_NUMBER", first)] * 2


async def test_empty_reads_back_off_but_keep_polling(
    db: Client, fake: FakeStreams, vtime: FakeTime
) -> None:
    fake.add_shard("s", records=2)
    fake.empty_first["s"] = 3  # empty answers while the records lie ahead

    async def consume(got: list[Record]) -> None:
        async for record in stream_of(db, vtime).records():
            got.append(record)  # noqa: PERF401 - read while the loop runs, so grown in place

    got: list[Record] = []
    task = asyncio.create_task(consume(got))
    await until(lambda: fake.get_records_calls >= 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert [where(r) for r in got] == [("s", 0), ("s", 1)]
    reads = [i for i, e in enumerate(fake.events) if e[0] == "GetRecords"]
    for before, after in itertools.pairwise(reads):
        between = fake.events[before + 1 : after]
        if fake.events[before][2] == 0:
            assert ("sleep", POLL) in between  # an empty read waits before the next
        else:
            assert ("sleep", POLL) not in between  # records: read on at once
    assert [fake.events[i][2] for i in reads[:5]] == [0, 0, 0, 2, 0]
    assert no_other_tasks()


async def test_periodic_rediscovery_finds_a_new_shard(
    db: Client, fake: FakeStreams, vtime: FakeTime
) -> None:
    fake.add_shard("first", records=2)
    stream = stream_of(db, vtime, rediscover_interval=5.0)
    got: list[tuple[str, int]] = []
    async with stream.records() as records:
        async for record in records:
            got.append(where(record))
            if len(got) == 2:
                discovered = sum(1 for e in fake.events if e[0] == "DescribeStream")
                fake.add_shard("second", records=3)
            if len(got) == 5:
                break
    assert got == [("first", 0), ("first", 1), ("second", 0), ("second", 1), ("second", 2)]
    assert sum(1 for e in fake.events if e[0] == "DescribeStream") > discovered
    assert no_other_tasks()


async def test_cancelling_the_consumer_stops_every_reader(
    db: Client, fake: FakeStreams, vtime: FakeTime
) -> None:
    for name in ("a", "b", "c"):
        fake.add_shard(name)

    async def consume() -> None:
        async for _ in stream_of(db, vtime).records():
            pass

    task = asyncio.create_task(consume())
    await until(lambda: fake.get_records_calls >= 9)
    assert len(asyncio.all_tasks()) > 2  # supervisor and readers are running
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert no_other_tasks()


async def test_leaving_the_loop_stops_every_reader(
    db: Client, fake: FakeStreams, vtime: FakeTime
) -> None:
    fake.add_shard("a", records=3)
    fake.add_shard("b", records=3)
    stream = stream_of(db, vtime)
    async with stream.records() as records:
        async for _ in records:
            break
    assert no_other_tasks()

    # Without ``async with``: the dropped iterator takes its readers down when collected.
    async for _ in stream.records():
        break
    gc.collect()
    await settle()
    assert no_other_tasks()

    batches = stream.batches()
    assert len(await anext(batches)) == 3
    await batches.aclose()
    assert no_other_tasks()


async def test_restart_resumes_after_the_checkpoint(
    db: Client, fake: FakeStreams, vtime: FakeTime
) -> None:
    fake.batch_size = 2
    fake.add_shard("s", closed=True, records=6)
    fake.status = "DISABLED"
    store = MemoryCheckpoints()

    first = [where(r) for r in await collect(stream_of(db, vtime, checkpoints=store), 3)]
    second = [where(r) for r in await collect(stream_of(db, vtime, checkpoints=store))]

    assert first == [("s", 0), ("s", 1), ("s", 2)]
    assert second == [("s", 3), ("s", 4), ("s", 5)]
    third = stream_of(db, vtime, checkpoints=store)
    assert await collect(third) == []  # read to its end: not even an iterator is asked for
    assert [e for e in fake.events if e[0] == "GetShardIterator"][-1][2] == "AFTER_SEQUENCE_NUMBER"


async def test_batch_checkpoint_saves_the_last_record(
    db: Client, fake: FakeStreams, vtime: FakeTime
) -> None:
    fake.batch_size = 2
    fake.add_shard("s", closed=True, records=3)
    fake.status = "DISABLED"
    stream = stream_of(db, vtime)
    sizes = []
    async for batch in stream.batches():
        sizes.append(len(batch))
        await stream.checkpoint(batch)
    assert sizes == [2, 1]
    assert isinstance(stream.checkpoints, MemoryCheckpoints)
    assert stream.checkpoints.positions == {
        "s": fake.shards["s"].records[-1]["dynamodb"]["SequenceNumber"]
    }


async def test_latest_skips_the_past_and_follows_new_children(
    db: Client, fake: FakeStreams, vtime: FakeTime
) -> None:
    fake.add_shard("old", closed=True, records=3)
    fake.add_shard("open", parent="old", records=2)
    got: list[tuple[str, int]] = []

    async def consume() -> None:
        async for record in stream_of(db, vtime, start="latest").records():
            got.append(where(record))  # noqa: PERF401 - read while the loop runs

    task = asyncio.create_task(consume())
    await until(lambda: ("GetRecords", "open", 0) in fake.events)  # positioned at its end
    fake.append("open")
    await until(lambda: bool(got))
    # The open shard splits; its child already holds records when it is listed.
    fake.shards["open"].closed = True
    fake.add_shard("child", parent="open", closed=True, records=2)
    fake.status = "DISABLED"
    await task

    assert got == [("open", 2), ("child", 0), ("child", 1)]
    iterators = [e[1:3] for e in fake.events if e[0] == "GetShardIterator"]
    assert iterators == [("open", "LATEST"), ("child", "TRIM_HORIZON")]


async def test_trimmed_checkpoint_falls_back_to_trim_horizon(
    db: Client, fake: FakeStreams, vtime: FakeTime
) -> None:
    fake.add_shard("s", closed=True, records=2)
    fake.status = "DISABLED"
    fake.trimmed_below = 10**30
    store = MemoryCheckpoints({"s": "5"})
    got = [where(r) for r in await collect(stream_of(db, vtime, checkpoints=store))]
    assert got == [("s", 0), ("s", 1)]
    iterators = [e[2] for e in fake.events if e[0] == "GetShardIterator"]
    assert iterators == ["AFTER_SEQUENCE_NUMBER", "TRIM_HORIZON"]


async def test_table_without_a_stream(db: Client, fake: FakeStreams, vtime: FakeTime) -> None:
    fake.stream_arn = None
    with pytest.raises(StreamNotEnabled) as caught:
        await collect(stream_of(db, vtime))
    assert caught.value.table == "T"
    assert no_other_tasks()


async def test_a_failing_read_ends_the_iteration_with_its_error(
    db: Client, fake: FakeStreams, vtime: FakeTime
) -> None:
    fake.add_shard("a", records=1)
    fake.add_shard("b", records=1)
    fake.fail_get_records = error("ValidationException", "bad iterator")
    with pytest.raises(ValidationError):
        await collect(stream_of(db, vtime))
    assert no_other_tasks()


async def test_records_are_typed_and_decoded_with_the_number_mode(fake: FakeStreams) -> None:
    fake.view = "NEW_AND_OLD_IMAGES"
    fake.add_shard("s", closed=True)
    fake.append("s", "INSERT")
    fake.append("s", "MODIFY")
    removed = fake.append("s", "REMOVE")
    removed["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    fake.status = "DISABLED"
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("AKIDEXAMPLE", "secret"),
        numbers="decimal",
        transport=ScriptedTransport(default=fake),
    ) as db:
        got = await collect(db.stream("T", poll_interval=POLL))
    insert, modify, remove = got
    assert (insert.event, modify.event, remove.event) == ("INSERT", "MODIFY", "REMOVE")
    assert insert.old is None and remove.new is None
    assert modify.new == {"PK": "s-1", "shard": "s", "n": Decimal(1)}
    assert modify.old is not None and modify.old["n"] == Decimal("0.5")
    assert isinstance(modify.new["n"], Decimal)
    assert insert.keys == {"PK": "s-0"}
    assert insert.approximate_created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert insert.view_type == "NEW_AND_OLD_IMAGES" and insert.shard_id == "s"
    assert remove.removed_by_ttl and not modify.removed_by_ttl
    assert [int(r.sequence_number) for r in got] == sorted(int(r.sequence_number) for r in got)


async def test_keys_only_records_carry_no_images(
    db: Client, fake: FakeStreams, vtime: FakeTime
) -> None:
    fake.view = "KEYS_ONLY"
    fake.add_shard("s", closed=True, records=2)
    fake.status = "DISABLED"
    got = await collect(stream_of(db, vtime))
    assert [(r.keys, r.new, r.old, r.view_type) for r in got] == [
        ({"PK": "s-0"}, None, None, "KEYS_ONLY"),
        ({"PK": "s-1"}, None, None, "KEYS_ONLY"),
    ]


async def test_streams_requests_share_the_client_machinery(
    db: Client, fake: FakeStreams, vtime: FakeTime
) -> None:
    fake.add_shard("s", closed=True, records=1)
    fake.status = "DISABLED"
    await collect(stream_of(db, vtime))
    transport = db._dispatcher.transport
    assert isinstance(transport, ScriptedTransport)
    targets = {h["X-Amz-Target"] for h, _ in transport.requests}
    assert "DynamoDB_20120810.DescribeTable" in targets
    assert "DynamoDBStreams_20120810.GetRecords" in targets
    assert all("/dynamodb/aws4_request" in h["Authorization"] for h, _ in transport.requests)
    assert db.stats().requests["GetRecords"] == 1


async def test_one_iteration_at_a_time(db: Client, fake: FakeStreams, vtime: FakeTime) -> None:
    fake.add_shard("s", records=2)
    stream = stream_of(db, vtime)
    async with stream.records() as first:
        await anext(first)
        with pytest.raises(Exception, match="already being read"):
            await anext(stream.records())
    async with stream.records() as again:  # the first one is closed: allowed again
        await anext(again)


async def test_stream_endpoint_for_aws_and_for_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    aws = Client(
        region="eu-west-1",
        endpoint_url="https://dynamodb.eu-west-1.amazonaws.com",
        credentials=("a", "b"),
    )
    streams = aws._streams_dispatcher()
    assert streams is aws._streams_dispatcher()  # made once
    assert streams.transport is not aws._dispatcher.transport
    assert isinstance(streams.transport, LeanTransport)
    assert streams._base_headers["Host"] == "streams.dynamodb.eu-west-1.amazonaws.com"
    assert streams.stats is aws._dispatcher.stats
    await aws.close()
    assert streams.transport._closed

    local = Client(region="eu-west-1", endpoint_url="http://127.0.0.1:8000", credentials=("a", "b"))
    assert local._streams_dispatcher().transport is local._dispatcher.transport
    assert local._streams_dispatcher()._base_headers["Host"] == "127.0.0.1:8000"
    await local.close()


def test_stream_errors_are_mapped() -> None:
    body = {"__type": "com.amazonaws.dynamodb.v20120810#ExpiredIteratorException"}
    assert isinstance(error_from_response(400, body), ExpiredIterator)
    body = {"__type": "com.amazonaws.dynamodb.v20120810#TrimmedDataAccessException"}
    assert isinstance(error_from_response(400, body), TrimmedDataAccess)
    assert not ExpiredIterator.retryable


async def test_bad_options_are_refused(db: Client) -> None:
    from asyncdyn import ConfigurationError

    for options in (
        {"start": "earliest"},
        {"poll_interval": 0},
        {"limit": 1001},
        {"buffer": 0},
        {"checkpoints": object()},
    ):
        with pytest.raises(ConfigurationError):
            db.stream("T", **options)
