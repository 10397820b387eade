"""FaultInjector: each fault kind, its counter, determinism, and partial batches, over a script."""

from __future__ import annotations

import asyncio
import math
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import pytest

from asyncdyn import Client, ConfigurationError, RetryPolicy, ServerError, TransportError
from asyncdyn.errors import error_from_response
from asyncdyn.testing import FaultInjector, ScriptedTransport, answer, error, throttled
from asyncdyn.transport import HttpResponse

THROTTLE_CODES = {"ProvisionedThroughputExceededException", "ThrottlingException"}


def headers(operation: str) -> dict[str, str]:
    return {
        "X-Amz-Target": f"DynamoDB_20120810.{operation}",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/...",
    }


def decode(response: HttpResponse) -> dict[str, Any]:
    """The answer's JSON body, after checking that its CRC header matches it."""
    assert response.headers["x-amz-crc32"] == str(zlib.crc32(response.body))
    data: dict[str, Any] = orjson.loads(response.body)
    return data


def code_of(response: HttpResponse) -> str:
    type_: str = decode(response)["__type"]
    return type_.rpartition("#")[2]


async def send(injector: FaultInjector, operation: str, payload: Mapping[str, Any]) -> HttpResponse:
    return await injector.send(headers(operation), orjson.dumps(payload))


def get_payload(n: int = 0) -> dict[str, Any]:
    return {"TableName": "T", "Key": {"PK": {"S": f"k{n}"}}}


# A server for BatchGetItem: every requested key exists, with one extra attribute.
def batch_get_server(
    unprocessed: Callable[[str, list[Any]], list[Any]] = lambda table, keys: [],
) -> Callable[[Mapping[str, str], bytes], HttpResponse]:
    def step(_headers: Mapping[str, str], body: bytes) -> HttpResponse:
        responses: dict[str, list[Any]] = {}
        left: dict[str, Any] = {}
        for table, spec in orjson.loads(body)["RequestItems"].items():
            skipped = unprocessed(table, spec["Keys"])
            if skipped:
                left[table] = {**spec, "Keys": skipped}
            responses[table] = [
                {**key, "v": {"S": "value"}} for key in spec["Keys"] if key not in skipped
            ]
        return answer({"Responses": responses, "UnprocessedKeys": left})

    return step


def batch_write_ok(_headers: Mapping[str, str], _body: bytes) -> HttpResponse:
    return answer({"UnprocessedItems": {}})


def put(table: str, n: int) -> dict[str, Any]:
    return {"PutRequest": {"Item": {"PK": {"S": f"{table}#{n}"}, "n": {"N": str(n)}}}}


def write_payload() -> dict[str, Any]:
    return {
        "RequestItems": {
            "A": [put("A", n) for n in range(10)],
            "B": [put("B", n) for n in range(3)] + [{"DeleteRequest": {"Key": {"PK": {"S": "x"}}}}],
            "C": [put("C", 0)],
        },
        "ReturnConsumedCapacity": "TOTAL",
    }


def flat(items: Mapping[str, list[Any]]) -> list[tuple[str, bytes]]:
    """Write requests as sortable (table, JSON) pairs, duplicates kept."""
    return sorted((table, orjson.dumps(w)) for table, ws in items.items() for w in ws)


# --- the fault bands --------------------------------------------------------------------------


async def test_throttle_answers_without_forwarding() -> None:
    inner = ScriptedTransport(default=answer({}))
    injector = FaultInjector(inner, seed=1, throttle=1.0)
    codes = set()
    for n in range(40):
        response = await send(injector, "GetItem", get_payload(n))
        assert response.status == 400
        codes.add(code_of(response))
    assert codes == THROTTLE_CODES
    assert inner.requests == []
    assert injector.forwarded == 0
    assert injector.injected == {"throttle": 40}


async def test_server_error_is_500_or_503_and_maps_to_server_error() -> None:
    inner = ScriptedTransport(default=answer({}))
    injector = FaultInjector(inner, seed=1, server_error=1.0)
    seen = set()
    for n in range(40):
        response = await send(injector, "PutItem", get_payload(n))
        code = code_of(response)
        seen.add((response.status, code))
        assert isinstance(error_from_response(response.status, decode(response)), ServerError)
    assert seen == {(500, "InternalServerError"), (503, "ServiceUnavailable")}
    assert inner.requests == []
    assert injector.injected == {"server_error": 40}


async def test_reset_before_never_reaches_the_server_reset_after_does() -> None:
    inner = ScriptedTransport(default=answer({}))
    injector = FaultInjector(inner, seed=3, reset=1.0)
    for n in range(40):
        sent = len(inner.requests)
        before = injector.injected["reset_before"]
        with pytest.raises(TransportError):
            await send(injector, "PutItem", get_payload(n))
        if injector.injected["reset_before"] > before:
            assert len(inner.requests) == sent
        else:
            # The server applied this one: it got exactly the request, and only its answer is lost.
            assert len(inner.requests) == sent + 1
            assert inner.payloads[-1] == get_payload(n)
    assert injector.injected["reset_before"] > 0
    assert injector.injected["reset_after"] > 0
    assert injector.injected["reset_before"] + injector.injected["reset_after"] == 40
    assert injector.forwarded == len(inner.requests) == injector.injected["reset_after"]


async def test_bands_split_requests_in_proportion() -> None:
    inner = ScriptedTransport(default=answer({}))
    injector = FaultInjector(inner, seed=11, throttle=0.3, server_error=0.2, reset=0.1)
    total = 4000
    for n in range(total):
        try:
            await send(injector, "GetItem", get_payload(n))
        except TransportError:
            pass
    injected = injector.injected
    assert abs(injected["throttle"] / total - 0.3) < 0.03
    assert abs(injected["server_error"] / total - 0.2) < 0.03
    assert abs((injected["reset_before"] + injected["reset_after"]) / total - 0.1) < 0.02
    clean = total - sum(injected.values())
    assert injector.forwarded == clean + injected["reset_after"] == len(inner.requests)


async def test_latency_sleeps_within_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    real_sleep = asyncio.sleep
    delays: list[float] = []

    async def fake_sleep(delay: float) -> None:
        if delay:  # ScriptedTransport's own sleep(0) is not the injector's
            delays.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    inner = ScriptedTransport(default=answer({}))
    injector = FaultInjector(inner, latency=(0.01, 0.05), throttle=0.5)
    for n in range(30):
        await send(injector, "GetItem", get_payload(n))
    assert len(delays) == 30  # faulted or not, every affected request waits
    assert all(0.01 <= d <= 0.05 for d in delays)

    delays.clear()
    await send(FaultInjector(inner), "GetItem", get_payload())
    assert delays == []


# --- determinism and pass-through -------------------------------------------------------------


async def run_mixed(seed: int, *, interludes: bool = False) -> list[Any]:
    """Outcomes of a mixed workload, as comparable values."""
    inner = ScriptedTransport(
        default=lambda h, b: (
            batch_get_server()(h, b)
            if h["X-Amz-Target"].endswith("BatchGetItem")
            else batch_write_ok(h, b)
            if h["X-Amz-Target"].endswith("BatchWriteItem")
            else answer({})
        )
    )
    injector = FaultInjector(
        inner, seed=seed, throttle=0.2, server_error=0.1, reset=0.2, unprocessed=0.3
    )
    outcomes: list[Any] = []
    get_keys = {"RequestItems": {"T": {"Keys": [{"PK": {"S": f"k{n}"}} for n in range(6)]}}}
    for n in range(60):
        if interludes:
            injector.enabled = False
            await send(injector, "GetItem", get_payload(n))
            injector.enabled = True
        operation, payload = [
            ("GetItem", get_payload(n)),
            ("BatchGetItem", get_keys),
            ("BatchWriteItem", write_payload()),
        ][n % 3]
        try:
            response = await send(injector, operation, payload)
            outcomes.append((response.status, response.body))
        except TransportError as exc:
            outcomes.append(str(exc))
    outcomes.append([(h["X-Amz-Target"], b) for h, b in inner.requests if not interludes])
    outcomes.append(dict(injector.injected))
    return outcomes


async def test_same_seed_same_run() -> None:
    first = await run_mixed(5)
    assert first == await run_mixed(5)
    assert first != await run_mixed(6)
    # Pass-through requests draw nothing, so they leave the sequence of faults unchanged.
    assert (await run_mixed(5, interludes=True))[:-2] == first[:-2]
    assert (await run_mixed(5, interludes=True))[-1] == first[-1]


async def test_disabled_passes_everything_through() -> None:
    inner = ScriptedTransport(default=answer({"Item": {"PK": {"S": "a"}}}))
    injector = FaultInjector(inner, throttle=1.0)
    injector.enabled = False
    response = await send(injector, "GetItem", get_payload())
    assert response is inner.default
    assert injector.forwarded == 1
    assert not injector.injected


async def test_operations_filter() -> None:
    inner = ScriptedTransport(default=answer({}))
    injector = FaultInjector(inner, server_error=1.0, operations={"PutItem", "BatchWriteItem"})
    assert (await send(injector, "GetItem", get_payload())).status == 200
    assert (await send(injector, "Query", {"TableName": "T"})).status == 200
    assert (await send(injector, "PutItem", get_payload())).status >= 500
    assert inner.operations == ["GetItem", "Query"]
    assert injector.injected == {"server_error": 1}


# --- BatchGetItem -----------------------------------------------------------------------------


async def test_batch_get_moves_keys_and_echoes_projection() -> None:
    inner = ScriptedTransport(
        default=lambda h, b: HttpResponse(
            200, {"X-Amzn-RequestId": "r1", "Content-Length": "1"}, batch_get_server()(h, b).body
        )
    )
    injector = FaultInjector(inner, unprocessed=1.0)
    keys = [{"PK": {"S": f"k{n}"}, "SK": {"N": str(n)}} for n in range(4)]
    projected = {
        "Keys": keys,
        "ProjectionExpression": "#p, v",
        "ExpressionAttributeNames": {"#p": "PK"},
        "ConsistentRead": True,
    }
    payload = {"RequestItems": {"P": projected, "Q": {"Keys": keys[:2]}}}
    response = await send(injector, "BatchGetItem", payload)
    data = decode(response)
    assert response.headers["x-amzn-requestid"] == "r1"
    assert response.headers["content-length"] == str(len(response.body))
    assert data["Responses"] == {"P": [], "Q": []}
    assert data["UnprocessedKeys"] == {"P": projected, "Q": {"Keys": keys[:2]}}
    assert inner.payloads == [payload]  # sent whole: the server did the reads
    assert injector.injected == {"unprocessed_keys": 6}


async def test_batch_get_partial_split_is_exact() -> None:
    inner = ScriptedTransport(default=batch_get_server())
    injector = FaultInjector(inner, seed=2, unprocessed=0.5)
    keys = [{"PK": {"S": "p"}, "SK": {"S": f"s{n}"}} for n in range(40)]
    data = decode(await send(injector, "BatchGetItem", {"RequestItems": {"T": {"Keys": keys}}}))
    returned = [{"PK": item["PK"], "SK": item["SK"]} for item in data["Responses"]["T"]]
    left = data["UnprocessedKeys"]["T"]["Keys"]
    assert 0 < len(left) < 40
    assert sorted(map(orjson.dumps, returned + left)) == sorted(map(orjson.dumps, keys))
    assert injector.injected == {"unprocessed_keys": len(left)}


async def test_batch_get_merges_with_servers_own_unprocessed() -> None:
    # The server leaves the last key of each table unprocessed itself.
    inner = ScriptedTransport(default=batch_get_server(lambda table, keys: keys[-1:]))
    injector = FaultInjector(inner, seed=4, unprocessed=0.5)
    keys = [{"PK": {"S": f"k{n}"}} for n in range(30)]
    payload = {"RequestItems": {"T": {"Keys": keys, "ConsistentRead": True}}}
    data = decode(await send(injector, "BatchGetItem", payload))
    left = data["UnprocessedKeys"]["T"]
    assert keys[-1] in left["Keys"]
    assert left["ConsistentRead"] is True
    assert len({orjson.dumps(k) for k in left["Keys"]}) == len(left["Keys"])  # no duplicates
    returned = [{"PK": item["PK"]} for item in data["Responses"]["T"]]
    assert sorted(map(orjson.dumps, returned + left["Keys"])) == sorted(map(orjson.dumps, keys))
    # The server's own key is not counted as injected, even when it was also drawn.
    assert injector.injected == {"unprocessed_keys": len(left["Keys"]) - 1}


async def test_batch_get_matches_numbers_by_value() -> None:
    def server(_h: Mapping[str, str], _b: bytes) -> HttpResponse:
        items = [
            {"PK": {"N": "1"}, "SK": {"S": "a"}},  # the key, as DynamoDB normalises it
            {"PK": {"N": "1"}, "SK": {"S": "b"}},  # same partition, other sort key
            {"PK": {"S": "1"}, "SK": {"S": "a"}},  # a string is not a number
            {"PK": {"N": "10"}, "SK": {"S": "a"}},
        ]
        return answer({"Responses": {"T": items}, "UnprocessedKeys": {}})

    injector = FaultInjector(ScriptedTransport(default=server), unprocessed=1.0)
    key = {"PK": {"N": "1.0"}, "SK": {"S": "a"}}
    data = decode(await send(injector, "BatchGetItem", {"RequestItems": {"T": {"Keys": [key]}}}))
    assert data["Responses"]["T"] == [
        {"PK": {"N": "1"}, "SK": {"S": "b"}},
        {"PK": {"S": "1"}, "SK": {"S": "a"}},
        {"PK": {"N": "10"}, "SK": {"S": "a"}},
    ]
    assert data["UnprocessedKeys"] == {"T": {"Keys": [key]}}


async def test_batch_get_error_answer_passes_unchanged() -> None:
    inner = ScriptedTransport(default=throttled())
    injector = FaultInjector(inner, unprocessed=1.0)
    payload = {"RequestItems": {"T": {"Keys": [{"PK": {"S": "a"}}]}}}
    assert await send(injector, "BatchGetItem", payload) is inner.default
    assert not injector.injected


async def test_batch_get_with_nothing_drawn_is_untouched() -> None:
    original = answer({"Responses": {"T": []}, "UnprocessedKeys": {}})
    injector = FaultInjector(ScriptedTransport(default=original), unprocessed=1e-12)
    payload = {"RequestItems": {"T": {"Keys": [{"PK": {"S": "a"}}]}}}
    assert await send(injector, "BatchGetItem", payload) is original


# --- BatchWriteItem ---------------------------------------------------------------------------


async def test_batch_write_forwards_the_rest_and_reports_the_chosen() -> None:
    inner = ScriptedTransport(default=batch_write_ok)
    injector = FaultInjector(inner, seed=9, unprocessed=0.5)
    payload = write_payload()
    data = decode(await send(injector, "BatchWriteItem", payload))
    (sent,) = inner.payloads
    held = data["UnprocessedItems"]
    assert sent["ReturnConsumedCapacity"] == "TOTAL"
    assert all(sent["RequestItems"].values())  # emptied tables are dropped
    forwarded, reported = flat(sent["RequestItems"]), flat(held)
    assert forwarded and reported
    assert sorted(forwarded + reported) == flat(payload["RequestItems"])
    assert not set(forwarded) & set(reported)
    assert injector.injected == {"unprocessed_items": len(reported)}
    # The trimmed body goes out under the original (now stale) signature.
    assert inner.requests[0][0] == headers("BatchWriteItem")


async def test_batch_write_merges_with_servers_own_unprocessed() -> None:
    def server(_h: Mapping[str, str], body: bytes) -> HttpResponse:
        items = orjson.loads(body)["RequestItems"]
        table = next(iter(items))
        return answer({"UnprocessedItems": {table: items[table][:1]}})

    inner = ScriptedTransport(default=server)
    injector = FaultInjector(inner, seed=9, unprocessed=0.5)
    payload = write_payload()
    data = decode(await send(injector, "BatchWriteItem", payload))
    sent = flat(inner.payloads[0]["RequestItems"])
    reported = flat(data["UnprocessedItems"])
    first_table = next(iter(inner.payloads[0]["RequestItems"]))
    servers_own = flat({first_table: inner.payloads[0]["RequestItems"][first_table][:1]})
    # Each write request was either applied by the server or reported back, never both.
    assert set(sent) & set(reported) == set(servers_own)
    assert sorted(set(sent) | set(reported)) == flat(payload["RequestItems"])
    assert len(reported) == len(set(reported))
    assert injector.injected == {"unprocessed_items": len(reported) - len(servers_own)}


async def test_batch_write_all_chosen_is_not_forwarded() -> None:
    inner = ScriptedTransport(default=batch_write_ok)
    injector = FaultInjector(inner, unprocessed=1.0)
    payload = write_payload()
    response = await send(injector, "BatchWriteItem", payload)
    assert response.status == 200
    assert decode(response) == {"UnprocessedItems": payload["RequestItems"]}
    assert inner.requests == []
    assert injector.forwarded == 0
    assert injector.injected == {"unprocessed_items": 15}


async def test_batch_write_error_answer_passes_unchanged() -> None:
    inner = ScriptedTransport(default=error("ValidationException", "bad", 400))
    injector = FaultInjector(inner, seed=9, unprocessed=0.5)
    assert await send(injector, "BatchWriteItem", write_payload()) is inner.default
    assert len(inner.requests) == 1
    assert not injector.injected


async def test_batch_write_with_nothing_drawn_sends_the_original_bytes() -> None:
    inner = ScriptedTransport(default=batch_write_ok)
    injector = FaultInjector(inner, unprocessed=1e-12)
    body = orjson.dumps(write_payload())
    await injector.send(headers("BatchWriteItem"), body)
    assert inner.requests[0][1] == body


async def test_faulted_batch_is_not_also_made_partial() -> None:
    inner = ScriptedTransport(default=batch_write_ok)
    injector = FaultInjector(inner, seed=1, reset=1.0, unprocessed=1.0)
    for _ in range(10):
        with pytest.raises(TransportError):
            await send(injector, "BatchWriteItem", write_payload())
    # Reset-after forwards the whole batch: nothing held back on that path.
    assert inner.payloads == [write_payload()] * injector.injected["reset_after"]
    assert "unprocessed_items" not in injector.injected


# --- configuration and lifecycle --------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"throttle": -0.1},
        {"server_error": 1.5},
        {"reset": math.nan},
        {"unprocessed": 2.0},
        {"throttle": 0.6, "server_error": 0.3, "reset": 0.2},
        {"latency": (0.2, 0.1)},
        {"latency": (-0.1, 0.1)},
        {"latency": (0.0, math.inf)},
        {"latency": (0.1,)},
        {"operations": "GetItem"},
    ],
)
def test_bad_configuration_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        FaultInjector(ScriptedTransport(), **kwargs)


def test_bands_may_add_up_to_one() -> None:
    FaultInjector(ScriptedTransport(), throttle=0.1, server_error=0.2, reset=0.7)


async def test_close_closes_the_inner_transport() -> None:
    inner = ScriptedTransport()
    await FaultInjector(inner).close()
    assert inner.closed


async def test_client_retries_through_injected_faults() -> None:
    inner = ScriptedTransport(default=answer({"Item": {"PK": {"S": "a"}}}))
    injector = FaultInjector(inner, seed=7, throttle=0.3, server_error=0.1, reset=0.1)
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("AKIDEXAMPLE", "secret"),
        retry=RetryPolicy(max_attempts=50, base=0.0),
        transport=injector,
    ) as db:
        for _ in range(30):
            assert await db.table("T").get({"PK": "a"}) == {"PK": "a"}
        stats = db.stats()
    assert stats.throttles == injector.injected["throttle"] > 0
    assert stats.retries == sum(injector.injected.values())
    assert inner.closed
