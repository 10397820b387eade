"""``LeanTransport``: the ``Transport`` seam over raw asyncio protocols and httptools.

A keep-alive HTTP/1.1 connection pool with no HTTP framework underneath: each connection is
an ``asyncio.Protocol`` carrying one request at a time, answers are parsed by httptools
(llhttp), and idle connections are reused last-in first-out. It does only what a DynamoDB
client needs -- ``POST /`` with a small body, a whole answer back -- and spends as little
as it can per request.

* At most ``max_connections`` connections are open; further sends wait for a free one.
* A connection goes back to the pool only after a complete answer that allows keep-alive
  (an HTTP/1.0 or ``Connection: close`` answer is read to its end, then the socket closed).
* An answer with neither ``Content-Length`` nor chunked encoding ends when the server
  closes the connection.
* A server may close an idle keep-alive connection at any time (Node.js servers do after
  5 s). A closed idle connection is dropped when it is next taken; a request on a reused
  connection that the server closes before sending a single byte of answer is sent once
  more on a new connection.
* ``connect_timeout`` bounds connecting (and the TLS handshake), ``read_timeout`` the wait
  for the whole answer; both raise ``RequestTimeout``. A connection whose request timed
  out, failed or was cancelled is closed, never reused.
* TLS certificates are always verified.

Error messages name the endpoint, never a header value (headers carry signatures).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from typing import cast
from urllib.parse import urlsplit

import httptools

from .errors import ConfigurationError, RequestTimeout, TransportError
from .resend import transparent_resend
from .transport import HttpResponse, _TransportClosed, endpoint_host

__all__ = ["LeanTransport"]

_REQUEST_LINE = "POST / HTTP/1.1\r\n"


class _ClosedBeforeAnswer(TransportError):
    """The server closed the connection before sending any byte of its answer."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time.

    ``request`` writes a request and returns a future resolved with the ``HttpResponse``
    (or failed with a ``TransportError``); the httptools callbacks fill it in as bytes
    arrive. ``reusable`` turns false for good once the connection cannot carry another
    request: closed by either side, a non keep-alive answer, unexpected bytes, a parse error.
    """

    __slots__ = (
        "_body",
        "_deadline",
        "_framed",
        "_headers",
        "_label",
        "_loop",
        "_parser",
        "_received",
        "_status",
        "_timeout",
        "_timer",
        "_waiter",
        "reusable",
        "transport",
    )

    def __init__(self, label: str, read_timeout: float) -> None:
        self._label = label
        self._timeout = read_timeout
        # The read timeout without a timer per request: one timer per busy connection,
        # pushed back to the current request's deadline whenever it fires early.
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[HttpResponse] | None = None
        self._status = 0
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._framed = False  # the answer has a Content-Length or a Transfer-Encoding
        self._received = False  # some byte of the current answer has arrived
        self.transport: asyncio.Transport | None = None
        self.reusable = False

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, but not always an asyncio.Transport subclass: uvloop's is not.
        self.transport = cast(asyncio.Transport, transport)
        self._loop = asyncio.get_running_loop()
        self.reusable = True

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            # Nothing was asked: a server talking out of turn cannot be trusted with a request.
            self.reusable = False
            self.abort()
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            # (An answer already delivered stays delivered: this only kills the connection.)
            self._fail(TransportError(f"malformed answer from {self._label}: {exc}"))
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        waiter, self._waiter = self._waiter, None
        if waiter is None or waiter.done():
            return
        if exc is None and self._status and not self._framed:
            # Headers are in and the body had no declared length: it ends here.
            waiter.set_result(HttpResponse(self._status, self._headers, b"".join(self._body)))
        elif not self._received:
            waiter.set_exception(
                _ClosedBeforeAnswer(f"{self._label} closed the connection before answering")
            )
        else:
            detail = f": {exc!r}" if exc is not None else ""
            waiter.set_exception(
                TransportError(f"{self._label} closed the connection mid-answer{detail}")
            )

    # -- httptools callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._waiter is None:
            # A second answer right behind the first one, in the same read.
            self.reusable = False

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers = self._headers
        if key in headers:
            headers[key] = f"{headers[key]}, {text}"
        else:
            headers[key] = text

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        headers = self._headers
        self._framed = "content-length" in headers or "transfer-encoding" in headers

    def on_body(self, body: bytes) -> None:
        if body:
            self._body.append(body)

    def on_message_complete(self) -> None:
        status = self._status
        if 100 <= status < 200:
            # An interim answer (100 Continue, 103 Early Hints): the real one follows.
            self._status = 0
            self._headers = {}
            self._body = []
            return
        waiter, self._waiter = self._waiter, None
        if not self._parser.should_keep_alive():
            self.reusable = False
        if waiter is not None and not waiter.done():
            waiter.set_result(HttpResponse(status, self._headers, b"".join(self._body)))

    # -- used by the pool ----------------------------------------------------------------

    def request(self, data: bytes) -> asyncio.Future[HttpResponse]:
        """Write one request; the future resolves with its whole answer."""
        transport = self.transport
        loop = self._loop
        if not self.reusable or transport is None or loop is None or transport.is_closing():
            raise _ClosedBeforeAnswer(f"connection to {self._label} is closed")
        waiter: asyncio.Future[HttpResponse] = loop.create_future()
        self._waiter = waiter
        self._deadline = deadline = loop.time() + self._timeout
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._check_deadline)
        self._status = 0
        self._headers = {}
        self._body = []
        self._framed = False
        self._received = False
        transport.write(data)
        return waiter

    def _check_deadline(self) -> None:
        self._timer = None
        waiter = self._waiter
        loop = self._loop
        if waiter is None or waiter.done() or loop is None:
            return  # idle: the next request starts a timer again
        if loop.time() < self._deadline - 0.001:
            # Set for an earlier request that was answered in time: wait for this one's.
            self._timer = loop.call_at(self._deadline, self._check_deadline)
            return
        self._fail(RequestTimeout(f"no answer from {self._label} within {self._timeout:g}s"))
        self.abort()

    def fail(self, error: TransportError) -> None:
        """Fail the pending request, if any, and drop the connection."""
        self._fail(error)
        self.abort()

    def _fail(self, error: TransportError) -> None:
        self.reusable = False
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def abort(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.close()


class LeanTransport:
    """A keep-alive HTTP/1.1 connection pool on asyncio protocols and httptools.

    A drop-in ``Transport`` for ``Client(transport=...)``, leaner than ``AiohttpTransport``::

        db = Client(endpoint_url=url, transport=LeanTransport(url, max_connections=64))

    Bound to the event loop it is first used on. ``close()`` closes every connection, idle
    or busy (a request in flight fails with ``TransportError``); it cannot be used afterwards.
    """

    __slots__ = (
        "_all",
        "_closed",
        "_connect_timeout",
        "_host",
        "_host_header",
        "_idle",
        "_label",
        "_names",
        "_port",
        "_read_timeout",
        "_slots",
        "_ssl",
        "_tls",
        "max_connections",
    )

    def __init__(
        self,
        endpoint_url: str,
        *,
        max_connections: int = 64,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
    ) -> None:
        host_header = endpoint_host(endpoint_url)  # validates, port included
        if max_connections < 1:
            raise ConfigurationError("max_connections must be at least 1")
        if not connect_timeout > 0 or not read_timeout > 0:
            raise ConfigurationError("connect_timeout and read_timeout must be positive")
        parts = urlsplit(endpoint_url)
        port = parts.port
        self._tls = parts.scheme == "https"
        self._host: str = parts.hostname or ""  # endpoint_host refused an empty one
        self._port = port if port is not None else (443 if self._tls else 80)
        self._host_header = host_header
        self._label = f"{parts.scheme}://{host_header}"  # no user info, no path
        self.max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._ssl: ssl.SSLContext | None = None
        self._names: dict[tuple[str, ...], bool] = {}  # header names checked -> add Host?
        self._idle: list[_Connection] = []
        self._all: set[_Connection] = set()
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False

    def __repr__(self) -> str:
        return f"LeanTransport({self._label!r}, max_connections={self.max_connections})"

    @property
    def open_connections(self) -> int:
        """Connections open and usable (idle or busy); ones the server closed do not count."""
        return sum(1 for conn in self._all if conn.reusable)

    async def send(self, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        if self._closed:
            raise _TransportClosed(f"the transport to {self._label} is closed")
        request = self._encode(headers, body)
        async with self._slots:
            conn = self._take_idle()
            if conn is not None:
                try:
                    return await self._exchange(conn, request)
                except _ClosedBeforeAnswer:
                    # Closed without a byte of answer: in practice the server's idle
                    # timeout closing the connection as we wrote on it, the request unread.
                    # Sent once more on a new connection (as urllib3 does) — unless the
                    # request is a write that a lost answer would apply twice: the
                    # dispatcher's resend rule decides that one (asyncdyn.resend).
                    if not transparent_resend.get():
                        raise
            return await self._exchange(await self._connect(), request)

    async def close(self) -> None:
        self._closed = True
        error = _TransportClosed(f"the transport to {self._label} was closed")
        conns = list(self._all)
        self._all.clear()
        self._idle.clear()
        for conn in conns:
            conn.fail(error)
        if conns:
            await asyncio.sleep(0)  # let the transports report connection_lost

    # -- internals -----------------------------------------------------------------------

    def _encode(self, headers: Mapping[str, str], body: bytes) -> bytes:
        names = tuple(headers)
        add_host = self._names.get(names)
        if add_host is None:
            if any(name.lower() == "content-length" for name in names):
                # Content-Length is ours to write: drop the caller's (slow path, rare).
                kept = {k: v for k, v in headers.items() if k.lower() != "content-length"}
                return self._encode(kept, body)
            add_host = self._check_names(names)
        text = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
        count = len(names)
        if text.count("\n") != count or text.count("\r") != count:
            raise ConfigurationError("a header value has a line break")
        host = f"Host: {self._host_header}\r\n" if add_host else ""
        head = f"{_REQUEST_LINE}{text}{host}Content-Length: {len(body)}\r\n\r\n"
        try:
            return head.encode("latin-1") + body
        except UnicodeEncodeError as exc:
            # The error's .object (and args) is the whole head, signature and session token
            # included: name the header only, and raise outside this block, unchained.
            bad = head[: exc.start].rpartition("\r\n")[2].partition(":")[0]
        raise ConfigurationError(f"header {bad!r} has a character outside latin-1")

    def _check_names(self, names: tuple[str, ...]) -> bool:
        """Validate a set of header names once; True when ``Host`` must be added."""
        for name in names:
            if not name or any(c in name for c in ":\r\n \t"):
                raise ConfigurationError(f"bad header name {name!r}")
        add_host = not any(name.lower() == "host" for name in names)
        if len(self._names) >= 64:  # callers send a few distinct sets; stay bounded anyway
            self._names.clear()
        self._names[names] = add_host
        return add_host

    def _take_idle(self) -> _Connection | None:
        idle = self._idle
        while idle:
            conn = idle.pop()
            transport = conn.transport
            if conn.reusable and transport is not None and not transport.is_closing():
                return conn
            self._all.discard(conn)
        return None

    async def _exchange(self, conn: _Connection, request: bytes) -> HttpResponse:
        try:
            waiter = conn.request(request)
        except BaseException:
            self._drop(conn, abort=True)
            raise
        try:
            response = await waiter
        except BaseException:  # failed, timed out or cancelled: its state is unknown
            self._drop(conn, abort=True)
            raise
        if conn.reusable and not self._closed:
            self._idle.append(conn)
        else:  # a complete answer, but no keep-alive: close gracefully
            self._drop(conn, abort=False)
        return response

    def _drop(self, conn: _Connection, *, abort: bool) -> None:
        self._all.discard(conn)
        if abort:
            conn.abort()
        else:
            conn.close()

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        label = self._label
        read_timeout = self._read_timeout
        if self._closed:
            raise _TransportClosed(f"the transport to {label} is closed")
        context = None
        if self._tls:
            context = self._ssl
            if context is None:
                context = self._ssl = ssl.create_default_context()  # verifies certificates
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(label, read_timeout),
                    self._host,
                    self._port,
                    ssl=context,
                    server_hostname=self._host if context is not None else None,
                )
        except TimeoutError as exc:
            raise RequestTimeout(
                f"could not connect to {label} within {self._connect_timeout:g}s"
            ) from exc
        except OSError as exc:  # refused, unreachable, unknown name, TLS failure
            raise TransportError(f"could not connect to {label}: {exc!r}") from exc
        if self._closed:
            conn.abort()
            raise _TransportClosed(f"the transport to {label} is closed")
        self._all.add(conn)
        return conn
