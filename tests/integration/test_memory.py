"""Streaming reads run in bounded memory, whatever the size of the data set.

``batch_get_iter`` over N keys (read lazily from a generator) and a scan of N items
(sequential and parallel) are consumed item by item, under ``tracemalloc``; their peak of
Python heap must stay under a fixed bound that a run holding the items would pass many
times over. N is 20,000 items of ~1 KB (about 20 MB of data) in CI; ``ASYNCDYN_SOAK=full``
runs 100,000 (about 100 MB). Peak RSS growth (``VmHWM`` after resetting it through
``/proc/self/clear_refs``) is printed with ``-s``: RSS includes the allocator's retained
pages, so it is reported, and bounded only loosely.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from asyncdyn import Client, RetryPolicy
from asyncdyn.local import LocalServer

FULL = os.environ.get("ASYNCDYN_SOAK") == "full"
ITEMS = 100_000 if FULL else 20_000
PAD = 1000
MAX_CONCURRENCY = 8
# What streaming may hold at its peak, whatever N: the window of chunks (2 x 8 x 100 items),
# or for a scan up to three 1 MB pages per segment with their wire form and JSON tree.
# Holding every item takes ~40 MB at 20,000 and ~190 MB at 100,000.
HEAP_BOUND = 40 * 1024 * 1024
RSS_BOUND = 128 * 1024 * 1024
# Streaming a quarter of the items must peak about as high as streaming all of them.
GROWTH = 1.3
SLACK = 2 * 1024 * 1024


def _status(field: str) -> int:
    """A ``/proc/self/status`` figure in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/self/status")


def _reset_peak_rss() -> bool:
    # Writing 5 resets VmHWM to the current RSS (Linux >= 4.0).
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


class Measure:
    heap_peak = 0
    rss_growth = 0
    seconds = 0.0


@contextlib.contextmanager
def measured() -> Iterator[Measure]:
    gc.collect()
    result = Measure()
    peak_reset = _reset_peak_rss()
    rss_before = _status("VmRSS")
    tracemalloc.start()
    started = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - started
        _, result.heap_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_after = _status("VmHWM") if peak_reset else _status("VmRSS")
        result.rss_growth = rss_after - rss_before


def _report(what: str, m: Measure) -> None:
    print(
        f"\n[memory] {what} (table of {ITEMS}): tracemalloc peak {m.heap_peak / 2**20:.1f} MiB, "
        f"peak RSS growth {m.rss_growth / 2**20:.1f} MiB, {m.seconds:.1f} s"
    )


@pytest.fixture(scope="module")
def dynalite(local_servers: Callable[[str], LocalServer]) -> LocalServer:
    return local_servers("dynalite")


def _client(server: LocalServer) -> Client:
    return Client(
        region="us-east-1",
        endpoint_url=server.endpoint_url,
        credentials=("testing", "testing"),
        retry=RetryPolicy(deadline=120.0),
        max_concurrency=MAX_CONCURRENCY,
    )


@pytest.fixture(scope="module")
async def big_table(dynalite: LocalServer) -> AsyncIterator[str]:
    name = f"mem-{uuid.uuid4().hex[:12]}"
    async with _client(dynalite) as db:
        table = await db.create_table(name, partition_key="PK")
        async with table.writer() as writer:
            for i in range(ITEMS):
                await writer.put({"PK": f"K{i:06d}", "n": i, "pad": "x" * PAD})
        assert writer.stats.written == ITEMS
        yield name
        await db.delete_table(name, wait=False)


@pytest.fixture
async def db(dynalite: LocalServer) -> AsyncIterator[Client]:
    async with _client(dynalite) as client:
        yield client


def _keys(n: int) -> Iterator[dict[str, str]]:
    # A generator: the keys themselves must not be held either.
    return ({"PK": f"K{i:06d}"} for i in range(n))


async def test_batch_get_iter_runs_in_bounded_memory(db: Client, big_table: str) -> None:
    table = db.table(big_table)
    peaks = []
    for n in (ITEMS // 4, ITEMS):
        seen = 0
        total = 0
        with measured() as m:
            async with contextlib.aclosing(table.batch_get_iter(_keys(n))) as pairs:
                async for key, item in pairs:
                    assert item is not None and item["PK"] == key["PK"]
                    seen += 1
                    total += item["n"]
        _report(f"batch_get_iter of {n} keys", m)
        assert seen == n and total == n * (n - 1) // 2
        peaks.append(m.heap_peak)
    assert peaks[1] < GROWTH * peaks[0] + SLACK, peaks
    assert m.heap_peak < HEAP_BOUND
    assert m.rss_growth < RSS_BOUND


@pytest.mark.parametrize(
    "segments", [None, 4], ids=["sequential scan", "parallel scan of 4 segments"]
)
async def test_scan_runs_in_bounded_memory(
    db: Client, big_table: str, segments: int | None
) -> None:
    table = db.table(big_table)
    peaks = []
    for n in (ITEMS // 4, ITEMS):
        seen = 0
        total = 0
        with measured() as m:
            listing = (
                table.scan(limit=n) if segments is None else table.scan(segments=segments, limit=n)
            )
            async with contextlib.aclosing(listing) as items:
                async for item in items:
                    seen += 1
                    total += item["n"]
        _report(f"scan of {n} items (segments={segments})", m)
        assert seen == n
        peaks.append(m.heap_peak)
    assert total == ITEMS * (ITEMS - 1) // 2
    assert peaks[1] < GROWTH * peaks[0] + SLACK, peaks
    assert m.heap_peak < HEAP_BOUND
    assert m.rss_growth < RSS_BOUND


async def test_holding_everything_would_break_the_bound(db: Client, big_table: str) -> None:
    """The control: the same scan kept in a list grows with the data (about 1.5 KB per item),
    which is what the growth checks above would catch."""
    table = db.table(big_table)
    with measured() as m:
        async with contextlib.aclosing(table.scan()) as items:
            held = [item async for item in items]
    _report("scan held in a list (control)", m)
    assert len(held) == ITEMS
    assert m.heap_peak > ITEMS * PAD
