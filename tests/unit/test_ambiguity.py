"""The lost-answer policy: a write whose answer was lost is resent only when that cannot apply
it twice; otherwise it is recognised as applied, or raised as ``OutcomeUnknown``.

A lost answer is scripted as a ``TransportError`` (a reset after sending) standing for a
request the server applied: nothing the client sees afterwards may count it twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from asyncdyn import (
    Attr,
    Client,
    ConditionalCheckFailed,
    ConfigurationError,
    OutcomeUnknown,
    RequestTimeout,
    RetryPolicy,
    ServerError,
    TransportError,
)
from asyncdyn.resend import Resend, resend_rule, update_is_idempotent
from asyncdyn.testing import ScriptedTransport, answer, error, throttled
from asyncdyn.transport import HttpResponse

from .test_lean import FakeNetwork

KEY = {"PK": "a", "SK": "1"}
WIRE_KEY = {"PK": {"S": "a"}, "SK": {"S": "1"}}


def lost() -> TransportError:
    """The server applied the request; the connection was reset before its answer."""
    return TransportError("connection reset before the answer arrived")


def never_sent() -> TransportError:
    exc = TransportError("connection refused")
    exc.maybe_applied = False
    return exc


def condition_failed(item: dict[str, Any] | None = None) -> HttpResponse:
    extra = {} if item is None else {"Item": item}
    return error("ConditionalCheckFailedException", "The conditional request failed", **extra)


def make_client(transport: ScriptedTransport, **policy: Any) -> Client:
    return Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        retry=RetryPolicy(max_attempts=4, base=0.0, **policy),
        transport=transport,
    )


@pytest.fixture
async def at_least_once(transport: ScriptedTransport) -> AsyncIterator[Client]:
    async with make_client(transport, retry_unknown_outcome=True) as db:
        yield db


# -- UpdateItem ------------------------------------------------------------------------------


async def test_a_lost_add_raises_outcome_unknown_and_is_not_resent(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [lost(), answer({})]
    with pytest.raises(OutcomeUnknown) as caught:
        await client.table("T").update(KEY, Attr("n").add(1))
    assert transport.operations == ["UpdateItem"]
    unknown = caught.value
    assert unknown.operation == "UpdateItem"
    assert unknown.key == KEY
    assert unknown.table == "T"
    assert isinstance(unknown.last_error, TransportError)
    assert isinstance(unknown.__cause__, TransportError)
    assert "wJalrXUtnFEMI" not in str(unknown) and "AKIDEXAMPLE" not in str(unknown)


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(lambda: error("InternalServerError", "boom", 500), id="http-500"),
        pytest.param(lambda: RequestTimeout("no answer"), id="timeout"),
        pytest.param(lambda: answer(b'{"trunc', crc=False), id="damaged-body"),
    ],
)
async def test_every_maybe_applied_failure_of_an_add_is_outcome_unknown(
    client: Client, transport: ScriptedTransport, failure: Any
) -> None:
    transport.steps = [failure(), answer({})]
    with pytest.raises(OutcomeUnknown):
        await client.table("T").update(KEY, "SET n = n + :one", values={":one": 1})
    assert transport.operations == ["UpdateItem"]


async def test_an_add_that_never_left_or_was_throttled_is_resent(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [never_sent(), throttled(), answer({"Attributes": {"n": {"N": "1"}}})]
    got = await client.table("T").update(KEY, Attr("n").add(1), returns="UPDATED_NEW")
    assert got == {"n": 1}
    assert transport.operations == ["UpdateItem"] * 3


async def test_retry_unknown_outcome_opts_back_into_blind_resends(
    at_least_once: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [lost(), answer({})]
    await at_least_once.table("T").update(KEY, Attr("n").add(1))
    assert transport.operations == ["UpdateItem", "UpdateItem"]


async def test_an_idempotent_update_is_resent(client: Client, transport: ScriptedTransport) -> None:
    transport.steps = [lost(), error("ServiceUnavailable", "busy", 503), answer({})]
    update = (
        Attr("status").set("SHIPPED")
        & Attr("tmp").remove()
        & Attr("tags").add({"x"})
        & Attr("seen").set_if_not_exists(1)
    )
    await client.table("T").update(KEY, update)
    assert transport.operations == ["UpdateItem"] * 3
    # An unconditional resend needs no item back.
    assert all("ReturnValuesOnConditionCheckFailure" not in p for p in transport.payloads)


async def test_a_conditional_idempotent_update_failing_after_a_lost_answer_is_unknown(
    client: Client, transport: ScriptedTransport
) -> None:
    # The resend's condition failed, maybe on its own first write: not a ConditionalCheckFailed.
    current = {**WIRE_KEY, "status": {"S": "SHIPPED"}}
    transport.steps = [lost(), condition_failed(current)]
    with pytest.raises(OutcomeUnknown) as caught:
        await client.table("T").update(
            KEY, Attr("status").set("SHIPPED"), condition=Attr("status").eq("PENDING")
        )
    assert caught.value.item == {**KEY, "status": "SHIPPED"}
    first, second = transport.payloads
    assert "ReturnValuesOnConditionCheckFailure" not in first
    assert second["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"


async def test_a_condition_failure_without_a_lost_answer_stays_a_condition_failure(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [throttled(), condition_failed()]
    with pytest.raises(ConditionalCheckFailed):
        await client.table("T").update(
            KEY, Attr("status").set("SHIPPED"), condition=Attr("status").eq("PENDING")
        )


async def test_an_update_returning_old_values_is_not_resent(
    client: Client, transport: ScriptedTransport
) -> None:
    # The resend's old values would be the first attempt's own write.
    transport.steps = [lost(), answer({})]
    with pytest.raises(OutcomeUnknown):
        await client.table("T").update(KEY, Attr("status").set("X"), returns="ALL_OLD")
    assert transport.operations == ["UpdateItem"]


# -- update(idempotent=True) -----------------------------------------------------------------


async def test_an_idempotent_add_is_one_transaction_resent_with_its_token(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [lost(), error("InternalServerError", "boom", 500), answer({})]
    got = await client.table("T").update(
        KEY, Attr("n").add(1), condition=Attr("open").eq(True), idempotent=True
    )
    assert got is None
    assert transport.operations == ["TransactWriteItems"] * 3
    payloads = transport.payloads
    tokens = {p["ClientRequestToken"] for p in payloads}
    assert len(tokens) == 1 and all(tokens)
    (action,) = payloads[0]["TransactItems"]
    update = action["Update"]
    assert update["TableName"] == "T" and update["Key"] == WIRE_KEY
    assert update["UpdateExpression"].startswith("ADD ")
    assert "ConditionExpression" in update


async def test_an_idempotent_update_maps_its_condition_failure_back(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [
        error(
            "TransactionCanceledException",
            "Transaction cancelled",
            CancellationReasons=[
                {
                    "Code": "ConditionalCheckFailed",
                    "Message": "The conditional request failed",
                    "Item": {**WIRE_KEY, "open": {"BOOL": False}},
                }
            ],
        )
    ]
    with pytest.raises(ConditionalCheckFailed) as caught:
        await client.table("T").update(
            KEY,
            Attr("n").add(1),
            condition=Attr("open").eq(True),
            returns_on_failure="ALL_OLD",
            idempotent=True,
        )
    assert caught.value.item == {**KEY, "open": False}
    assert caught.value.operation == "UpdateItem"


async def test_an_idempotent_update_refuses_returns(
    client: Client, transport: ScriptedTransport
) -> None:
    with pytest.raises(ConfigurationError, match="returns"):
        await client.table("T").update(KEY, Attr("n").add(1), returns="ALL_NEW", idempotent=True)
    assert transport.operations == []


async def test_transact_write_resends_a_lost_commit_with_the_same_token(
    client: Client, transport: ScriptedTransport
) -> None:
    table = client.table("T", key=("PK", "SK"))
    transport.steps = [lost(), answer({})]
    await client.transact_write([table.tx_update(KEY, Attr("n").add(1))])
    first, second = transport.payloads
    assert first["ClientRequestToken"] == second["ClientRequestToken"]


async def test_a_raw_transaction_without_a_token_is_not_resent(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [lost(), answer({})]
    with pytest.raises(OutcomeUnknown):
        await client.call("TransactWriteItems", {"TransactItems": []})
    assert transport.operations == ["TransactWriteItems"]


# -- PutItem / DeleteItem --------------------------------------------------------------------


async def test_an_unconditional_put_and_delete_are_resent(
    client: Client, transport: ScriptedTransport
) -> None:
    table = client.table("T")
    transport.steps = [lost(), answer({}), lost(), answer({})]
    await table.put({**KEY, "v": 1})
    await table.delete(KEY)
    assert transport.operations == ["PutItem", "PutItem", "DeleteItem", "DeleteItem"]


async def test_a_conditional_put_recognises_its_own_applied_write(
    client: Client, transport: ScriptedTransport
) -> None:
    item = {**KEY, "total": 1.5, "n": 10, "tags": {"b", "a"}}
    # The server normalises numbers ("1.50" comes back "1.5") and orders sets its own way.
    stored = {
        **WIRE_KEY,
        "total": {"N": "1.50"},
        "n": {"N": "10"},
        "tags": {"SS": ["b", "a"]},
    }
    transport.steps = [lost(), condition_failed(stored)]
    got = await client.table("T").put(item, condition=Attr("PK").not_exists())
    assert got is None
    first, second = transport.payloads
    assert "ReturnValuesOnConditionCheckFailure" not in first
    assert second["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
    assert client.stats().errors.get("RecognisedOwnWrite") == 1


async def test_a_conditional_put_finding_another_item_is_unknown(
    client: Client, transport: ScriptedTransport
) -> None:
    other = {**WIRE_KEY, "v": {"N": "2"}}
    transport.steps = [lost(), condition_failed(other)]
    with pytest.raises(OutcomeUnknown) as caught:
        await client.table("T", key=("PK", "SK")).put(
            {**KEY, "v": 1}, condition=Attr("PK").not_exists()
        )
    assert caught.value.item == {**KEY, "v": 2}
    assert caught.value.key == KEY
    assert isinstance(caught.value.__cause__, ConditionalCheckFailed)


async def test_a_conditional_put_reads_the_item_when_the_server_does_not_return_it(
    client: Client, transport: ScriptedTransport
) -> None:
    # dynalite ignores ReturnValuesOnConditionCheckFailure: the item is read instead.
    item = {**KEY, "v": 1}
    transport.steps = [lost(), condition_failed(), answer({"Item": {**WIRE_KEY, "v": {"N": "1"}}})]
    await client.table("T", key=("PK", "SK")).put(item, condition=Attr("PK").not_exists())
    assert transport.operations == ["PutItem", "PutItem", "GetItem"]
    assert transport.payloads[2]["ConsistentRead"] is True


async def test_a_conditional_put_whose_read_back_fails_is_unknown(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [lost(), condition_failed(), error("AccessDeniedException", "no GetItem")]
    with pytest.raises(OutcomeUnknown):
        await client.table("T", key=("PK", "SK")).put(
            {**KEY, "v": 1}, condition=Attr("PK").not_exists()
        )


async def test_raw_calls_follow_the_same_rule(client: Client, transport: ScriptedTransport) -> None:
    item = {**WIRE_KEY, "v": {"N": "1"}}
    transport.steps = [lost(), condition_failed(item), lost()]
    put = {"TableName": "T", "Item": item, "ConditionExpression": "attribute_not_exists(PK)"}
    assert await client.call("PutItem", put) == {}
    with pytest.raises(OutcomeUnknown) as caught:
        await client.call(
            "UpdateItem",
            {
                "TableName": "T",
                "Key": WIRE_KEY,
                "UpdateExpression": "ADD n :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            },
        )
    assert caught.value.key == KEY
    assert transport.operations == ["PutItem", "PutItem", "UpdateItem"]


async def test_a_conditional_put_resent_successfully_succeeds(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [lost(), answer({})]
    await client.table("T").put({**KEY, "v": 1}, condition=Attr("PK").not_exists())
    assert transport.operations == ["PutItem", "PutItem"]


async def test_a_conditional_write_whose_resends_run_out_is_unknown(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [lost(), throttled(), throttled(), throttled()]
    with pytest.raises(OutcomeUnknown):
        await client.table("T").put({**KEY, "v": 1}, condition=Attr("PK").not_exists())


async def test_a_conditional_delete_failing_after_a_lost_answer_is_unknown(
    client: Client, transport: ScriptedTransport
) -> None:
    # Gone now, but who deleted it cannot be told: never reported as the caller's failure.
    transport.steps = [lost(), condition_failed()]
    with pytest.raises(OutcomeUnknown) as caught:
        await client.table("T").delete(KEY, condition=Attr("v").eq(1))
    assert caught.value.key == KEY
    assert transport.operations == ["DeleteItem", "DeleteItem"]


@pytest.mark.parametrize("operation", ["put", "delete"])
async def test_a_write_returning_the_old_item_is_not_resent(
    client: Client, transport: ScriptedTransport, operation: str
) -> None:
    # The resend's ALL_OLD would be the first attempt's own write, not the replaced item.
    table = client.table("T")
    transport.steps = [lost(), answer({"Attributes": {**WIRE_KEY, "v": {"N": "1"}}})]
    with pytest.raises(OutcomeUnknown):
        if operation == "put":
            await table.put({**KEY, "v": 1}, returns="ALL_OLD")
        else:
            await table.delete(KEY, returns="ALL_OLD")
    assert len(transport.operations) == 1


# -- optimistic locking ----------------------------------------------------------------------


async def test_put_versioned_recognises_its_own_version(
    client: Client, transport: ScriptedTransport
) -> None:
    mine = {**WIRE_KEY, "balance": {"N": "90"}, "version": {"N": "4"}}
    transport.steps = [lost(), condition_failed(mine)]
    written = await client.table("T").put_versioned({**KEY, "balance": 90, "version": 3})
    assert written == {**KEY, "balance": 90, "version": 4}


async def test_modify_applies_its_change_once_when_an_answer_is_lost(
    client: Client, transport: ScriptedTransport
) -> None:
    calls: list[dict[str, Any] | None] = []

    def withdraw(current: dict[str, Any] | None) -> dict[str, Any]:
        calls.append(current)
        assert current is not None
        return {**current, "balance": current["balance"] - 10}

    transport.steps = [
        answer({"Item": {**WIRE_KEY, "balance": {"N": "100"}, "version": {"N": "1"}}}),
        lost(),
        condition_failed({**WIRE_KEY, "balance": {"N": "90"}, "version": {"N": "2"}}),
    ]
    written = await client.table("T").modify(KEY, withdraw)
    assert written == {**KEY, "balance": 90, "version": 2}
    assert len(calls) == 1


async def test_modify_does_not_rerun_its_change_when_it_cannot_tell(
    client: Client, transport: ScriptedTransport
) -> None:
    calls = 0

    def withdraw(current: dict[str, Any] | None) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        assert current is not None
        return {**current, "balance": current["balance"] - 10}

    # Someone else wrote version 3 after ours (maybe) wrote version 2: running the change
    # again on version 3 could withdraw twice.
    transport.steps = [
        answer({"Item": {**WIRE_KEY, "balance": {"N": "100"}, "version": {"N": "1"}}}),
        lost(),
        condition_failed({**WIRE_KEY, "balance": {"N": "85"}, "version": {"N": "3"}}),
    ]
    with pytest.raises(OutcomeUnknown) as caught:
        await client.table("T").modify(KEY, withdraw)
    assert calls == 1
    assert caught.value.item == {**KEY, "balance": 85, "version": 3}


# -- batches and reads -----------------------------------------------------------------------


async def test_batch_write_and_reads_are_resent(
    client: Client, transport: ScriptedTransport
) -> None:
    table = client.table("T", key=("PK", "SK"))
    transport.steps = [lost(), answer({}), lost(), answer({})]
    await table.batch_write(puts=[{**KEY, "v": 1}])
    assert await table.get(KEY) is None
    assert transport.operations == ["BatchWriteItem"] * 2 + ["GetItem"] * 2


async def test_a_server_error_on_an_add_is_unknown_but_a_client_error_is_not(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [error("ValidationException", "bad")]
    with pytest.raises(Exception) as caught:
        await client.table("T").update(KEY, Attr("n").add(1))
    assert not isinstance(caught.value, OutcomeUnknown)
    assert ServerError("x", "y").maybe_applied and not throttled_error().maybe_applied


def throttled_error() -> Exception:
    from asyncdyn import Throttled

    return Throttled("ThrottlingException", "slow down")


# -- the rule itself -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "values", "idempotent"),
    [
        ("SET #a = :v", {":v": {"N": "1"}}, True),
        ("SET #a = :v, #b = :w REMOVE #c", {}, True),
        ("set #a = if_not_exists(#a, :v)", {}, True),
        ("SET #a = if_not_exists(#b, :v)", {}, False),
        ("SET #a = #b", {}, True),
        ("SET #a = #b, #b = :v", {}, False),
        ("SET #a = #a + :v", {}, False),
        ("SET #a = :v - #a", {}, False),
        ("SET #a = list_append(#a, :v)", {}, False),
        ("SET #a[3] = :v", {}, False),
        ("REMOVE #a[0]", {}, False),
        ("ADD #a :v", {":v": {"N": "1"}}, False),
        ("ADD #a :v", {":v": {"SS": ["x"]}}, True),
        ("ADD #a :v", {}, False),
        ("DELETE #a :v", {":v": {"SS": ["x"]}}, True),
        ("DELETE #a :v REMOVE #b", {}, True),
        ("", {}, False),
        ("garbage", {}, False),
    ],
)
def test_update_is_idempotent(expression: str, values: dict[str, Any], idempotent: bool) -> None:
    assert update_is_idempotent(expression, values) is idempotent


@pytest.mark.parametrize(
    ("operation", "payload", "rule"),
    [
        ("GetItem", {}, Resend.SAFE),
        ("BatchWriteItem", {}, Resend.SAFE),
        ("PutItem", {}, Resend.SAFE),
        ("PutItem", {"ConditionExpression": "x"}, Resend.RECOGNISE),
        ("PutItem", {"ReturnValues": "ALL_OLD"}, Resend.NEVER),
        ("DeleteItem", {"ConditionExpression": "x"}, Resend.RECOGNISE),
        ("UpdateItem", {"UpdateExpression": "SET a = :v"}, Resend.SAFE),
        ("UpdateItem", {"UpdateExpression": "SET a = :v", "ReturnValues": "ALL_NEW"}, Resend.SAFE),
        (
            "UpdateItem",
            {"UpdateExpression": "SET a = :v", "ReturnValues": "UPDATED_OLD"},
            Resend.NEVER,
        ),
        ("UpdateItem", {"UpdateExpression": "ADD a :v"}, Resend.NEVER),
        ("TransactWriteItems", {"ClientRequestToken": "t"}, Resend.SAFE),
        ("TransactWriteItems", {}, Resend.NEVER),
        ("ExecuteStatement", {"Statement": "SELECT * FROM T"}, Resend.SAFE),
        ("ExecuteStatement", {"Statement": "UPDATE T SET a = a + 1"}, Resend.NEVER),
    ],
)
def test_resend_rule(operation: str, payload: dict[str, Any], rule: Resend) -> None:
    assert resend_rule(operation, payload) is rule


async def test_a_write_timed_out_before_it_was_sent_is_resent() -> None:
    """Timed out while queued behind the in-flight limit: it never left, so even an ADD is
    sent again (and once)."""
    transport = ScriptedTransport(default=answer({}))
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("AKIDEXAMPLE", "secret"),
        retry=RetryPolicy(max_attempts=50, base=0.01, cap=0.02),
        transport=transport,
        max_concurrency=1,
        timeout=0.03,
    ) as db:
        limiter = db._dispatcher._limiter  # every slot taken by "other requests"
        await limiter.acquire()
        asyncio.get_running_loop().call_later(0.15, limiter.release)
        await db.table("T").update(KEY, Attr("n").add(1))
        assert db.stats().retries >= 1
    assert transport.operations == ["UpdateItem"]


# -- below the retry loop --------------------------------------------------------------------


@pytest.fixture
async def network_on_loop(monkeypatch: pytest.MonkeyPatch) -> FakeNetwork:
    fake = FakeNetwork()
    monkeypatch.setattr(asyncio.get_running_loop(), "create_connection", fake.create_connection)
    return fake


async def test_the_lean_transport_does_not_resend_a_write_on_its_own(
    network_on_loop: FakeNetwork,
) -> None:
    """A reused keep-alive connection closed before any byte of the answer: the server may
    have read the request (the proxy's lost answer does exactly that), so the transport
    sends nothing again on its own; the retry loop resends only what the resend rule calls
    safe."""
    async with Client(
        region="us-east-1",
        endpoint_url="http://db.example",
        credentials=("AKIDEXAMPLE", "secret"),
        retry=RetryPolicy(max_attempts=4, base=0.0),
    ) as db:
        table = db.table("T")
        await table.get(KEY)
        first = network_on_loop.transports[0]
        first.on_write = lambda t, data: t.lose(None)
        with pytest.raises(OutcomeUnknown):
            await table.update(KEY, Attr("n").add(1))
        assert len(network_on_loop.transports) == 1  # not resent on a new connection
        # A read in the same situation is resent by the retry loop.
        await table.get(KEY)
        network_on_loop.transports[-1].on_write = lambda t, data: t.lose(None)
        assert await table.get(KEY) is None
