"""The deadline bounds the whole call, rate-limiter waits included (issue 16, defect 10).

A batch call under ``rate=`` used to sleep in the rate limiter past the policy's deadline
and then send: a 0.5 s deadline took 2.0 s and requests went out after it had passed.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from asyncdyn import Client, RetriesExhausted, RetryPolicy, UnprocessedItemsError
from asyncdyn.errors import RequestTimeout
from asyncdyn.retry import RateLimiter
from asyncdyn.testing import ScriptedTransport

from .test_batch import FakeDynamo, sk

DEADLINE = 0.3


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_rate_limiter_refuses_a_wait_past_the_deadline_and_keeps_its_tokens() -> None:
    clock = Clock()
    limiter = RateLimiter(10.0, clock=clock, sleep=clock.sleep)
    budget = RetryPolicy(deadline=1.0).start(clock=clock, sleep=clock.sleep)
    await limiter.acquire(10, budget)  # the one-second burst: no wait
    await limiter.acquire(5, budget)  # 0.5 s: within the deadline
    assert clock.slept == [0.5]
    with pytest.raises(RetriesExhausted) as info:
        await limiter.acquire(10, budget)  # would wait until 1.5 s, past the deadline at 1.0
    assert info.value.reason == "deadline"
    assert isinstance(info.value.last_error, RequestTimeout)
    assert clock.slept == [0.5]  # refused without sleeping
    # The refused request took no tokens: a later caller without a deadline waits as before.
    await limiter.acquire(5)
    assert clock.slept == [0.5, 0.5]


async def test_batch_write_under_a_rate_ends_at_its_deadline_and_sends_nothing_after() -> None:
    fake = FakeDynamo()
    sent_at: list[float] = []

    def record(headers: Any, body: bytes) -> Any:
        sent_at.append(time.monotonic())
        return fake(headers, body)

    transport = ScriptedTransport(default=record)
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("AKIDEXAMPLE", "secret"),
        retry=RetryPolicy(deadline=DEADLINE),
        transport=transport,
    ) as db:
        table = db.table("T", key=("PK", "SK"))
        puts = [{"PK": "P", "SK": n} for n in range(200)]
        start = time.monotonic()
        with pytest.raises(UnprocessedItemsError) as info:
            await table.batch_write(puts=puts, rate=50)  # 200 items at 50/s: about 3 s
        took = time.monotonic() - start
    assert took < DEADLINE + 0.15
    assert all(at - start < DEADLINE for at in sent_at)
    written = {sk(identity) for identity in fake.data["T"]}
    unwritten = {put["SK"] for put in info.value.puts}
    assert written | unwritten == set(range(200)) and not written & unwritten
    assert len(written) >= 50  # the first second's burst went out at once


async def test_get_after_the_deadline_passed_in_the_limiter_is_not_sent() -> None:
    # A request whose deadline passes while it waits for a connection slot is abandoned
    # there, typed, and never written to the wire afterwards.
    fake = FakeDynamo()
    transport = ScriptedTransport(default=fake)
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("AKIDEXAMPLE", "secret"),
        retry=RetryPolicy(deadline=0.05),
        transport=transport,
        max_concurrency=1,
    ) as db:
        clock = Clock()
        budget = db._dispatcher.retry.start(clock=clock, sleep=clock.sleep)
        clock.now = 0.06  # the deadline passes before the first attempt
        with pytest.raises(RetriesExhausted) as info:
            await db._dispatcher.call("GetItem", {"TableName": "T", "Key": {}}, budget=budget)
        assert info.value.reason == "deadline"
    assert transport.requests == []
