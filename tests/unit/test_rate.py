"""RetryBudget forks and progress, the RateLimiter token bucket and the AdaptiveRate AIMD
controller, all on a fake clock and a fake sleep."""

from __future__ import annotations

import asyncio
import math

import pytest

from asyncdyn import ConfigurationError, RetriesExhausted, RetryPolicy, Throttled
from asyncdyn.retry import AdaptiveRate, RateLimiter


class FakeTime:
    """A clock that only moves when told to; ``sleep`` records and (optionally) advances it."""

    def __init__(self, *, advance: bool = True) -> None:
        self.now = 0.0
        self.advance = advance
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.advance:
            self.now += seconds
        await asyncio.sleep(0)


ERROR = Throttled("ThrottlingException", "slow down")


# ----------------------------------------------------------------------------------- RetryBudget


async def test_fork_shares_the_deadline_but_counts_its_own_attempts() -> None:
    t = FakeTime()
    policy = RetryPolicy(max_attempts=3, base=1.0, cap=1.0, deadline=10.0)
    root = policy.start(clock=t.clock, sleep=t.sleep, rand=lambda: 1.0)
    await root.wait(ERROR)
    await root.wait(ERROR)
    assert root.attempts == 2
    assert t.now == 2.0

    child = root.fork()
    assert child.attempts == 0
    assert child.remaining() == root.remaining() == 8.0
    await child.wait(ERROR)  # its own first retry: the first backoff again
    assert t.sleeps == [1.0, 1.0, 1.0]
    assert (child.attempts, root.attempts) == (1, 2)
    assert child.remaining() == root.remaining() == 7.0

    # The child's failures do not use up the root's (or a sibling's) attempts ...
    sibling = root.fork()
    await child.wait(ERROR)
    with pytest.raises(RetriesExhausted) as info:
        await child.wait(ERROR)
    assert info.value.reason == "attempts"
    assert (sibling.attempts, root.attempts) == (0, 2)

    # ... but the deadline is the same for all of them.
    t.now = 9.5
    with pytest.raises(RetriesExhausted) as info:
        await sibling.wait(ERROR)  # a 1 s backoff would overrun the shared deadline
    assert info.value.reason == "deadline"
    assert root.fork().remaining() == 0.5
    t.now = 11.0
    assert root.fork().expired()
    assert root.fork().remaining() == 0.0


def test_fork_without_deadline() -> None:
    child = RetryPolicy().start().fork()
    assert child.remaining() is None
    assert not child.has_deadline
    assert not child.expired()


async def test_progress_resets_attempts_but_not_the_backoff() -> None:
    t = FakeTime()
    budget = RetryPolicy(max_attempts=4, base=0.01, cap=10.0).start(
        clock=t.clock, sleep=t.sleep, rand=lambda: 1.0
    )
    for _ in range(3):
        await budget.wait(ERROR)
    assert budget.attempts == 3
    assert t.sleeps == pytest.approx([0.01, 0.02, 0.04])
    budget.progressed()
    assert budget.attempts == 0
    for _ in range(3):  # the first would have been the last attempt without the progress
        await budget.wait(ERROR)
    with pytest.raises(RetriesExhausted) as info:
        await budget.wait(ERROR)
    assert info.value.attempts == 4
    assert info.value.last_error is ERROR
    # The backoff after the progress does not start again from the base (the table that
    # left work unprocessed is still being throttled), and it goes on doubling.
    after = t.sleeps[3:]
    assert len(after) == 3
    assert after[0] > 0.01
    assert after == pytest.approx([after[0], 2 * after[0], 4 * after[0]])


# ----------------------------------------------------------------------------------- RateLimiter


async def test_rate_limiter_sleeps_the_deficit() -> None:
    t = FakeTime()
    limiter = RateLimiter(10.0, clock=t.clock, sleep=t.sleep)
    await limiter.acquire(10)  # a fresh bucket holds one second: no wait
    assert t.sleeps == []
    await limiter.acquire(5)
    assert t.sleeps == [pytest.approx(0.5)]
    await limiter.acquire(5)  # 0.5 s refilled 5 tokens, all owed: wait another 0.5 s
    assert t.sleeps == [pytest.approx(0.5)] * 2
    t.now += 0.3  # 3 tokens refilled
    await limiter.acquire(4)
    assert t.sleeps[-1] == pytest.approx(0.1)
    t.now += 60.0  # idle: the bucket holds one second at most
    await limiter.acquire(10)
    assert len(t.sleeps) == 3
    await limiter.acquire(12)
    assert t.sleeps[-1] == pytest.approx(1.2)


async def test_rate_limiter_queues_concurrent_callers_in_order() -> None:
    t = FakeTime(advance=False)
    limiter = RateLimiter(10.0, clock=t.clock, sleep=t.sleep)
    await limiter.acquire(10)  # empty the bucket
    done: list[int] = []

    async def caller(i: int) -> None:
        await limiter.acquire(10)
        done.append(i)

    await asyncio.gather(*(caller(i) for i in range(4)))
    # Each waits for what everyone before it took: 1 s, 2 s, 3 s, 4 s.
    assert t.sleeps == pytest.approx([1.0, 2.0, 3.0, 4.0])
    assert done == [0, 1, 2, 3]


async def test_unlimited_rate_limiter_never_sleeps() -> None:
    t = FakeTime()
    limiter = RateLimiter(None, clock=t.clock, sleep=t.sleep)
    for n in (1, 10**6, 10**12):
        await limiter.acquire(n)
    assert t.sleeps == []


@pytest.mark.parametrize("rate", [0, 0.0, -1.0, math.nan, -math.inf])
def test_bad_rate_is_refused(rate: float) -> None:
    with pytest.raises(ConfigurationError):
        RateLimiter(rate)


# ---------------------------------------------------------------------------------- AdaptiveRate


# Explicit settings: the tests pin the arithmetic, not the defaults.
SETTINGS = {"decrease": 0.5, "increase": 0.5, "floor": 10.0}


async def measured_at_400(t: FakeTime, **kwargs: float) -> AdaptiveRate:
    """An adaptive rate that has measured 400 items/s (200 items over its first 0.5 s)."""
    rate = AdaptiveRate(clock=t.clock, sleep=t.sleep, **{**SETTINGS, **kwargs})
    await rate.acquire(100)
    t.now = 0.5
    await rate.acquire(100)
    assert rate.rate is None
    return rate


async def test_adaptive_rate_starts_unlimited() -> None:
    t = FakeTime()
    rate = AdaptiveRate(clock=t.clock, sleep=t.sleep)
    assert rate.rate is None
    for _ in range(5):
        await rate.acquire(10**6)
    # Successes do not invent a limit either.
    rate.feedback(rate.stamp(), 100, 100)
    assert rate.rate is None
    assert t.sleeps == []


async def test_throttling_sets_a_rate_from_the_measured_send_rate() -> None:
    t = FakeTime()
    rate = await measured_at_400(t)
    t.now = 0.6
    rate.feedback(0.5, 100, 0, throttled=True)
    assert rate.rate == pytest.approx(200.0)  # 400 items/s x decrease 0.5

    # Now it binds: once the bucket is drained, 100 more items take 0.5 s at 200/s.
    await rate.acquire(200)
    assert len(t.sleeps) == 1
    await rate.acquire(100)
    assert len(t.sleeps) == 2
    assert t.sleeps[-1] == pytest.approx(0.5)


async def test_throttling_before_anything_was_measured_cuts_from_the_send_rate_so_far() -> None:
    t = FakeTime()
    rate = AdaptiveRate(clock=t.clock, sleep=t.sleep, **SETTINGS)
    rate.feedback(0.0, 10, 0, throttled=True)  # nothing sent yet: nothing to cut from
    assert rate.rate is None
    await rate.acquire(100)
    t.now = 0.25
    rate.feedback(0.0, 100, 0, throttled=True)
    assert rate.rate == pytest.approx(200.0)  # 100 items in 0.25 s, halved


async def test_one_cut_per_round_trip() -> None:
    t = FakeTime()
    rate = await measured_at_400(t)
    t.now = 0.6
    rate.feedback(0.5, 100, 0, throttled=True)
    assert rate.rate == pytest.approx(200.0)

    # Answers to requests sent before that cut say nothing about the new rate.
    t.now = 0.7
    rate.feedback(0.55, 100, 0, throttled=True)
    rate.feedback(0.59, 100, 40)
    assert rate.rate == pytest.approx(200.0)

    # A request sent after the cut and throttled again: a second cut.
    rate.feedback(0.65, 100, 0, throttled=True)
    assert rate.rate == pytest.approx(100.0)


async def test_partial_unprocessed_cuts_in_proportion() -> None:
    t = FakeTime()
    rate = await measured_at_400(t)
    t.now = 0.6
    rate.feedback(0.5, 100, 75)  # a quarter left unprocessed
    assert rate.rate == pytest.approx(400.0 * (1 - 0.5 * 0.25))

    other = await measured_at_400(FakeTime(), decrease=0.8)
    other.feedback(0.5, 10, 0)  # all of it unprocessed, as bad as throttling
    assert other.rate == pytest.approx(400.0 * 0.8)


async def test_successes_raise_the_rate_additively_up_to_twice_the_measured() -> None:
    t = FakeTime()
    rate = await measured_at_400(t)
    t.now = 0.6
    rate.feedback(0.5, 100, 0, throttled=True)
    assert rate.rate == pytest.approx(200.0)

    t.now = 0.7
    rate.feedback(0.65, 100, 100)
    assert rate.rate == pytest.approx(250.0)  # + increase 0.5 per item processed
    rate.feedback(0.65, 100, 40)  # some of it unprocessed: a cut, not a raise ...
    assert rate.rate == pytest.approx(250.0 * (1 - 0.5 * 0.6))
    t.now = 0.8
    for _ in range(50):
        rate.feedback(0.75, 100, 100)
    assert rate.rate == pytest.approx(800.0)  # ... capped at 2 x the measured 400/s


async def test_never_below_the_floor() -> None:
    t = FakeTime()
    rate = await measured_at_400(t, floor=25.0)
    for step in range(1, 20):
        t.now = 0.5 + step
        rate.feedback(t.now, 100, 0, throttled=True)
    assert rate.rate == 25.0
    t.now += 1
    rate.feedback(t.now, 100, 1)
    assert rate.rate == 25.0


@pytest.mark.parametrize(
    "kwargs",
    [{"decrease": 0.0}, {"decrease": 1.0}, {"increase": -1.0}, {"floor": 0.0}, {"floor": -5.0}],
)
def test_bad_adaptive_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        AdaptiveRate(**kwargs)  # type: ignore[arg-type]
