"""Partition-key schemes: stable write sharding and time buckets."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any, get_args
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

import asyncdyn.fanout as fanout
from asyncdyn.errors import ConfigurationError
from asyncdyn.fanout import (
    MAX_BUCKETS,
    MAX_SHARDS,
    Granularity,
    TimeBuckets,
    WriteSharding,
    stable_shard,
)

REPO = Path(__file__).resolve().parents[2]


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


# --- stable hash -------------------------------------------------------------------------

# Stored keys depend on these forever: a change to the hash must fail here, loudly.
PINNED: list[tuple[str | int | bytes, int, int]] = [
    ("order-17", 10, 6),
    ("order-17", 1000, 336),
    (b"order-17", 1000, 336),
    ("42", 1000, 738),
    (42, 1000, 738),
    (-7, 1000, 88),
    ("", 1000, 876),
    ("ünï", 1000, 167),
]


@pytest.mark.parametrize(("entity_id", "shards", "expected"), PINNED)
def test_stable_shard_pinned_values(
    entity_id: str | int | bytes, shards: int, expected: int
) -> None:
    assert stable_shard(entity_id, shards) == expected


@pytest.mark.parametrize("entity_id", ["order-17", "ünï", b"\x00\xff", 0, -7, 2**100])
def test_stable_shard_is_the_documented_function(entity_id: str | int | bytes) -> None:
    if isinstance(entity_id, str):
        data = entity_id.encode("utf-8")
    elif isinstance(entity_id, int):
        data = str(entity_id).encode("ascii")
    else:
        data = entity_id
    digest = hashlib.blake2b(data, digest_size=8).digest()
    for shards in (1, 7, 10, 256, MAX_SHARDS):
        assert stable_shard(entity_id, shards) == int.from_bytes(digest, "big") % shards


def test_int_subclasses_and_str_subclasses_hash_as_their_values() -> None:
    class N(IntEnum):
        X = 42

    class S(StrEnum):
        X = "order-17"

    assert stable_shard(N.X, 1000) == stable_shard(42, 1000)
    assert stable_shard(S.X, 1000) == stable_shard("order-17", 1000)


@pytest.mark.parametrize("bad", [True, 1.5, None, bytearray(b"x"), "\ud800"])
def test_stable_shard_rejects_other_ids(bad: Any) -> None:
    with pytest.raises(ConfigurationError):
        stable_shard(bad, 10)


def test_same_shards_in_a_process_with_another_hash_seed() -> None:
    ids: list[str | int | bytes] = [f"user-{i}" for i in range(200)]
    ids += [b"raw", 12345, -1]
    ws = WriteSharding("SHARD#{shard}#U", shards=37)
    here = [ws.partition_for(i) for i in ids]
    code = (
        "import json, sys\n"
        "from asyncdyn.fanout import WriteSharding\n"
        "ws = WriteSharding('SHARD#{shard}#U', shards=37)\n"
        "ids = [f'user-{i}' for i in range(200)] + [b'raw', 12345, -1]\n"
        "json.dump([hash('salted'), [ws.partition_for(i) for i in ids]], sys.stdout)\n"
    )
    results = []
    for seed in ("123", "98765"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, check=True
        )
        results.append(json.loads(out.stdout))
    # The seeds did take effect (the built-in hash differs) and our shards did not move.
    assert results[0][0] != results[1][0]
    assert results[0][1] == results[1][1] == here


def test_distribution_is_roughly_even() -> None:
    ws = WriteSharding("S#{shard}", shards=10)
    counts = Counter(ws.shard_of(f"entity-{i}") for i in range(10_000))
    assert sorted(counts) == list(range(10))
    assert all(800 <= n <= 1200 for n in counts.values()), counts


# --- WriteSharding -----------------------------------------------------------------------


def test_partitions_in_shard_order_with_fields() -> None:
    ws = WriteSharding("{prefix}#{shard:02d}", shards=3)
    assert ws.partitions(prefix="T") == ["T#00", "T#01", "T#02"]


def test_partition_for_is_one_of_partitions_and_matches_shard_of() -> None:
    ws = WriteSharding("SHARD#{shard}#USER#{tenant}", shards=8)
    all_keys = ws.partitions(tenant="acme")
    entities: list[str | int | bytes] = ["a", "b", 17, b"\x01"]
    for entity in entities:
        key = ws.partition_for(entity, tenant="acme")
        assert key == all_keys[ws.shard_of(entity)]
        assert key == ws.partition_for(entity, tenant="acme")


def test_a_field_named_self_is_fine() -> None:
    # self is positional-only everywhere; entity_id, at, start and end are keywords too, so
    # fields of those names are refused (test_a_field_named_like_a_parameter_is_refused_clearly).
    ws = WriteSharding("{tenant}#{self}#{shard}", shards=2)
    assert ws.partitions(tenant="e", self="s") == ["e#s#0", "e#s#1"]
    assert ws.partition_for("x", tenant="e", self="s").startswith("e#s#")
    assert ws.partition_for(entity_id="x", tenant="e", self="s").startswith("e#s#")
    tb = TimeBuckets("{self}#{bucket}", granularity="year")
    assert tb.partitions(start=utc(2024, 1, 1), end=utc(2025, 1, 1), self="s") == [
        "s#2024",
        "s#2025",
    ]
    assert tb.partition_for(at=utc(2024, 5, 1), self="s") == "s#2024"


@pytest.mark.parametrize("strategy", ["hash", "random"])
def test_random_partition_is_one_of_partitions(strategy: Any) -> None:
    ws = WriteSharding("SHARD#{shard}#{kind}", shards=5, strategy=strategy)
    allowed = set(ws.partitions(kind="EV"))
    seen = {ws.random_partition(kind="EV") for _ in range(500)}
    assert seen == allowed  # 500 draws over 5 shards: missing one has odds ~ 5 * 0.8**500


def test_random_strategy_cannot_place_an_entity() -> None:
    ws = WriteSharding("SHARD#{shard}", shards=5, strategy="random")
    with pytest.raises(ConfigurationError, match="random_partition"):
        ws.partition_for("order-17")
    with pytest.raises(ConfigurationError, match="random_partition"):
        ws.shard_of("order-17")


def test_one_shard() -> None:
    ws = WriteSharding("K#{shard}", shards=1)
    assert ws.partitions() == ["K#0"]
    assert ws.partition_for("anything") == "K#0"
    assert ws.random_partition() == "K#0"


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("SHARD#USER", r"needs a \{shard\} field"),
        ("{prefix}#USER", r"needs a \{shard\} field"),
        ("{}#{shard}", "plain name"),
        ("{0}#{shard}", "plain name"),
        ("{a.b}#{shard}", "plain name"),
        ("{a[0]}#{shard}", "plain name"),
        ("{shard!r}", "conversion"),
        ("{shard:{width}}", "must not contain fields"),
        ("{shard", "malformed"),
        ("shard}", "malformed"),
        ("{shard:q}", "cannot format the shard"),
        ("{shard:.0e}", "same key"),
        (b"{shard}", "must be a str"),
    ],
)
def test_write_sharding_template_validation(template: Any, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        WriteSharding(template, shards=20)


@pytest.mark.parametrize("shards", [0, -1, MAX_SHARDS + 1, True, 2.0, "3"])
def test_shard_count_validation(shards: Any) -> None:
    with pytest.raises(ConfigurationError, match="shards"):
        WriteSharding("{shard}", shards=shards)


def test_max_shards_is_allowed() -> None:
    assert len(WriteSharding("{shard}", shards=MAX_SHARDS).partitions()) == MAX_SHARDS


def test_strategy_validation() -> None:
    with pytest.raises(ConfigurationError, match="strategy"):
        WriteSharding("{shard}", shards=2, strategy="round-robin")  # type: ignore[arg-type]


def test_escaped_braces_are_literal() -> None:
    assert WriteSharding("{{x}}#{shard}", shards=2).partitions() == ["{x}#0", "{x}#1"]


def test_missing_unknown_and_own_fields() -> None:
    ws = WriteSharding("{tenant}#{region}#{shard}", shards=2)
    with pytest.raises(ConfigurationError, match="region"):
        ws.partition_for("x", tenant="t")
    with pytest.raises(ConfigurationError, match="region, tenant"):
        ws.partitions()
    with pytest.raises(ConfigurationError, match="colour"):
        ws.random_partition(tenant="t", region="r", colour="red")
    with pytest.raises(ConfigurationError, match="shard="):
        ws.partitions(tenant="t", region="r", shard=1)
    with pytest.raises(ConfigurationError, match="no field"):
        WriteSharding("{shard}", shards=2).partitions(extra=1)


def test_field_format_spec_errors_are_configuration_errors() -> None:
    ws = WriteSharding("{n:04d}#{shard}", shards=2)
    assert ws.partitions(n=7) == ["0007#0", "0007#1"]
    with pytest.raises(ConfigurationError, match="n='seven'"):
        ws.partitions(n="seven")


def test_write_sharding_is_an_immutable_value() -> None:
    a = WriteSharding("S#{shard}", shards=4)
    assert a == WriteSharding("S#{shard}", shards=4)
    assert a != WriteSharding("S#{shard}", shards=5)
    assert a != WriteSharding("S#{shard}", shards=4, strategy="random")
    assert hash(a) == hash(WriteSharding("S#{shard}", shards=4))
    assert repr(a) == "WriteSharding(template='S#{shard}', shards=4, strategy='hash')"
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.shards = 5  # type: ignore[misc]


# --- TimeBuckets -------------------------------------------------------------------------

AT = utc(2024, 1, 15, 7, 30, 45, 123456)


@pytest.mark.parametrize(
    ("granularity", "text", "start", "end"),
    [
        ("year", "2024", utc(2024, 1, 1), utc(2025, 1, 1)),
        ("month", "2024-01", utc(2024, 1, 1), utc(2024, 2, 1)),
        ("week", "2024-W03", utc(2024, 1, 15), utc(2024, 1, 22)),
        ("day", "2024-01-15", utc(2024, 1, 15), utc(2024, 1, 16)),
        ("hour", "2024-01-15T07", utc(2024, 1, 15, 7), utc(2024, 1, 15, 8)),
    ],
)
def test_each_granularity(
    granularity: Granularity, text: str, start: datetime, end: datetime
) -> None:
    tb = TimeBuckets("SENSOR#{sensor}#{bucket}", granularity)
    assert tb.bucket_of(AT) == text
    assert tb.partition_for(AT, sensor=42) == f"SENSOR#42#{text}"
    assert tb.bucket_range(AT) == (start, end)
    assert tb.bucket_range(AT)[0].tzinfo is UTC
    assert tb.bucket_of(start) == text
    assert tb.bucket_of(end - timedelta(microseconds=1)) == text
    assert tb.bucket_of(end) != text


def test_default_granularity_is_month() -> None:
    assert TimeBuckets("{bucket}").bucket_of(AT) == "2024-01"


@pytest.mark.parametrize(
    ("at", "text"),
    [
        (utc(2024, 12, 30), "2025-W01"),  # a Monday in December, in the ISO year 2025
        (utc(2021, 1, 3, 23, 59), "2020-W53"),  # a Sunday in January, in 2020's week 53
        (utc(2021, 1, 4), "2021-W01"),
        (utc(2024, 1, 1), "2024-W01"),
        (utc(2020, 12, 31), "2020-W53"),
    ],
)
def test_iso_week_uses_the_iso_year(at: datetime, text: str) -> None:
    assert TimeBuckets("{bucket}", "week").bucket_of(at) == text


def test_week_range_across_iso_years() -> None:
    tb = TimeBuckets("W#{bucket}", "week")
    assert tb.partitions(utc(2020, 12, 25), utc(2021, 1, 5)) == [
        "W#2020-W52",
        "W#2020-W53",
        "W#2021-W01",
    ]
    assert tb.bucket_range(utc(2021, 1, 3)) == (utc(2020, 12, 28), utc(2021, 1, 4))


def test_month_range_across_a_year_end() -> None:
    tb = TimeBuckets("SENSOR#{sensor}#{bucket}", "month")
    start, end = utc(2024, 11, 20), utc(2025, 2, 10, 12)
    expected = [f"SENSOR#7#{m}" for m in ("2024-11", "2024-12", "2025-01", "2025-02")]
    assert tb.partitions(start, end, sensor=7) == expected
    assert tb.partitions(start, end, descending=True, sensor=7) == expected[::-1]
    assert list(tb.iter_partitions(start, end, sensor=7)) == expected
    assert list(tb.iter_partitions(start, end, sensor=7, descending=True)) == expected[::-1]


def test_range_bounds_are_inclusive() -> None:
    tb = TimeBuckets("{bucket}", "day")
    # The end instant is the first moment of the 3rd: that bucket overlaps, so it is in.
    assert tb.partitions(utc(2024, 1, 1, 23, 59), utc(2024, 1, 3)) == [
        "2024-01-01",
        "2024-01-02",
        "2024-01-03",
    ]
    assert tb.partitions(AT, AT) == ["2024-01-15"]
    assert tb.partitions(AT, AT, descending=True) == ["2024-01-15"]


def test_hour_range_over_a_leap_day() -> None:
    tb = TimeBuckets("{bucket}", "hour")
    got = tb.partitions(utc(2024, 2, 28, 23, 10), utc(2024, 3, 1, 0, 5))
    assert got[0] == "2024-02-28T23"
    assert got[1] == "2024-02-29T00"
    assert got[-1] == "2024-03-01T00"
    assert len(got) == 26


def test_aware_times_are_normalised_to_utc() -> None:
    tb = TimeBuckets("{bucket}", "month")
    plus5 = datetime(2024, 2, 1, 2, 0, tzinfo=timezone(timedelta(hours=5)))
    assert tb.bucket_of(plus5) == "2024-01"  # 2024-01-31T21:00Z
    assert tb.bucket_range(plus5) == (utc(2024, 1, 1), utc(2024, 2, 1))
    ny = datetime(2024, 12, 31, 20, 0, tzinfo=ZoneInfo("America/New_York"))
    assert TimeBuckets("{bucket}", "year").bucket_of(ny) == "2025"  # 2025-01-01T01:00Z
    assert tb.partitions(plus5, plus5 + timedelta(hours=3)) == ["2024-01", "2024-02"]


def test_naive_times_are_rejected() -> None:
    tb = TimeBuckets("{bucket}", "day")
    naive = datetime(2024, 1, 15)
    for call in (
        lambda: tb.bucket_of(naive),
        lambda: tb.partition_for(naive),
        lambda: tb.bucket_range(naive),
        lambda: tb.partitions(naive, AT),
        lambda: tb.partitions(AT, naive),
        lambda: tb.iter_partitions(AT, naive),
    ):
        with pytest.raises(ConfigurationError, match="timezone-aware.*tzinfo=timezone.utc"):
            call()


def test_non_datetimes_are_rejected() -> None:
    tb = TimeBuckets("{bucket}", "day")
    with pytest.raises(ConfigurationError, match="must be a datetime"):
        tb.bucket_of(AT.date())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="must be a datetime"):
        tb.bucket_of("2024-01-15")  # type: ignore[arg-type]


def test_start_after_end_is_rejected_eagerly() -> None:
    tb = TimeBuckets("{bucket}", "day")
    with pytest.raises(ConfigurationError, match="after end.*descending=True"):
        tb.partitions(AT + timedelta(days=1), AT)
    with pytest.raises(ConfigurationError, match="after end"):
        tb.iter_partitions(AT + timedelta(days=1), AT)  # before any next()


def test_huge_ranges_are_refused_by_partitions_but_not_iter_partitions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tb = TimeBuckets("{bucket}", "hour")
    start, end = utc(1900, 1, 1), utc(2100, 1, 1)
    with pytest.raises(ConfigurationError, match=f"more than {MAX_BUCKETS}"):
        tb.partitions(start, end)
    newest = tb.iter_partitions(start, end, descending=True)
    assert [next(newest) for _ in range(3)] == ["2100-01-01T00", "2099-12-31T23", "2099-12-31T22"]
    # The limit itself is allowed, one more is not (a small limit keeps the test fast).
    monkeypatch.setattr(fanout, "MAX_BUCKETS", 24)
    assert len(tb.partitions(start, start + timedelta(hours=23, minutes=59))) == 24
    with pytest.raises(ConfigurationError, match="25 hour buckets, more than 24"):
        tb.partitions(start, start + timedelta(hours=24))


def test_the_whole_datetime_range() -> None:
    lo = datetime.min.replace(tzinfo=UTC)
    hi = datetime.max.replace(tzinfo=UTC)
    years = TimeBuckets("{bucket}", "year").partitions(lo, hi)
    assert (len(years), years[0], years[-1]) == (9999, "0001", "9999")
    weeks = TimeBuckets("{bucket}", "week")
    assert weeks.partitions(hi - timedelta(days=8), hi, descending=True) == [
        "9999-W52",
        "9999-W51",
    ]
    assert weeks.partitions(lo, lo + timedelta(days=7)) == ["0001-W01", "0001-W02"]
    assert next(weeks.iter_partitions(lo, hi, descending=True)) == "9999-W52"
    hours = TimeBuckets("{bucket}", "hour").partitions(hi - timedelta(hours=1), hi)
    assert hours == ["9999-12-31T22", "9999-12-31T23"]
    with pytest.raises(ConfigurationError, match="datetime.max"):
        TimeBuckets("{bucket}", "year").bucket_range(hi)
    assert TimeBuckets("{bucket}", "year").bucket_range(lo) == (lo, utc(2, 1, 1))
    with pytest.raises(ConfigurationError, match="out of range"):
        TimeBuckets("{bucket}").bucket_of(datetime.min.replace(tzinfo=timezone(timedelta(hours=5))))


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("SENSOR#{sensor}", r"needs a \{bucket\} field"),
        ("{bucket:>10}", "no format spec"),
        ("{descending}#{bucket}", "reserved"),
        ("{}#{bucket}", "plain name"),
        ("{0}#{bucket}", "plain name"),
        ("{bucket!s}", "conversion"),
    ],
)
def test_time_buckets_template_validation(template: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        TimeBuckets(template)


def test_granularity_validation() -> None:
    with pytest.raises(ConfigurationError, match="granularity"):
        TimeBuckets("{bucket}", "minute")  # type: ignore[arg-type]


def test_time_bucket_fields() -> None:
    tb = TimeBuckets("{site}#{sensor:03d}#{bucket}", "day")
    assert tb.partition_for(AT, site="x", sensor=4) == "x#004#2024-01-15"
    with pytest.raises(ConfigurationError, match="sensor"):
        tb.partition_for(AT, site="x")
    with pytest.raises(ConfigurationError, match="colour"):
        tb.partitions(AT, AT, site="x", sensor=4, colour="red")
    with pytest.raises(ConfigurationError, match="bucket="):
        tb.partition_for(AT, site="x", sensor=4, bucket="2024")
    with pytest.raises(ConfigurationError, match="sensor"):
        tb.iter_partitions(AT, AT, site="x")  # eagerly, before any next()


def test_time_buckets_is_an_immutable_value() -> None:
    a = TimeBuckets("S#{bucket}", "day")
    assert a == TimeBuckets("S#{bucket}", "day")
    assert a != TimeBuckets("S#{bucket}", "hour")
    assert hash(a) == hash(TimeBuckets("S#{bucket}", "day"))
    assert repr(a) == "TimeBuckets(template='S#{bucket}', granularity='day')"
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.granularity = "hour"  # type: ignore[misc]


# --- properties --------------------------------------------------------------------------

# Offsets from -14:00 to +14:00 in whole minutes: every real zone, and then some.
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
aware = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 12, 31), timezones=offsets
)
spans = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=120))
granularities = st.sampled_from(get_args(Granularity))


@given(t=aware, before=spans, after=spans, granularity=granularities)
def test_partitions_cover_contiguously_in_order(
    t: datetime, before: timedelta, after: timedelta, granularity: Granularity
) -> None:
    tb = TimeBuckets("{bucket}", granularity)
    start, end = t - before, t + after
    got = tb.partitions(start, end)
    assert tb.bucket_of(t) in got
    assert got[0] == tb.bucket_of(start)
    assert got[-1] == tb.bucket_of(end)
    assert all(a < b for a, b in zip(got, got[1:], strict=False))  # strictly increasing
    assert tb.partitions(start, end, descending=True) == got[::-1]
    # Contiguous: each bucket ends exactly where the next one starts, so none is skipped.
    at = tb.bucket_range(start)[0]
    for text in got:
        assert tb.bucket_of(at) == text
        at = tb.bucket_range(at)[1]
    assert at > end.astimezone(UTC)


@given(t=aware, granularity=granularities)
def test_bucket_range_holds_its_time(t: datetime, granularity: Granularity) -> None:
    tb = TimeBuckets("{bucket}", granularity)
    lo, hi = tb.bucket_range(t)
    assert lo <= t < hi
    assert tb.bucket_of(lo) == tb.bucket_of(t) == tb.bucket_of(hi - timedelta(microseconds=1))
    assert tb.bucket_of(hi) > tb.bucket_of(t)


@given(ids=st.lists(st.one_of(st.text(), st.binary(), st.integers()), max_size=20))
def test_partition_for_is_deterministic_and_in_range(ids: list[str | bytes | int]) -> None:
    ws = WriteSharding("P#{shard}", shards=13)
    keys = set(ws.partitions())
    for entity in ids:
        if isinstance(entity, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in entity):
            continue  # lone surrogates are not UTF-8; covered by the rejection test
        assert ws.partition_for(entity) in keys
        assert 0 <= ws.shard_of(entity) < 13


def test_module_exports() -> None:
    assert set(fanout.__all__) >= {"WriteSharding", "TimeBuckets", "stable_shard"}


def test_time_buckets_take_their_natural_keywords() -> None:
    months = TimeBuckets("SENSOR#{sensor}#{bucket}", granularity="month")
    t0, t1 = utc(2024, 1, 15), utc(2024, 3, 2)
    assert months.partitions(start=t0, end=t1, sensor=7) == months.partitions(t0, t1, sensor=7)
    assert months.partitions(start=t0, end=t1, sensor=7) == [
        "SENSOR#7#2024-01",
        "SENSOR#7#2024-02",
        "SENSOR#7#2024-03",
    ]
    assert list(months.iter_partitions(start=t0, end=t1, descending=True, sensor=7)) == [
        "SENSOR#7#2024-03",
        "SENSOR#7#2024-02",
        "SENSOR#7#2024-01",
    ]
    assert months.partition_for(at=t0, sensor=7) == "SENSOR#7#2024-01"
    assert months.bucket_of(at=t1) == "2024-03"
    assert months.bucket_range(at=t0) == (utc(2024, 1, 1), utc(2024, 2, 1))


def test_write_sharding_takes_its_natural_keywords() -> None:
    users = WriteSharding("SHARD#{shard}#{kind}", shards=8)
    assert users.partition_for(entity_id="u-42", kind="USER") == users.partition_for(
        "u-42", kind="USER"
    )
    assert users.shard_of(entity_id="u-42") == users.shard_of("u-42")


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: TimeBuckets("{start}#{bucket}"), "start"),
        (lambda: TimeBuckets("{bucket}#{end}"), "end"),
        (lambda: TimeBuckets("EVENT#{at}#{bucket}"), "at"),
        (lambda: WriteSharding("{entity_id}#{shard}", shards=2), "entity_id"),
    ],
)
def test_a_field_named_like_a_parameter_is_refused_clearly(make: Any, name: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make()
    message = str(info.value)
    assert f"{{{name}}} is reserved" in message and f"{name}=" in message
    assert f"{{{name}_field}}" in message  # what to do instead
