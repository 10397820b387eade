"""The data plane: bytes over pooled keep-alive HTTP, signed, checked, decoded, retried.

Two layers live here:

* ``Transport`` — the small seam that moves one signed request and returns the raw answer.
  ``AiohttpTransport`` is the pooled keep-alive implementation; tests script their own.
* ``Dispatcher`` — one logical DynamoDB call: encode the payload once with orjson, then per
  attempt take a slot of the client's in-flight limit, sign, send, verify ``x-amz-crc32`` on
  the raw bytes, decode, map an error answer to its class once, and retry what is retryable
  under the operation's ``RetryBudget``.

A big answer (a page of items, a batch) is parsed and turned into Python items with the
cyclic garbage collector paused: parsing 100 items allocates some 5,000 containers, all alive
until decoded, so the collector would run several times per answer, find nothing to free,
and promote every one of them towards the old generation, whose full collections then walk
the whole heap. Measured against the canned server, that was a fifth of a batch read's CPU.
Nothing in between creates a reference cycle, and the pause ends before anything else runs.
"""

from __future__ import annotations

import asyncio
import gc
import zlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast
from urllib.parse import urlsplit

import orjson

from .credentials import CredentialsProvider
from .errors import (
    AsyncDynError,
    CancellationReason,
    ChecksumMismatch,
    ConditionalCheckFailed,
    ConfigurationError,
    InvalidItem,
    OutcomeUnknown,
    RequestTimeout,
    ResourceInUse,
    RetriesExhausted,
    ServerError,
    ServiceError,
    TableNotFound,
    Throttled,
    TransactionCanceled,
    TransportError,
    error_from_response,
    throttling_reasons,
)
from .marshal import Decoder
from .resend import Resend, resend_rule
from .retry import RetryBudget, RetryPolicy
from .signing import SigV4Signer
from .stats import Stats
from .telemetry import Recorder

__all__ = [
    "DYNAMODB_TARGET",
    "STREAMS_TARGET",
    "AiohttpTransport",
    "Dispatcher",
    "HttpResponse",
    "Transport",
    "endpoint_host",
]

DYNAMODB_TARGET = "DynamoDB_20120810"
STREAMS_TARGET = "DynamoDBStreams_20120810"
_CONTENT_TYPE = "application/x-amz-json-1.0"
# Below this an answer holds too few containers to trigger a collection worth avoiding.
_PAUSE_GC_BYTES = 8192

_gc_isenabled = gc.isenabled
_gc_disable = gc.disable
_gc_enable = gc.enable
_crc32 = zlib.crc32
_loads = orjson.loads

T = TypeVar("T")
Read = Callable[[dict[str, Any]], T]
"""Turns a decoded answer into what the caller keeps (its items decoded, typically)."""
Recognise = Callable[[dict[str, Any] | None], Awaitable[bool]]
"""Whether the item a resent conditional write found (``None``: none came back) is that
write's own first attempt, applied although its answer was lost."""


@dataclass(slots=True)
class HttpResponse:
    """A raw answer. ``headers`` must answer lookups by lower-case name."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    """Moves one signed ``POST /`` to the endpoint and returns the whole raw answer.

    Raises ``TransportError`` (or ``RequestTimeout``) when no complete answer arrives.
    """

    async def send(self, headers: Mapping[str, str], body: bytes) -> HttpResponse: ...

    async def close(self) -> None: ...


def endpoint_host(endpoint_url: str) -> str:
    """The ``Host`` header for an endpoint URL (with the port only when it is not the default)."""
    parts = urlsplit(endpoint_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"endpoint_url must be an http(s) URL, got {endpoint_url!r}")
    try:
        port = parts.port
    except ValueError:  # out of range, or not a number
        raise ConfigurationError(f"endpoint_url has a bad port: {endpoint_url!r}") from None
    host = parts.hostname
    if ":" in host:  # an IPv6 literal keeps its brackets in Host
        host = f"[{host}]"
    default_port = 443 if parts.scheme == "https" else 80
    if port is not None and port != default_port:
        host = f"{host}:{port}"
    return host


class _TransportClosed(TransportError):
    """The transport was closed: no request can succeed on it any more, so none is retried."""

    retryable = False


class AiohttpTransport:
    """A keep-alive connection pool over aiohttp, sized to the client's in-flight limit.

    Responses are read raw (``auto_decompress=False``) so that the CRC32 DynamoDB computes
    over the bytes it sent can be checked. TLS certificates are always verified.

    Timeouts mean what they mean for ``LeanTransport``: ``connect_timeout`` bounds
    connecting, ``read_timeout`` the whole answer, counted from the moment the request has
    its connection (not aiohttp's ``sock_read``, which restarts on every byte, so that an
    answer trickled byte by byte would never time out). A request that never left (a
    connection that could not be made, a proxy that refused the tunnel) fails with
    ``maybe_applied`` false.

    ``HTTP_PROXY`` / ``HTTPS_PROXY`` (and ``NO_PROXY``) are read when the first request
    opens the session, as urllib reads them; credentials in the proxy URL are sent as
    ``Proxy-Authorization: Basic``. (aiohttp's own ``trust_env`` is not used: it reads the
    environment on every request in a thread, and would add ``~/.netrc`` credentials as an
    ``Authorization`` header, which a signed request already has.)
    """

    __slots__ = (
        "_closed",
        "_connect_timeout",
        "_max_connections",
        "_proxy",
        "_proxy_auth",
        "_proxy_headers",
        "_read_timeout",
        "_session",
        "_url",
    )

    def __init__(
        self,
        endpoint_url: str,
        *,
        max_connections: int = 64,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
    ) -> None:
        endpoint_host(endpoint_url)  # validates
        if not connect_timeout > 0 or not read_timeout > 0:
            raise ConfigurationError("connect_timeout and read_timeout must be positive")
        parts = urlsplit(endpoint_url)
        self._url = f"{parts.scheme}://{parts.netloc}/"
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._session: Any = None
        self._proxy: str | None = None
        self._proxy_auth: str | None = None  # Proxy-Authorization in a plain-HTTP request
        self._proxy_headers: dict[str, str] | None = None  # ... in an HTTPS tunnel's CONNECT
        self._closed = False

    def _open(self) -> Any:
        # Imported here: aiohttp costs ~100 ms to import and a scripted transport never needs it.
        import aiohttp

        self._proxy, auth = _env_proxy(self._url)
        if auth is not None:
            # A plain-HTTP request goes to the proxy itself, which reads its credentials from
            # the request; an HTTPS one through a tunnel, whose CONNECT carries them.
            if self._url.startswith("https:"):
                self._proxy_headers = {"Proxy-Authorization": auth}
            else:
                self._proxy_auth = auth
        read_timeout = self._read_timeout

        async def start_read_deadline(session: Any, context: Any, params: Any) -> None:
            # The request has its connection (new or reused): the answer is due within
            # read_timeout from now, however it trickles in.
            deadline = context.trace_request_ctx
            if isinstance(deadline, asyncio.Timeout):
                deadline.reschedule(asyncio.get_running_loop().time() + read_timeout)

        tracing = aiohttp.TraceConfig()
        tracing.on_connection_create_end.append(start_read_deadline)
        tracing.on_connection_reuseconn.append(start_read_deadline)
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, limit_per_host=0, keepalive_timeout=30.0
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout),
            trace_configs=[tracing],
        )
        return self._session

    async def send(self, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        import aiohttp

        if self._closed:
            # Opening a new session here would leak it: nobody would close it again.
            error: TransportError = _TransportClosed(f"the transport to {self._url} is closed")
            error.maybe_applied = False
            raise error
        session = self._session or self._open()
        if self._proxy_auth is not None:
            headers = {**headers, "Proxy-Authorization": self._proxy_auth}
        sent = True  # may the request have left? False once aiohttp says it could not
        try:
            # No deadline until the request has a connection (waiting for one is bounded
            # by the pool, connecting by sock_connect); then read_timeout for the answer.
            async with asyncio.timeout(None) as deadline:
                async with session.post(
                    self._url,
                    data=body,
                    headers=headers,
                    proxy=self._proxy,
                    proxy_headers=self._proxy_headers,
                    trace_request_ctx=deadline,
                ) as resp:
                    data = await resp.read()
                    return HttpResponse(resp.status, _headers(resp.headers), data)
        except TimeoutError as exc:  # aiohttp's socket timeouts are TimeoutError subclasses
            error = RequestTimeout(f"no answer from {self._url}: {exc!r}")
            # A connect timeout (sock_connect) sent nothing.
            error.maybe_applied = not isinstance(exc, aiohttp.ConnectionTimeoutError)
            raise error from exc
        except aiohttp.ClientError as exc:
            # Connecting failed (refused, DNS, TLS, a proxy refusing the tunnel): not sent.
            sent = not isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ClientHttpProxyError)
            if not hasattr(exc, "request_info"):
                error = TransportError(f"request to {self._url} failed: {exc!r}")
                error.maybe_applied = sent
                raise error from exc
            # A ClientResponseError's repr and args hold the request's headers: the signature
            # and the session token. Keep its text only, raised outside this block so that
            # not even __context__ leads back to it.
            detail = f"{type(exc).__name__}: {exc}"
        error = TransportError(f"request to {self._url} failed: {detail}")
        error.maybe_applied = sent
        raise error

    async def close(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _headers(headers: Any) -> Mapping[str, str]:
    """aiohttp's headers as they are (a case-insensitive multidict), unless ``x-amz-crc32``
    is there twice: ``get`` would give the first one only, and the check must see both (it
    fails on them, as it does for the lean transport, which joins repeated headers)."""
    if len(headers.getall("x-amz-crc32", ())) < 2:
        return cast(Mapping[str, str], headers)
    joined: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


def _env_proxy(url: str) -> tuple[str | None, str | None]:
    """The proxy for ``url`` from the environment (``HTTP(S)_PROXY``, ``NO_PROXY``), as
    urllib reads it, and the ``Proxy-Authorization`` value for credentials in its URL."""
    import urllib.request

    parts = urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None, None
    proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if proxy_parts.username is None:
        return proxy_parts.geturl(), None
    import base64
    from urllib.parse import unquote

    user = unquote(proxy_parts.username)
    password = unquote(proxy_parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    netloc = proxy_parts.netloc.rpartition("@")[2]
    return proxy_parts._replace(netloc=netloc).geturl(), f"Basic {token}"


def _encode(operation: str, payload: Mapping[str, Any]) -> bytes:
    """The request body; a payload JSON cannot carry (a string with a lone surrogate, in a
    name or raw expression the encoders do not see) is refused before sending, typed."""
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError as exc:
        raise InvalidItem(f"{operation}: the request cannot be sent as JSON: {exc}") from None


class Dispatcher:
    """Sends DynamoDB operations for one client: limit, sign, send, check, decode, retry."""

    __slots__ = (
        "_base_headers",
        "_credentials",
        "_decoder",
        "_limiter",
        "_record_capacity",
        "_retry",
        "_signer",
        "_target",
        "_telemetry",
        "_timeout",
        "stats",
        "transport",
    )

    def __init__(
        self,
        transport: Transport,
        *,
        signer: SigV4Signer,
        credentials: CredentialsProvider,
        host: str,
        decoder: Decoder,
        retry: RetryPolicy,
        limiter: asyncio.Semaphore,
        timeout: float | None = None,
        stats: Stats | None = None,
        target_prefix: str = DYNAMODB_TARGET,
        record_capacity: bool = False,
        telemetry: Recorder | None = None,
    ) -> None:
        self.transport = transport
        # None when telemetry is off: then a call pays one attribute check, nothing more.
        self._telemetry = telemetry
        # Only when the client asked for ReturnConsumedCapacity: some servers (moto) send
        # ConsumedCapacity unasked, and stats() must not show figures nobody requested.
        self._record_capacity = record_capacity
        self._signer = signer
        self._credentials = credentials
        self._decoder = decoder
        self._retry = retry
        self._limiter = limiter
        self._timeout = timeout
        self.stats = stats if stats is not None else Stats()
        # A transport that counts events of its own (LeanTransport's resends) counts them
        # into these stats too, so that Client.stats() shows them.
        bind_stats = getattr(transport, "bind_stats", None)
        if bind_stats is not None:
            bind_stats(self.stats)
        self._target = target_prefix + "."
        self._base_headers = {
            "Host": host,
            "Content-Type": _CONTENT_TYPE,
            # The CRC32 covers the bytes as sent; a compressed answer would need inflating
            # before decoding and after checking, so ask for none.
            "Accept-Encoding": "identity",
        }

    def sibling(self, transport: Transport, *, host: str, target_prefix: str) -> Dispatcher:
        """A dispatcher for another API of the same service (DynamoDB Streams) that shares
        this one's signer, credentials, decoder, retry policy, in-flight limiter, timeout and
        stats, so the two never drift apart in configuration.

        The signer can be shared even for another host: every request carries a ``Host``
        header, which is what gets signed, and Streams is signed as service ``dynamodb``.
        """
        return Dispatcher(
            transport,
            signer=self._signer,
            credentials=self._credentials,
            host=host,
            decoder=self._decoder,
            retry=self._retry,
            limiter=self._limiter,
            timeout=self._timeout,
            stats=self.stats,
            target_prefix=target_prefix,
            record_capacity=self._record_capacity,
            telemetry=None
            if self._telemetry is None
            else self._telemetry.sibling(
                service="DynamoDB Streams" if target_prefix == STREAMS_TARGET else "DynamoDB",
                host=host,
            ),
        )

    @property
    def retry(self) -> RetryPolicy:
        return self._retry

    async def call(
        self,
        operation: str,
        payload: Mapping[str, Any],
        *,
        budget: RetryBudget | None = None,
        recognise: Recognise | None = None,
        key_names: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Send ``operation`` with ``payload`` and return the decoded JSON answer.

        Retryable failures are retried under ``budget`` (a fresh one from the client's
        policy when not given); anything else raises its mapped error at once. A failure
        that may have been applied is resent only as ``resend_rule`` allows (see
        ``asyncdyn.resend``); ``recognise`` and ``key_names`` serve a write that is not
        resent blindly, as in ``call_read``.
        """
        return await self.call_read(
            operation, payload, _answer, budget=budget, recognise=recognise, key_names=key_names
        )

    async def call_read(
        self,
        operation: str,
        payload: Mapping[str, Any],
        read: Read[T],
        *,
        budget: RetryBudget | None = None,
        recognise: Recognise | None = None,
        key_names: Sequence[str] = (),
    ) -> T:
        """``call``, returning ``read(answer)``: ``read`` runs as the answer is decoded
        (with the garbage collector paused for a big one, see the module docstring), so it
        should turn the wire items into Python ones and keep nothing else of the answer.
        An exception from ``read`` is raised as it is, never retried (unless retryable).

        The lost-answer policy lives here. After an attempt whose error has
        ``maybe_applied``, the request's ``resend_rule`` decides: ``SAFE`` resends it;
        ``NEVER`` raises ``OutcomeUnknown``; ``RECOGNISE`` resends it asking for the item on
        a condition failure, and a condition failure then is the write's own success when
        ``recognise(item)`` (default: the item is the one a put wrote) says so, else — as
        any other way the resends end — ``OutcomeUnknown``, which names the payload's
        ``Key``, or for a put the item's ``key_names`` attributes.
        """
        body = _encode(operation, payload)
        if budget is None:
            budget = self._retry.start()
        if self.stats.hot_keys is not None:
            read = self.stats.hot_keys.reader(operation, payload, read)
        if self._telemetry is not None:
            return await self._traced(
                self._telemetry, operation, payload, body, budget, read, key_names, recognise
            )
        return await self._retry_loop(operation, payload, body, budget, read, key_names, recognise)

    # The traced paths are methods of their own: a closure inside call_read or attempt_read
    # would turn their locals into cells, a cost paid with telemetry off too (~1 % of a get).
    async def _traced(
        self,
        telemetry: Recorder,
        operation: str,
        payload: Mapping[str, Any],
        body: bytes,
        budget: RetryBudget,
        read: Read[T],
        key_names: Sequence[str],
        recognise: Recognise | None,
    ) -> T:
        return await telemetry.call(
            operation,
            payload,
            read,
            lambda observed: self._retry_loop(
                operation, payload, body, budget, observed, key_names, recognise
            ),
            retries_inside=True,
        )

    async def _traced_attempt(
        self,
        telemetry: Recorder,
        operation: str,
        payload: Mapping[str, Any],
        body: bytes,
        budget: RetryBudget,
        read: Read[T],
    ) -> T:
        return await telemetry.call(
            operation,
            payload,
            read,
            lambda observed: self._attempt(operation, body, budget, observed),
            retries_inside=False,
        )

    async def _retry_loop(
        self,
        operation: str,
        payload: Mapping[str, Any],
        body: bytes,
        budget: RetryBudget,
        read: Read[T],
        key_names: Sequence[str],
        recognise: Recognise | None,
    ) -> T:
        # The error of an attempt that may have been applied, once the request is being
        # resent on the strength of recognising its own write (RECOGNISE only).
        lost: AsyncDynError | None = None
        while True:
            try:
                return await self._attempt(operation, body, budget, read)
            except AsyncDynError as exc:
                if isinstance(exc, Throttled) and self.stats.hot_keys is not None:
                    self.stats.hot_keys.throttled(operation, payload, exc)
                if lost is not None:
                    if isinstance(exc, ConditionalCheckFailed):
                        try:
                            own = await self._recognised(operation, payload, exc.item, recognise)
                        except AsyncDynError as failed:  # the read-back failed: still unknown
                            raise self._unknown(
                                operation, payload, key_names, lost, exc
                            ) from failed
                        if own:
                            self.stats.errors["RecognisedOwnWrite"] += 1
                            return read({})
                    if isinstance(exc, ConditionalCheckFailed) or not exc.retryable:
                        raise self._unknown(operation, payload, key_names, lost, exc) from exc
                elif exc.maybe_applied and not self._retry.retry_unknown_outcome:
                    # Classified only now: a request whose answer arrives (nearly all of them)
                    # never pays for reading its update expression.
                    rule = resend_rule(operation, payload)
                    if rule is Resend.NEVER:
                        raise self._unknown(operation, payload, key_names, exc, None) from exc
                    if rule is Resend.RECOGNISE:
                        lost = exc
                        # The resend's condition may fail on this attempt's own write: ask
                        # for the item then, to tell the two apart.
                        body = _encode(
                            operation,
                            {**payload, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"},
                        )
                if not exc.retryable:
                    raise
                try:
                    await self.backoff(exc, budget)
                except RetriesExhausted as spent:
                    if lost is None:
                        raise
                    raise self._unknown(operation, payload, key_names, lost, None) from spent

    async def _recognised(
        self,
        operation: str,
        payload: Mapping[str, Any],
        item: dict[str, Any] | None,
        recognise: Recognise | None,
    ) -> bool:
        if recognise is not None:
            return await recognise(item)
        if operation != "PutItem" or item is None:
            return False  # a delete or an update leaves nothing that proves it was this one
        return bool(self._decoder.item(payload["Item"]) == item)

    def _unknown(
        self,
        operation: str,
        payload: Mapping[str, Any],
        key_names: Sequence[str],
        lost: AsyncDynError,
        found: AsyncDynError | None,
    ) -> OutcomeUnknown:
        self.stats.errors["OutcomeUnknown"] += 1
        # The key the write names: its Key, or a put item's key attributes (``key_names``,
        # when the caller knows them), decoded only now that it is needed.
        wire = payload.get("Key")
        item = payload.get("Item")
        if not isinstance(wire, dict) and key_names and isinstance(item, dict):
            wire = {name: item[name] for name in key_names if name in item}
        key = self._decoder.item(wire) if isinstance(wire, dict) else None
        table = payload.get("TableName")
        unknown = OutcomeUnknown(operation, key, lost, table if isinstance(table, str) else "")
        if isinstance(found, ConditionalCheckFailed):
            unknown.item = found.item
        return unknown

    async def attempt(
        self, operation: str, payload: Mapping[str, Any], budget: RetryBudget
    ) -> dict[str, Any]:
        """One try of ``operation``, never retried: for callers that retry on their own
        terms (the batch engine retries an error and an unprocessed remainder alike)."""
        return await self.attempt_read(operation, payload, budget, _answer)

    async def attempt_read(
        self, operation: str, payload: Mapping[str, Any], budget: RetryBudget, read: Read[T]
    ) -> T:
        """``attempt``, returning ``read(answer)`` as ``call_read`` does."""
        hot_keys = self.stats.hot_keys
        if hot_keys is None and self._telemetry is None:  # the plain path stays plain
            return await self._attempt(operation, _encode(operation, payload), budget, read)
        return await self._observed_attempt(operation, payload, budget, read)

    async def _observed_attempt(
        self, operation: str, payload: Mapping[str, Any], budget: RetryBudget, read: Read[T]
    ) -> T:
        """``attempt_read`` counting hot keys and/or traced."""
        body = _encode(operation, payload)
        hot_keys = self.stats.hot_keys
        if hot_keys is not None:
            read = hot_keys.reader(operation, payload, read)
        try:
            if self._telemetry is not None:
                return await self._traced_attempt(
                    self._telemetry, operation, payload, body, budget, read
                )
            return await self._attempt(operation, body, budget, read)
        except Throttled as exc:
            if hot_keys is not None:
                hot_keys.throttled(operation, payload, exc)
            raise

    async def backoff(self, error: AsyncDynError, budget: RetryBudget) -> None:
        """Count a retryable failure and sleep its backoff (``RetriesExhausted`` when spent)."""
        if isinstance(error, Throttled):
            self.stats.throttles += 1
        telemetry = self._telemetry
        if telemetry is not None:
            telemetry.failed(error)
        await budget.wait(error)
        self.stats.retries += 1
        if telemetry is not None:
            telemetry.retried()

    async def _attempt(self, operation: str, body: bytes, budget: RetryBudget, read: Read[T]) -> T:
        timeout = self._timeout
        remaining = budget.remaining()
        if remaining == 0.0:
            # asyncio.timeout(0) would still let the request be written before its first
            # suspension: past the deadline, nothing is sent.
            error = RequestTimeout(f"{operation}: the deadline passed before it was sent")
            error.maybe_applied = False
            raise error
        if remaining is not None and (timeout is None or remaining < timeout):
            timeout = remaining
        if timeout is None:
            response = await self._send(operation, body)
        else:
            sending: list[bool] = []
            try:
                async with asyncio.timeout(timeout):
                    response = await self._send(operation, body, sending)
            except TimeoutError as exc:
                if isinstance(exc, RequestTimeout):
                    raise
                error = RequestTimeout(f"{operation}: no answer within {timeout:.3f}s")
                if not sending:
                    # Still waiting for credentials or an in-flight slot: never sent, so
                    # resending it cannot apply it twice.
                    error.maybe_applied = False
                raise error from exc
        try:
            return self._read(operation, response, read)
        except (TableNotFound, ResourceInUse) as exc:
            # The answer says only "Requested resource not found" (or, from dynalite, nothing):
            # name what the request asked for (read back from its body, on this rare path only).
            _locate(exc, body)
            raise

    async def _send(
        self, operation: str, body: bytes, sending: list[bool] | None = None
    ) -> HttpResponse:
        headers = dict(self._base_headers)
        headers["X-Amz-Target"] = self._target + operation
        credentials = await self._credentials.get()
        self.stats.requests[operation] += 1
        async with self._limiter:
            # Signed inside the limiter so that a request queued behind the limit never
            # carries a stale X-Amz-Date.
            self._signer.sign(headers, body, credentials)
            if sending is not None:
                sending.append(True)
            return await self.transport.send(headers, body)

    def _read(self, operation: str, response: HttpResponse, read: Read[T]) -> T:
        body = response.body
        expected = response.headers.get("x-amz-crc32")
        # A header that cannot be checked fails like a wrong one, never skips the check: a
        # doubled header (joined "a, b" by the transport), an empty or non-decimal value.
        if expected is not None and (
            not (expected.isdigit() and expected.isascii()) or int(expected) != _crc32(body)
        ):
            raise ChecksumMismatch(f"{operation}: x-amz-crc32 does not match the body")
        if len(body) < _PAUSE_GC_BYTES or not _gc_isenabled():
            return read(self._decode(operation, response))
        _gc_disable()
        try:
            return read(self._decode(operation, response))
        finally:
            _gc_enable()

    def _decode(self, operation: str, response: HttpResponse) -> dict[str, Any]:
        body = response.body
        status = response.status
        if not body and status < 300:
            # Every DynamoDB JSON operation answers a success with a JSON object ("{}" at
            # the least): an empty one is an answer lost on the way, not an empty result,
            # and the request may have been applied.
            raise TransportError(f"{operation}: empty answer body (HTTP {status})")
        try:
            data = _loads(body) if body else {}
        except orjson.JSONDecodeError as exc:
            if response.status >= 500:
                raise ServerError(
                    f"HTTP{response.status}",
                    body[:200].decode("utf-8", "replace"),
                    status=response.status,
                    operation=operation,
                ) from exc
            raise TransportError(f"{operation}: unreadable answer body") from exc
        if not isinstance(data, dict):
            raise TransportError(f"{operation}: answer body is not a JSON object")
        if response.status >= 300:
            raise self._error(operation, response.status, data)
        if self._record_capacity:
            consumed = data.get("ConsumedCapacity")
            if consumed is not None:
                self.stats.record_capacity(consumed)
        return data

    def _error(self, operation: str, status: int, data: dict[str, Any]) -> ServiceError:
        error = error_from_response(status, data, operation)
        self.stats.errors[error.code] += 1
        decode = self._decoder.item
        if isinstance(error, ConditionalCheckFailed):
            item = data.get("Item")
            if isinstance(item, dict):
                error.item = decode(item)
        elif isinstance(error, TransactionCanceled):
            reasons = []
            for raw in data.get("CancellationReasons") or ():
                code = raw.get("Code")
                item = raw.get("Item")
                reasons.append(
                    CancellationReason(
                        None if code in (None, "None") else code,
                        raw.get("Message"),
                        decode(item) if isinstance(item, dict) else None,
                    )
                )
            error.reasons = reasons
        elif isinstance(error, Throttled):
            error.reasons = throttling_reasons(data)
        return error


def _locate(error: TableNotFound | ResourceInUse, body: bytes) -> None:
    """Tell ``error`` which tables, index or stream the request ``body`` named."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    if not isinstance(request, dict):
        return
    tables: list[str] = []
    name = request.get("TableName")
    if isinstance(name, str):
        tables.append(name)
    items = request.get("RequestItems")  # BatchGetItem, BatchWriteItem
    if isinstance(items, dict):
        tables.extend(t for t in items if isinstance(t, str))
    for action in request.get("TransactItems") or ():  # TransactWriteItems, TransactGetItems
        if isinstance(action, dict):
            for part in action.values():
                table = part.get("TableName") if isinstance(part, dict) else None
                if isinstance(table, str) and table not in tables:
                    tables.append(table)
    index = request.get("IndexName")
    stream = request.get("StreamArn")
    error.locate(
        tables,
        index if isinstance(index, str) else None,
        stream if isinstance(stream, str) else None,
    )


def _answer(data: dict[str, Any]) -> dict[str, Any]:
    return data
