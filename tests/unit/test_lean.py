"""LeanTransport without sockets: bytes fed to its protocol, a fake loop.create_connection."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

import pytest

from asyncdyn import (
    AsyncDynError,
    Attr,
    Client,
    ConfigurationError,
    RequestTimeout,
    RetryPolicy,
    TransportError,
)
from asyncdyn.lean import LeanTransport, _Connection, _NotSent
from asyncdyn.transport import HttpResponse

SECRET = "AWS4-HMAC-SHA256 Credential=AKID/x, Signature=deadbeefsecret"
HEADERS = {
    "Host": "db.example",
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "DynamoDB_20120810.GetItem",
    "Authorization": SECRET,
}
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nx-amz-crc32: 2745614147\r\n\r\n{}"


class FakeTransport(asyncio.Transport):
    """Captures writes; closing reports ``connection_lost`` on the next loop turn, like asyncio."""

    def __init__(
        self,
        protocol: asyncio.Protocol,
        on_write: Callable[[FakeTransport, bytes], None] | None = None,
    ) -> None:
        super().__init__()
        self.protocol = protocol
        self.on_write = on_write
        self.written: list[bytes] = []
        self.closing = False
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))
        if self.on_write is not None:
            self.on_write(self, bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.lose(None)

    def abort(self) -> None:
        self.aborted = True
        self.lose(None)

    def lose(self, exc: Exception | None) -> None:
        """The connection ends (either side): ``connection_lost`` follows soon."""
        if not self.closing:
            self.closing = True
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, exc)

    def reply(self, data: bytes) -> None:
        asyncio.get_running_loop().call_soon(self.protocol.data_received, data)


def connection() -> tuple[_Connection, FakeTransport]:
    conn = _Connection("http://db.example", 60.0)
    transport = FakeTransport(conn)
    conn.connection_made(transport)
    return conn, transport


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


# -- the protocol, fed bytes --------------------------------------------------------------


async def test_content_length_answer() -> None:
    conn, transport = connection()
    waiter = conn.request(b"POST / ...")
    assert transport.written == [b"POST / ..."]
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Amz-CRC32: 1\r\n\r\nhello")
    response = waiter.result()
    assert response == HttpResponse(200, {"content-length": "5", "x-amz-crc32": "1"}, b"hello")
    assert conn.reusable


async def test_chunked_answer() -> None:
    conn, _ = connection()
    waiter = conn.request(b"x")
    conn.data_received(
        b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    response = waiter.result()
    assert (response.status, response.body) == (400, b"hello world")
    assert conn.reusable


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nA: 1\r\n\r\nhello world",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nA: 1\r\n\r\n"
        b"3\r\nhel\r\n8\r\nlo world\r\n0\r\n\r\n",
    ],
    ids=["content-length", "chunked"],
)
async def test_answer_split_byte_by_byte(answer: bytes) -> None:
    conn, _ = connection()
    waiter = conn.request(b"x")
    for i in range(len(answer) - 1):
        conn.data_received(answer[i : i + 1])
        assert not waiter.done()
    conn.data_received(answer[-1:])
    response = waiter.result()
    assert (response.status, response.headers["a"], response.body) == (200, "1", b"hello world")
    assert conn.reusable


async def test_body_read_until_close() -> None:
    # moto's server answers HTTP/1.0 and may send no length: the body ends at EOF.
    conn, transport = connection()
    waiter = conn.request(b"x")
    conn.data_received(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhel")
    conn.data_received(b"lo")
    assert not waiter.done()
    transport.lose(None)
    await settle()
    assert waiter.result() == HttpResponse(200, {"content-type": "text/plain"}, b"hello")
    assert not conn.reusable


async def test_reset_during_a_read_until_close_body_fails() -> None:
    conn, transport = connection()
    waiter = conn.request(b"x")
    conn.data_received(b"HTTP/1.1 200 OK\r\n\r\nhel")
    transport.lose(ConnectionResetError("reset"))
    await settle()
    with pytest.raises(TransportError, match="mid-answer"):
        waiter.result()


async def test_truncated_content_length_body_fails() -> None:
    conn, transport = connection()
    waiter = conn.request(b"x")
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel")
    transport.lose(None)
    await settle()
    with pytest.raises(TransportError, match="mid-answer") as info:
        waiter.result()
    assert info.value.maybe_applied


async def test_close_after_writing_before_any_byte_of_answer_may_have_applied() -> None:
    conn, transport = connection()
    waiter = conn.request(b"x")
    transport.lose(None)
    await settle()
    with pytest.raises(TransportError, match="before answering") as info:
        waiter.result()
    assert info.value.maybe_applied and not isinstance(info.value, _NotSent)


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
    ],
    ids=["http/1.0", "connection-close"],
)
async def test_answer_without_keep_alive_is_not_reusable(answer: bytes) -> None:
    conn, _ = connection()
    waiter = conn.request(b"x")
    conn.data_received(answer)
    assert waiter.result().body == b"{}"
    assert not conn.reusable


async def test_http_10_keep_alive_is_reusable() -> None:
    conn, _ = connection()
    waiter = conn.request(b"x")
    conn.data_received(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}")
    assert waiter.result().body == b"{}"
    assert conn.reusable


async def test_keep_alive_connection_carries_several_answers() -> None:
    conn, _ = connection()
    for i in range(3):
        waiter = conn.request(b"x")
        body = b'{"n":%d}' % i
        conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        assert waiter.result().body == body
        assert conn.reusable


async def test_duplicate_headers_are_joined_and_names_lower_cased() -> None:
    conn, _ = connection()
    waiter = conn.request(b"x")
    conn.data_received(b"HTTP/1.1 200 OK\r\nX-Thing: a\r\nContent-Length: 0\r\nx-thing: b\r\n\r\n")
    assert waiter.result().headers == {"x-thing": "a, b", "content-length": "0"}


async def test_interim_answer_is_skipped() -> None:
    conn, _ = connection()
    waiter = conn.request(b"x")
    conn.data_received(b"HTTP/1.1 100 Continue\r\nX-Early: 1\r\n\r\n")
    assert not waiter.done()
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    assert waiter.result() == HttpResponse(200, {"content-length": "2"}, b"{}")


@pytest.mark.parametrize(
    "answer",
    [
        b"SMTP/1.1 200 OK\r\n\r\n",
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
    ],
    ids=["protocol", "status", "two-lengths", "chunk-size", "upgrade"],
)
async def test_malformed_answer_fails_and_kills_the_connection(answer: bytes) -> None:
    conn, transport = connection()
    waiter = conn.request(b"x")
    conn.data_received(answer)
    with pytest.raises(TransportError, match="malformed answer from http://db.example"):
        waiter.result()
    assert transport.aborted and not conn.reusable
    await settle()


async def test_bytes_while_idle_kill_the_connection() -> None:
    conn, transport = connection()
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert transport.aborted and not conn.reusable
    await settle()


async def test_second_answer_in_the_same_read_kills_the_connection() -> None:
    conn, transport = connection()
    waiter = conn.request(b"x")
    conn.data_received(OK + OK)
    assert waiter.result().body == b"{}"  # the first answer is still the answer
    assert not conn.reusable
    assert transport.aborted  # an answer nobody asked for: the connection is discarded
    await settle()


async def test_second_answer_in_the_same_read_leaves_the_first_headers_alone() -> None:
    conn, _ = connection()
    waiter = conn.request(b"x")
    second = b'HTTP/1.1 200 OK\r\nContent-Length: 7\r\nx-amz-crc32: 1\r\nX-Other: 2\r\n\r\n{"a":1}'
    conn.data_received(OK + second)
    response = waiter.result()
    assert response == HttpResponse(
        200, {"content-length": "2", "x-amz-crc32": "2745614147"}, b"{}"
    )
    await settle()


async def test_unasked_answer_after_the_first_read_does_not_leak_into_the_next() -> None:
    # The first answer is complete; a stray second answer starts in the same read and ends
    # in a later one: the connection is gone, the next request never sees those bytes.
    conn, transport = connection()
    waiter = conn.request(b"x")
    conn.data_received(OK + b"HTTP/1.1 200 OK\r\nx-amz-crc32: 7\r\n")
    assert waiter.result().headers == {"content-length": "2", "x-amz-crc32": "2745614147"}
    assert transport.aborted and not conn.reusable
    await settle()
    with pytest.raises(_NotSent):
        conn.request(b"y")


async def test_request_on_a_closed_connection_raises_at_once() -> None:
    conn, transport = connection()
    transport.lose(None)
    await settle()
    with pytest.raises(_NotSent) as info:
        conn.request(b"x")
    assert transport.written == []
    assert not info.value.maybe_applied


# -- the pool, on a fake loop.create_connection --------------------------------------------


class FakeNetwork:
    """Stands in for ``loop.create_connection``; each write is answered by ``handler``."""

    def __init__(self) -> None:
        self.transports: list[FakeTransport] = []
        self.calls: list[tuple[str, int, Any, Any]] = []
        self.handler: Callable[[FakeTransport, bytes], None] = lambda t, data: t.reply(OK)
        self.connect_delay = 0.0
        self.connect_error: OSError | None = None

    async def create_connection(
        self,
        factory: Callable[[], asyncio.Protocol],
        host: str,
        port: int,
        *,
        ssl: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> tuple[FakeTransport, asyncio.Protocol]:
        self.calls.append((host, port, ssl, server_hostname))
        if self.connect_delay:
            await asyncio.sleep(self.connect_delay)
        if self.connect_error is not None:
            raise self.connect_error
        protocol = factory()
        transport = FakeTransport(protocol, lambda t, data: self.handler(t, data))
        protocol.connection_made(transport)
        self.transports.append(transport)
        return transport, protocol


@pytest.fixture
async def network_on_loop(monkeypatch: pytest.MonkeyPatch) -> FakeNetwork:
    fake = FakeNetwork()
    monkeypatch.setattr(asyncio.get_running_loop(), "create_connection", fake.create_connection)
    return fake


async def test_request_bytes(network_on_loop: FakeNetwork) -> None:
    lean = LeanTransport("http://db.example:8000")
    response = await lean.send(HEADERS, b'{"TableName":"t"}')
    assert response.status == 200 and response.body == b"{}"
    assert network_on_loop.calls == [("db.example", 8000, None, None)]
    (written,) = network_on_loop.transports[0].written
    assert written == (
        b"POST / HTTP/1.1\r\n"
        b"Host: db.example\r\n"
        b"Content-Type: application/x-amz-json-1.0\r\n"
        b"X-Amz-Target: DynamoDB_20120810.GetItem\r\n"
        b"Authorization: " + SECRET.encode() + b"\r\n"
        b"Content-Length: 17\r\n\r\n"
        b'{"TableName":"t"}'
    )
    await lean.close()


async def test_host_is_added_when_missing_and_content_length_is_ours(
    network_on_loop: FakeNetwork,
) -> None:
    lean = LeanTransport("http://[::1]:8000")
    await lean.send({"content-length": "999", "X-A": "1"}, b"abc")
    assert network_on_loop.calls[0][:2] == ("::1", 8000)
    (written,) = network_on_loop.transports[0].written
    assert (
        written == b"POST / HTTP/1.1\r\nX-A: 1\r\nHost: [::1]:8000\r\nContent-Length: 3\r\n\r\nabc"
    )
    await lean.close()


@pytest.mark.parametrize(
    "headers",
    [{"X-A": "1\r\nX-Injected: 2"}, {"X-A\n": "1"}, {"X:A": "1"}, {"X-A": "snowman ☃"}],
)
async def test_bad_header_is_refused(network_on_loop: FakeNetwork, headers: dict[str, str]) -> None:
    lean = LeanTransport("http://db.example")
    with pytest.raises(ConfigurationError):
        await lean.send(headers, b"")
    assert network_on_loop.calls == []


async def test_https_verifies_certificates(network_on_loop: FakeNetwork) -> None:
    lean = LeanTransport("https://db.example")
    await lean.send(HEADERS, b"")
    host, port, context, server_hostname = network_on_loop.calls[0]
    assert (host, port, server_hostname) == ("db.example", 443, "db.example")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    await lean.close()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"endpoint_url": "ftp://db.example"},
        {"endpoint_url": "http://"},
        {"endpoint_url": "http://db.example:99999"},
        {"endpoint_url": "http://db.example", "max_connections": 0},
        {"endpoint_url": "http://db.example", "read_timeout": 0},
        {"endpoint_url": "http://db.example", "connect_timeout": -1},
    ],
)
def test_bad_configuration(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        LeanTransport(**kwargs)


async def test_keep_alive_connection_is_reused(network_on_loop: FakeNetwork) -> None:
    lean = LeanTransport("http://db.example")
    for _ in range(5):
        await lean.send(HEADERS, b"{}")
    assert len(network_on_loop.transports) == 1
    assert len(network_on_loop.transports[0].written) == 5
    assert lean.open_connections == 1
    await lean.close()


async def test_idle_connections_are_reused_last_in_first_out(network_on_loop: FakeNetwork) -> None:
    lean = LeanTransport("http://db.example")
    await asyncio.gather(*(lean.send(HEADERS, b"") for _ in range(3)))
    assert len(network_on_loop.transports) == 3
    await lean.send(HEADERS, b"")
    counts = [len(t.written) for t in network_on_loop.transports]
    assert sorted(counts) == [1, 1, 2]
    await lean.close()


async def test_connection_without_keep_alive_is_closed(network_on_loop: FakeNetwork) -> None:
    network_on_loop.handler = lambda t, data: t.reply(
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    )
    lean = LeanTransport("http://db.example")
    for _ in range(3):
        assert (await lean.send(HEADERS, b"")).body == b"{}"
    assert len(network_on_loop.transports) == 3
    assert all(t.closing and not t.aborted for t in network_on_loop.transports)
    await lean.close()


async def test_read_until_close_through_the_pool(network_on_loop: FakeNetwork) -> None:
    def answer(t: FakeTransport, data: bytes) -> None:
        t.reply(b'HTTP/1.0 200 OK\r\n\r\n{"a":')
        t.reply(b"1}")
        asyncio.get_running_loop().call_soon(t.lose, None)

    network_on_loop.handler = answer
    lean = LeanTransport("http://db.example")
    assert (await lean.send(HEADERS, b"")).body == b'{"a":1}'
    await lean.close()


async def test_connection_closed_while_idle_is_discarded(network_on_loop: FakeNetwork) -> None:
    lean = LeanTransport("http://db.example")
    await lean.send(HEADERS, b"")
    network_on_loop.transports[0].lose(None)  # the server's idle timeout
    await settle()
    await lean.send(HEADERS, b"")
    assert len(network_on_loop.transports) == 2
    assert len(network_on_loop.transports[0].written) == 1
    await lean.close()


async def test_reused_connection_closed_after_the_request_is_not_resent(
    network_on_loop: FakeNetwork,
) -> None:
    # The server reads the request, applies it, and closes without answering: resending it
    # would apply it twice. The error says it may have been applied.
    applied: list[bytes] = []
    lean = LeanTransport("http://db.example")
    await lean.send(HEADERS, b"first")
    first = network_on_loop.transports[0]

    def apply_and_close(t: FakeTransport, data: bytes) -> None:
        applied.append(data)
        t.lose(None)

    first.on_write = apply_and_close
    network_on_loop.handler = apply_and_close
    with pytest.raises(TransportError, match="before answering") as info:
        await lean.send(HEADERS, b"second")
    assert info.value.maybe_applied
    assert len(applied) == 1 and applied[0].endswith(b"second")
    assert len(network_on_loop.transports) == 1  # no second connection, no second send
    assert lean.resends == 0
    await lean.close()


async def test_reused_connection_seen_closed_before_writing_moves_the_request(
    network_on_loop: FakeNetwork,
) -> None:
    # The server closed the idle connection and we saw it (EOF) before writing: the request
    # never left, so it goes out on a new connection, counted as a resend.
    lean = LeanTransport("http://db.example")
    await lean.send(HEADERS, b"first")
    network_on_loop.transports[0].lose(None)  # the server's idle timeout
    await settle()
    response = await lean.send(HEADERS, b"second")
    assert response.body == b"{}"
    assert [len(t.written) for t in network_on_loop.transports] == [1, 1]
    assert network_on_loop.transports[1].written[0].endswith(b"second")
    assert lean.resends == 1
    await lean.close()


async def test_close_waiting_on_a_quiet_connection_is_read_before_writing(
    network_on_loop: FakeNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server's idle close reaches us as we take the connection, still unread: a quiet
    # connection lets the loop read it before writing, and the request moves, unsent.
    monkeypatch.setattr("asyncdyn.lean._QUIET", 0.01)
    lean = LeanTransport("http://db.example")
    await lean.send(HEADERS, b"first")
    await asyncio.sleep(0.02)
    first = network_on_loop.transports[0]
    asyncio.get_running_loop().call_soon(first.lose, None)  # the close, not yet read
    assert (await lean.send(HEADERS, b"second")).body == b"{}"
    assert [len(t.written) for t in network_on_loop.transports] == [1, 1]
    assert lean.resends == 1
    # A connection in steady use is written on at once, without the extra turns.
    network_on_loop.transports[1].on_write = lambda t, data: t.lose(None)
    with pytest.raises(TransportError, match="before answering"):
        await lean.send(HEADERS, b"third")
    assert lean.resends == 1
    await lean.close()


async def test_cancelled_while_checking_a_quiet_connection_keeps_it_pooled(
    network_on_loop: FakeNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("asyncdyn.lean._QUIET", 0.0)
    lean = LeanTransport("http://db.example")
    await lean.send(HEADERS, b"first")
    task = asyncio.create_task(lean.send(HEADERS, b"cancelled"))
    await asyncio.sleep(0)  # the task took the connection and yields to read a close
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await lean.send(HEADERS, b"third")
    assert [len(t.written) for t in network_on_loop.transports] == [2]  # nothing written
    assert lean.open_connections == 1
    await lean.close()


async def test_new_connection_seen_closed_before_writing_moves_the_request(
    network_on_loop: FakeNetwork, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server accepts and closes at once, and we see it before writing: not sent, so the
    # request may go out once on another connection; only once.
    connect = network_on_loop.create_connection
    closed_at_once = 1

    async def connect_then_close(*args: Any, **kwargs: Any) -> tuple[FakeTransport, Any]:
        nonlocal closed_at_once
        transport, protocol = await connect(*args, **kwargs)
        if closed_at_once:
            closed_at_once -= 1
            transport.lose(None)
            await settle()
        return transport, protocol

    monkeypatch.setattr(asyncio.get_running_loop(), "create_connection", connect_then_close)
    lean = LeanTransport("http://db.example")
    assert (await lean.send(HEADERS, b"x")).body == b"{}"
    assert [len(t.written) for t in network_on_loop.transports] == [0, 1]
    assert lean.resends == 1
    closed_at_once = 2  # closed again on the second try: the error says nothing was sent
    await lean.close()
    lean = LeanTransport("http://db.example")
    with pytest.raises(TransportError) as info:
        await lean.send(HEADERS, b"x")
    assert not info.value.maybe_applied
    assert [len(t.written) for t in network_on_loop.transports[2:]] == [0, 0]
    assert lean.resends == 1


async def test_fresh_connection_closed_before_answering_fails(
    network_on_loop: FakeNetwork,
) -> None:
    network_on_loop.handler = lambda t, data: t.lose(None)
    lean = LeanTransport("http://db.example")
    with pytest.raises(TransportError, match="before answering") as info:
        await lean.send(HEADERS, b"")
    assert info.value.maybe_applied
    assert len(network_on_loop.transports) == 1  # a new connection is not retried
    assert lean.resends == 0


async def test_update_applied_once_when_the_answer_is_lost(network_on_loop: FakeNetwork) -> None:
    # Through a client with one attempt: the caller hears of the failure, never a success
    # made of a second, silent send; the server applied the update once.
    applied = 0

    def server(t: FakeTransport, data: bytes) -> None:
        nonlocal applied
        if b"UpdateItem" in data:
            applied += 1
            t.lose(None)  # applied, then the connection dies before the answer
        else:
            t.reply(OK)

    network_on_loop.handler = server
    lean = LeanTransport("http://db.example")
    async with Client(
        region="us-east-1",
        endpoint_url="http://db.example",
        credentials=("AKIDEXAMPLE", "secret"),
        retry=RetryPolicy(max_attempts=1),
        transport=lean,
    ) as db:
        await db.table("T").get({"PK": "a"})  # leaves a keep-alive connection idle
        with pytest.raises(AsyncDynError):
            await db.table("T").update({"PK": "a"}, Attr("n").add(1))
        assert applied == 1
        assert db.stats().resends == 0


async def test_resends_are_counted_in_client_stats(network_on_loop: FakeNetwork) -> None:
    lean = LeanTransport("http://db.example")
    async with Client(
        region="us-east-1",
        endpoint_url="http://db.example",
        credentials=("AKIDEXAMPLE", "secret"),
        retry=RetryPolicy(max_attempts=1),
        transport=lean,
    ) as db:
        await db.table("T").get({"PK": "a"})
        network_on_loop.transports[0].lose(None)
        await settle()
        assert await db.table("T").get({"PK": "a"}) is None
        assert db.stats().resends == 1
        assert db.stats().retries == 0


async def test_reused_connection_dying_mid_answer_is_not_retried(
    network_on_loop: FakeNetwork,
) -> None:
    lean = LeanTransport("http://db.example")
    await lean.send(HEADERS, b"")

    def half(t: FakeTransport, data: bytes) -> None:
        t.reply(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{")
        asyncio.get_running_loop().call_soon(t.lose, ConnectionResetError())

    network_on_loop.handler = half
    with pytest.raises(TransportError, match="mid-answer"):
        await lean.send(HEADERS, b"")
    assert len(network_on_loop.transports) == 1


async def test_at_most_max_connections(network_on_loop: FakeNetwork) -> None:
    busy = 0
    peak = 0

    def slow(t: FakeTransport, data: bytes) -> None:
        nonlocal busy, peak
        busy += 1
        peak = max(peak, busy)

        def answer() -> None:
            nonlocal busy
            busy -= 1
            t.protocol.data_received(OK)

        asyncio.get_running_loop().call_later(0.001, answer)

    network_on_loop.handler = slow
    lean = LeanTransport("http://db.example", max_connections=3)
    responses = await asyncio.gather(*(lean.send(HEADERS, b"") for _ in range(50)))
    assert all(r.status == 200 for r in responses)
    assert len(network_on_loop.transports) == 3
    assert peak == 3
    await lean.close()


async def test_read_timeout(network_on_loop: FakeNetwork) -> None:
    network_on_loop.handler = lambda t, data: None  # never answers
    lean = LeanTransport("http://db.example", read_timeout=0.02)
    with pytest.raises(RequestTimeout, match="no answer from http://db.example"):
        await lean.send(HEADERS, b"")
    assert network_on_loop.transports[0].aborted
    assert lean.open_connections == 0
    network_on_loop.handler = lambda t, data: t.reply(OK)
    await lean.send(HEADERS, b"")
    assert len(network_on_loop.transports) == 2  # the timed-out one was not reused
    await lean.close()


async def test_read_timeout_counts_from_each_request(network_on_loop: FakeNetwork) -> None:
    lean = LeanTransport("http://db.example", read_timeout=0.1)
    await lean.send(HEADERS, b"")  # starts the connection's timer, due in 0.1 s
    await asyncio.sleep(0.06)
    network_on_loop.handler = lambda t, data: None
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(RequestTimeout):
        await lean.send(HEADERS, b"")
    elapsed = loop.time() - start
    assert 0.098 <= elapsed < 0.5
    assert len(network_on_loop.transports) == 1  # the same connection, then dropped
    await lean.close()


async def test_slow_answers_within_the_timeout_keep_the_connection(
    network_on_loop: FakeNetwork,
) -> None:
    def slow(t: FakeTransport, data: bytes) -> None:
        asyncio.get_running_loop().call_later(0.03, t.protocol.data_received, OK)

    network_on_loop.handler = slow
    lean = LeanTransport("http://db.example", read_timeout=0.05)
    for _ in range(5):  # 0.15 s in all: the timer fires and is pushed back on the way
        await lean.send(HEADERS, b"")
    assert len(network_on_loop.transports) == 1
    await lean.close()


async def test_connect_timeout(network_on_loop: FakeNetwork) -> None:
    network_on_loop.connect_delay = 1.0
    lean = LeanTransport("http://db.example", connect_timeout=0.02)
    with pytest.raises(RequestTimeout, match="could not connect to http://db.example") as info:
        await lean.send(HEADERS, b"")
    assert not info.value.maybe_applied


@pytest.mark.parametrize(
    "error",
    [ConnectionRefusedError(111, "refused"), ssl.SSLCertVerificationError("bad cert")],
)
async def test_connect_error_names_the_endpoint_not_the_headers(
    network_on_loop: FakeNetwork, error: OSError
) -> None:
    network_on_loop.connect_error = error
    lean = LeanTransport("https://user:pw@db.example:8443/path")
    with pytest.raises(TransportError) as info:
        await lean.send(HEADERS, b"")
    message = str(info.value)
    assert not info.value.maybe_applied  # the request never left
    assert "https://db.example:8443" in message
    assert "deadbeef" not in message and "pw" not in message
    assert not isinstance(info.value, RequestTimeout)


async def test_cancelled_request_drops_its_connection(network_on_loop: FakeNetwork) -> None:
    network_on_loop.handler = lambda t, data: None
    lean = LeanTransport("http://db.example")
    task = asyncio.create_task(lean.send(HEADERS, b""))
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert network_on_loop.transports[0].aborted
    network_on_loop.handler = lambda t, data: t.reply(OK)
    await lean.send(HEADERS, b"")
    assert len(network_on_loop.transports) == 2
    await lean.close()


async def test_close_fails_requests_in_flight_and_later_sends(
    network_on_loop: FakeNetwork,
) -> None:
    lean = LeanTransport("http://db.example")
    await lean.send(HEADERS, b"")  # one idle connection
    network_on_loop.handler = lambda t, data: None
    task = asyncio.create_task(lean.send(HEADERS, b""))  # takes the idle one
    other = asyncio.create_task(lean.send(HEADERS, b""))  # a second, busy connection
    await settle()
    await lean.close()
    for pending in (task, other):
        with pytest.raises(TransportError, match="closed"):
            await pending
        assert pending.exception().maybe_applied  # type: ignore[union-attr]  # in flight
    assert all(t.closing for t in network_on_loop.transports)
    with pytest.raises(TransportError, match="closed") as info:
        await lean.send(HEADERS, b"")
    assert not info.value.maybe_applied  # refused before sending
    assert lean.open_connections == 0


async def test_close_while_connecting(network_on_loop: FakeNetwork) -> None:
    network_on_loop.connect_delay = 0.01
    lean = LeanTransport("http://db.example")
    task = asyncio.create_task(lean.send(HEADERS, b""))
    await settle()
    await lean.close()
    with pytest.raises(TransportError, match="closed"):
        await task
    assert all(t.closing for t in network_on_loop.transports)
