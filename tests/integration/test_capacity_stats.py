"""stats() shows consumed capacity only when the client asked for it (moto sends it always)."""

from __future__ import annotations

from asyncdyn import Client, Table
from asyncdyn.local import LocalServer


async def test_capacity_is_counted_only_when_asked(server: LocalServer, table: Table) -> None:
    async with Client(region="us-east-1", endpoint_url=server.endpoint_url) as plain:
        t = plain.table(table.name)
        await t.put({"PK": "a", "SK": "1"})
        await t.get({"PK": "a", "SK": "1"})
        assert plain.stats().consumed_capacity == {}
    async with Client(
        region="us-east-1", endpoint_url=server.endpoint_url, consumed_capacity="TOTAL"
    ) as asking:
        t = asking.table(table.name)
        await t.put({"PK": "a", "SK": "2"})
        await t.get({"PK": "a", "SK": "2"})
        assert asking.stats().consumed_capacity.get(table.name, 0) > 0
