"""The dispatcher: request shape, signing, CRC32, error mapping and retries, over a script."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from asyncdyn import (
    AsyncDynError,
    ChecksumMismatch,
    Client,
    ConditionalCheckFailed,
    RequestTimeout,
    RetriesExhausted,
    RetryPolicy,
    ServerError,
    ServiceError,
    Throttled,
    TransactionCanceled,
    TransportError,
    ValidationError,
)
from asyncdyn.testing import ScriptedTransport, answer, error, throttled
from asyncdyn.transport import HttpResponse, endpoint_host


async def test_request_shape(client: Client, transport: ScriptedTransport) -> None:
    transport.steps = [answer({})]
    await client.table("T").get({"PK": "a"})
    headers, body = transport.requests[0]
    assert headers["X-Amz-Target"] == "DynamoDB_20120810.GetItem"
    assert headers["Content-Type"] == "application/x-amz-json-1.0"
    assert headers["Accept-Encoding"] == "identity"
    assert headers["Host"] == "127.0.0.1:9"
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "secret" not in headers["Authorization"]
    assert orjson.loads(body) == {"TableName": "T", "Key": {"PK": {"S": "a"}}}


async def test_throttling_is_retried_and_counted(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [
        throttled(),
        error("InternalServerError", status=500),
        answer({"Item": {"PK": {"S": "a"}}}),
    ]
    assert await client.table("T").get({"PK": "a"}) == {"PK": "a"}
    stats = client.stats()
    assert stats.requests == {"GetItem": 3}
    assert stats.retries == 2
    assert stats.throttles == 1
    assert stats.errors == {"ProvisionedThroughputExceededException": 1, "InternalServerError": 1}


async def test_retries_exhausted_keeps_last_error(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = throttled()
    with pytest.raises(RetriesExhausted) as info:
        await client.table("T").get({"PK": "a"})
    assert isinstance(info.value.last_error, Throttled)
    assert transport.operations == ["GetItem"] * 4  # max_attempts of the fixture's policy


@pytest.mark.parametrize(
    ("step", "cls"),
    [
        (error("ValidationException", "bad"), ValidationError),
        (error("ConditionalCheckFailedException", "no"), ConditionalCheckFailed),
        (error("TransactionCanceledException", "x"), TransactionCanceled),
        (error("SomethingNew", "?"), ServiceError),
    ],
)
async def test_non_retryable_errors_raise_at_once(
    client: Client, transport: ScriptedTransport, step: HttpResponse, cls: type[Exception]
) -> None:
    transport.steps = [step, answer({})]
    with pytest.raises(cls):
        await client.table("T").get({"PK": "a"})
    assert len(transport.requests) == 1


async def test_crc_mismatch_is_retried(client: Client, transport: ScriptedTransport) -> None:
    good = answer({"Item": {"PK": {"S": "a"}}})
    bad = HttpResponse(200, {"x-amz-crc32": str(int(good.headers["x-amz-crc32"]) ^ 1)}, good.body)
    transport.steps = [bad, good]
    assert await client.table("T").get({"PK": "a"}) == {"PK": "a"}
    assert client.stats().retries == 1


async def test_crc_mismatch_exhausts_to_checksum_error(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = HttpResponse(200, {"x-amz-crc32": "1"}, b"{}")
    with pytest.raises(RetriesExhausted) as info:
        await client.table("T").get({"PK": "a"})
    assert isinstance(info.value.last_error, ChecksumMismatch)


async def test_connection_errors_and_garbage_are_retried(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [
        TransportError("reset"),
        answer(b'{"Item": {"PK"', crc=False),  # truncated body without a checksum header
        HttpResponse(502, {}, b"<html>bad gateway</html>"),
        answer({}),
    ]
    assert await client.table("T").get({"PK": "a"}) is None
    assert len(transport.requests) == 4


async def test_html_5xx_becomes_server_error(client: Client, transport: ScriptedTransport) -> None:
    transport.default = HttpResponse(503, {}, b"<html>unavailable</html>")
    with pytest.raises(RetriesExhausted) as info:
        await client.table("T").get({"PK": "a"})
    assert isinstance(info.value.last_error, ServerError)
    assert info.value.last_error.status == 503


async def test_conditional_failure_carries_decoded_item(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [
        error(
            "ConditionalCheckFailedException",
            "The conditional request failed",
            Item={"PK": {"S": "a"}, "n": {"N": "3"}},
        )
    ]
    with pytest.raises(ConditionalCheckFailed) as info:
        await client.table("T").put(
            {"PK": "a"}, condition="attribute_not_exists(PK)", returns_on_failure="ALL_OLD"
        )
    assert info.value.item == {"PK": "a", "n": 3}
    assert orjson.loads(transport.requests[0][1])["ReturnValuesOnConditionCheckFailure"] == (
        "ALL_OLD"
    )


async def test_cancellation_reasons_in_order(client: Client, transport: ScriptedTransport) -> None:
    reasons = [
        {"Code": "None"},
        {
            "Code": "ConditionalCheckFailed",
            "Message": "The conditional request failed",
            "Item": {"PK": {"S": "b"}},
        },
    ]
    transport.steps = [
        error("TransactionCanceledException", "Transaction cancelled", CancellationReasons=reasons)
    ]
    with pytest.raises(TransactionCanceled) as info:
        await client.call("TransactWriteItems", {"TransactItems": []})
    got = info.value.reasons
    assert [r.code for r in got] == [None, "ConditionalCheckFailed"]
    assert got[1].item == {"PK": "b"}
    assert got[0].message is None


async def test_timeout_then_success(transport: ScriptedTransport) -> None:
    async def hang(headers: object, body: bytes) -> HttpResponse:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    transport.steps = [hang, answer({})]
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("a", "b"),
        transport=transport,
        timeout=0.01,
        retry=RetryPolicy(base=0.0),
    ) as db:
        assert await db.table("T").get({"PK": "a"}) is None
    assert len(transport.requests) == 2


async def test_deadline_bounds_a_hanging_request(transport: ScriptedTransport) -> None:
    async def hang(headers: object, body: bytes) -> HttpResponse:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    transport.default = hang
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("a", "b"),
        transport=transport,
        retry=RetryPolicy(base=0.0, deadline=0.05),
    ) as db:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(RetriesExhausted) as info:
            await db.table("T").get({"PK": "a"})
        assert loop.time() - started < 1.0
    assert isinstance(info.value.last_error, RequestTimeout)
    assert transport.closed


async def test_concurrency_is_bounded(transport: ScriptedTransport) -> None:
    in_flight = 0
    peak = 0

    async def slow(headers: object, body: bytes) -> HttpResponse:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return answer({})

    transport.default = slow
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("a", "b"),
        transport=transport,
        max_concurrency=3,
    ) as db:
        table = db.table("T")
        await asyncio.gather(*(table.get({"PK": str(i)}) for i in range(20)))
    assert peak == 3


def test_endpoint_host() -> None:
    assert endpoint_host("http://127.0.0.1:8000") == "127.0.0.1:8000"
    assert endpoint_host("https://dynamodb.us-east-1.amazonaws.com") == (
        "dynamodb.us-east-1.amazonaws.com"
    )
    assert endpoint_host("https://example.com:443/") == "example.com"
    assert endpoint_host("http://[::1]:8000") == "[::1]:8000"


@pytest.mark.parametrize(
    "crc",
    ["{good}, {good}", "{good}, 1", "1, {good}", "", " {good}", "0x1f", "²", "-1", "abc"],
    ids=[
        "doubled",
        "doubled-second-wrong",
        "doubled-first-wrong",
        "empty",
        "space",
        "hex",
        "unicode-digit",
        "negative",
        "letters",
    ],
)
async def test_duplicated_or_malformed_crc_is_a_checksum_mismatch(
    client: Client, transport: ScriptedTransport, crc: str
) -> None:
    # Never "skip the check": a header that cannot be checked fails like a wrong one.
    good = answer({"Item": {"PK": {"S": "a"}}})
    value = crc.format(good=good.headers["x-amz-crc32"])
    transport.default = HttpResponse(200, {"x-amz-crc32": value}, good.body)
    with pytest.raises(RetriesExhausted) as info:
        await client.table("T").get({"PK": "a"})
    assert isinstance(info.value.last_error, ChecksumMismatch)
    assert info.value.last_error.maybe_applied


async def test_empty_2xx_body_is_a_transport_fault_and_retried(
    client: Client, transport: ScriptedTransport
) -> None:
    # No DynamoDB JSON operation answers with an empty body (an empty answer is "{}"):
    # an empty 200 is a lost answer, never "no items".
    transport.steps = [
        HttpResponse(200, {}, b""),
        HttpResponse(200, {"x-amz-crc32": "0"}, b""),
        answer({"Responses": {"T": [{"PK": {"S": "a"}}]}}),
    ]
    got = await client.table("T").batch_get([{"PK": "a"}, {"PK": "b"}])
    assert got == [{"PK": "a"}, None]
    assert len(transport.requests) == 3


@pytest.mark.parametrize("operation", ["batch_get", "batch_write", "get"])
async def test_empty_2xx_body_exhausts_to_a_transport_error(
    client: Client, transport: ScriptedTransport, operation: str
) -> None:
    # Before: batch_get returned [None, None] and batch_write "succeeded".
    transport.default = HttpResponse(200, {}, b"")
    table = client.table("T", key=("PK",))
    with pytest.raises(AsyncDynError) as info:
        if operation == "batch_get":
            await table.batch_get([{"PK": "a"}, {"PK": "b"}])
        elif operation == "batch_write":
            await table.batch_write(puts=[{"PK": "a"}])
        else:
            await table.get({"PK": "a"})
    # The typed transport fault is the error, its last_error or its cause.
    error: BaseException | None = info.value
    while error is not None and not isinstance(error, TransportError):
        error = getattr(error, "last_error", None) or error.__cause__
    assert isinstance(error, TransportError) and error.maybe_applied
    assert "empty answer body" in str(error)
