"""The secret key and the session token never show: not in repr, str, log records, exception
messages, args, notes, attributes or ``__cause__`` / ``__context__`` chains.

Sentinels are used as the secret and the token, every error path is driven (signing,
service errors, transport errors, timeouts, retries exhausted, batch leftovers, credential
chain failures) with logging at DEBUG for every logger, and everything a user, a log
handler or an error tracker could render is searched for them.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from asyncdyn import (
    AsyncDynError,
    Attr,
    Client,
    Credentials,
    RetryPolicy,
    Table,
    TransportError,
)
from asyncdyn.credentials import BotocoreCredentials, StaticCredentials, credentials_provider
from asyncdyn.lean import LeanTransport, _Connection
from asyncdyn.signing import SigV4Signer
from asyncdyn.testing import FaultInjector, ScriptedTransport, answer, error, throttled
from asyncdyn.transport import AiohttpTransport, HttpResponse

ACCESS_KEY = "AKIDSENTINELACCESS"
SECRET = "SeCrEt-SENTINEL-wJalrXUtnFEMI/K7MDENG+bPxRfiCY"
TOKEN = "ToKeN-SENTINEL-FwoGZXIvYXdzEBYaDHhBTEXAMPLETOKEN"
SENTINELS = (SECRET, TOKEN)


def _clean(text: str, where: str) -> None:
    for sentinel in SENTINELS:
        assert sentinel not in text, f"a secret shows in {where}: {text[:300]!r}"


def _renderings(exc: BaseException, seen: set[int] | None = None) -> Iterator[tuple[str, str]]:
    """Every text an exception gives away, with where it came from, following its chain."""
    seen = set() if seen is None else seen
    if id(exc) in seen:
        return
    seen.add(id(exc))
    name = type(exc).__name__
    yield f"repr({name})", repr(exc)
    yield f"str({name})", str(exc)
    yield f"{name}.args", repr(exc.args)
    yield f"{name}.__notes__", repr(getattr(exc, "__notes__", None))
    yield f"{name} traceback", "".join(traceback.format_exception(exc))
    attributes = dict(getattr(exc, "__dict__", {}))
    for slot in getattr(type(exc), "__slots__", ()):
        if hasattr(exc, slot):
            attributes[slot] = getattr(exc, slot)
    for key, value in attributes.items():
        yield f"{name}.{key}", repr(value)
    linked: list[BaseException] = [
        e for e in (exc.__cause__, exc.__context__) if isinstance(e, BaseException)
    ]
    linked += [v for v in attributes.values() if isinstance(v, BaseException)]
    if isinstance(exc, BaseExceptionGroup):
        linked += list(exc.exceptions)
    for other in linked:
        yield from _renderings(other, seen)


def _check_error(exc: BaseException) -> None:
    for where, text in _renderings(exc):
        _clean(text, where)


def _check_logs(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        _clean(record.getMessage(), f"log record of {record.name}")
        _clean(repr(record.args), f"log record args of {record.name}")
        if record.exc_info and record.exc_info[1] is not None:
            _check_error(record.exc_info[1])
    _clean(caplog.text, "the captured log")


@pytest.fixture(autouse=True)
def _debug_everything(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("asyncdyn", "botocore", "aiobotocore", "asyncio", "aiohttp", "urllib3"):
        caplog.set_level(logging.DEBUG, logger=name)


def _client(transport: Any, **kwargs: Any) -> Client:
    kwargs.setdefault("retry", RetryPolicy(max_attempts=3, base=0.0))
    return Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=(ACCESS_KEY, SECRET, TOKEN),
        transport=transport,
        **kwargs,
    )


def _wire(key: Mapping[str, str]) -> dict[str, Any]:
    return {name: {"S": value} for name, value in key.items()}


KEY = {"PK": "a", "SK": "b"}


async def _slow(headers: Mapping[str, str], body: bytes) -> HttpResponse:
    await asyncio.sleep(5)
    return answer({})


Op = Callable[[Table], Awaitable[Any]]

# (id, scripted steps, the operation, the error class expected)
ERROR_PATHS: list[tuple[str, list[Any], Op, str]] = [
    (
        "validation error",
        [error("ValidationException", "One or more parameter values were invalid")],
        lambda t: t.get(KEY),
        "ValidationError",
    ),
    (
        "access denied",
        [error("UnrecognizedClientException", "The security token included is invalid.")],
        lambda t: t.put({**KEY, "x": 1}),
        "AccessDenied",
    ),
    (
        "condition failed with the item",
        [error("ConditionalCheckFailedException", "failed", Item=_wire(KEY))],
        lambda t: t.delete(KEY, condition=Attr("x").exists(), returns_on_failure="ALL_OLD"),
        "ConditionalCheckFailed",
    ),
    (
        "transaction cancelled",
        [
            error(
                "TransactionCanceledException",
                "Transaction cancelled",
                CancellationReasons=[{"Code": "ConditionalCheckFailed", "Message": "no"}],
            )
        ],
        lambda t: t._client.transact_write([t.tx_check(KEY, Attr("x").exists())]),
        "TransactionCanceled",
    ),
    (
        "throttled until retries are exhausted",
        [throttled()] * 3,
        lambda t: t.get(KEY),
        "RetriesExhausted",
    ),
    (
        "transport error until retries are exhausted",
        [TransportError("connection reset by peer")] * 3,
        lambda t: t.get(KEY),
        "RetriesExhausted",
    ),
    (
        "checksum mismatch until retries are exhausted",
        [HttpResponse(200, {"x-amz-crc32": "1"}, b"{}")] * 3,
        lambda t: t.get(KEY),
        "RetriesExhausted",
    ),
    (
        "5xx without a JSON body",
        [HttpResponse(502, {}, b"<html>Bad Gateway</html>")] * 3,
        lambda t: t.get(KEY),
        "RetriesExhausted",
    ),
    (
        "an answer that is not JSON",
        [HttpResponse(200, {}, b"not json")] * 3,
        lambda t: t.get(KEY),
        "RetriesExhausted",
    ),
    (
        "timeouts until the deadline",
        [_slow] * 3,
        lambda t: t.get(KEY),
        "RetriesExhausted",
    ),
    (
        "batch get keys left unprocessed",
        [answer({"UnprocessedKeys": {"T": {"Keys": [_wire(KEY)]}}})] * 3,
        lambda t: t.batch_get([KEY]),
        "UnprocessedKeysError",
    ),
    (
        "batch write items left unprocessed",
        [answer({"UnprocessedItems": {"T": [{"PutRequest": {"Item": _wire(KEY)}}]}})] * 3,
        lambda t: t.batch_write(puts=[KEY]),
        "UnprocessedItemsError",
    ),
    (
        "batch write chunk refused",
        [error("ValidationException", "Item size has exceeded the maximum allowed size")],
        lambda t: t.batch_write(puts=[KEY]),
        "UnprocessedItemsError",
    ),
]


@pytest.mark.parametrize(
    ("steps", "operation", "expected"),
    [case[1:] for case in ERROR_PATHS],
    ids=[case[0] for case in ERROR_PATHS],
)
async def test_error_paths_do_not_show_the_secret(
    steps: list[Any], operation: Op, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    transport = ScriptedTransport(steps)
    async with _client(transport, timeout=0.02) as db:
        table = db.table("T", key=("PK", "SK"))
        with pytest.raises(AsyncDynError) as caught:
            await operation(table)
        assert type(caught.value).__name__ == expected
        _check_error(caught.value)
        for thing in (db, table, db._dispatcher, transport, db.stats()):
            _clean(repr(thing), f"repr of {type(thing).__name__}")
            _clean(str(thing), f"str of {type(thing).__name__}")
    # The token did go out, signed: the test would prove nothing otherwise.
    headers = transport.requests[0][0]
    assert headers["X-Amz-Security-Token"] == TOKEN
    assert headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    _check_logs(caplog)


async def test_fault_injector_paths_do_not_show_the_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inner = ScriptedTransport(default=answer({"Responses": {"T": []}}))
    faults = FaultInjector(inner, seed=3, throttle=0.3, server_error=0.3, reset=0.3)
    async with _client(faults, retry=RetryPolicy(max_attempts=2, base=0.0)) as db:
        table = db.table("T", key=("PK", "SK"))
        for i in range(30):
            try:
                await table.batch_get([{"PK": str(i), "SK": "s"}])
            except AsyncDynError as exc:
                _check_error(exc)
    assert sum(faults.injected.values()) > 10
    _clean(repr(faults), "repr of FaultInjector")
    _check_logs(caplog)


def test_credentials_objects_hide_the_secret() -> None:
    credentials = Credentials(ACCESS_KEY, SECRET, TOKEN)
    static = StaticCredentials(ACCESS_KEY, SECRET, TOKEN)
    for thing in (
        credentials,
        static,
        credentials_provider((ACCESS_KEY, SECRET, TOKEN)),
        credentials_provider(credentials),
        [credentials],
        {"credentials": credentials},
    ):
        _clean(repr(thing), f"repr of {type(thing).__name__}")
        _clean(str(thing), f"str of {type(thing).__name__}")
        _clean(f"{thing}", f"format of {type(thing).__name__}")
    assert ACCESS_KEY in repr(credentials)  # the access key id is not a secret


@pytest.mark.parametrize(
    "arguments",
    [
        (ACCESS_KEY, SECRET, 12345),
        ("", SECRET, TOKEN),
        (ACCESS_KEY, "", TOKEN),
        (ACCESS_KEY, SECRET, TOKEN, "extra"),
        (SECRET,),
    ],
    ids=["token not a str", "empty access key", "empty secret", "four items", "one item"],
)
def test_refused_credentials_are_not_echoed(arguments: tuple[Any, ...]) -> None:
    with pytest.raises(AsyncDynError) as caught:
        credentials_provider(arguments)  # type: ignore[arg-type]
    _check_error(caught.value)


async def test_credential_chain_repr_and_failures_do_not_show_the_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ACCESS_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # Only half the credentials in the environment: botocore refuses them.
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    chain = BotocoreCredentials()
    with pytest.raises(AsyncDynError) as caught:
        await chain.get()
    _check_error(caught.value)

    # A profile whose file holds the secret but no access key.
    (tmp_path / "credentials").write_text(
        f"[broken]\naws_secret_access_key = {SECRET}\naws_session_token = {TOKEN}\n"
    )
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    broken = BotocoreCredentials("broken")
    with pytest.raises(AsyncDynError) as caught:
        await broken.get()
    _check_error(caught.value)

    # And a working chain: the resolved credentials stay hidden in its repr.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    working = BotocoreCredentials()
    got = await working.get()
    assert (got.secret_key, got.token) == (SECRET, TOKEN)
    _clean(repr(working), "repr of BotocoreCredentials")
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        transport=ScriptedTransport([error("ValidationException", "no")]),
    ) as db:
        with pytest.raises(AsyncDynError) as caught:
            await db.table("T").get(KEY)
        _check_error(caught.value)
        _clean(repr(db._dispatcher._credentials), "repr of the client's provider")
    _check_logs(caplog)


def test_signer_repr_and_state_after_signing() -> None:
    signer = SigV4Signer(region="us-east-1", host="127.0.0.1:9")
    headers = {"X-Amz-Target": "DynamoDB_20120810.GetItem"}
    signer.sign(headers, b"{}", Credentials(ACCESS_KEY, SECRET, TOKEN))
    assert headers["X-Amz-Security-Token"] == TOKEN
    _clean(repr(signer), "repr of SigV4Signer")
    _clean(str(signer), "str of SigV4Signer")
    _clean(headers["Authorization"], "the Authorization header")


def test_lean_transport_header_errors_do_not_show_the_token() -> None:
    transport = LeanTransport("http://127.0.0.1:9")
    _clean(repr(transport), "repr of LeanTransport")
    headers = {"Authorization": "AWS4-HMAC-SHA256 ...", "X-Amz-Security-Token": TOKEN + "€"}
    with pytest.raises(AsyncDynError) as caught:
        transport._encode(headers, b"{}")
    assert "X-Amz-Security-Token" in str(caught.value)
    _check_error(caught.value)
    headers["X-Amz-Security-Token"] = TOKEN + "\r\nX-Evil: 1"
    with pytest.raises(AsyncDynError) as caught:
        transport._encode(headers, b"{}")
    _check_error(caught.value)


class _FakeSocket(asyncio.Transport):
    """Just enough of an asyncio transport for one ``_Connection`` exchange, no socket."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:  # type: ignore[override]
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True

    def close(self) -> None:
        self.closing = True


@pytest.mark.parametrize(
    "answer_bytes",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",  # cut short
        b"NOT HTTP AT ALL\r\n\r\n",  # malformed
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",  # bad header
        b"",  # closed before answering
        None,  # no answer: timed out
    ],
    ids=["truncated", "malformed", "bad content-length", "closed", "timeout"],
)
async def test_lean_connection_errors_do_not_show_the_request(answer_bytes: bytes | None) -> None:
    transport = LeanTransport("http://127.0.0.1:9")
    request = transport._encode({"X-Amz-Security-Token": TOKEN, "Authorization": SECRET}, b"{}")
    conn = _Connection("http://127.0.0.1:9", 0.05)
    socket = _FakeSocket()
    conn.connection_made(socket)  # type: ignore[arg-type]
    waiter = conn.request(request)
    assert TOKEN.encode() in socket.written[0]
    if answer_bytes:
        conn.data_received(answer_bytes)
    if answer_bytes is not None and not waiter.done():
        conn.connection_lost(ConnectionResetError("reset by peer"))
    with pytest.raises(AsyncDynError) as caught:
        await waiter
    _check_error(caught.value)


async def test_aiohttp_errors_do_not_show_the_request_headers() -> None:
    import aiohttp
    from multidict import CIMultiDict, CIMultiDictProxy
    from yarl import URL

    url = URL("http://127.0.0.1:9/")

    class FailingSession:
        """aiohttp raises ClientResponseError (with the request's headers in its args) for
        an answer it cannot parse."""

        def post(
            self, target: str, *, data: bytes, headers: Mapping[str, str], **options: Any
        ) -> Any:
            info = aiohttp.RequestInfo(url, "POST", CIMultiDictProxy(CIMultiDict(headers)), url)
            raise aiohttp.ClientResponseError(info, (), status=400, message="Invalid header")

        async def close(self) -> None:
            return None

    transport = AiohttpTransport("http://127.0.0.1:9")
    transport._session = FailingSession()
    async with _client(transport) as db:
        with pytest.raises(AsyncDynError) as caught:
            await db.table("T").get(KEY)
    assert type(caught.value).__name__ == "RetriesExhausted"
    assert "Invalid header" in str(caught.value)
    _check_error(caught.value)
    _clean(repr(transport), "repr of AiohttpTransport")
