"""Integration fixtures: a Client on the session's real server, and throwaway tables."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from asyncdyn import Client, RetryPolicy, Table, TableNotFound
from asyncdyn.local import LocalServer

MakeTable = Callable[..., Awaitable[Table]]


@pytest.fixture
async def db(server: LocalServer) -> AsyncIterator[Client]:
    async with Client(
        region="us-east-1",
        endpoint_url=server.endpoint_url,
        credentials=("testing", "testing"),
        retry=RetryPolicy(deadline=60.0),
    ) as client:
        yield client


@pytest.fixture
async def make_table(db: Client) -> AsyncIterator[MakeTable]:
    """Create uniquely named tables (dynalite has no reset) and delete them afterwards."""
    created: list[str] = []

    async def make(**kwargs: Any) -> Table:
        kwargs.setdefault("partition_key", "PK")
        kwargs.setdefault("sort_key", "SK")
        name = f"t-{uuid.uuid4().hex[:16]}"
        table = await db.create_table(name, **kwargs)
        created.append(name)
        return table

    yield make
    for name in created:
        try:
            await db.delete_table(name, wait=False)
        except TableNotFound:
            pass


@pytest.fixture
async def table(make_table: MakeTable) -> Table:
    return await make_table()
