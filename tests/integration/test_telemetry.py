"""Telemetry against a real server: the spans and metrics of get, put, batch_write and
query, read back from the OpenTelemetry SDK's in-memory exporter and reader."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from asyncdyn import Client, Key, Table, Telemetry
from asyncdyn.local import LocalServer

trace_sdk = pytest.importorskip("opentelemetry.sdk.trace")
metrics_sdk = pytest.importorskip("opentelemetry.sdk.metrics")
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind, StatusCode  # noqa: E402

SECRET_VALUE = "address-sentinel-221B-Baker-Street"


def _points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = (point.count, point.sum) if hasattr(point, "count") else point.value
                    found.setdefault(metric.name, []).append((dict(point.attributes), value))
    return found


def _total(points: list[tuple[dict[str, Any], Any]], operation: str) -> Any:
    """The sum of a counter's points for ``operation``, or a histogram's (count, sum)."""
    values = [v for attrs, v in points if attrs["db.operation.name"] == operation]
    if values and isinstance(values[0], tuple):
        return tuple(map(sum, zip(*values, strict=True)))
    return sum(values)


async def test_spans_and_metrics_of_a_session(server: LocalServer, table: Table) -> None:
    spans = InMemorySpanExporter()
    tracer_provider = trace_sdk.TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = metrics_sdk.MeterProvider(metric_readers=[reader])
    try:
        async with Client(
            region="us-east-1",
            endpoint_url=server.endpoint_url,
            credentials=("testing", "testing"),
            consumed_capacity="TOTAL",
            telemetry=Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider),
        ) as db:
            t = db.table(table.name, key=("PK", "SK"))
            await t.put({"PK": "CUSTOMER#1", "SK": "PROFILE", "addr": SECRET_VALUE})
            assert (await t.get({"PK": "CUSTOMER#1", "SK": "PROFILE"}))["addr"] == SECRET_VALUE
            orders = [{"PK": "CUSTOMER#1", "SK": f"ORDER#{n:03d}"} for n in range(30)]
            await t.batch_write(puts=orders)
            found = [o async for o in t.query(Key("PK").eq("CUSTOMER#1"))]
            assert len(found) == 31
    finally:
        tracer_provider.shutdown()

    finished = spans.get_finished_spans()
    names = [s.name for s in finished]
    assert names.count("DynamoDB.PutItem") == 1
    assert names.count("DynamoDB.GetItem") == 1
    assert names.count("DynamoDB.BatchWriteItem") == 2  # 25 + 5
    assert names.count("DynamoDB.Query") >= 1
    for span in finished:
        assert span.kind is SpanKind.CLIENT
        assert span.status.status_code is StatusCode.UNSET, span.name
        assert span.attributes["db.system.name"] == "aws.dynamodb"
        assert span.attributes["rpc.method"] == span.name.partition(".")[2]
        assert span.attributes["server.address"] == "127.0.0.1"
        assert SECRET_VALUE not in span.to_json() and "CUSTOMER#" not in span.to_json()
        if span.name != "DynamoDB.DescribeTable":
            assert span.attributes["aws.dynamodb.table_names"] == (table.name,)
    batches = [s for s in finished if s.name == "DynamoDB.BatchWriteItem"]
    assert sorted(s.attributes["asyncdyn.batch.size"] for s in batches) == [5, 25]
    assert all(s.attributes["asyncdyn.batch.unprocessed"] == 0 for s in batches)
    (query,) = [s for s in finished if s.name == "DynamoDB.Query"]
    assert query.attributes["aws.dynamodb.count"] == 31

    metrics = _points(reader)
    meter_provider.shutdown()
    requests = metrics["asyncdyn.requests"]
    assert _total(requests, "PutItem") == 1
    assert _total(requests, "GetItem") == 1
    assert _total(requests, "BatchWriteItem") == 2
    assert _total(metrics["asyncdyn.batch.size"], "BatchWriteItem") == (2, 30)
    assert _total(metrics["db.client.operation.duration"], "GetItem")[0] == 1
    # Both servers answer ReturnConsumedCapacity=TOTAL for the table.
    capacity = metrics["asyncdyn.consumed_capacity"]
    assert {attrs["db.collection.name"] for attrs, _ in capacity} == {table.name}
    assert _total(capacity, "PutItem") > 0 and _total(capacity, "BatchWriteItem") > 0
    assert "asyncdyn.errors" not in metrics and "asyncdyn.throttles" not in metrics


DOC = Path(__file__).resolve().parents[2] / "docs" / "observability.md"


async def test_the_observability_page_example_runs_as_written(
    server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    text = DOC.read_text()
    match = re.search(r"<!-- example: otel-sdk -->\n```python\n(.*?)```", text, re.S)
    assert match is not None
    code = match.group(1)
    # Its own table (dynalite cannot be reset) and the session's server; run by the test's
    # event loop instead of asyncio.run.
    table = f"t-{uuid.uuid4().hex[:16]}"
    assert code.count('"Observed"') == 2 and code.count("asyncio.run(main())") == 1
    code = code.replace('"Observed"', repr(table)).replace("asyncio.run(main())", "")
    namespace: dict[str, Any] = {"__name__": "observability_example"}
    exec(compile(code, "docs/observability.md", "exec", dont_inherit=True), namespace)
    await namespace["main"](server.endpoint_url)
    shown = re.search(r"which prints\n\n```text\n(.*?)```", text, re.S)
    assert shown is not None
    assert capsys.readouterr().out == shown.group(1)
