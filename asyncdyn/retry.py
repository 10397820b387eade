"""Retry as data: a policy of capped, fully jittered exponential delays under a deadline.

A ``RetryPolicy`` describes the budget of one *logical* operation (a ``get``, a whole
``batch_get``, one page of a query), not of one HTTP request: every attempt and every
backoff sleep of that operation draws from the same attempt count and the same deadline.
``RetryPolicy.start()`` opens such a budget; the transport and the batch engine both spend it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from .errors import ConfigurationError, RetriesExhausted

__all__ = ["Clock", "RetryBudget", "RetryPolicy", "Sleep"]

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

    Delays use "full jitter": retry ``n`` (0-based) sleeps a uniform random time in
    ``[0, min(cap, base * 2**n)]``, which spreads out clients that were throttled together.
    """

    max_attempts: int = 10
    base: float = 0.025
    cap: float = 5.0
    deadline: float | None = None

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

    ``attempts`` counts failures already spent. After a retryable failure, ``await
    budget.wait(error)`` either sleeps the backoff or raises ``RetriesExhausted`` carrying
    that error; ``remaining()`` tells a request how long it may take.
    """

    __slots__ = ("_clock", "_deadline_at", "_policy", "_rand", "_sleep", "attempts")

    def __init__(
        self, policy: RetryPolicy, clock: Clock, sleep: Sleep, rand: Callable[[], float]
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        self._deadline_at = None if policy.deadline is None else clock() + policy.deadline
        self.attempts = 0

    @property
    def has_deadline(self) -> bool:
        return self._deadline_at is not None

    def remaining(self) -> float | None:
        """Seconds until the deadline (never negative), or ``None`` without one."""
        if self._deadline_at is None:
            return None
        return max(0.0, self._deadline_at - self._clock())

    def expired(self) -> bool:
        return self._deadline_at is not None and self._clock() >= self._deadline_at

    async def wait(self, error: BaseException) -> None:
        """Spend one attempt on ``error``: sleep the backoff, or raise when nothing is left."""
        self.attempts += 1
        if self.attempts >= self._policy.max_attempts:
            raise RetriesExhausted(error, self.attempts, "attempts") from error
        delay = self._policy.backoff(self.attempts - 1, self._rand)
        if self._deadline_at is not None and self._clock() + delay >= self._deadline_at:
            raise RetriesExhausted(error, self.attempts, "deadline") from error
        await self._sleep(delay)
