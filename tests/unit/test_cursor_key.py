"""Cursors cannot be minted by outsiders, even with no cursor_key (issue 16, defect 15).

The default cursor key used to be a public constant: anyone could seal a cursor carrying
any ExclusiveStartKey within a query's scope. With no ``cursor_key`` each process now draws
a random one.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from asyncdyn import Client, InvalidCursor, Key
from asyncdyn.client import Table
from asyncdyn.paging import CursorCodec
from asyncdyn.testing import ScriptedTransport, answer

OLD_PUBLIC_KEY = b"asyncdyn cursor v1"
ITEM = {"PK": {"S": "CUSTOMER#1"}, "SK": {"S": "ORDER#1"}}


def query_scope(table: Table) -> bytes:
    request = {
        "TableName": table.name,
        "KeyConditionExpression": "#n0 = :v0",
        "ExpressionAttributeNames": {"#n0": "PK"},
        "ExpressionAttributeValues": {":v0": {"S": "CUSTOMER#1"}},
    }
    return Table._scope("Query", request)


async def test_a_cursor_minted_with_the_old_public_key_is_refused_before_sending(
    client: Client, transport: ScriptedTransport
) -> None:
    table = client.table("T")
    # The scope really is this query's: a cursor of the client's own opens with it.
    transport.steps = [answer({"Items": [ITEM], "LastEvaluatedKey": ITEM})]
    page = await table.query_page(Key("PK").eq("CUSTOMER#1"), limit=1)
    assert page.cursor is not None
    forged = CursorCodec(OLD_PUBLIC_KEY).seal(
        query_scope(table), {"PK": {"S": "CUSTOMER#1"}, "SK": {"S": "ORDER#999"}}
    )
    sent = len(transport.requests)
    with pytest.raises(InvalidCursor):
        await table.query_page(Key("PK").eq("CUSTOMER#1"), limit=1, cursor=forged)
    assert len(transport.requests) == sent


async def test_clients_of_one_process_share_the_random_key(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [
        answer({"Items": [ITEM], "LastEvaluatedKey": ITEM}),
        answer({"Items": []}),
    ]
    page = await client.table("T").query_page(Key("PK").eq("CUSTOMER#1"), limit=1)
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("AKIDEXAMPLE", "secret"),
        transport=transport,
    ) as other:
        later = await other.table("T").query_page(
            Key("PK").eq("CUSTOMER#1"), limit=1, cursor=page.cursor
        )
    assert later.items == []
    assert transport.payloads[-1]["ExclusiveStartKey"] == ITEM


def test_another_process_draws_another_key() -> None:
    code = "from asyncdyn.paging import process_cursor_key; print(process_cursor_key().hex())"
    keys = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(keys) == 2 and all(len(k) == 64 for k in keys)
