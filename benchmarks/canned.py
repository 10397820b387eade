"""A canned DynamoDB endpoint on 127.0.0.1: fixed answers, no storage, near-zero server cost.

It exists to measure what a *client* costs per request: it answers by ``X-Amz-Target`` with
response bytes built once at start-up (with the ``x-amz-crc32`` header botocore and asyncdyn
verify), over HTTP/1.1 keep-alive, parsing requests with httptools. It runs in its own
process so that its CPU never counts as the client's:

* ``GetItem`` -> one ~1 KB item of 10 attributes (:func:`benchmarks.data.make_item`);
* ``Query`` / ``Scan`` -> 50 such items, ``Count`` 50, no ``LastEvaluatedKey``;
* ``BatchGetItem`` -> one such item per requested key, carrying that key's attributes (so a
  client that matches answers to keys finds every one), no ``UnprocessedKeys``;
* ``BatchWriteItem`` -> no ``UnprocessedItems``;
* anything else (``PutItem``...) -> ``{}``.

A BatchGetItem answer depends on the request: it is spliced together from item bytes encoded
once at start-up and cached per request body, so a benchmark repeating its key sets costs the
server one dict lookup per request.

``python -m benchmarks.canned --port 8000`` serves in the foreground;
:func:`start_canned` starts it as a child that cannot outlive its parent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
import zlib
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import httptools
import orjson

from .data import make_item, wire_item

__all__ = [
    "BATCH_GET_ITEMS",
    "HOST",
    "QUERY_ITEMS",
    "BatchGetAnswers",
    "CannedServer",
    "answers",
    "main",
    "process_cpu_seconds",
    "start_canned",
]

HOST = "127.0.0.1"
QUERY_ITEMS = 50
BATCH_GET_ITEMS = 100
"""Keys per BatchGetItem request (DynamoDB's limit); the server answers as many as asked."""
_TARGET_PREFIX = b"DynamoDB_20120810."
_BATCH_GET = _TARGET_PREFIX + b"BatchGetItem"
# Distinct request bodies whose answers are kept: a 10,000-key batch_get is 100 of them.
_MAX_CACHED = 512
_LISTENING = "LISTENING"
_STOP_TIMEOUT = 5.0


def _response(payload: dict[str, Any]) -> bytes:
    return _framed(orjson.dumps(payload))


def _framed(body: bytes, status: str = "200 OK") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\n"
        "Server: asyncdyn-canned\r\n"
        "x-amzn-RequestId: CANNED0000000000000000000000000000000000000000000000\r\n"
        f"x-amz-crc32: {zlib.crc32(body)}\r\n"
        "Content-Type: application/x-amz-json-1.0\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


def answers() -> tuple[dict[bytes, bytes], bytes]:
    """The full response bytes per ``X-Amz-Target`` value, and the answer to any other."""
    item = wire_item(make_item("CUSTOMER#000123", "ORDER#00000000", 0))
    items = [
        wire_item(make_item("CUSTOMER#000123", f"ORDER#{n:08d}", n)) for n in range(QUERY_ITEMS)
    ]
    listing = _response({"Items": items, "Count": QUERY_ITEMS, "ScannedCount": QUERY_ITEMS})
    table = {
        _TARGET_PREFIX + b"GetItem": _response({"Item": item}),
        _TARGET_PREFIX + b"Query": listing,
        _TARGET_PREFIX + b"Scan": listing,
        _TARGET_PREFIX + b"BatchWriteItem": _response({"UnprocessedItems": {}}),
    }
    return table, _response({})


class BatchGetAnswers:
    """BatchGetItem answers: each requested key gets a ~1 KB item carrying that key."""

    __slots__ = ("_cache", "_rests")

    def __init__(self) -> None:
        # Each item's non-key attributes as JSON object members (no braces), ready to follow
        # the requested key's members; a few variants so items are not all identical.
        rests = []
        for n in range(QUERY_ITEMS):
            wire = wire_item(make_item("", "", n))
            del wire["PK"], wire["SK"]
            rests.append(orjson.dumps(wire)[1:-1])
        self._rests = rests
        self._cache: dict[bytes, bytes] = {}

    def answer(self, body: bytes) -> bytes:
        cached = self._cache.get(body)
        if cached is None:
            cached = self._build(body)
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[body] = cached
        return cached

    def _build(self, body: bytes) -> bytes:
        try:
            request = orjson.loads(body)["RequestItems"]
            tables = {name: spec["Keys"] for name, spec in request.items()}
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            error = {
                "__type": "com.amazon.coral.validate#ValidationException",
                "message": "canned server: a BatchGetItem body needs RequestItems with Keys",
            }
            return _framed(orjson.dumps(error), "400 Bad Request")
        rests = self._rests
        parts = [b'{"Responses":{']
        for t, (name, keys) in enumerate(tables.items()):
            items = b",".join(
                b"{%s,%s}" % (orjson.dumps(key)[1:-1], rests[i % len(rests)])
                for i, key in enumerate(keys)
            )
            parts += [b"," if t else b"", orjson.dumps(name), b":[", items, b"]"]
        parts.append(b'},"UnprocessedKeys":{}}')
        return _framed(b"".join(parts))


class _Connection(asyncio.Protocol):
    """One keep-alive connection; pipelined requests are answered in order."""

    __slots__ = (
        "_answers",
        "_batch_get",
        "_body",
        "_default",
        "_parser",
        "_target",
        "_transport",
    )

    def __init__(
        self, table: dict[bytes, bytes], default: bytes, batch_get: BatchGetAnswers
    ) -> None:
        self._answers = table
        self._default = default
        self._batch_get = batch_get
        self._target = b""
        self._body: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, but not always an asyncio.Transport subclass: uvloop's is not.
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # The answer is written in one piece; Nagle would only hold it back.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            assert self._transport is not None
            self._transport.close()

    # httptools callbacks: it hands over each header whole, however the bytes arrived.
    def on_message_begin(self) -> None:
        self._target = b""
        self._body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) == 12 and name.lower() == b"x-amz-target":
            self._target = value

    def on_body(self, body: bytes) -> None:
        # Only a batch get's answer depends on what was asked; other bodies are not kept.
        if self._target == _BATCH_GET:
            self._body.append(body)

    def on_message_complete(self) -> None:
        transport = self._transport
        assert transport is not None
        if self._target == _BATCH_GET:
            transport.write(self._batch_get.answer(b"".join(self._body)))
            self._body = []
        else:
            transport.write(self._answers.get(self._target, self._default))
        if not self._parser.should_keep_alive():
            transport.close()


async def _serve(sock: socket.socket) -> None:
    table, default = answers()
    batch_get = BatchGetAnswers()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Connection(table, default, batch_get), sock=sock, backlog=1024
    )
    async with server:
        await server.serve_forever()


def _exit_on_stdin_eof() -> None:
    try:
        while os.read(0, 4096):
            pass
    finally:
        os._exit(0)


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.canned``: serve canned answers on 127.0.0.1 in the foreground."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.canned", description="Serve canned DynamoDB answers."
    )
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="exit when stdin reaches EOF (how a parent ties our lifetime to its own)",
    )
    args = parser.parse_args(argv)
    if args.exit_on_stdin_eof:
        threading.Thread(target=_exit_on_stdin_eof, name="stdin-eof", daemon=True).start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, args.port))
    sock.listen(1024)
    print(f"{_LISTENING} {sock.getsockname()[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(sock))
    return 0


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` (0.0 where /proc is unavailable)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The command name may contain spaces: count fields after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _shutdown(process: subprocess.Popen[bytes]) -> None:
    # Module-level so the finalizer keeps no reference to the server object.
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


class CannedServer:
    """The canned server running as a child process; the same surface as ``LocalServer``."""

    kind = "canned"

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.port = port
        self.endpoint_url = f"http://{HOST}:{port}"
        self.pid = process.pid
        self._process = process
        self._last_cpu = 0.0
        self._finalizer = weakref.finalize(self, _shutdown, process)

    def __repr__(self) -> str:
        return f"<CannedServer {self.endpoint_url} pid={self.pid}>"

    def cpu_seconds(self) -> float:
        """CPU seconds the server process has used so far (the last figure once stopped)."""
        if self._finalizer.alive:
            self._last_cpu = max(self._last_cpu, process_cpu_seconds(self.pid))
        return self._last_cpu

    def stop(self) -> None:
        """Terminate the server and wait for it. Idempotent."""
        if self._finalizer.alive:
            self.cpu_seconds()
            self._finalizer()

    def __enter__(self) -> CannedServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_canned(*, timeout: float = 30.0) -> CannedServer:
    """Start the canned server in a child process on a free port of 127.0.0.1.

    The child exits when its stdin (a pipe only this process holds) reaches EOF, so it
    dies with us however we end; it runs in its own session so that a Ctrl-C reaches us
    and we stop it in order.
    """
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.canned", "--port", "0", "--exit-on-stdin-eof"],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
        close_fds=True,
    )
    try:
        assert process.stdout is not None
        line = _read_line(process.stdout, time.monotonic() + timeout)
        if not line.startswith(_LISTENING + " "):
            raise RuntimeError(f"canned server did not start (said {line!r})")
        process.stdout.close()
        return CannedServer(process, int(line.split()[1]))
    except BaseException:
        _shutdown(process)
        raise


def _read_line(stream: Any, deadline: float) -> str:
    fd = stream.fileno()
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], min(0.1, left))
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\n", 1)[0].decode("ascii", "replace").strip()


if __name__ == "__main__":
    # The parent stops us with SIGTERM; a terminal Ctrl-C goes to the parent's session only.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    sys.exit(main())
