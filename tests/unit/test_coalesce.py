"""Get coalescing against a scripted transport: grouping, fan-back, errors, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
import pytest

from asyncdyn import Client, RetryPolicy, ValidationError
from asyncdyn.testing import ScriptedTransport, answer, error
from asyncdyn.transport import HttpResponse

STORE = {f"k{n}": {"PK": {"S": f"k{n}"}, "v": {"N": str(n)}} for n in range(300)}


def batch_server(headers: Mapping[str, str], body: bytes) -> HttpResponse:
    """BatchGetItem over STORE; a key "bad" makes the whole request a ValidationException."""
    request = orjson.loads(body)
    responses: dict[str, list[Any]] = {}
    for table, spec in request["RequestItems"].items():
        keys = [key["PK"]["S"] for key in spec["Keys"]]
        if "bad" in keys:
            return error("ValidationException", "bad key")
        responses[table] = [STORE[k] for k in keys if k in STORE]
    return answer({"Responses": responses, "UnprocessedKeys": {}})


@pytest.fixture
async def coalescing(transport: ScriptedTransport) -> AsyncIterator[Client]:
    transport.default = batch_server
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("AKIDEXAMPLE", "secret"),
        retry=RetryPolicy(max_attempts=4, base=0.0),
        transport=transport,
        coalesce_gets=True,
    ) as db:
        yield db


async def test_concurrent_gets_become_one_request_per_100_keys(
    coalescing: Client, transport: ScriptedTransport
) -> None:
    table = coalescing.table("T")
    keys = [{"PK": f"k{n % 250}"} for n in range(400)] + [{"PK": "missing"}]
    got = await asyncio.gather(*(table.get(key) for key in keys))
    assert got[:400] == [{"PK": f"k{n % 250}", "v": n % 250} for n in range(400)]
    assert got[400] is None
    assert set(transport.operations) == {"BatchGetItem"}
    assert len(transport.operations) == 3  # 251 distinct keys, each fetched once
    sent = [key["PK"]["S"] for p in transport.payloads for key in p["RequestItems"]["T"]["Keys"]]
    assert len(sent) == len(set(sent)) == 251  # duplicates fetched once
    assert got[0] is not got[250]  # the same key, each caller its own dict
    stats = coalescing.stats()
    assert stats.coalesced_gets == 401 and stats.coalesced_batches == 3


async def test_groups_by_consistency_and_projection(
    coalescing: Client, transport: ScriptedTransport
) -> None:
    table = coalescing.table("T")
    await asyncio.gather(
        table.get({"PK": "k1"}),
        table.get({"PK": "k2"}, consistent=True),
        table.get({"PK": "k3"}, attributes=["v"]),
        table.get({"PK": "k4"}),
    )
    specs = [p["RequestItems"]["T"] for p in transport.payloads]
    assert len(specs) == 3
    assert sorted(len(spec["Keys"]) for spec in specs) == [1, 1, 2]
    assert any(spec.get("ConsistentRead") for spec in specs)
    assert any("ProjectionExpression" in spec for spec in specs)


async def test_an_error_reaches_only_its_group(coalescing: Client) -> None:
    table = coalescing.table("T")
    results = await asyncio.gather(
        table.get({"PK": "bad"}),
        table.get({"PK": "k1"}, consistent=True),  # another group, another request
        return_exceptions=True,
    )
    assert isinstance(results[0], ValidationError)
    assert results[1] == {"PK": "k1", "v": 1}


async def test_a_cancelled_caller_does_not_disturb_the_others(
    coalescing: Client, transport: ScriptedTransport
) -> None:
    release = asyncio.Event()

    async def slow(headers: Mapping[str, str], body: bytes) -> HttpResponse:
        await release.wait()
        return batch_server(headers, body)

    transport.default = slow
    table = coalescing.table("T")
    tasks = [asyncio.create_task(table.get({"PK": f"k{n}"})) for n in range(5)]
    await asyncio.sleep(0.01)
    tasks[2].cancel()
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[2], asyncio.CancelledError)
    assert [r for n, r in enumerate(results) if n != 2] == [
        {"PK": f"k{n}", "v": n} for n in (0, 1, 3, 4)
    ]


async def test_bad_key_fails_at_the_call(coalescing: Client, transport: ScriptedTransport) -> None:
    from asyncdyn import InvalidItem

    with pytest.raises(InvalidItem):
        await coalescing.table("T").get({"PK": ["not", "a", "key"]})
    assert transport.requests == []
