"""Errors name what failed: the table and index of a TableNotFound, the table, key and
versions of a lost optimistic-locking race. Scripted answers, no sockets."""

from __future__ import annotations

import pytest

from asyncdyn import (
    Client,
    ConditionalCheckFailed,
    InvalidExpression,
    Key,
    ResourceInUse,
    StreamNotEnabled,
    TableNotFound,
)
from asyncdyn.errors import error_from_response
from asyncdyn.schema import KeySchema
from asyncdyn.testing import ScriptedTransport, answer, error

NOT_FOUND = "ResourceNotFoundException"


async def test_table_not_found_names_the_table(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps.append(error(NOT_FOUND, "Requested resource not found"))
    with pytest.raises(TableNotFound) as info:
        await client.table("Orders").get({"PK": "a"})
    assert info.value.table == "Orders" and info.value.index is None
    assert str(info.value).startswith("table 'Orders' does not exist or is not active yet")
    assert "Requested resource not found" in str(info.value)  # the server's words are kept


async def test_unknown_index_names_table_and_index(
    client: Client, transport: ScriptedTransport
) -> None:
    # moto's answer to a query on an index the table lacks.
    transport.steps.append(error(NOT_FOUND, "Invalid index: ByEmail for table: Users."))
    with pytest.raises(TableNotFound) as info:
        async for _ in client.table("Users").query(Key("email").eq("x"), index="ByEmail"):
            pass
    assert (info.value.table, info.value.index) == ("Users", "ByEmail")
    assert "table 'Users' or its index 'ByEmail'" in str(info.value)


async def test_batch_over_several_tables_names_them_all(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps.append(error(NOT_FOUND, "Requested resource not found"))
    with pytest.raises(TableNotFound) as info:
        await client.batch_get({"Alpha": [{"PK": "a"}], "Beta": [{"PK": "b"}]})
    assert set(info.value.tables) == {"Alpha", "Beta"} and info.value.table is None
    assert "one of the tables" in str(info.value)
    assert "'Alpha'" in str(info.value) and "'Beta'" in str(info.value)


async def test_transaction_names_its_tables(client: Client, transport: ScriptedTransport) -> None:
    transport.steps.append(error(NOT_FOUND, "Requested resource not found"))
    orders = client.table("Orders")
    with pytest.raises(TableNotFound) as info:
        await client.transact_write([orders.tx_delete({"PK": "a"})])
    assert info.value.table == "Orders"


async def test_table_in_use_names_the_table(client: Client, transport: ScriptedTransport) -> None:
    # dynalite's answer to CreateTable of an existing table carries no message at all.
    transport.steps.append(error("ResourceInUseException", ""))
    with pytest.raises(ResourceInUse) as info:
        await client.create_table("Orders", partition_key="PK")
    assert info.value.table == "Orders"
    assert str(info.value) == (
        "table 'Orders' is being created, updated or deleted, or already exists: "
        "ResourceInUseException (CreateTable) (use the existing one with db.table('Orders'), "
        "or remove it first with db.delete_table('Orders'); a local server forgets its tables "
        "when restarted)"
    )


async def test_table_in_use_elsewhere_says_to_wait(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps.append(error("ResourceInUseException", "Table is being updated"))
    with pytest.raises(ResourceInUse) as info:
        await client.delete_table("Orders", wait=False)
    assert str(info.value).endswith(
        ": Table is being updated (wait with db.table('Orders').wait_until_active() and try again)"
    )


async def test_table_not_found_says_what_to_check(
    client: Client, transport: ScriptedTransport
) -> None:
    # A new user's usual cause: another region or endpoint, or a restarted local server.
    transport.steps.append(error(NOT_FOUND, "Requested resource not found"))
    with pytest.raises(TableNotFound) as info:
        await client.table("Orders").get({"PK": "a"})
    assert "region and endpoint_url" in str(info.value)
    assert "Client.create_table creates one" in str(info.value)
    # An unknown index points at the table's description instead.
    transport.steps.append(error(NOT_FOUND, "Invalid index: ByEmail for table: Users."))
    with pytest.raises(TableNotFound) as info:
        await client.table("Users").query_page(Key("email").eq("x"), index="ByEmail")
    assert str(info.value).endswith("(Table.describe() lists the table's indexes)")
    # Deleting a table that is not there: nothing to create.
    transport.steps.append(error(NOT_FOUND, "Requested resource not found"))
    with pytest.raises(TableNotFound) as info:
        await client.delete_table("Orders", wait=False)
    assert str(info.value).endswith("a local server forgets its tables when restarted)")


def test_stream_not_enabled_says_how_to_enable_one() -> None:
    message = str(StreamNotEnabled("Orders"))
    assert message.startswith("table 'Orders' has no stream enabled")
    assert "db.table('Orders').enable_stream()" in message


def test_stream_is_named() -> None:
    exc = error_from_response(400, {"__type": NOT_FOUND, "message": "m"}, "DescribeStream")
    assert isinstance(exc, TableNotFound)
    exc.locate([], stream="arn:aws:dynamodb:us-east-1:1:table/T/stream/2024")
    assert str(exc).startswith("stream 'arn:aws:dynamodb:us-east-1:1:table/T/stream/2024'")


async def test_lost_version_race_names_table_key_and_versions(
    client: Client, transport: ScriptedTransport
) -> None:
    stored = {"PK": {"S": "DOC#1"}, "SK": {"S": "V"}, "version": {"N": "5"}, "body": {"S": "x"}}
    transport.steps.append(
        error("ConditionalCheckFailedException", "The conditional request failed", Item=stored)
    )
    docs = client.table("Docs", key=KeySchema("PK", "SK", {}))
    with pytest.raises(ConditionalCheckFailed) as info:
        await docs.put_versioned({"PK": "DOC#1", "SK": "V", "body": "mine", "version": 3})
    exc = info.value
    assert (exc.table, exc.key) == ("Docs", {"PK": "DOC#1", "SK": "V"})
    assert (exc.expected_version, exc.stored_version) == (3, 5)
    message = str(exc)
    assert "table 'Docs'" in message and "'PK': 'DOC#1'" in message and "'SK': 'V'" in message
    assert "expected version 3" in message and "stored version 5" in message
    assert "mine" not in message and "'x'" not in message  # no item contents beyond the key
    assert exc.item is not None and exc.item["version"] == 5


async def test_first_write_race_says_no_item_was_expected(
    client: Client, transport: ScriptedTransport
) -> None:
    stored = {"PK": {"S": "DOC#1"}, "version": {"N": "1"}}
    transport.steps.append(error("ConditionalCheckFailedException", "failed", Item=stored))
    docs = client.table("Docs", key=KeySchema("PK", None, {}))
    with pytest.raises(ConditionalCheckFailed) as info:
        await docs.put_versioned({"PK": "DOC#1", "body": "mine"})
    assert info.value.expected_version is None and info.value.stored_version == 1
    assert "expected no item with 'version' yet, stored version 1" in str(info.value)


async def test_modify_gives_up_with_the_versions_of_its_last_race(
    client: Client, transport: ScriptedTransport
) -> None:
    def stored(v: int) -> dict[str, object]:
        return {"PK": {"S": "C#1"}, "n": {"N": str(v)}, "version": {"N": str(v)}}

    transport.steps.extend(
        [
            answer({"Item": stored(1)}),
            error("ConditionalCheckFailedException", "failed", Item=stored(2)),
            error("ConditionalCheckFailedException", "failed", Item=stored(3)),
        ]
    )
    counters = client.table("Counters", key=KeySchema("PK", None, {}))
    with pytest.raises(ConditionalCheckFailed) as info:
        await counters.modify({"PK": "C#1"}, lambda c: {**(c or {}), "n": 0}, attempts=2)
    assert (info.value.expected_version, info.value.stored_version) == (2, 3)
    assert "table 'Counters', key {'PK': 'C#1'}" in str(info.value)


async def test_key_condition_on_a_non_key_attribute_is_refused_before_sending(
    client: Client, transport: ScriptedTransport
) -> None:
    # moto: "Query condition missed key schema element: PK", naming no table.
    shop = client.table("Shop", key=("PK", "SK"))
    with pytest.raises(InvalidExpression) as info:
        await shop.query_page(Key("status").eq("PENDING"))
    message = str(info.value)
    assert message.startswith(
        "Key('status') is not the partition key of table 'Shop' (key: PK, SK)"
    )
    assert "filter=Attr('status')" in message and "Key('PK').eq(value)" in message
    with pytest.raises(InvalidExpression, match="the table has the sort key 'SK'"):
        await shop.query_page(Key("PK").eq("a") & Key("status").eq("x"))
    with pytest.raises(InvalidExpression, match="the table has no sort key"):
        await client.table("Users", key=("PK",)).query_page(Key("PK").eq("a") & Key("SK").eq("x"))
    assert transport.requests == []  # nothing was sent


async def test_key_condition_is_left_to_the_server_when_the_key_is_unknown(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps.append(answer({"Items": []}))
    await client.table("Shop").query_page(Key("status").eq("PENDING"))  # no DescribeTable
    transport.steps.append(answer({"Items": []}))
    shop = client.table("Shop", key=("PK", "SK"))
    # An index's key is the server's to check: it may span several attributes.
    await shop.query_page(Key("status").eq("PENDING"), index="ByStatus")
    assert transport.operations == ["Query", "Query"]


def test_every_error_class_is_in_the_tree_and_the_errors_page() -> None:
    # The tree atop asyncdyn/errors.py and docs/errors.md's table are where a caller looks
    # for what to catch: a class raised but listed in neither is one nobody catches.
    import inspect
    import re
    from pathlib import Path

    import asyncdyn
    from asyncdyn import errors

    tree = (errors.__doc__ or "").split("Retryability")[0]
    page = (Path(__file__).parents[2] / "docs" / "errors.md").read_text().split("## Bad input")[0]
    classes = [
        name
        for name in errors.__all__
        if inspect.isclass(getattr(errors, name))
        and issubclass(getattr(errors, name), errors.AsyncDynError)
    ]
    assert "NativeTransferError" in classes
    for name in classes:
        assert getattr(asyncdyn, name) is getattr(errors, name), name
    listed = set(re.findall(r"[─ ](\w+)(?= |$)", tree, re.MULTILINE))
    assert [n for n in classes if n not in listed] == []
    assert [n for n in classes if f"`{n}`" not in page] == []
