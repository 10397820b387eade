"""Errors name what failed, against real servers: a missing table, an unknown index, a lost
optimistic-locking race."""

from __future__ import annotations

import pytest

from asyncdyn import Client, ConditionalCheckFailed, Key, Table, TableNotFound, ValidationError


async def test_missing_table_is_named(db: Client) -> None:
    with pytest.raises(TableNotFound) as info:
        await db.table("no-such-table").get({"PK": "a", "SK": "b"})
    assert info.value.table == "no-such-table"
    assert "table 'no-such-table' does not exist" in str(info.value)


async def test_unknown_index_is_named(table: Table) -> None:
    # moto answers ResourceNotFoundException, dynalite (like DynamoDB) a ValidationException
    # that names the index itself.
    with pytest.raises((TableNotFound, ValidationError)) as info:
        async for _ in table.query(Key("PK").eq("a"), index="NoSuchIndex"):
            pass
    assert "NoSuchIndex" in str(info.value)
    if isinstance(info.value, TableNotFound):
        assert (info.value.table, info.value.index) == (table.name, "NoSuchIndex")
        assert f"table {table.name!r} or its index 'NoSuchIndex'" in str(info.value)


async def test_stale_versioned_write_names_table_key_and_versions(table: Table) -> None:
    first = await table.put_versioned({"PK": "DOC#1", "SK": "V", "body": "a"})
    await table.put_versioned({**first, "body": "b"})  # now version 2
    with pytest.raises(ConditionalCheckFailed) as info:
        await table.put_versioned({**first, "body": "stale"})  # still carries version 1
    exc = info.value
    assert (exc.table, exc.key) == (table.name, {"PK": "DOC#1", "SK": "V"})
    assert (exc.expected_version, exc.stored_version) == (1, 2)
    assert "expected version 1, stored version 2" in str(exc)
    assert exc.item is not None and exc.item["body"] == "b"
