"""The benchmark harness's own logic, without a server: data sizes and result checks.

A check that let a client return the right items in the wrong order (or drop one) would
make its figures meaningless, so the fan-out and time-series checks are tried here with
answers that are wrong in exactly one way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from benchmarks import workloads
from benchmarks.data import make_item
from benchmarks.harness import _rounds_text, parser
from benchmarks.peers import Item, Peer
from benchmarks.workloads import WORKLOADS, Sizes, configure


class _Plain(Peer):
    """An adapter that is never set up: only ``plain``/``string`` are used by checks."""

    name = "plain"
    distribution = "asyncdyn"

    async def setup(self, endpoint_url: str, table: str, *, concurrency: int) -> None:
        raise NotImplementedError

    async def get(self, key: Item) -> Any:
        raise NotImplementedError

    async def put(self, item: Item) -> None:
        raise NotImplementedError

    async def query(self, pk: str) -> list[Any]:
        raise NotImplementedError

    async def query_prefix(self, pk: str, prefix: str) -> list[Any]:
        raise NotImplementedError

    async def query_between(self, pk: str, low: str, high: str) -> list[Any]:
        raise NotImplementedError

    async def close(self) -> None:
        return None


@pytest.fixture(autouse=True)
def _small_sizes() -> Iterator[None]:
    configure(400)
    yield
    configure()


def _fanout_answer() -> list[Item]:
    return sorted(workloads._fanout_items(sizes_partition()), key=lambda item: item["SK"])


def _series_answer() -> list[Item]:
    low, high = workloads._WINDOW_TEXT
    return [
        item for item in workloads._series_items(sizes_partition()) if low <= item["SK"] <= high
    ]


def sizes_partition() -> int:
    return workloads.sizes().partition


def test_sizes_follow_items() -> None:
    assert (Sizes().items, Sizes().keys, Sizes().partition) == (10_000, 1_000, 50)
    assert (Sizes(400).keys, Sizes(400).partition) == (40, 2)
    assert Sizes(1).partition == 1
    with pytest.raises(ValueError, match="positive"):
        configure(0)


def test_fanout_data_has_every_shard_full() -> None:
    items = workloads._fanout_items(2)
    by_shard: dict[str, int] = {}
    for item in items:
        by_shard[item["PK"]] = by_shard.get(item["PK"], 0) + 1
    assert by_shard == {f"SHARD#{n}#USER": 2 for n in range(10)}
    assert WORKLOADS["fanout"].items_moved() == 20


def test_series_window_reads_six_months_in_part() -> None:
    answer = _series_answer()
    months = sorted({item["PK"] for item in answer})
    assert months == [f"SENSOR#7#2024-0{m}" for m in range(1, 7)]
    assert [item["SK"] for item in answer] == sorted(item["SK"] for item in answer)
    assert WORKLOADS["timeseries"].items_moved() == len(answer)


@pytest.mark.parametrize(
    "workload, answer", [("fanout", _fanout_answer), ("timeseries", _series_answer)]
)
def test_listing_checks_accept_the_answer(workload: str, answer: Any) -> None:
    WORKLOADS[workload].check(_Plain(), answer())


def _swapped(items: Sequence[Item]) -> list[Item]:
    wrong = list(items)
    wrong[0], wrong[1] = wrong[1], wrong[0]
    return wrong


@pytest.mark.parametrize(
    "workload, answer", [("fanout", _fanout_answer), ("timeseries", _series_answer)]
)
@pytest.mark.parametrize(
    "spoil, message",
    [
        (_swapped, "first difference at position 0"),
        (lambda items: list(items)[:-1], "items,"),
        (lambda items: [*items, items[-1]], "items,"),
    ],
)
def test_listing_checks_refuse_a_wrong_answer(
    workload: str, answer: Any, spoil: Any, message: str
) -> None:
    with pytest.raises(AssertionError, match=message):
        WORKLOADS[workload].check(_Plain(), spoil(answer()))


def test_listing_check_refuses_an_undecoded_item() -> None:
    answer = _fanout_answer()
    answer[-1] = {**answer[-1], "customer": "not decoded"}
    with pytest.raises((AssertionError, TypeError)):
        WORKLOADS["fanout"].check(_Plain(), answer)


def test_canned_expectations_ignore_partitions() -> None:
    configure(400, canned=True)
    # Every shard answers the canned server's 50 items: merged by SK, copies side by side.
    canned = [
        make_item("CUSTOMER#000123", f"ORDER#{n:08d}", n) for n in range(50) for _ in range(10)
    ]
    WORKLOADS["fanout"].check(_Plain(), canned)
    assert WORKLOADS["fanout"].items_moved() == 500
    with pytest.raises(AssertionError, match="position 0"):
        WORKLOADS["fanout"].check(_Plain(), canned[::-1])


def test_default_run_has_every_workload() -> None:
    args = parser().parse_args([])
    assert args.workload == list(WORKLOADS)
    assert set(WORKLOADS) == {
        "get",
        "put",
        "query",
        "fanout",
        "timeseries",
        "batch_get",
        "batch_write",
    }


def test_rounds_text() -> None:
    assert _rounds_text({"get": 3, "batch_get": 1}) == "medians of 3 rounds (batch_get: 1)"
    assert _rounds_text({"get": 1}) == "1 round"
