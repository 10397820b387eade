"""LeanTransport against the real servers: moto (HTTP/1.0, one connection per request) and
dynalite (HTTP/1.1 keep-alive, idle connections closed after 5 s)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from asyncdyn import Client, Key, RetryPolicy, Table, TableNotFound, TransportError
from asyncdyn.lean import LeanTransport
from asyncdyn.local import LocalServer


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
        finally:
            await client.delete_table(name, wait=False)


async def test_send_after_close_fails(server: LocalServer) -> None:
    transport = LeanTransport(server.endpoint_url)
    client = lean_client(server, transport)
    await client.list_tables()
    await client.close()
    with pytest.raises(TransportError, match="closed"):
        await transport.send({"Host": "x"}, b"{}")
