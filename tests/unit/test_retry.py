"""RetryPolicy maths and the RetryBudget, with a fake clock and sleep."""

from __future__ import annotations

import pytest

from asyncdyn import ConfigurationError, RetriesExhausted, RetryPolicy, Throttled


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_backoff_is_full_jitter_doubling_and_capped() -> None:
    policy = RetryPolicy(base=0.1, cap=1.0, max_attempts=8)
    assert [policy.backoff(n, lambda: 1.0) for n in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert policy.backoff(3, lambda: 0.0) == 0.0
    assert policy.backoff(10_000, lambda: 0.5) == 0.5  # no overflow far out
    assert list(policy.delays(lambda: 1.0)) == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    "kwargs", [{"max_attempts": 0}, {"base": -1.0}, {"cap": -0.1}, {"deadline": 0.0}]
)
def test_bad_policy_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


async def test_budget_runs_out_of_attempts() -> None:
    t = FakeTime()
    budget = RetryPolicy(max_attempts=3, base=0.01).start(
        clock=t.clock, sleep=t.sleep, rand=lambda: 1.0
    )
    error = Throttled("ThrottlingException", "slow")
    await budget.wait(error)
    await budget.wait(error)
    with pytest.raises(RetriesExhausted) as info:
        await budget.wait(error)
    assert info.value.last_error is error
    assert info.value.attempts == 3
    assert info.value.reason == "attempts"
    assert t.sleeps == [0.01, 0.02]


async def test_budget_deadline_covers_sleeps() -> None:
    t = FakeTime()
    budget = RetryPolicy(max_attempts=100, base=1.0, cap=1.0, deadline=2.5).start(
        clock=t.clock, sleep=t.sleep, rand=lambda: 1.0
    )
    assert budget.remaining() == 2.5
    error = Throttled("ThrottlingException", "slow")
    await budget.wait(error)
    await budget.wait(error)
    assert budget.remaining() == 0.5
    with pytest.raises(RetriesExhausted) as info:
        await budget.wait(error)  # a 1 s sleep would overrun the deadline
    assert info.value.reason == "deadline"
    assert t.now == 2.0


def test_budget_without_deadline() -> None:
    budget = RetryPolicy().start()
    assert budget.remaining() is None
    assert not budget.expired()
