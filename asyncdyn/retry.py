"""Retry as data: a policy of capped, fully jittered exponential delays under a deadline.

A ``RetryPolicy`` describes the budget of one *logical* operation (a ``get``, a whole
``batch_get``, one page of a query), not of one HTTP request: every attempt and every
backoff sleep of that operation draws from the same attempt count and the same deadline.
``RetryPolicy.start()`` opens such a budget; the transport and the batch engine both spend it.
A batch call forks one budget per chunk (``RetryBudget.fork``): the chunks share the
deadline, while each chunk counts its own failures, so one unlucky chunk does not use up the
attempts of the hundred others.

Throttling also slows the sender down: ``AdaptiveRate`` is a token bucket whose rate falls
multiplicatively when DynamoDB throttles or leaves work unprocessed and climbs back
additively while it does not (AIMD, as TCP does with its window).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from .errors import ConfigurationError, RequestTimeout, RetriesExhausted

__all__ = ["AdaptiveRate", "Clock", "RateLimiter", "RetryBudget", "RetryPolicy", "Sleep"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How a logical operation retries.

    Args:
        max_attempts: total attempts, the first one included (1 = never retry).
        base: the first backoff's upper bound, in seconds; it doubles with each retry.
        cap: the largest backoff upper bound, in seconds.
        deadline: seconds for the whole operation, attempts and sleeps together; ``None``
            for no deadline. A request in flight when it passes is abandoned.
        retry_unknown_outcome: resend a write that is not idempotent after an attempt
            whose answer was lost (at-least-once: an ``ADD`` may count twice, a conditional
            put may fail on its own first write). Default ``False``: such a write raises
            ``OutcomeUnknown`` instead, see "What happens when an answer is lost" in
            docs/retries.md.

    Delays use "full jitter": retry ``n`` (0-based) sleeps a uniform random time in
    ``[0, min(cap, base * 2**n)]``, which spreads out clients that were throttled together.
    """

    max_attempts: int = 10
    base: float = 0.025
    cap: float = 5.0
    deadline: float | None = None
    retry_unknown_outcome: bool = False

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("RetryPolicy.max_attempts must be at least 1")
        if self.base < 0 or self.cap < 0:
            raise ConfigurationError("RetryPolicy.base and cap must not be negative")
        if self.deadline is not None and self.deadline <= 0:
            raise ConfigurationError("RetryPolicy.deadline must be positive or None")

    def backoff(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """The sleep before retry number ``retry`` (0 for the first retry)."""
        # Past 2**62 the float product overflows long after ``cap`` has taken over anyway.
        ceiling = self.cap if retry >= 62 else min(self.cap, self.base * (1 << retry))
        return rand() * ceiling

    def delays(self, rand: Callable[[], float] = random.random) -> Iterator[float]:
        """The sleeps between attempts, ``max_attempts - 1`` of them (ignores the deadline)."""
        for retry in range(self.max_attempts - 1):
            yield self.backoff(retry, rand)

    def start(
        self,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> RetryBudget:
        """Open the budget of one logical operation."""
        return RetryBudget(self, clock, sleep, rand)


class RetryBudget:
    """The attempts and time left to one logical operation.

    ``attempts`` counts the failures spent since the operation last made progress. After a
    retryable failure, ``await budget.wait(error)`` either sleeps the backoff or raises
    ``RetriesExhausted`` carrying that error; ``remaining()`` tells a request how long it may
    take. A batch chunk that got part of its work done calls ``progressed()``: its failure
    count starts again and its next backoff is one level below the last one — not back to
    the base, because a table that leaves work unprocessed is a table being throttled.
    """

    __slots__ = ("_clock", "_deadline_at", "_policy", "_rand", "_sleep", "_waits", "attempts")

    def __init__(
        self,
        policy: RetryPolicy,
        clock: Clock,
        sleep: Sleep,
        rand: Callable[[], float],
        deadline_at: float | None = None,
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        if deadline_at is None and policy.deadline is not None:
            deadline_at = clock() + policy.deadline
        self._deadline_at = deadline_at
        self._waits = 0
        self.attempts = 0

    @property
    def has_deadline(self) -> bool:
        return self._deadline_at is not None

    def fork(self) -> RetryBudget:
        """A budget with the same deadline and its own attempt count (one per batch chunk)."""
        return RetryBudget(self._policy, self._clock, self._sleep, self._rand, self._deadline_at)

    def remaining(self) -> float | None:
        """Seconds until the deadline (never negative), or ``None`` without one."""
        if self._deadline_at is None:
            return None
        return max(0.0, self._deadline_at - self._clock())

    def expired(self) -> bool:
        return self._deadline_at is not None and self._clock() >= self._deadline_at

    def progressed(self) -> None:
        """Part of the work got done: failures since then are what count against the limit,
        and the next backoff is one level below the last one."""
        self.attempts = 0
        self._waits = max(0, self._waits - 2)

    def overruns(self, delay: float) -> bool:
        """Whether waiting ``delay`` seconds from now would reach the deadline."""
        return self._deadline_at is not None and self._clock() + delay >= self._deadline_at

    async def wait(self, error: BaseException) -> None:
        """Spend one attempt on ``error``: sleep the backoff, or raise when nothing is left."""
        self.attempts += 1
        if self.attempts >= self._policy.max_attempts:
            raise RetriesExhausted(error, self.attempts, "attempts") from error
        delay = self._policy.backoff(self._waits, self._rand)
        self._waits += 1
        if self.overruns(delay):
            raise RetriesExhausted(error, self.attempts, "deadline") from error
        await self._sleep(delay)

    def past_deadline(self, what: str) -> RetriesExhausted:
        """The error for a wait (``what``) that the deadline does not leave room for: a
        ``RetriesExhausted`` carrying a ``RequestTimeout`` for a request never sent."""
        timeout = RequestTimeout(f"{what} would outlast the deadline; nothing was sent")
        timeout.maybe_applied = False
        error = RetriesExhausted(timeout, self.attempts, "deadline")
        error.__cause__ = timeout
        return error


class RateLimiter:
    """A token bucket of items per second; ``rate=None`` lets everything through at once.

    ``acquire(n)`` takes ``n`` tokens and, when the bucket is short, sleeps until the deficit
    has refilled. Callers that arrive together queue up through the deficit itself (each
    waits for everything taken before it), so no lock is needed and the order is fair.
    The bucket holds at most one second of tokens: an idle limiter allows a one-second burst.
    """

    __slots__ = ("_clock", "_sleep", "_stamp", "_tokens", "rate")

    def __init__(
        self,
        rate: float | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate is not None and not rate > 0:
            raise ConfigurationError(
                f"rate must be a positive number of items per second, got {rate!r}"
            )
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._stamp = clock()
        self._tokens = rate if rate is not None else 0.0

    def _refill(self, now: float, rate: float) -> None:
        self._tokens = min(rate, self._tokens + (now - self._stamp) * rate)
        self._stamp = now

    async def acquire(self, n: int, budget: RetryBudget | None = None) -> None:
        """Wait until ``n`` items may be sent. When ``budget``'s deadline would pass during
        the wait, take nothing and raise ``RetriesExhausted`` at once instead (the deadline
        bounds the whole call: nothing is sent after it)."""
        rate = self.rate
        if rate is None:
            return
        self._refill(self._clock(), rate)
        self._tokens -= n
        if self._tokens < 0:
            delay = -self._tokens / rate
            if budget is not None and budget.overruns(delay):
                self._tokens += n
                raise budget.past_deadline(f"waiting {delay:.3f}s for the rate limit")
            await self._sleep(delay)


class AdaptiveRate(RateLimiter):
    """The send rate one table accepts, learnt from its answers (one per table and direction).

    It starts unlimited. A throttling error, or an answer that leaves a fraction ``f`` of
    the work unprocessed, multiplies the rate by ``1 - (1 - decrease) * f`` (``f = 1`` for an
    error), starting from the rate actually measured when the limiter was not yet binding.
    Only one cut is taken per round trip: an answer to a request sent before the last cut
    says nothing about the new rate. Every answer with work done adds ``increase`` items/s
    per item processed, capped at twice the measured send rate, so a limiter that is no
    longer needed stops binding; ``floor`` keeps a throttled table moving.
    """

    __slots__ = ("_cut_at", "_count", "_measured", "_window_at", "decrease", "floor", "increase")

    _WINDOW = 0.5  # seconds over which the send rate is measured

    def __init__(
        self,
        *,
        decrease: float = 0.7,
        increase: float = 0.5,
        floor: float = 10.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not 0 < decrease < 1:
            raise ConfigurationError("AdaptiveRate.decrease must be between 0 and 1")
        if increase < 0 or not floor > 0:
            raise ConfigurationError("AdaptiveRate.increase must be >= 0 and floor > 0")
        super().__init__(None, clock=clock, sleep=sleep)
        self.decrease = decrease
        self.increase = increase
        self.floor = floor
        self._cut_at = float("-inf")
        self._window_at = clock()
        self._count = 0
        self._measured: float | None = None

    def stamp(self) -> float:
        """The time a request is sent at; pass it back with ``feedback``."""
        return self._clock()

    async def acquire(self, n: int, budget: RetryBudget | None = None) -> None:
        await super().acquire(n, budget)  # refused past the deadline: nothing is counted
        now = self._clock()
        self._count += n
        elapsed = now - self._window_at
        if elapsed >= self._WINDOW:
            self._measured = self._count / elapsed
            self._count = 0
            self._window_at = now

    def _send_rate(self) -> float | None:
        if self._measured is not None:
            return self._measured
        elapsed = self._clock() - self._window_at
        return self._count / elapsed if elapsed > 0 and self._count else None

    def feedback(
        self, sent_at: float, sent: int, processed: int, *, throttled: bool = False
    ) -> None:
        """Learn from one answer: ``processed`` of ``sent`` items were done (0 when throttled)."""
        now = self._clock()
        rate = self.rate
        if throttled or processed < sent:
            if sent_at < self._cut_at:
                return
            fraction = 1.0 if throttled else (sent - processed) / sent
            measured = self._send_rate()
            base = rate if measured is None else measured if rate is None else min(rate, measured)
            if base is None:
                return
            if rate is not None:
                self._refill(now, rate)
            else:  # switching on: no credit from the unlimited past
                self._tokens, self._stamp = 0.0, now
            self.rate = max(self.floor, base * (1 - (1 - self.decrease) * fraction))
            # Debt run up at the old rate would be repaid at the new one: forgive all but
            # one second of it, or a deep cut stalls every sender for many seconds.
            self._tokens = max(self._tokens, -self.rate)
            self._cut_at = now
        elif rate is not None and processed:
            measured = self._send_rate()
            ceiling = float("inf") if measured is None else 2 * measured
            self._refill(now, rate)
            self.rate = max(self.floor, min(rate + self.increase * processed, max(ceiling, rate)))
