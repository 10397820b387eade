"""OpenTelemetry spans and metrics (``Client(telemetry=...)``), driven by a scripted transport
and read back from the SDK's in-memory span exporter and metric reader."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest

from asyncdyn import (
    Attr,
    Client,
    ConditionalCheckFailed,
    ConfigurationError,
    Key,
    RetriesExhausted,
    RetryPolicy,
    Telemetry,
)
from asyncdyn.testing import ScriptedTransport, answer, error, throttled

trace_sdk = pytest.importorskip("opentelemetry.sdk.trace")
metrics_sdk = pytest.importorskip("opentelemetry.sdk.metrics")
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

ACCESS_KEY = "AKIDTELEMETRYSENTINEL"
SECRET = "telemetry-SECRET-sentinel-wJalrXUtnFEMI"
TOKEN = "telemetry-TOKEN-sentinel-FwoGZXIvYXdz"
# Key and item values that must never reach an attribute, an event or a metric label.
KEY_VALUE = "CUSTOMER#value-sentinel-4711"
ITEM_VALUE = "item-value-sentinel-secret-address"


class Otel:
    """An SDK tracer and meter provider with in-memory exporters, for one test."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = trace_sdk.TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = metrics_sdk.MeterProvider(metric_readers=[self.reader])

    def telemetry(self) -> Telemetry:
        return Telemetry(tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)

    def finished(self) -> list[Any]:
        return list(self.spans.get_finished_spans())

    def metrics(self) -> dict[str, list[tuple[dict[str, Any], Any]]]:
        """Metric name -> [(attributes, value)]; a histogram's value is (count, sum)."""
        found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        data = self.reader.get_metrics_data()
        assert data is not None
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                assert scope.scope.name == "asyncdyn"
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        value = (point.count, point.sum) if hasattr(point, "count") else point.value
                        found.setdefault(metric.name, []).append((dict(point.attributes), value))
        return found


@pytest.fixture
def otel() -> Iterator[Otel]:
    o = Otel()
    yield o
    o.tracer_provider.shutdown()
    o.meter_provider.shutdown()


@pytest.fixture
async def traced(transport: ScriptedTransport, otel: Otel) -> AsyncIterator[Client]:
    async with Client(
        region="eu-west-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=(ACCESS_KEY, SECRET, TOKEN),
        retry=RetryPolicy(max_attempts=3, base=0.0),
        transport=transport,
        telemetry=otel.telemetry(),
    ) as db:
        yield db


def _value(points: list[tuple[dict[str, Any], Any]], **labels: Any) -> Any:
    matching = [v for attrs, v in points if all(attrs.get(k) == w for k, w in labels.items())]
    assert len(matching) == 1, (labels, points)
    return matching[0]


async def test_a_get_is_one_client_span_with_the_dynamodb_attributes(
    traced: Client, transport: ScriptedTransport, otel: Otel
) -> None:
    transport.steps = [answer({"Item": {"PK": {"S": KEY_VALUE}, "addr": {"S": ITEM_VALUE}}})]
    item = await traced.table("Orders").get({"PK": KEY_VALUE}, consistent=True)
    assert item == {"PK": KEY_VALUE, "addr": ITEM_VALUE}

    (span,) = otel.finished()
    assert span.name == "DynamoDB.GetItem"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    attrs = dict(span.attributes)
    assert attrs == {
        "db.system.name": "aws.dynamodb",
        "db.operation.name": "GetItem",
        "db.collection.name": "Orders",
        "rpc.system": "aws-api",
        "rpc.service": "DynamoDB",
        "rpc.method": "GetItem",
        "cloud.region": "eu-west-1",
        "server.address": "127.0.0.1",
        "aws.dynamodb.table_names": ("Orders",),
        "aws.dynamodb.consistent_read": True,
    }
    metrics = otel.metrics()
    labels = {"db.operation.name": "GetItem", "db.collection.name": "Orders"}
    assert _value(metrics["asyncdyn.requests"], **labels) == 1
    count, total = _value(metrics["db.client.operation.duration"], **labels)
    assert count == 1 and total > 0
    assert "asyncdyn.errors" not in metrics and "asyncdyn.retries" not in metrics


async def test_retries_are_events_on_the_operation_span_and_throttles_are_counted(
    traced: Client, transport: ScriptedTransport, otel: Otel
) -> None:
    transport.steps = [
        throttled(),
        error("InternalServerError", "boom", 500),
        answer({"Count": 2, "ScannedCount": 5, "Items": [{"PK": {"S": KEY_VALUE}}] * 2}),
    ]
    page = await traced.table("Orders").query_page(
        Key("PK").eq(KEY_VALUE), index="GSI1", filter=Attr("addr").eq(ITEM_VALUE)
    )
    assert len(page.items) == 2
    assert transport.operations == ["Query"] * 3

    (span,) = otel.finished()
    assert span.name == "DynamoDB.Query"
    attrs = dict(span.attributes)
    assert attrs["aws.dynamodb.index_name"] == "GSI1"
    assert attrs["aws.dynamodb.count"] == 2
    assert attrs["aws.dynamodb.scanned_count"] == 5
    assert attrs["asyncdyn.attempts"] == 3
    events = [(e.name, dict(e.attributes)) for e in span.events]
    assert events == [
        (
            "asyncdyn.attempt_failed",
            {
                "error.type": "ProvisionedThroughputExceededException",
                "asyncdyn.attempt": 1,
                "asyncdyn.throttled": True,
            },
        ),
        (
            "asyncdyn.attempt_failed",
            {
                "error.type": "InternalServerError",
                "asyncdyn.attempt": 2,
                "asyncdyn.throttled": False,
            },
        ),
    ]
    metrics = otel.metrics()
    labels = {"db.operation.name": "Query", "db.collection.name": "Orders"}
    assert _value(metrics["asyncdyn.requests"], **labels) == 3
    assert _value(metrics["asyncdyn.retries"], **labels) == 2
    assert _value(metrics["asyncdyn.throttles"], **labels) == 1
    assert "asyncdyn.errors" not in metrics  # the operation succeeded in the end
    assert traced.stats().retries == 2 and traced.stats().throttles == 1


async def test_a_failed_operation_sets_error_status_with_the_code_and_no_message(
    traced: Client, transport: ScriptedTransport, otel: Otel
) -> None:
    transport.steps = [error("ConditionalCheckFailedException", f"key {KEY_VALUE} exists")]
    with pytest.raises(ConditionalCheckFailed):
        await traced.table("Orders").put(
            {"PK": KEY_VALUE, "addr": ITEM_VALUE}, condition=Attr("PK").not_exists()
        )
    (span,) = otel.finished()
    assert span.name == "DynamoDB.PutItem"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "ConditionalCheckFailedException"
    assert span.attributes["error.type"] == "ConditionalCheckFailedException"
    assert not span.events  # no exception event: its message could name the key
    metrics = otel.metrics()
    assert (
        _value(metrics["asyncdyn.errors"], **{"error.type": "ConditionalCheckFailedException"}) == 1
    )


async def test_exhausted_retries_count_every_throttle_and_end_in_error(
    traced: Client, transport: ScriptedTransport, otel: Otel
) -> None:
    transport.default = throttled()
    with pytest.raises(RetriesExhausted):
        await traced.table("Orders").get({"PK": KEY_VALUE})
    (span,) = otel.finished()
    assert span.attributes["error.type"] == "RetriesExhausted"
    assert len(span.events) == 3  # max_attempts=3: three throttled answers
    metrics = otel.metrics()
    assert _value(metrics["asyncdyn.throttles"], **{"db.operation.name": "GetItem"}) == 3
    assert _value(metrics["asyncdyn.retries"], **{"db.operation.name": "GetItem"}) == 2
    assert _value(metrics["asyncdyn.requests"], **{"db.operation.name": "GetItem"}) == 3


async def test_batch_requests_record_their_size_and_what_was_left_unprocessed(
    traced: Client, transport: ScriptedTransport, otel: Otel
) -> None:
    items = [{"PK": f"{KEY_VALUE}-{n}", "addr": ITEM_VALUE} for n in range(30)]

    def first_chunk_leaves_two(headers: Any, body: bytes) -> Any:
        writes = orjson.loads(body)["RequestItems"]["Orders"]
        return answer({"UnprocessedItems": {"Orders": writes[:2]}})

    transport.steps = [first_chunk_leaves_two]
    transport.default = answer({"UnprocessedItems": {}})
    await traced.table("Orders", key=("PK",)).batch_write(puts=items)
    assert transport.operations == ["BatchWriteItem"] * 3

    spans = otel.finished()
    assert [s.name for s in spans] == ["DynamoDB.BatchWriteItem"] * 3
    sizes = sorted(s.attributes["asyncdyn.batch.size"] for s in spans)
    assert sizes == [2, 5, 25]
    left = sorted(s.attributes["asyncdyn.batch.unprocessed"] for s in spans)
    assert left == [0, 0, 2]
    assert all(s.attributes["asyncdyn.single_request"] for s in spans)

    metrics = otel.metrics()
    labels = {"db.operation.name": "BatchWriteItem", "db.collection.name": "Orders"}
    assert _value(metrics["asyncdyn.batch.size"], **labels) == (3, 32)
    assert _value(metrics["asyncdyn.batch.unprocessed"], **labels) == 2
    assert _value(metrics["asyncdyn.retries"], **labels) == 1
    assert _value(metrics["asyncdyn.requests"], **labels) == 3


async def test_a_throttled_batch_request_is_counted_against_its_table(
    traced: Client, transport: ScriptedTransport, otel: Otel
) -> None:
    def found(headers: Any, body: bytes) -> Any:
        keys = orjson.loads(body)["RequestItems"]["Orders"]["Keys"]
        return answer({"Responses": {"Orders": keys}, "UnprocessedKeys": {}})

    transport.steps = [throttled(), found]
    rows = await traced.table("Orders", key=("PK",)).batch_get([{"PK": KEY_VALUE}])
    assert rows == [{"PK": KEY_VALUE}]
    spans = otel.finished()
    assert [s.status.status_code for s in spans] == [StatusCode.ERROR, StatusCode.UNSET]
    metrics = otel.metrics()
    labels = {"db.operation.name": "BatchGetItem", "db.collection.name": "Orders"}
    assert _value(metrics["asyncdyn.throttles"], **labels) == 1
    assert _value(metrics["asyncdyn.retries"], **labels) == 1
    assert _value(metrics["asyncdyn.batch.size"], **labels) == (2, 2)


async def test_consumed_capacity_is_recorded_only_when_asked_for(
    transport: ScriptedTransport, otel: Otel
) -> None:
    capacity = {"TableName": "Orders", "CapacityUnits": 0.5}
    transport.default = answer({"Item": {"PK": {"S": KEY_VALUE}}, "ConsumedCapacity": capacity})
    for mode in ("NONE", "TOTAL"):
        async with Client(
            region="eu-west-1",
            endpoint_url="http://127.0.0.1:9",
            credentials=(ACCESS_KEY, SECRET),
            transport=transport,
            consumed_capacity=mode,  # type: ignore[arg-type]
            telemetry=otel.telemetry(),
        ) as db:
            await db.table("Orders").get({"PK": KEY_VALUE})
    unasked, asked = otel.finished()
    assert "aws.dynamodb.consumed_capacity" not in unasked.attributes
    (entry,) = asked.attributes["aws.dynamodb.consumed_capacity"]
    assert orjson.loads(entry) == capacity
    points = otel.metrics()["asyncdyn.consumed_capacity"]
    assert points == [
        (
            {
                "db.system.name": "aws.dynamodb",
                "db.operation.name": "GetItem",
                "db.collection.name": "Orders",
            },
            0.5,
        )
    ]


async def test_transactions_name_every_table_and_count_their_actions(
    traced: Client, transport: ScriptedTransport, otel: Otel
) -> None:
    transport.default = answer({})
    orders = traced.table("Orders", key=("PK",))
    audit = traced.table("Audit", key=("PK",))
    await traced.transact_write(
        [
            orders.tx_update({"PK": KEY_VALUE}, Attr("n").add(1)),
            audit.tx_put({"PK": KEY_VALUE, "addr": ITEM_VALUE}),
        ]
    )
    (span,) = otel.finished()
    assert span.name == "DynamoDB.TransactWriteItems"
    assert span.attributes["aws.dynamodb.table_names"] == ("Audit", "Orders")
    assert "db.collection.name" not in span.attributes  # several tables: none is "the" one
    assert span.attributes["asyncdyn.batch.size"] == 2


async def test_nothing_secret_or_valued_reaches_any_span_or_metric(
    traced: Client, transport: ScriptedTransport, otel: Otel
) -> None:
    transport.steps = [
        throttled(),
        answer({"Item": {"PK": {"S": KEY_VALUE}, "addr": {"S": ITEM_VALUE}}}),
        error("ConditionalCheckFailedException", f"{KEY_VALUE} {ITEM_VALUE}"),
        answer({"Items": [{"PK": {"S": KEY_VALUE}}], "Count": 1, "ScannedCount": 1}),
    ]
    table = traced.table("Orders")
    await table.get({"PK": KEY_VALUE})
    with pytest.raises(ConditionalCheckFailed):
        await table.update(
            {"PK": KEY_VALUE},
            Attr("addr").set(ITEM_VALUE),
            condition=Attr("addr").ne(ITEM_VALUE),
        )
    await table.query_page(Key("PK").eq(KEY_VALUE), filter=Attr("addr").eq(ITEM_VALUE))
    signed = transport.requests[0][0]["Authorization"].rpartition("Signature=")[2]

    dumped = [span.to_json() for span in otel.finished()]
    dumped.append(otel.reader.get_metrics_data().to_json())  # type: ignore[union-attr]
    everything = "\n".join(dumped)
    assert "DynamoDB.UpdateItem" in everything and "asyncdyn.throttles" in everything
    for forbidden in (ACCESS_KEY, SECRET, TOKEN, signed, KEY_VALUE, ITEM_VALUE, "CUSTOMER#"):
        assert forbidden not in everything, forbidden


async def test_the_span_is_current_while_the_request_runs(
    transport: ScriptedTransport, otel: Otel
) -> None:
    from opentelemetry import trace

    seen: list[str] = []

    def record(headers: Any, body: bytes) -> Any:
        seen.append(trace.get_current_span().name)  # type: ignore[attr-defined]
        return answer({})

    transport.default = record
    tracer = otel.tracer_provider.get_tracer("app")
    async with Client(
        region="eu-west-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=(ACCESS_KEY, SECRET),
        transport=transport,
        telemetry=otel.telemetry(),
    ) as db:
        with tracer.start_as_current_span("handler"):
            await db.table("Orders").get({"PK": KEY_VALUE})
    get, handler = otel.finished()
    assert seen == ["DynamoDB.GetItem"]
    assert get.parent is not None and get.parent.span_id == handler.context.span_id


async def test_spans_or_metrics_can_be_left_out(transport: ScriptedTransport, otel: Otel) -> None:
    transport.default = answer({})
    telemetry = Telemetry(
        tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider, spans=False
    )
    async with Client(
        region="eu-west-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=(ACCESS_KEY, SECRET),
        transport=transport,
        telemetry=telemetry,
    ) as db:
        await db.table("Orders").get({"PK": KEY_VALUE})
    assert otel.finished() == []
    assert _value(otel.metrics()["asyncdyn.requests"], **{"db.operation.name": "GetItem"}) == 1


def test_telemetry_argument_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="telemetry must be"):
        Client(
            region="eu-west-1",
            endpoint_url="http://127.0.0.1:9",
            credentials=("a", "b"),
            telemetry="yes",  # type: ignore[arg-type]
        )


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_client_without_telemetry_never_imports_opentelemetry() -> None:
    # A fresh interpreter: this one has the SDK loaded by the tests above.
    code = """
import asyncio, sys
from asyncdyn import Client, Telemetry
from asyncdyn.testing import ScriptedTransport, answer

async def main():
    transport = ScriptedTransport(default=answer({"Item": {"PK": {"S": "a"}}}))
    async with Client(region="us-east-1", endpoint_url="http://127.0.0.1:9",
                      credentials=("a", "b"), transport=transport) as db:
        await db.table("T").get({"PK": "a"})
        await db.table("T").query_page(__import__("asyncdyn").Key("PK").eq("a"))

asyncio.run(main())
print(sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry"))
"""
    assert _run(code) == "[]"


def test_telemetry_without_opentelemetry_names_the_extra() -> None:
    # opentelemetry made unimportable, as in an environment without the otel extra.
    code = """
import sys
sys.modules["opentelemetry"] = None
from asyncdyn import Client, ConfigurationError
try:
    Client(region="us-east-1", endpoint_url="http://127.0.0.1:9", credentials=("a", "b"),
           telemetry=True)
except ConfigurationError as exc:
    print(exc)
"""
    out = _run(code)
    assert "asyncdyn[otel]" in out and "opentelemetry" in out


async def test_a_cancelled_call_is_not_an_error(transport: ScriptedTransport, otel: Otel) -> None:
    started = asyncio.Event()

    async def never(headers: Any, body: bytes) -> Any:
        started.set()
        await asyncio.Event().wait()

    transport.default = never
    async with Client(
        region="eu-west-1",
        endpoint_url="http://[::1]:8000",
        credentials=(ACCESS_KEY, SECRET),
        transport=transport,
        telemetry=otel.telemetry(),
    ) as db:
        task = asyncio.create_task(db.table("Orders").get({"PK": KEY_VALUE}))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    (span,) = otel.finished()
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["asyncdyn.cancelled"] is True
    assert span.attributes["server.address"] == "::1"
    assert "asyncdyn.errors" not in otel.metrics()


async def test_the_streams_api_is_traced_under_its_own_service(
    transport: ScriptedTransport, otel: Otel
) -> None:
    arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/Orders/stream/2026-01-01T00:00:00.000"
    transport.default = answer({"StreamDescription": {"StreamArn": arn, "Shards": []}})
    async with Client(
        region="eu-west-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=(ACCESS_KEY, SECRET),
        transport=transport,
        telemetry=otel.telemetry(),
    ) as db:
        await db._streams_dispatcher().call("DescribeStream", {"StreamArn": arn})
    (span,) = otel.finished()
    assert span.name == "DynamoDBStreams.DescribeStream"
    assert span.attributes["rpc.service"] == "DynamoDB Streams"
    assert "aws.dynamodb.table_names" not in span.attributes


def test_telemetry_true_reports_to_the_global_providers() -> None:
    # A fresh interpreter: the global providers can be set once per process.
    code = """
import asyncio
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from asyncdyn import Client
from asyncdyn.testing import ScriptedTransport, answer

async def main():
    # The client first: the global providers are proxies that follow a later set-up.
    transport = ScriptedTransport(default=answer({}))
    async with Client(region="us-east-1", endpoint_url="http://127.0.0.1:9",
                      credentials=("a", "b"), transport=transport, telemetry=True) as db:
        spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(spans))
        trace.set_tracer_provider(provider)
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        await db.table("T").get({"PK": "a"})
    print([s.name for s in spans.get_finished_spans()])
    data = reader.get_metrics_data()
    print(sorted(m.name for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics))

asyncio.run(main())
"""
    spans, metric_names = _run(code).splitlines()
    assert spans == "['DynamoDB.GetItem']"
    assert "asyncdyn.requests" in metric_names and "db.client.operation.duration" in metric_names


async def test_hot_keys_count_the_same_with_telemetry_on_across_retries_and_resends(
    otel: Otel,
) -> None:
    # Both wrap the read of an answer: telemetry must not change what the sketch counts on
    # a throttled get, a throttled batch read, or a conditional put whose lost answer is
    # recognised on its resend (counted once, not once per attempt).
    from asyncdyn import HotKeys, TransportError
    from asyncdyn.marshal import encode_item

    item = {"PK": "hot", "v": 1}

    def lost(headers: Any, body: bytes) -> Any:
        raise TransportError("connection reset after sending")

    async def run(telemetry: Telemetry | None) -> tuple[Any, ...]:
        transport = ScriptedTransport(
            [
                lost,
                error("ConditionalCheckFailedException", "no", Item=encode_item(item)),
                throttled(),
                answer({"Item": encode_item(item)}),
                throttled(),
                answer({"Responses": {"T": [encode_item(item)]}, "UnprocessedKeys": {}}),
            ]
        )
        sketch = HotKeys(clock=lambda: 100.0)
        async with Client(
            region="eu-west-1",
            endpoint_url="http://127.0.0.1:9",
            credentials=(ACCESS_KEY, SECRET),
            retry=RetryPolicy(max_attempts=3, base=0.0),
            transport=transport,
            hot_keys=sketch,
            telemetry=telemetry or False,
        ) as db:
            table = db.table("T", key=("PK",))
            await table.put(item, condition=Attr("PK").not_exists())
            assert await table.get({"PK": "hot"}) == item
            assert await table.batch_get([{"PK": "hot"}]) == [item]
            assert len(transport.requests) == 6
            (hot,) = db.stats().hot_keys
            return hot.key, hot.read_units, hot.write_units, hot.throttles, sketch.skipped

    plain = await run(None)
    assert plain == ({"PK": "hot"}, 1.0, 1.0, 2, 0)  # two eventually consistent reads
    assert await run(otel.telemetry()) == plain
    metrics = otel.metrics()
    assert _value(metrics["asyncdyn.throttles"], **{"db.operation.name": "GetItem"}) == 1
    assert _value(metrics["asyncdyn.throttles"], **{"db.operation.name": "BatchGetItem"}) == 1
