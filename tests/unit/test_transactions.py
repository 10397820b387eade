"""Transactions, optimistic locking and TTL helpers against a scripted transport."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from asyncdyn import (
    Attr,
    Client,
    ConfigurationError,
    InvalidTransaction,
    RetriesExhausted,
    TransactionCanceled,
    expires_at,
    is_expired,
)
from asyncdyn.testing import ScriptedTransport, answer, error
from asyncdyn.transport import HttpResponse

DESCRIBE = answer(
    {
        "Table": {
            "TableName": "T",
            "TableStatus": "ACTIVE",
            "KeySchema": [
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "SK", "KeyType": "RANGE"},
            ],
        }
    }
)


def canceled(*codes: str) -> HttpResponse:
    return error(
        "TransactionCanceledException",
        "Transaction cancelled",
        CancellationReasons=[{"Code": code} for code in codes],
    )


async def test_a_retried_commit_sends_the_same_token(
    client: Client, transport: ScriptedTransport
) -> None:
    table = client.table("T")
    transport.steps = [
        DESCRIBE,
        error("InternalServerError", "boom", 500),
        error("TransactionInProgressException", "still going"),
        answer({}),
    ]
    await client.transact_write(
        [table.tx_put({"PK": "a", "SK": "1"}), table.tx_delete({"PK": "b", "SK": "2"})]
    )
    sent = [
        p
        for op, p in zip(transport.operations, transport.payloads, strict=True)
        if op == "TransactWriteItems"
    ]
    assert len(sent) == 3
    tokens = {p["ClientRequestToken"] for p in sent}
    assert len(tokens) == 1 and 1 <= len(tokens.pop()) <= 36
    assert sent[0]["TransactItems"][0]["Put"]["Item"] == {"PK": {"S": "a"}, "SK": {"S": "1"}}
    assert sent[0]["TransactItems"][1]["Delete"]["Key"] == {"PK": {"S": "b"}, "SK": {"S": "2"}}


async def test_a_given_token_is_sent_as_is(client: Client, transport: ScriptedTransport) -> None:
    table = client.table("T")
    transport.steps = [answer({})]
    await client.transact_write(
        [table.tx_update({"PK": "a", "SK": "1"}, Attr("n").add(1))], token="t-1"
    )
    assert transport.payloads[0]["ClientRequestToken"] == "t-1"
    with pytest.raises(InvalidTransaction):
        await client.transact_write(
            [table.tx_check({"PK": "a", "SK": "1"}, Attr("n").exists())], token="x" * 37
        )


async def test_cancellation_reasons_and_conflict_retries(
    client: Client, transport: ScriptedTransport
) -> None:
    table = client.table("T")
    actions = [
        table.tx_update({"PK": "a", "SK": "1"}, Attr("n").add(1)),
        table.tx_check({"PK": "b", "SK": "1"}, Attr("n").exists()),
    ]
    transport.steps = [canceled("None", "TransactionConflict")]
    with pytest.raises(TransactionCanceled) as raised:
        await client.transact_write(actions)
    assert [r.code for r in raised.value.reasons] == [None, "TransactionConflict"]
    assert len(transport.requests) == 1  # not retried unless asked

    transport.requests.clear()
    transport.steps = [canceled("TransactionConflict", "None"), answer({})]
    await client.transact_write(actions, retry_conflicts=True)
    tokens = [p["ClientRequestToken"] for p in transport.payloads]
    assert len(tokens) == 2 and tokens[0] != tokens[1]  # a cancelled call applied nothing

    transport.requests.clear()
    transport.steps = [canceled("ConditionalCheckFailed", "TransactionConflict")]
    with pytest.raises(TransactionCanceled):
        await client.transact_write(actions, retry_conflicts=True)
    assert len(transport.requests) == 1  # a failed condition is never retried

    transport.requests.clear()
    transport.default = canceled("TransactionConflict", "None")
    with pytest.raises(RetriesExhausted):
        await client.transact_write(actions, retry_conflicts=True)
    assert len(transport.requests) == 4  # the client's policy: 4 attempts


async def test_checks_before_sending(client: Client, transport: ScriptedTransport) -> None:
    table = client.table("T")
    with pytest.raises(InvalidTransaction, match="1 to 100"):
        await client.transact_write([])
    with pytest.raises(InvalidTransaction, match=r"actions\[0\] and actions\[2\]"):
        await client.transact_write(
            [
                table.tx_delete({"PK": "a", "SK": "1"}),
                table.tx_delete({"PK": "b", "SK": "1"}),
                table.tx_check({"SK": "1", "PK": "a"}, Attr("x").exists()),
            ]
        )
    big = [table.tx_put({"PK": "p", "SK": str(n), "blob": b"x" * 400_000}) for n in range(11)]
    transport.steps = [DESCRIBE]
    with pytest.raises(InvalidTransaction, match="4 MB"):
        await client.transact_write(big)
    with pytest.raises(InvalidTransaction, match="not a TxAction"):
        await client.transact_write([{"Put": {}}])  # type: ignore[list-item]
    assert transport.operations == ["DescribeTable"]


async def test_transact_get_aligns_answers(client: Client, transport: ScriptedTransport) -> None:
    table = client.table("T")
    transport.steps = [answer({"Responses": [{"Item": {"PK": {"S": "a"}, "n": {"N": "1"}}}, {}]})]
    got = await client.transact_get(
        [
            table.tx_get({"PK": "a", "SK": "1"}),
            table.tx_get({"PK": "b", "SK": "1"}, attributes=["n"]),
        ]
    )
    assert got == [{"PK": "a", "n": 1}, None]
    second = transport.payloads[0]["TransactItems"][1]["Get"]
    assert second["ProjectionExpression"] and second["ExpressionAttributeNames"]


async def test_put_versioned_conditions_and_increments(
    client: Client, transport: ScriptedTransport
) -> None:
    table = client.table("T")
    transport.steps = [answer({}), answer({})]
    assert await table.put_versioned({"PK": "a", "SK": "1"}) == {"PK": "a", "SK": "1", "version": 1}
    assert await table.put_versioned({"PK": "a", "SK": "1", "version": 4}) == {
        "PK": "a",
        "SK": "1",
        "version": 5,
    }
    first, second = transport.payloads
    assert first["ConditionExpression"].startswith("attribute_not_exists")
    assert second["Item"]["version"] == {"N": "5"}
    assert list(second["ExpressionAttributeValues"].values()) == [{"N": "4"}]
    assert second["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"


def test_expires_at_and_is_expired() -> None:
    assert expires_at(timedelta(hours=1), now=1000.0) == 4600
    at = datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    assert expires_at(at) == int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
    with pytest.raises(ConfigurationError):
        expires_at(datetime(2024, 1, 1))  # naive
    assert is_expired({"ttl": 10}, "ttl", now=11)
    assert is_expired({"ttl": Decimal("10.5")}, "ttl", now=11)
    assert not is_expired({"ttl": 12}, "ttl", now=11)
    assert not is_expired({"ttl": "10"}, "ttl", now=11)  # not a number: never deleted
    assert not is_expired({"ttl": True}, "ttl", now=11)
    assert not is_expired({}, "ttl", now=11)


async def test_cancellation_names_the_failed_actions_tables_and_keys(
    client: Client, transport: ScriptedTransport
) -> None:
    # DynamoDB's message is a list of codes: "... [None, ConditionalCheckFailed]".
    orders, users = client.table("Orders", key=("PK", "SK")), client.table("Users")
    actions = [
        users.tx_update({"PK": "u1"}, Attr("n").add(1)),
        orders.tx_put(
            {"PK": "C#1", "SK": "O#7", "secret": "s3cr3t"}, condition=Attr("PK").not_exists()
        ),
        users.tx_check({"PK": "u2"}, Attr("n").exists()),
    ]
    transport.steps = [canceled("None", "ConditionalCheckFailed", "ConditionalCheckFailed")]
    with pytest.raises(TransactionCanceled) as raised:
        await client.transact_write(actions)
    message = str(raised.value)
    assert message.startswith(
        "transaction cancelled by actions[1] (Put on 'Orders', key {'PK': 'C#1', 'SK': 'O#7'}): "
        "ConditionalCheckFailed; actions[2] (ConditionCheck on 'Users', key {'PK': 'u2'}): "
        "ConditionalCheckFailed - TransactionCanceledException (TransactWriteItems)"
    )
    assert "s3cr3t" not in message and "u1" not in message  # keys only, failed actions only
