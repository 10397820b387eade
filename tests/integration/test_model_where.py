"""``where=`` on a collection member, and open ranges over month-rotated partitions, on moto
and dynalite: the entities that come back, in order, with limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from asyncdyn import Client
from asyncdyn.model import Repository
from tests.integration.test_model import bound
from tests.model_journal import Login, Note, Payment, Profile, account_page, journal
from tests.model_sensors import Reading, iot

T0 = datetime(2024, 3, 1, tzinfo=UTC)
START = datetime(2024, 11, 28, tzinfo=UTC)


@pytest.fixture
async def accounts(db: Client) -> AsyncIterator[Repository]:
    async for repo in bound(db, journal):
        yield repo


@pytest.fixture
async def sensors(db: Client) -> AsyncIterator[Repository]:
    async for repo in bound(db, iot):
        yield repo


async def seed_account(repo: Repository) -> tuple[Profile, list[Payment], list[Note]]:
    profile = await repo.put(Profile(account_id="a1", name="Ada"))
    payments = [
        await repo.put(
            Payment(
                account_id="a1",
                paid_at=T0 + timedelta(days=n),
                payment_id=f"p{n}",
                amount=Decimal(n),
            )
        )
        for n in range(10)
    ]
    notes = [await repo.put(Note(account_id="a1", note_id=f"n{n}", text="t")) for n in range(3)]
    for n in range(4):  # not a member: the ranges keep them out
        await repo.put(Login(account_id="a1", at=T0 + timedelta(days=n, hours=1)))
    await repo.put(Payment(account_id="a2", paid_at=T0, payment_id="x", amount=Decimal(1)))
    return profile, payments, notes


async def test_collection_where_narrows_one_member(accounts: Repository) -> None:
    profile, payments, notes = await seed_account(accounts)
    t1, t2 = T0 + timedelta(days=3), T0 + timedelta(days=6)
    got = [
        r
        async for r in accounts.query(
            account_page, account_id="a1", where=Payment.paid_at.between(t1, t2)
        )
    ]
    # Sort-key order: NOTE# < PAYMENT# < PROFILE; payments only those in the range.
    assert got == [*notes, *payments[3:7], profile]
    later = [
        r async for r in accounts.query(account_page, account_id="a1", where=Payment.paid_at.gt(t2))
    ]
    assert later == [*notes, *payments[7:], profile]
    earlier = [
        r async for r in accounts.query(account_page, account_id="a1", where=Payment.paid_at.lt(t1))
    ]
    assert earlier == [*notes, *payments[:3], profile]
    newest = accounts.query(
        account_page,
        account_id="a1",
        where=Payment.paid_at.gte(t1),
        descending=True,
        limit=4,
    )
    assert [r async for r in newest] == [profile, *payments[::-1][:3]]
    whole = [r async for r in accounts.query(account_page, account_id="a1")]
    assert whole == [*notes, *payments, profile]


async def seed_readings(repo: Repository) -> list[Reading]:
    readings = [
        Reading(sensor_id="s1", at=START + timedelta(days=2 * n), value=Decimal(n))
        for n in range(40)  # 2024-11-28 .. 2025-03-14: five months
    ]
    async with repo.writer() as w:
        for r in readings:
            await w.put(r)
    await repo.put(Reading(sensor_id="s2", at=START, value=Decimal(99)))
    return readings


async def test_open_ranges_over_month_buckets(sensors: Repository) -> None:
    readings = await seed_readings(sensors)
    t0 = datetime(2024, 12, 25, tzinfo=UTC)
    now = datetime(2025, 6, 1, tzinfo=UTC)
    after = [
        r async for r in sensors.query(Reading, sensor_id="s1", where=Reading.at.gt(t0), until=now)
    ]
    assert after == [r for r in readings if r.at > t0]
    newest = sensors.query(
        Reading, sensor_id="s1", where=Reading.at.gte(t0), until=now, descending=True, limit=3
    )
    assert [r async for r in newest] == readings[::-1][:3]
    t1 = datetime(2025, 1, 19, tzinfo=UTC)  # a reading's own time: lt excludes it
    assert any(r.at == t1 for r in readings)
    since = datetime(2024, 1, 1, tzinfo=UTC)
    before = [
        r
        async for r in sensors.query(Reading, sensor_id="s1", where=Reading.at.lt(t1), since=since)
    ]
    assert before == [r for r in readings if r.at < t1]
    upto = sensors.query(
        Reading, sensor_id="s1", where=Reading.at.lte(t1), since=since, descending=True, limit=4
    )
    assert [r async for r in upto] == [r for r in readings if r.at <= t1][::-1][:4]
    # until= cuts the buckets read, not the range: a bound inside January reads through its end.
    january = [
        r
        async for r in sensors.query(
            Reading,
            sensor_id="s1",
            where=Reading.at.gte(datetime(2025, 1, 1, tzinfo=UTC)),
            until=datetime(2025, 1, 2, tzinfo=UTC),
        )
    ]
    assert january == [r for r in readings if (r.at.year, r.at.month) == (2025, 1)]
    months = [
        r
        async for r in sensors.query(
            Reading,
            sensor_id="s1",
            since=datetime(2024, 12, 31, tzinfo=UTC),
            until=datetime(2025, 2, 1, tzinfo=UTC),
        )
    ]
    assert months == [
        r for r in readings if (r.at.year, r.at.month) in {(2024, 12), (2025, 1), (2025, 2)}
    ]
    seen: list[Reading] = []
    cursor = None
    while True:
        page = await sensors.page(
            Reading, sensor_id="s1", where=Reading.at.gt(t0), until=now, limit=7, cursor=cursor
        )
        seen += page.items
        cursor = page.cursor
        if cursor is None:
            break
    assert seen == after
