"""LeanTransport against the real servers: moto (HTTP/1.0, one connection per request) and
dynalite (HTTP/1.1 keep-alive, idle connections closed after 5 s)."""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any, Literal

import pytest

from asyncdyn import (
    AsyncDynError,
    Attr,
    ChecksumMismatch,
    Client,
    Key,
    RequestTimeout,
    RetryPolicy,
    Table,
    TableNotFound,
    TransportError,
)
from asyncdyn.lean import LeanTransport
from asyncdyn.local import LocalServer
from asyncdyn.transport import AiohttpTransport


def lean_client(server: LocalServer, transport: LeanTransport) -> Client:
    return Client(
        region="us-east-1",
        endpoint_url=server.endpoint_url,
        credentials=("testing", "testing"),
        retry=RetryPolicy(deadline=60.0),
        transport=transport,
    )


@pytest.fixture
async def lean_db(server: LocalServer) -> AsyncIterator[Client]:
    async with lean_client(server, LeanTransport(server.endpoint_url)) as client:
        yield client


@pytest.fixture
async def lean_table(lean_db: Client) -> AsyncIterator[Table]:
    name = f"t-{uuid.uuid4().hex[:16]}"
    table = await lean_db.create_table(name, partition_key="PK", sort_key="SK")
    yield table
    try:
        await lean_db.delete_table(name, wait=False)
    except TableNotFound:
        pass


def item(i: int) -> dict[str, object]:
    return {
        "PK": f"p{i % 5}",
        "SK": f"{i:05d}",
        "n": i,
        "price": Decimal(i) / 4,
        "blob": bytes([i % 256]) * 50,
        "tags": {"a", f"t{i}"},
        "text": "é" * (i % 40),
    }


async def test_every_operation_matches_the_default_client(lean_table: Table, db: Client) -> None:
    default = db.table(lean_table.name)
    items = [item(i) for i in range(300)]
    await lean_table.batch_write(puts=items)
    await lean_table.put({"PK": "single", "SK": "1", "v": 1})

    assert await lean_table.get({"PK": "single", "SK": "1"}, consistent=True) == {
        "PK": "single",
        "SK": "1",
        "v": 1,
    }
    assert await lean_table.get({"PK": "nope", "SK": "1"}) is None
    for i in (0, 17, 299):
        key = {"PK": item(i)["PK"], "SK": item(i)["SK"]}
        got = await lean_table.get(key, consistent=True)
        assert got == item(i) == await default.get(key, consistent=True)

    lean_query = [x async for x in lean_table.query(Key("PK").eq("p3"), consistent=True)]
    default_query = [x async for x in default.query(Key("PK").eq("p3"), consistent=True)]
    assert lean_query == default_query == [x for x in items if x["PK"] == "p3"]

    lean_scan = [x async for x in lean_table.scan(consistent=True)]
    default_scan = [x async for x in default.scan(consistent=True)]
    assert len(lean_scan) == 301
    assert sorted(lean_scan, key=repr) == sorted(default_scan, key=repr)


async def test_batch_get_of_a_thousand_keys(lean_table: Table, db: Client) -> None:
    items = [item(i) for i in range(400)]
    await lean_table.batch_write(puts=items)
    keys = [{"PK": f"p{i % 5}", "SK": f"{i:05d}"} for i in range(1000)]  # 600 missing
    got = await lean_table.batch_get(keys, consistent=True)
    assert got == items + [None] * 600
    assert got == await db.table(lean_table.name).batch_get(keys, consistent=True)


async def test_concurrent_gets_share_few_connections(server: LocalServer) -> None:
    transport = LeanTransport(server.endpoint_url, max_connections=8)
    async with lean_client(server, transport) as client:
        name = f"t-{uuid.uuid4().hex[:16]}"
        table = await client.create_table(name, partition_key="PK", sort_key="SK")
        try:
            await table.batch_write(puts=[item(i) for i in range(50)])
            keys = [{"PK": f"p{i % 5}", "SK": f"{i % 50:05d}"} for i in range(200)]
            got = await asyncio.gather(*(table.get(key, consistent=True) for key in keys))
            assert got == [item(i % 50) for i in range(200)]
            assert transport.open_connections <= 8
        finally:
            await client.delete_table(name, wait=False)


async def test_error_answers_come_through(lean_db: Client) -> None:
    with pytest.raises(TableNotFound):
        await lean_db.table(f"missing-{uuid.uuid4().hex[:8]}").get({"PK": "a", "SK": "b"})


async def test_connection_closed_by_the_server_while_idle(server: LocalServer) -> None:
    if server.kind != "dynalite":
        pytest.skip("dynalite keeps connections alive (and closes idle ones after 5 s)")
    # No client retries: the stale connection must be handled by the transport itself.
    transport = LeanTransport(server.endpoint_url)
    async with Client(
        region="us-east-1",
        endpoint_url=server.endpoint_url,
        credentials=("testing", "testing"),
        retry=RetryPolicy(max_attempts=1),
        transport=transport,
    ) as client:
        name = f"t-{uuid.uuid4().hex[:16]}"
        table = await client.create_table(name, partition_key="PK", sort_key="SK")
        try:
            await table.put({"PK": "a", "SK": "b", "v": 1})
            assert transport.open_connections >= 1
            await asyncio.sleep(5.5)  # Node closes keep-alive connections idle for 5 s
            for _ in range(100):
                if transport.open_connections == 0:
                    break
                await asyncio.sleep(0.1)
            assert transport.open_connections == 0, "the server closed them; we noticed"
            assert await table.get({"PK": "a", "SK": "b"}) == {"PK": "a", "SK": "b", "v": 1}
            assert client.stats().resends == 1  # moved off the closed connection, once
            assert client.stats().retries == 0
        finally:
            await client.delete_table(name, wait=False)


async def test_send_after_close_fails(server: LocalServer) -> None:
    transport = LeanTransport(server.endpoint_url)
    client = lean_client(server, transport)
    await client.list_tables()
    await client.close()
    with pytest.raises(TransportError, match="closed"):
        await transport.send({"Host": "x"}, b"{}")


# -- both pooled transports against loopback servers of our own (no moto, no dynalite) ----

HttpKind = Literal["lean", "aiohttp"]
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def answer_bytes(body: bytes = b"{}", *, crc: bytes | None = None, extra: bytes = b"") -> bytes:
    crc = str(zlib.crc32(body)).encode() if crc is None else crc
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
        b"Content-Length: %d\r\nx-amz-crc32: %s\r\n%s\r\n%s" % (len(body), crc, extra, body)
    )


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One whole request (head and body); b"" when the client closed the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return b""
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + await reader.readexactly(length)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Starts loopback servers (each connection handled by ``handler``); closes them after."""
    servers: list[asyncio.Server] = []
    writers: set[asyncio.StreamWriter] = set()

    async def start(handler: Handler) -> str:
        async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.add(writer)
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writers.discard(writer)
                writer.close()

        server = await asyncio.start_server(guarded, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.close()
    for writer in list(writers):  # handlers still waiting for a request
        writer.close()
    for server in servers:
        await server.wait_closed()


def loopback_client(url: str, http: HttpKind, **kwargs: Any) -> Client:
    return Client(
        region="us-east-1",
        endpoint_url=url,
        credentials=("testing", "testing"),
        http=http,
        **kwargs,
    )


def root_error(error: BaseException) -> BaseException:
    """The error under RetriesExhausted / OutcomeUnknown wrappers."""
    while isinstance(getattr(error, "last_error", None), BaseException):
        error = error.last_error  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize("http", ["lean", "aiohttp"])
async def test_update_whose_answer_is_lost_is_sent_once(
    serve: Callable[[Handler], Awaitable[str]], http: HttpKind
) -> None:
    # The server reads the update on a reused keep-alive connection, applies it, and closes
    # without answering. Before: the lean transport sent it again on a new connection and
    # the caller saw a success, with the item incremented twice.
    applied = 0

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal applied
        while request := await read_request(reader):
            if b"UpdateItem" in request:
                applied += 1
                return  # closes the connection, no answer
            writer.write(answer_bytes())
            await writer.drain()

    url = await serve(server)
    async with loopback_client(url, http, retry=RetryPolicy(max_attempts=1)) as client:
        table = client.table("T")
        assert await table.get({"PK": "a"}) is None  # leaves a keep-alive connection idle
        with pytest.raises(AsyncDynError) as info:
            await table.update({"PK": "a"}, Attr("n").add(1))
        assert isinstance(root_error(info.value), TransportError)
        assert root_error(info.value).maybe_applied  # type: ignore[attr-defined]
        assert applied == 1
        assert client.stats().resends == 0


async def test_idle_connection_closed_by_the_server_is_replaced_and_counted(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    connections = 0

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_request(reader)
        writer.write(answer_bytes())  # keep-alive, then closed while idle
        await writer.drain()

    url = await serve(server)
    async with loopback_client(url, "lean", retry=RetryPolicy(max_attempts=1)) as client:
        assert await client.table("T").get({"PK": "a"}) is None
        await asyncio.sleep(0.05)  # the server's close arrives while the connection is idle
        assert await client.table("T").get({"PK": "a"}) is None
        assert connections == 2
        assert client.stats().resends == 1
        assert client.stats().retries == 0


@pytest.mark.parametrize("http", ["lean", "aiohttp"])
async def test_doubled_crc_header_is_never_skipped(
    serve: Callable[[Handler], Awaitable[str]], http: HttpKind
) -> None:
    body = b'{"Item":{"PK":{"S":"a"}}}'
    good = str(zlib.crc32(body)).encode()

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader):
            writer.write(answer_bytes(body, crc=good, extra=b"x-amz-crc32: 12345\r\n"))
            await writer.drain()

    url = await serve(server)
    async with loopback_client(url, http, retry=RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(AsyncDynError) as info:
            await client.table("T").get({"PK": "a"})
        assert isinstance(root_error(info.value), ChecksumMismatch)


@pytest.mark.parametrize("http", ["lean", "aiohttp"])
async def test_trickled_answer_times_out_as_a_whole(
    serve: Callable[[Handler], Awaitable[str]], http: HttpKind
) -> None:
    # One byte every 50 ms never stalls a per-byte read timeout; the read timeout bounds
    # the whole answer. Before: aiohttp waited the 2 s the answer took.
    body = b"{" + b" " * 38 + b"}"

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        answer = answer_bytes(body)
        head = len(answer) - len(body)
        writer.write(answer[:head])
        for i in range(head, len(answer)):
            await asyncio.sleep(0.05)
            writer.write(answer[i : i + 1])
            await writer.drain()

    url = await serve(server)
    make = LeanTransport if http == "lean" else AiohttpTransport
    transport = make(url, read_timeout=0.3)
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        with pytest.raises(RequestTimeout) as info:
            await transport.send({"Host": url[7:]}, b"{}")
        assert info.value.maybe_applied
        assert loop.time() - start < 1.2
    finally:
        await transport.close()


@pytest.mark.parametrize("http", ["lean", "aiohttp"])
async def test_refused_connection_was_not_sent(http: HttpKind) -> None:
    with socket.socket() as sock:  # a port nobody listens on any more
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    make = LeanTransport if http == "lean" else AiohttpTransport
    transport = make(url)
    try:
        with pytest.raises(TransportError) as info:
            await transport.send({"Host": url[7:]}, b"{}")
        assert not info.value.maybe_applied
    finally:
        await transport.close()


@pytest.mark.parametrize("bypass", [False, True])
async def test_aiohttp_honours_the_proxy_environment(
    serve: Callable[[Handler], Awaitable[str]],
    monkeypatch: pytest.MonkeyPatch,
    bypass: bool,
) -> None:
    seen_by_proxy: list[bytes] = []
    seen_by_server: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A forward proxy that answers itself: enough to see the request come its way.
        while request := await read_request(reader):
            seen_by_proxy.append(request)
            writer.write(answer_bytes())
            await writer.drain()

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while request := await read_request(reader):
            seen_by_server.append(request)
            writer.write(answer_bytes())
            await writer.drain()

    proxy_url = await serve(proxy)
    url = await serve(server)
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy_url.replace("http://", "http://us%40er:p%3Aw@"))
    if bypass:
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with loopback_client(url, "aiohttp", retry=RetryPolicy(max_attempts=1)) as client:
        assert await client.table("T").get({"PK": "a"}) is None
    if bypass:
        assert seen_by_proxy == [] and len(seen_by_server) == 1
    else:
        assert seen_by_server == [] and len(seen_by_proxy) == 1
        head = seen_by_proxy[0].split(b"\r\n\r\n")[0]
        assert head.startswith(b"POST %s/ HTTP/1.1\r\n" % url.encode())  # absolute form
        credentials = base64.b64encode(b"us@er:p:w")
        assert b"\r\nProxy-Authorization: Basic %s" % credentials in head


async def test_close_waiting_unread_on_a_quiet_connection_moves_the_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A server in a thread closes the idle connection while our event loop is busy, so the
    # close waits unread in the kernel when the next request takes the connection. The
    # transport lets the loop read it first and sends the request on a new connection.
    monkeypatch.setattr("asyncdyn.lean._QUIET", 0.05)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    requests: list[bytes] = []

    def serve_two() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data or not data.endswith(b"{}"):
                    data += conn.recv(65536)
                requests.append(data)
                conn.sendall(answer_bytes())
                time.sleep(0.05)  # then the idle close

    thread = threading.Thread(target=serve_two, daemon=True)
    thread.start()
    transport = LeanTransport(f"http://127.0.0.1:{port}")
    try:
        headers = {"Host": f"127.0.0.1:{port}"}
        assert (await transport.send(headers, b"{}")).body == b"{}"
        time.sleep(0.2)  # noqa: ASYNC251  # the loop is busy: the close waits unread
        assert (await transport.send(headers, b"{}")).body == b"{}"
        assert len(requests) == 2
        assert transport.resends == 1
    finally:
        await transport.close()
        thread.join(timeout=5)
        listener.close()
