"""OpenTelemetry spans and metrics for a client's DynamoDB calls (the ``otel`` extra).

This is the one module that imports ``opentelemetry``, and only when a ``Telemetry`` is
made: importing asyncdyn, or running a client without telemetry, never loads it. The
dispatcher holds ``None`` when telemetry is off and looks at that once per call, which is
all that "off" costs.

What is recorded follows the OpenTelemetry semantic conventions for AWS DynamoDB client
operations (a ``CLIENT`` span named ``DynamoDB.<Operation>``, ``db.system.name`` =
``aws.dynamodb``, ``rpc.method``, ``aws.dynamodb.table_names``...). Only names and numbers
are ever recorded: table and index names, operation names, counts, capacity units, error
codes. Never a header (so never a credential or a signature), never an item, never a key
value, never an expression value, and never an exception's message, which may name a key.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import orjson

from .errors import ConfigurationError, ServiceError, Throttled

__all__ = ["Recorder", "Telemetry", "telemetry_from"]

T = TypeVar("T")

_SCOPE = "asyncdyn"
_SYSTEM = "aws.dynamodb"
# Request fields copied to the span as they are (all are flags or numbers, never values),
# with the semantic-convention attribute each becomes, by the operations that have them.
_CONSISTENT = ("ConsistentRead", "aws.dynamodb.consistent_read")
_LIMIT = ("Limit", "aws.dynamodb.limit")
_SELECT = ("Select", "aws.dynamodb.select")
_REQUEST_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "GetItem": (_CONSISTENT,),
    "Query": (_CONSISTENT, _LIMIT, _SELECT, ("ScanIndexForward", "aws.dynamodb.scan_forward")),
    "Scan": (
        _CONSISTENT,
        _LIMIT,
        _SELECT,
        ("Segment", "aws.dynamodb.segment"),
        ("TotalSegments", "aws.dynamodb.total_segments"),
    ),
}
# Span name, attributes and metric labels are the same for every request of one operation
# on one table (and index): made once, up to this many kept.
_SHAPES = 1024
_BATCHES = frozenset({"BatchGetItem", "BatchWriteItem", "TransactGetItems", "TransactWriteItems"})

# The request this task sent last: what a backoff that follows it is about. Left set after
# the request ends, because the batch engine and transact_write decide to retry only after
# the attempt has returned; a nested call (a write recognising its own lost answer by
# reading the item) hands it back to the call it is nested in.
_last: contextvars.ContextVar[_Request] = contextvars.ContextVar("asyncdyn_telemetry_request")


def _missing_extra() -> ConfigurationError:
    return ConfigurationError(
        "telemetry needs OpenTelemetry: pip install 'asyncdyn[otel]' (opentelemetry-api)"
    )


class Telemetry:
    """Where a client's spans and metrics go.

    ``Client(telemetry=True)`` uses the global tracer and meter providers (whatever the
    application configured with ``opentelemetry.trace.set_tracer_provider``...);
    ``Client(telemetry=Telemetry(tracer_provider=tp, meter_provider=mp))`` uses these.
    ``spans=False`` or ``metrics=False`` leaves one of the two out.

    Raises ``ConfigurationError`` when ``opentelemetry-api`` is not installed.
    """

    __slots__ = (
        "_attach",
        "_batch_size",
        "_capacity",
        "_client_kind",
        "_detach",
        "_duration",
        "_error_status",
        "_errors",
        "_in_context",
        "_requests",
        "_retries",
        "_throttles",
        "_tracer",
        "_unprocessed",
        "metrics",
        "spans",
    )

    def __init__(
        self,
        *,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        spans: bool = True,
        metrics: bool = True,
    ) -> None:
        try:
            from opentelemetry import context, trace
            from opentelemetry import metrics as otel_metrics
        except ImportError:
            raise _missing_extra() from None
        # Kept at hand so that a call imports nothing.
        self._attach = context.attach
        self._detach = context.detach
        self._in_context = trace.set_span_in_context
        self._client_kind = trace.SpanKind.CLIENT
        self._error_status = trace.StatusCode.ERROR
        self.spans = spans
        self.metrics = metrics
        version = _version()
        self._tracer = trace.get_tracer(_SCOPE, version, tracer_provider=tracer_provider)
        meter = otel_metrics.get_meter(_SCOPE, version or "", meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "db.client.operation.duration",
            unit="s",
            description="Duration of one DynamoDB call: an operation with its retries, "
            "or one request of a batch",
        )
        self._requests = meter.create_counter(
            "asyncdyn.requests", unit="{request}", description="Requests sent, retries included"
        )
        self._retries = meter.create_counter(
            "asyncdyn.retries",
            unit="{retry}",
            description="Requests sent again after a retryable failure or unprocessed work",
        )
        self._throttles = meter.create_counter(
            "asyncdyn.throttles", unit="{response}", description="Throttling answers"
        )
        self._errors = meter.create_counter(
            "asyncdyn.errors",
            unit="{call}",
            description="Calls that ended in an error, by error.type",
        )
        self._capacity = meter.create_counter(
            "asyncdyn.consumed_capacity",
            unit="{capacity_unit}",
            description="Capacity units DynamoDB reported (when the client asks for them)",
        )
        self._batch_size = meter.create_histogram(
            "asyncdyn.batch.size",
            unit="{item}",
            description="Items (keys, writes or actions) in one batch or transaction request",
        )
        self._unprocessed = meter.create_counter(
            "asyncdyn.batch.unprocessed",
            unit="{item}",
            description="Keys or writes a batch request left unprocessed",
        )

    def recorder(self, *, service: str, region: str, host: str) -> Recorder:
        """What a dispatcher of ``service`` (``"DynamoDB"``, ``"DynamoDB Streams"``) calls."""
        return Recorder(self, service, region, host)


def telemetry_from(value: Telemetry | bool | None) -> Telemetry | None:
    """The ``Client(telemetry=...)`` argument as a ``Telemetry``, or ``None`` when off."""
    if value is None or value is False:
        return None
    if value is True:
        return Telemetry()
    if isinstance(value, Telemetry):
        return value
    raise ConfigurationError(f"telemetry must be True, False or a Telemetry, got {value!r}")


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("asyncdyn")
    except PackageNotFoundError:
        return None


class Recorder:
    """The hooks one dispatcher calls: ``call`` around a call, ``failed`` and ``retried``
    from its backoff. Attributes that never change (system, service, region, server) are
    built once here."""

    __slots__ = ("_base", "_name_prefix", "_shapes", "service", "telemetry")

    def __init__(self, telemetry: Telemetry, service: str, region: str, host: str) -> None:
        self.telemetry = telemetry
        self.service = service
        self._name_prefix = service.replace(" ", "") + "."
        self._base: dict[str, Any] = {
            "db.system.name": _SYSTEM,
            "rpc.system": "aws-api",
            "rpc.service": service,
            "cloud.region": region,
            "server.address": _server_address(host),
        }
        self._shapes: dict[tuple[str, str, str | None], _Shape] = {}

    def shape(self, operation: str, payload: Mapping[str, Any]) -> _Shape:
        """The span name, span attributes and metric labels of a request (never mutated)."""
        table = payload.get("TableName")
        if not isinstance(table, str):  # a batch or a transaction: tables vary per request
            return self._make_shape(operation, _table_names(payload), None)
        index = payload.get("IndexName")
        key = (operation, table, index if isinstance(index, str) else None)
        shape = self._shapes.get(key)
        if shape is None:
            if len(self._shapes) >= _SHAPES:
                self._shapes.clear()
            shape = self._shapes[key] = self._make_shape(operation, [table], key[2])
        return shape

    def _make_shape(self, operation: str, tables: list[str], index: str | None) -> _Shape:
        labels: dict[str, Any] = {"db.system.name": _SYSTEM, "db.operation.name": operation}
        attributes = dict(self._base)
        attributes["rpc.method"] = operation
        attributes["db.operation.name"] = operation
        if tables:
            attributes["aws.dynamodb.table_names"] = tables
            if len(tables) == 1:
                attributes["db.collection.name"] = labels["db.collection.name"] = tables[0]
        if index is not None:
            attributes["aws.dynamodb.index_name"] = index
        return self._name_prefix + operation, attributes, labels

    def sibling(self, *, service: str, host: str) -> Recorder:
        """The recorder of another service of the same client (DynamoDB Streams)."""
        return Recorder(self.telemetry, service, str(self._base["cloud.region"]), host)

    async def call(
        self,
        operation: str,
        payload: Mapping[str, Any],
        read: Callable[[dict[str, Any]], T],
        run: Callable[[Callable[[dict[str, Any]], T]], Awaitable[T]],
        *,
        retries_inside: bool,
    ) -> T:
        """Run ``run(observed_read)`` as one traced call of ``operation``.

        ``retries_inside``: the call retries on its own (``Dispatcher.call_read``), so its
        span covers every attempt and each failed one is an event on it; otherwise it is
        one request (``Dispatcher.attempt_read``, the batch engine's), one span each.
        """
        request = _Request(self, operation, payload, retries_inside)
        previous = _last.get(None)
        _last.set(request)
        telemetry = self.telemetry
        # The span is current while the request runs: a transport instrumented on its own
        # (aiohttp's) makes its spans children of this one.
        token = (
            None if request.span is None else telemetry._attach(telemetry._in_context(request.span))
        )

        def observed(data: dict[str, Any]) -> T:
            request.answered(data)
            return read(data)

        try:
            result = await run(observed)
        except asyncio.CancelledError:
            # The caller gave up (a deadline of its own, a fan-out that has enough): not a
            # failure of DynamoDB's, so no error status and no error count.
            request.finish(None, cancelled=True)
            raise
        except BaseException as exc:
            request.finish(exc)
            raise
        finally:
            if token is not None:
                telemetry._detach(token)
            # Nested in a call still running: that call is again the one a backoff is about.
            if previous is not None and previous.open:
                _last.set(previous)
        request.finish(None)
        return result

    def failed(self, error: BaseException) -> None:
        """An attempt failed with a retryable ``error`` (the backoff decides next)."""
        request = _last.get(None)
        if request is not None and request.recorder is self:
            request.failed(error)

    def retried(self) -> None:
        """The backoff is over: the request goes again."""
        request = _last.get(None)
        if request is not None and request.recorder is self:
            request.retried()


def error_type(error: BaseException) -> str:
    """A low-cardinality name of ``error``: the DynamoDB code, else the class name (the
    message never: it may name a key)."""
    if isinstance(error, ServiceError):
        return error.code
    return type(error).__name__


_Shape = tuple[str, dict[str, Any], dict[str, Any]]


class _Request:
    """One traced call: its span, the attributes its metrics carry, and what it saw."""

    __slots__ = (
        "attempts",
        "capacity_asked",
        "labels",
        "open",
        "operation",
        "recorder",
        "span",
        "started",
    )

    def __init__(
        self, recorder: Recorder, operation: str, payload: Mapping[str, Any], whole: bool
    ) -> None:
        self.recorder = recorder
        self.operation = operation
        self.attempts = 1
        self.open = True
        name, attributes, self.labels = recorder.shape(operation, payload)
        asked = payload.get("ReturnConsumedCapacity")
        self.capacity_asked = asked is not None and asked != "NONE"
        telemetry = recorder.telemetry
        size = _batch_size(operation, payload)
        if size is not None and telemetry.metrics:
            telemetry._batch_size.record(size, self.labels)
        self.span: Any = None
        if telemetry.spans:
            extra: dict[str, Any] = {}
            for field, attribute in _REQUEST_FIELDS.get(operation, ()):
                value = payload.get(field)
                if isinstance(value, bool | int | str):
                    extra[attribute] = value
            if size is not None:
                extra["asyncdyn.batch.size"] = size
            if not whole:
                extra["asyncdyn.single_request"] = True
            if extra:
                attributes = {**attributes, **extra}
            self.span = telemetry._tracer.start_span(
                name, kind=telemetry._client_kind, attributes=attributes
            )
        self.started = time.perf_counter()

    def answered(self, data: Mapping[str, Any]) -> None:
        """Read what an answer says about the call: capacity, counts, unprocessed work."""
        telemetry = self.recorder.telemetry
        span = self.span
        consumed = data.get("ConsumedCapacity") if self.capacity_asked else None
        if consumed is not None:
            entries = consumed if isinstance(consumed, list) else [consumed]
            entries = [entry for entry in entries if isinstance(entry, dict)]
            if span is not None:
                span.set_attribute(
                    "aws.dynamodb.consumed_capacity",
                    [orjson.dumps(entry).decode() for entry in entries],
                )
            if telemetry.metrics:
                for entry in entries:
                    units = entry.get("CapacityUnits")
                    if isinstance(units, int | float):
                        labels = dict(self.labels)
                        table = entry.get("TableName")
                        if isinstance(table, str):
                            labels["db.collection.name"] = table
                        telemetry._capacity.add(units, labels)
        if span is not None:
            for field, attribute in (
                ("Count", "aws.dynamodb.count"),
                ("ScannedCount", "aws.dynamodb.scanned_count"),
            ):
                value = data.get(field)
                if isinstance(value, int):
                    span.set_attribute(attribute, value)
        left = _unprocessed(data)
        if left is not None:
            if span is not None:
                span.set_attribute("asyncdyn.batch.unprocessed", left)
            if left and telemetry.metrics:
                telemetry._unprocessed.add(left, self.labels)

    def failed(self, error: BaseException) -> None:
        telemetry = self.recorder.telemetry
        throttled = isinstance(error, Throttled)
        if throttled and telemetry.metrics:
            telemetry._throttles.add(1, self.labels)
        if self.open and self.span is not None:
            self.span.add_event(
                "asyncdyn.attempt_failed",
                {
                    "error.type": error_type(error),
                    "asyncdyn.attempt": self.attempts,
                    "asyncdyn.throttled": throttled,
                },
            )

    def retried(self) -> None:
        telemetry = self.recorder.telemetry
        if telemetry.metrics:
            telemetry._retries.add(1, self.labels)
        if self.open:
            # A retry inside the call: its requests are counted when it ends. (A batch
            # engine's retry is a new request, with a span and a count of its own.)
            self.attempts += 1

    def finish(self, error: BaseException | None, *, cancelled: bool = False) -> None:
        self.open = False
        telemetry = self.recorder.telemetry
        span = self.span
        labels = self.labels
        if error is not None:
            labels = {**labels, "error.type": error_type(error)}
        if telemetry.metrics:
            telemetry._duration.record(time.perf_counter() - self.started, labels)
            telemetry._requests.add(self.attempts, self.labels)
            if error is not None:
                telemetry._errors.add(1, labels)
        if span is not None:
            if self.attempts > 1:
                span.set_attribute("asyncdyn.attempts", self.attempts)
            if cancelled:
                span.set_attribute("asyncdyn.cancelled", True)
            if error is not None:
                span.set_attribute("error.type", labels["error.type"])
                # The code only, never the message (it may name a key).
                span.set_status(telemetry._error_status, labels["error.type"])
            span.end()


def _server_address(host: str) -> str:
    """The host name of a ``Host`` header value: without its port or IPv6 brackets."""
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.partition(":")[0]


def _table_names(payload: Mapping[str, Any]) -> list[str]:
    name = payload.get("TableName")
    if isinstance(name, str):
        return [name]
    items = payload.get("RequestItems")  # BatchGetItem, BatchWriteItem
    if isinstance(items, dict):
        return sorted(items)
    names: set[str] = set()
    for action in payload.get("TransactItems") or ():  # TransactWriteItems, TransactGetItems
        if isinstance(action, dict):
            for part in action.values():
                table = part.get("TableName") if isinstance(part, dict) else None
                if isinstance(table, str):
                    names.add(table)
    return sorted(names)


def _batch_size(operation: str, payload: Mapping[str, Any]) -> int | None:
    """Items in a batch or transaction request: keys, writes or actions."""
    if operation not in _BATCHES:
        return None
    items = payload.get("RequestItems")
    if isinstance(items, dict):
        if operation == "BatchGetItem":
            return sum(len(part.get("Keys") or ()) for part in items.values())
        return sum(len(part) for part in items.values())
    return len(payload.get("TransactItems") or ())


def _unprocessed(data: Mapping[str, Any]) -> int | None:
    """Keys or writes a batch answer left unprocessed (``None``: not a batch answer)."""
    keys = data.get("UnprocessedKeys")
    if isinstance(keys, dict):
        return sum(len(part.get("Keys") or ()) for part in keys.values())
    writes = data.get("UnprocessedItems")
    if isinstance(writes, dict):
        return sum(len(part) for part in writes.values())
    return None
