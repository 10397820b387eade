"""Lost answers on a real server: the proxy forwards a write (the server applies it), then
resets the connection before its answer. Nothing may be applied twice, and nothing applied
may be reported as a condition failure of its own write.

moto ignores ``ClientRequestToken``: ``FaultSchedule(tokens=True)`` makes the proxy answer a
committed token again as DynamoDB does, so a resend that kept its token is applied once and
one that did not is applied twice. dynalite has no transactions: the ``idempotent=True``
parts run on moto only.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from asyncdyn import (
    Attr,
    Client,
    ConditionalCheckFailed,
    OutcomeUnknown,
    RetriesExhausted,
    RetryPolicy,
    Table,
)
from asyncdyn.local import LocalServer

from ..faultproxy import FaultProxy, FaultSchedule

KEY = {"PK": "COUNTER", "SK": "1"}


@pytest.fixture
async def proxy(server: LocalServer) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(server.endpoint_url) as running:
        yield running


@pytest.fixture
async def faulty(proxy: FaultProxy) -> AsyncIterator[Client]:
    """A client whose every request goes through the proxy."""
    async with Client(
        region="us-east-1",
        endpoint_url=proxy.endpoint_url,
        credentials=("testing", "testing"),
        retry=RetryPolicy(max_attempts=10, base=0.002, cap=0.05, deadline=30.0),
    ) as client:
        yield client


def lose(proxy: FaultProxy, *operations: str) -> None:
    """Lose the answer of the next request of ``operations``; its resends pass."""
    proxy.schedule = FaultSchedule(
        lost_answer=1.0, operations=frozenset(operations), tokens=True, max_faults=1
    )


async def test_a_lost_add_is_outcome_unknown_and_applied_once(
    table: Table, faulty: Client, proxy: FaultProxy
) -> None:
    remote = faulty.table(table.name)
    assert await remote.get(KEY) is None  # the update then goes on a reused connection
    lose(proxy, "UpdateItem")
    with pytest.raises(OutcomeUnknown) as caught:
        await remote.update(KEY, Attr("n").add(1))
    assert caught.value.key == KEY and caught.value.table == table.name
    assert proxy.injected["lost_answer"] == 1
    assert await table.get(KEY, consistent=True) == {**KEY, "n": 1}


@pytest.mark.moto_only
async def test_an_idempotent_add_is_applied_once(
    table: Table, faulty: Client, proxy: FaultProxy
) -> None:
    lose(proxy, "TransactWriteItems")
    await faulty.table(table.name).update(KEY, Attr("n").add(1), idempotent=True)
    assert proxy.injected["lost_answer"] == 1 and proxy.injected["token_replayed"] == 1
    assert await table.get(KEY, consistent=True) == {**KEY, "n": 1}


@pytest.mark.moto_only
async def test_an_idempotent_update_still_fails_its_condition(table: Table, faulty: Client) -> None:
    await table.put({**KEY, "open": False})
    with pytest.raises(ConditionalCheckFailed):
        await faulty.table(table.name).update(
            KEY, Attr("n").add(1), condition=Attr("open").eq(True), idempotent=True
        )
    assert await table.get(KEY, consistent=True) == {**KEY, "open": False}


async def test_a_conditional_put_applied_then_lost_succeeds(
    table: Table, faulty: Client, proxy: FaultProxy
) -> None:
    item = {"PK": "ORDER", "SK": "1", "total": 12.5, "lines": [1, 2], "tags": {"a", "b"}}
    lose(proxy, "PutItem")
    await faulty.table(table.name).put(item, condition=Attr("PK").not_exists())
    assert proxy.injected["lost_answer"] == 1
    stored = await table.get({"PK": "ORDER", "SK": "1"}, consistent=True)
    assert stored is not None and stored["lines"] == [1, 2] and stored["tags"] == {"a", "b"}


async def test_put_versioned_and_modify_applied_then_lost_write_one_version(
    table: Table, faulty: Client, proxy: FaultProxy
) -> None:
    key = {"PK": "ACCOUNT", "SK": "1"}
    await table.put_versioned({**key, "balance": 100})
    lose(proxy, "PutItem")
    remote = faulty.table(table.name)
    written = await remote.put_versioned({**key, "balance": 90, "version": 1})
    assert written["version"] == 2
    proxy.schedule = FaultSchedule()
    calls = 0

    def withdraw(current: dict[str, Any] | None) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        assert current is not None
        return {**current, "balance": current["balance"] - 10}

    lose(proxy, "PutItem")
    written = await remote.modify(key, withdraw)
    assert calls == 1
    assert written == {**key, "balance": 80, "version": 3}
    assert await table.get(key, consistent=True) == written


# -- soak ------------------------------------------------------------------------------------

SOAK_SCHEDULE = FaultSchedule(
    seed=16, lost_answer=0.15, server_error=0.05, throttle=0.05, reset_before=0.03, tokens=True
)
ACCOUNTS = 3
SLOTS = 12


class Ledger:
    """What each operation was told: acknowledged, unknown, or refused (never applied)."""

    def __init__(self) -> None:
        self.acked: set[str] = set()
        self.unknown: set[str] = set()
        self.refused: set[str] = set()

    def settle(self, op: str, outcome: str) -> None:
        getattr(self, outcome).add(op)

    def check(self, applied: set[str], what: str) -> None:
        """Every acknowledged op applied; nothing refused applied; the rest were unknown."""
        assert self.acked <= applied, f"{what}: acknowledged but not applied"
        assert not (applied & self.refused), f"{what}: refused yet applied"
        assert applied <= self.acked | self.unknown, f"{what}: applied but never sent"


async def _settle(ledger: Ledger, op: str, write: Any) -> None:
    try:
        await write
    except (OutcomeUnknown, RetriesExhausted):
        # RetriesExhausted of an idempotent write may follow an applied attempt as well.
        ledger.settle(op, "unknown")
    except ConditionalCheckFailed:
        ledger.settle(op, "refused")
    else:
        ledger.settle(op, "acked")


async def test_soak_lost_answers_apply_nothing_twice(
    server: LocalServer, table: Table, faulty: Client, proxy: FaultProxy
) -> None:
    """Counters, optimistic-locking transfers and contended conditional puts under lost
    answers: the final state is exactly the acknowledged operations plus those of the
    unknown ones that applied, which every item records by operation id."""
    exactly_once = server.kind != "dynalite"  # update(idempotent=True) needs transactions
    remote = faulty.table(table.name)
    for account in range(ACCOUNTS):
        await table.put({"PK": "ACCOUNT", "SK": str(account), "balance": 0, "version": 1})
    proxy.schedule = SOAK_SCHEDULE
    counters, transfers, puts = Ledger(), Ledger(), Ledger()
    deltas: dict[str, int] = {}
    claims: dict[str, tuple[int, str]] = {}
    ids = itertools.count()

    async def count(worker: int) -> None:
        for _ in range(12):
            op = f"c{next(ids)}"
            update = Attr("n").add(1) & Attr("ops").add({op})
            await _settle(counters, op, remote.update(KEY, update, idempotent=exactly_once))

    async def transfer(worker: int) -> None:
        rng = random.Random(worker)
        for _ in range(8):
            op = f"t{next(ids)}"
            delta = deltas[op] = rng.randint(-50, 50)
            account = {"PK": "ACCOUNT", "SK": str(rng.randrange(ACCOUNTS))}

            def change(current: dict[str, Any] | None, op: str = op, delta: int = delta) -> Any:
                assert current is not None
                ops = set(current.get("ops", ())) | {op}
                return {**current, "balance": current["balance"] + delta, "ops": ops}

            await _settle(transfers, op, remote.modify(account, change, attempts=20))

    async def claim(worker: int) -> None:
        for slot in range(SLOTS):
            op = f"p{next(ids)}"
            claims[op] = (slot, op)
            item = {"PK": "SLOT", "SK": str(slot), "owner": op, "worker": worker}
            await _settle(puts, op, remote.put(item, condition=Attr("PK").not_exists()))

    async with asyncio.timeout(60):
        await asyncio.gather(
            *(count(w) for w in range(3)),
            *(transfer(w) for w in range(3)),
            *(claim(w) for w in range(2)),  # two workers race for every slot
        )
    proxy.schedule = FaultSchedule()
    lost = proxy.injected["lost_answer"] + proxy.injected["http_500"]
    assert lost > 0, proxy.report()

    counter = await table.get(KEY, consistent=True)
    assert counter is not None
    applied = set(counter["ops"])
    assert counter["n"] == len(applied), "a counter increment applied twice"
    counters.check(applied, "counter")
    if exactly_once:
        assert not counters.unknown and applied == counters.acked

    applied = set()
    for account in range(ACCOUNTS):
        stored = await table.get({"PK": "ACCOUNT", "SK": str(account)}, consistent=True)
        assert stored is not None
        ops = set(stored.get("ops", ()))
        assert stored["balance"] == sum(deltas[op] for op in ops), "a transfer applied twice"
        assert stored["version"] == 1 + len(ops), "a write that is no transfer"
        assert not (ops & applied)
        applied |= ops
    transfers.check(applied, "transfers")

    owners = set()
    for slot in range(SLOTS):
        stored = await table.get({"PK": "SLOT", "SK": str(slot)}, consistent=True)
        assert stored is not None
        owners.add(stored["owner"])
        won = {op for op in puts.acked if claims[op][0] == slot}
        assert len(won) <= 1, f"slot {slot}: two conditional puts both succeeded"
        if won:
            assert won == {stored["owner"]}
    puts.check(owners, "conditional puts")
    print(
        f"{server.kind}: {proxy.report()['injected']}; unknown: counters "
        f"{len(counters.unknown)}, transfers {len(transfers.unknown)}, puts {len(puts.unknown)}"
    )
