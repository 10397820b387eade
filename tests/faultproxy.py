"""A fault-injecting HTTP/1.1 proxy on 127.0.0.1, in front of a real DynamoDB-compatible server.

``asyncdyn.testing.FaultInjector`` injects faults above the socket; this proxy injects them on
the wire, so every fault crosses a real TCP connection and the client's real HTTP parser
(``LeanTransport`` or aiohttp)::

    schedule = FaultSchedule(seed=7, throttle=0.3, unprocessed=0.3, server_error=0.03)
    async with FaultProxy(server.endpoint_url, schedule) as proxy:
        async with Client(endpoint_url=proxy.endpoint_url, ...) as db:
            ...
        print(proxy.report())   # requests, forwarded, faults injected by kind

It speaks keep-alive HTTP/1.1 to the client whatever the server does (moto answers HTTP/1.0
and closes; dynalite keeps alive), and opens a new server connection when the server closes
one. Requests and answers are parsed by httptools (``Content-Length`` and chunked bodies) and
sent on with a ``Content-Length``.

For each request, one uniform draw from a ``random.Random(seed)`` picks at most one fault:

``throttle``
    HTTP 400 ``ProvisionedThroughputExceededException`` or ``ThrottlingException``; the
    server never sees the request.
``unprocessed``
    BatchWriteItem / BatchGetItem only: a random non-empty part of the batch is withheld.
    The request body is rewritten to hold only the rest, which is forwarded; the withheld
    part is added to the answer's ``UnprocessedItems`` / ``UnprocessedKeys``. The server
    never sees a withheld write. A batch of one cannot be split: it is throttled instead,
    as DynamoDB does when it can process nothing (counted as ``throttle``). Other operations
    drawn here go through untouched.
``server_error``
    half HTTP 500 ``InternalServerError`` after the request *was* forwarded (the write is
    applied, the answer lost, as DynamoDB warns can happen), half HTTP 503
    ``ServiceUnavailable`` without forwarding. Counted as ``http_500`` / ``http_503``.
``reset_before``
    the connection is reset (RST) before any byte of the answer; the request was forwarded
    first half of the time.
``reset_mid_body``
    forwarded; the headers and half the body are sent, then RST.
``truncate``
    forwarded; the headers (with the full ``Content-Length``) and part of the body are sent,
    then the connection is closed normally.
``corrupt``
    forwarded; one byte of the body is changed, ``x-amz-crc32`` left as it was.
``slow``
    forwarded; the answer waits ``slow_delay`` seconds before its first byte.
``hang``
    the request is swallowed: no answer, ever, until the client closes the connection.
``lost_answer``
    always forwarded (the server applies it), then the connection is reset before any byte
    of the answer: the one fault after which only an idempotent request may be resent.

``FaultSchedule(tokens=True)`` makes the proxy play DynamoDB's part that moto skips (it
ignores ``ClientRequestToken``): a TransactWriteItems whose token already committed through
the proxy is answered ``200 {}`` without being forwarded again, as DynamoDB does for 10
minutes. It is how a test sees whether a resent transaction kept its token.

Every error body produced here carries a correct ``x-amz-crc32``, and so does every rewritten
answer. ``FaultProxy.answering = False`` turns the proxy into a server that accepts and never
answers anything (``blackhole``) until it is set back. Draws follow the arrival order of
requests, which concurrency makes vary from run to run: a seed fixes the mix of faults, not
which request gets which.

``FaultSchedule.page_limit`` also caps ``Limit`` on every Query and Scan, so that small
tables are read in many pages, as big ones are under DynamoDB's 1 MB page limit.

Signatures: asyncdyn signs every request with SigV4, and a rewritten body (or ``Limit``)
no longer matches its signature. Real DynamoDB would refuse it; moto and dynalite do not
check signatures, which is what makes this proxy possible. It is for emulators only.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import zlib
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, fields
from http import HTTPStatus
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httptools
import orjson

__all__ = ["FAULT_KINDS", "FaultProxy", "FaultSchedule"]

# In the order the draw walks them.
FAULT_KINDS = (
    "throttle",
    "unprocessed",
    "server_error",
    "reset_before",
    "reset_mid_body",
    "truncate",
    "corrupt",
    "slow",
    "hang",
    "lost_answer",
)
_BATCH_OPERATIONS = ("BatchWriteItem", "BatchGetItem")
_PAGED_OPERATIONS = ("Query", "Scan")
# Headers that describe one hop's framing: rewritten, never passed on.
_HOP_HEADERS = frozenset(
    [b"content-length", b"transfer-encoding", b"connection", b"keep-alive", b"x-amz-crc32"]
)
_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
_READ_SIZE = 65536

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, kw_only=True)
class FaultSchedule:
    """Per-request fault probabilities (their sum at most 1) and the seed of their draws.

    ``operations`` limits the faults to those operations (``{"BatchWriteItem"}``); other
    requests are forwarded untouched. ``slow_delay`` is the ``slow`` fault's wait, in seconds.
    ``page_limit`` caps the ``Limit`` of every Query and Scan (not a fault: always applied).
    ``max_faults`` stops drawing faults once that many were drawn (``1``: only the first
    request is hit, its resends pass).
    """

    seed: int = 0
    throttle: float = 0.0
    unprocessed: float = 0.0
    server_error: float = 0.0
    reset_before: float = 0.0
    reset_mid_body: float = 0.0
    truncate: float = 0.0
    corrupt: float = 0.0
    slow: float = 0.0
    hang: float = 0.0
    lost_answer: float = 0.0
    slow_delay: float = 0.2
    max_faults: int | None = None
    tokens: bool = False
    operations: frozenset[str] | None = None
    page_limit: int | None = None

    def __post_init__(self) -> None:
        probabilities = [getattr(self, kind) for kind in FAULT_KINDS]
        if any(not 0.0 <= p <= 1.0 for p in probabilities) or sum(probabilities) > 1.0 + 1e-9:
            raise ValueError("fault probabilities must be in [0, 1] and add up to at most 1")
        if self.slow_delay < 0 or (self.page_limit is not None and self.page_limit < 1):
            raise ValueError("slow_delay must be >= 0 and page_limit >= 1")

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class _Message:
    """One HTTP request or answer, filled in by httptools callbacks."""

    __slots__ = ("body", "headers", "keep_alive", "reason", "status", "url")

    def __init__(self) -> None:
        self.url = b"/"
        self.headers: Headers = []
        self.body = b""
        self.status = 0
        self.reason = b""
        self.keep_alive = True

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


class _Collector:
    """The httptools callback object: completed messages pile up in ``done``."""

    def __init__(self) -> None:
        self.parser: httptools.HttpRequestParser | httptools.HttpResponseParser | None = None
        self.done: deque[_Message] = deque()
        self.current: _Message | None = None
        self.framed = False  # the answer being read declared its length or chunking
        self._body: list[bytes] = []

    def on_message_begin(self) -> None:
        self.current = _Message()
        self._body = []

    def on_url(self, url: bytes) -> None:
        assert self.current is not None
        self.current.url = url

    def on_status(self, status: bytes) -> None:
        assert self.current is not None
        self.current.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        self.current.headers.append((name, value))

    def on_headers_complete(self) -> None:
        message, parser = self.current, self.parser
        assert message is not None and parser is not None
        if isinstance(parser, httptools.HttpResponseParser):
            message.status = parser.get_status_code()
        names = {name.lower() for name, _ in message.headers}
        self.framed = b"content-length" in names or b"transfer-encoding" in names

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        message, parser = self.current, self.parser
        assert message is not None and parser is not None
        message.body = b"".join(self._body)
        message.keep_alive = parser.should_keep_alive()
        self.current = None
        self.done.append(message)

    def finish_at_eof(self) -> _Message | None:
        """An answer with no declared length ends when the server closes the connection."""
        message = self.current
        if message is None or not message.status or self.framed:
            return None
        message.body = b"".join(self._body)
        message.keep_alive = False
        self.current = None
        return message


class _Upstream:
    """The proxy's connection to the real server for one client connection."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def exchange(self, request: bytes) -> _Message:
        reused = self._writer is not None
        try:
            return await self._exchange(request)
        except _NothingBack:
            if not reused:
                raise
            # The server closed the idle keep-alive connection as we wrote on it (dynalite
            # does after 5 s): the request was never read, so it goes once more.
            return await self._exchange(request)

    async def _exchange(self, request: bytes) -> _Message:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        reader, writer = self._reader, self._writer
        assert reader is not None
        collector = _Collector()
        parser = httptools.HttpResponseParser(collector)
        collector.parser = parser
        received = False
        try:
            writer.write(request)
            await writer.drain()
            while not collector.done:
                data = await reader.read(_READ_SIZE)
                if not data:
                    message = collector.finish_at_eof()
                    if message is not None:
                        collector.done.append(message)
                        break
                    raise (_NothingBack if not received else ConnectionError)(
                        "the server closed the connection"
                    )
                received = True
                parser.feed_data(data)
        except (OSError, httptools.HttpParserError) as exc:
            self.close()
            if isinstance(exc, ConnectionError) and (received or isinstance(exc, _NothingBack)):
                raise
            if not received:
                raise _NothingBack(str(exc)) from exc
            raise ConnectionError(str(exc)) from exc
        answer = collector.done.popleft()
        if not answer.keep_alive:
            self.close()
        return answer

    def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.transport.abort()


class _NothingBack(ConnectionError):
    """The server closed or reset the connection before a byte of its answer."""


class FaultProxy:
    """The proxy; see the module docstring. Use as ``async with FaultProxy(url, schedule)``.

    Counters: ``requests`` (received from clients), ``forwarded`` (sent to the server),
    ``injected`` (faults by kind), ``operations`` (requests by DynamoDB operation);
    ``hanging`` is the number of requests being swallowed right now, ``open_connections``
    the client connections open.
    """

    def __init__(self, upstream_url: str, schedule: FaultSchedule | None = None) -> None:
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"the proxy forwards to a plain http:// server, not {upstream_url}")
        self._host = parts.hostname
        self._port = parts.port or 80
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._upstreams: set[_Upstream] = set()
        self.endpoint_url = ""
        self.answering = True
        self.requests = 0
        self.forwarded = 0
        self.hanging = 0
        self._unhung = asyncio.Event()
        self._unhung.set()
        self.injected: Counter[str] = Counter()
        self.operations: Counter[str] = Counter()
        self.committed_tokens: set[str] = set()
        self.schedule = schedule or FaultSchedule()

    @property
    def schedule(self) -> FaultSchedule:
        return self._schedule

    @schedule.setter
    def schedule(self, schedule: FaultSchedule) -> None:
        self._schedule = schedule
        self._rng = random.Random(schedule.seed)
        self._drawn = 0

    @property
    def open_connections(self) -> int:
        return len(self._writers)

    async def wait_unhung(self) -> None:
        """Until no request is being swallowed: every client gave up its silent connection."""
        await self._unhung.wait()

    def report(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "forwarded": self.forwarded,
            "injected": dict(sorted(self.injected.items())),
            "faults": sum(self.injected.values()),
            "operations": dict(sorted(self.operations.items())),
        }

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.endpoint_url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        # Aborting both ends lets every handler finish on its own; cancelling is the last
        # resort (a handler asleep in a ``slow`` fault).
        for writer in list(self._writers):
            writer.transport.abort()
        for upstream in list(self._upstreams):
            upstream.close()
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=1.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- one client connection -------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        upstream = _Upstream(self._host, self._port)
        self._upstreams.add(upstream)
        collector = _Collector()
        parser = httptools.HttpRequestParser(collector)
        collector.parser = parser
        try:
            while True:
                while not collector.done:
                    data = await reader.read(_READ_SIZE)
                    if not data:
                        return
                    parser.feed_data(data)
                if not await self._handle(collector.done.popleft(), reader, writer, upstream):
                    return
        except (OSError, httptools.HttpParserError):
            pass  # the client went away, or sent what no server would read
        except asyncio.CancelledError:
            # Only ``close`` cancels a handler. Ending it normally matters on Python 3.11,
            # whose start_server callback calls ``exception()`` on a cancelled task and
            # logs the CancelledError that raises.
            pass
        finally:
            upstream.close()
            self._upstreams.discard(upstream)
            if not writer.transport.is_closing():
                writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            self._writers.discard(writer)
            self._tasks.discard(task)

    async def _handle(
        self,
        request: _Message,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream: _Upstream,
    ) -> bool:
        """Answer one request (or not); False when the connection must end."""
        self.requests += 1
        target = request.header(b"x-amz-target") or b""
        operation = target.rpartition(b".")[2].decode("latin-1")
        self.operations[operation] += 1
        if not self.answering:
            self.injected["blackhole"] += 1
            await self._swallow(reader)
            return False
        schedule = self._schedule
        kind = self._draw(operation)
        rng = self._rng
        body = request.body
        if schedule.page_limit is not None and operation in _PAGED_OPERATIONS:
            body = _cap_limit(body, schedule.page_limit)

        if schedule.tokens and _token(operation, body) in self.committed_tokens:
            self.injected["token_replayed"] += 1
            await self._send_answer(writer, request, b"{}")
            return request.keep_alive
        if kind == "lost_answer":
            self.injected["lost_answer"] += 1
            await self._forward(upstream, request, body)
            _reset(writer)
            return False
        if kind == "hang":
            self.injected["hang"] += 1
            await self._swallow(reader)
            return False
        if kind == "throttle":
            return await self._throttle(writer, request)
        if kind == "server_error" and rng.random() < 0.5:
            self.injected["http_503"] += 1
            await self._send_error(writer, request, 503, "ServiceUnavailable", "Service busy")
            return request.keep_alive
        if kind == "reset_before":
            self.injected["reset_before"] += 1
            if rng.random() < 0.5:
                await self._forward(upstream, request, body)
            _reset(writer)
            return False

        withheld: dict[str, Any] | None = None
        if kind == "unprocessed" and operation in _BATCH_OPERATIONS:
            split = _split_batch(operation, body, rng)
            if split is None:  # one request: nothing can be held back and some processed
                return await self._throttle(writer, request)
            self.injected["unprocessed"] += 1
            body, withheld = split

        answer = await self._forward(upstream, request, body)
        if withheld is not None and answer.status == 200:
            answer.body = _add_unprocessed(operation, answer.body, withheld)
            answer.headers = [(n, v) for n, v in answer.headers if n.lower() != b"x-amz-crc32"]
        if kind == "server_error":
            self.injected["http_500"] += 1
            await self._send_error(writer, request, 500, "InternalServerError", "Internal error")
            return request.keep_alive

        crc = answer.header(b"x-amz-crc32")
        if crc is None:  # always checkable, so that a corrupted body is always detectable
            crc = str(zlib.crc32(answer.body)).encode()
        payload = answer.body
        if kind == "corrupt" and payload:
            self.injected["corrupt"] += 1
            damaged = bytearray(payload)
            damaged[rng.randrange(len(damaged))] ^= rng.randrange(1, 256)
            payload = bytes(damaged)
        head = _response_head(
            answer.status, answer.reason, answer.headers, len(payload), crc, request.keep_alive
        )
        if kind == "slow":
            self.injected["slow"] += 1
            await asyncio.sleep(schedule.slow_delay)
        if kind in ("truncate", "reset_mid_body") and len(payload) >= 2:
            self.injected[kind] += 1
            writer.write(head + payload[: rng.randrange(1, len(payload))])
            await writer.drain()
            if kind == "truncate":
                writer.close()
            else:
                # Give the client time to read the partial body before the reset.
                await asyncio.sleep(0.01)
                _reset(writer)
            return False
        writer.write(head + payload)
        await writer.drain()
        return request.keep_alive

    def _draw(self, operation: str) -> str | None:
        schedule = self._schedule
        if schedule.operations is not None and operation not in schedule.operations:
            return None
        if schedule.max_faults is not None and self._drawn >= schedule.max_faults:
            return None
        point = self._rng.random()
        for kind in FAULT_KINDS:
            point -= getattr(schedule, kind)
            if point < 0:
                self._drawn += 1
                return kind
        return None

    async def _forward(self, upstream: _Upstream, request: _Message, body: bytes) -> _Message:
        self.forwarded += 1
        answer = await upstream.exchange(_request_bytes(request, body))
        target = request.header(b"x-amz-target") or b""
        token = _token(target.rpartition(b".")[2].decode("latin-1"), body)
        if token is not None and answer.status == 200:
            self.committed_tokens.add(token)
        return answer

    async def _send_answer(
        self, writer: asyncio.StreamWriter, request: _Message, body: bytes
    ) -> None:
        headers: Headers = [(b"Content-Type", b"application/x-amz-json-1.0")]
        crc = str(zlib.crc32(body)).encode()
        writer.write(_response_head(200, b"OK", headers, len(body), crc, request.keep_alive) + body)
        await writer.drain()

    async def _throttle(self, writer: asyncio.StreamWriter, request: _Message) -> bool:
        self.injected["throttle"] += 1
        code = self._rng.choice(["ProvisionedThroughputExceededException", "ThrottlingException"])
        await self._send_error(writer, request, 400, code, "Rate of requests exceeds the limit")
        return request.keep_alive

    async def _send_error(
        self,
        writer: asyncio.StreamWriter,
        request: _Message,
        status: int,
        code: str,
        message: str,
    ) -> None:
        body = orjson.dumps({"__type": _ERROR_PREFIX + code, "message": message})
        headers: Headers = [
            (b"Content-Type", b"application/x-amz-json-1.0"),
            (b"x-amzn-RequestId", b"FAULTPROXY%08d" % self.requests),
        ]
        crc = str(zlib.crc32(body)).encode()
        reason = HTTPStatus(status).phrase.encode()
        writer.write(
            _response_head(status, reason, headers, len(body), crc, request.keep_alive) + body
        )
        await writer.drain()

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        """Read and drop whatever comes until the client closes the connection."""
        self.hanging += 1
        self._unhung.clear()
        try:
            while await reader.read(_READ_SIZE):
                pass
        finally:
            self.hanging -= 1
            if not self.hanging:
                self._unhung.set()


def _token(operation: str, body: bytes) -> str | None:
    """The ClientRequestToken of a TransactWriteItems body, if any."""
    if operation != "TransactWriteItems":
        return None
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    token = payload.get("ClientRequestToken") if isinstance(payload, dict) else None
    return token if isinstance(token, str) else None


def _request_bytes(request: _Message, body: bytes) -> bytes:
    lines = [b"POST " + request.url + b" HTTP/1.1\r\n"]
    lines += [name + b": " + value + b"\r\n" for name, value in _end_to_end(request.headers)]
    lines.append(b"Content-Length: %d\r\n\r\n" % len(body))
    return b"".join(lines) + body


def _response_head(
    status: int,
    reason: bytes,
    headers: Iterable[tuple[bytes, bytes]],
    length: int,
    crc: bytes,
    keep_alive: bool,
) -> bytes:
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, reason.strip() or b"-")]
    lines += [name + b": " + value + b"\r\n" for name, value in _end_to_end(headers)]
    lines.append(b"x-amz-crc32: " + crc + b"\r\n")
    if not keep_alive:
        lines.append(b"Connection: close\r\n")
    lines.append(b"Content-Length: %d\r\n\r\n" % length)
    return b"".join(lines)


def _end_to_end(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    return [(name, value) for name, value in headers if name.lower() not in _HOP_HEADERS]


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST, not a FIN: linger on, timeout zero."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _cap_limit(body: bytes, page_limit: int) -> bytes:
    payload = orjson.loads(body)
    limit = payload.get("Limit")
    if isinstance(limit, int) and limit <= page_limit:
        return body
    payload["Limit"] = page_limit
    return orjson.dumps(payload)


def _split_batch(
    operation: str, body: bytes, rng: random.Random
) -> tuple[bytes, dict[str, Any]] | None:
    """The body to forward and the withheld part, or None for a batch of one request."""
    payload = orjson.loads(body)
    request_items: dict[str, Any] = payload["RequestItems"]
    writes = operation == "BatchWriteItem"
    flat: list[tuple[str, Any]] = []
    for table, entry in request_items.items():
        flat += [(table, one) for one in (entry if writes else entry["Keys"])]
    if len(flat) < 2:
        return None
    held = set(rng.sample(range(len(flat)), rng.randint(1, len(flat) - 1)))
    kept: dict[str, list[Any]] = {}
    withheld: dict[str, list[Any]] = {}
    for position, (table, one) in enumerate(flat):
        (withheld if position in held else kept).setdefault(table, []).append(one)
    if writes:
        payload["RequestItems"] = kept
        return orjson.dumps(payload), withheld
    payload["RequestItems"] = {
        table: {**request_items[table], "Keys": keys} for table, keys in kept.items()
    }
    return orjson.dumps(payload), {
        table: {**request_items[table], "Keys": keys} for table, keys in withheld.items()
    }


def _add_unprocessed(operation: str, body: bytes, withheld: dict[str, Any]) -> bytes:
    answer = orjson.loads(body)
    if operation == "BatchWriteItem":
        unprocessed = answer.get("UnprocessedItems") or {}
        for table, requests in withheld.items():
            unprocessed.setdefault(table, []).extend(requests)
        answer["UnprocessedItems"] = unprocessed
    else:
        unprocessed = answer.get("UnprocessedKeys") or {}
        for table, entry in withheld.items():
            if table in unprocessed:
                unprocessed[table]["Keys"].extend(entry["Keys"])
            else:
                unprocessed[table] = entry
        answer["UnprocessedKeys"] = unprocessed
    return orjson.dumps(answer)
