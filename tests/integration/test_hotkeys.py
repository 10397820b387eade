"""Hot keys against real servers (moto and dynalite): a skewed workload puts its hot key on
top, with estimates and with the figures the server reports (``consumed_capacity="INDEXES"``)."""

from __future__ import annotations

import contextlib
import os
import random
import re
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from asyncdyn import Attr, Client, GlobalIndex, HotKeys, TableNotFound
from asyncdyn.local import LocalServer


@pytest.fixture(params=["NONE", "INDEXES"])
async def hot_db(server: LocalServer, request: pytest.FixtureRequest) -> AsyncIterator[Client]:
    async with _hot_client(server, request.param) as client:
        yield client


@pytest.fixture
async def reporting_db(server: LocalServer) -> AsyncIterator[Client]:
    async with _hot_client(server, "INDEXES") as client:
        yield client


@contextlib.asynccontextmanager
async def _hot_client(server: LocalServer, capacity: Any) -> AsyncIterator[Client]:
    async with Client(
        region="us-east-1",
        endpoint_url=server.endpoint_url,
        credentials=("testing", "testing"),
        consumed_capacity=capacity,
        # A window far longer than the test: counts do not decay while it runs.
        hot_keys=HotKeys(capacity=500, window=1e6, report=500),
    ) as client:
        name = f"t-{uuid.uuid4().hex[:16]}"
        await client.create_table(
            name,
            partition_key="PK",
            sort_key="SK",
            indexes=[GlobalIndex("ByOwner", "owner", "SK")],
        )
        try:
            yield client
        finally:
            try:
                await client.delete_table(name, wait=False)
            except TableNotFound:
                pass


def _table_name(db: Client) -> str:
    [name] = db._tables
    return name


async def test_skewed_workload_puts_the_hot_key_on_top(server: LocalServer, hot_db: Client) -> None:
    table = hot_db.table(_table_name(hot_db))
    rng = random.Random(19)
    keys = [f"user#{i}" for i in range(40)]
    # Zipf(1.2) over 40 partition keys: user#0 takes about a quarter of the requests.
    weights = [1.0 / (i + 1) ** 1.2 for i in range(len(keys))]
    writes = Counter(rng.choices(keys, weights=weights, k=200))
    for key, times in writes.items():
        for n in range(times):
            await table.put({"PK": key, "SK": f"s{n % 3}", "owner": "team-a", "body": "x" * 600})
    reads = Counter(rng.choices(keys, weights=weights, k=200))
    for key, times in reads.items():
        for n in range(times):
            await table.get({"PK": key, "SK": f"s{n % 3}"})
    await table.batch_get([{"PK": key, "SK": "s0"} for key in keys[:10]])

    hot = hot_db.stats().hot_keys
    base = [h for h in hot if h.index is None]
    assert base[0].key == {"PK": "user#0"}
    assert writes.most_common(1)[0][0] == "user#0"
    # The order of the base table's keys follows their requests (reads and writes alike
    # cost one unit here, the key with the most requests is heaviest).
    top_requested = {k for k, _ in (writes + reads).most_common(3)}
    assert {h.key["PK"] for h in base[:3]} == top_requested
    # Every put also wrote the index under owner=team-a: its one hot key (estimated, on
    # these servers: neither lists the index in its INDEXES report).
    [index_key] = [h for h in hot if h.index == "ByOwner"]
    assert index_key.key == {"owner": "team-a"}
    assert index_key.share == 1.0
    assert index_key.write_units > 0
    # Shares of one table's keys add up to the whole (nothing was evicted: 40 keys, 500
    # counters), heaviest first.
    assert sum(h.share for h in base) == pytest.approx(1.0)
    assert [h.share for h in base] == sorted((h.share for h in base), reverse=True)
    assert all(h.throttles == 0 and h.shards is None for h in hot)


async def test_single_item_capacity_adds_up_to_what_the_server_reported(
    server: LocalServer, reporting_db: Client
) -> None:
    hot_db = reporting_db
    name = _table_name(hot_db)
    table = hot_db.table(name)
    for i in range(5):
        await table.put({"PK": "k", "SK": str(i), "owner": "o", "body": "y" * 3000})
        await table.get({"PK": "k", "SK": str(i)}, consistent=True)
        if server.kind != "moto":  # moto reports an update's capacity without INDEXES
            await table.update({"PK": "j", "SK": str(i)}, Attr("n").set(i))
    reported = hot_db.stats().consumed_capacity[name]
    # The base table's keys: the servers report no index (its writes are estimated).
    counted = sum(h.read_units + h.write_units for h in hot_db.stats().hot_keys if not h.index)
    assert counted == pytest.approx(reported, rel=1e-6)
    by_key: dict[Any, Any] = {(h.index, *h.key.values()): h for h in hot_db.stats().hot_keys}
    assert by_key[(None, "k")].write_units > 0 and by_key[(None, "k")].read_units > 0
    if server.kind != "moto":
        assert by_key[(None, "j")].write_units > 0


async def test_the_benchmark_ranks_the_zipf_head_first(server: LocalServer) -> None:
    from benchmarks.hotkeys import report, run

    hot, requested, took = await run(
        server.endpoint_url, ops=300, keys=200, s=1.2, concurrency=4, capacity="NONE", sketch=50
    )
    base = [h for h in hot if h.index is None]
    assert base[0].key == {"PK": requested.most_common(1)[0][0]}
    printed = report(hot, requested, took)
    assert "PK=user#0" in printed and "300 requests" in printed


DOC = Path(__file__).resolve().parents[2] / "docs" / "hot-keys.md"


def test_the_documented_example_runs_and_prints_what_it_says(
    server: LocalServer, tmp_path: Path
) -> None:
    match = re.search(r"^## Turning it on\n.*?```python\n(.*?)^```", DOC.read_text(), re.S | re.M)
    assert match is not None
    code = match.group(1)
    assert code.count("http://localhost:8000") == 1
    table = f"t-{uuid.uuid4().hex[:16]}"
    code = code.replace("http://localhost:8000", server.endpoint_url).replace('"Shop"', repr(table))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(DOC.parents[1])  # this checkout's asyncdyn
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # As the page shows: the index key first, then the hot customer with half the load
    # (units decay a little while the example runs: a 60 s window, a few seconds on moto).
    index = re.fullmatch(
        rf"{table} ByStatus {{'status': 'OPEN'}} (\d+) WCU 0.0 RCU 100% ", lines[0]
    )
    assert index is not None and 180 <= int(index.group(1)) <= 200
    customer = re.fullmatch(
        rf"{table} None {{'PK': 'CUSTOMER#1'}} (\d+) WCU ([\d.]+) RCU 50% ", lines[1]
    )
    assert customer is not None
    assert 90 <= int(customer.group(1)) <= 100 and 45 <= float(customer.group(2)) <= 50
    assert len(lines) == 5


async def test_throttles_and_unprocessed_writes_are_counted_once(server: LocalServer) -> None:
    """Against a real server behind injected faults: every throttled attempt is one throttle
    of its key, and a batch write's unprocessed requests are charged only when written."""
    from asyncdyn import RetryPolicy
    from asyncdyn.lean import LeanTransport
    from asyncdyn.testing import FaultInjector

    faults = FaultInjector(LeanTransport(server.endpoint_url), seed=3, throttle=0.3)
    faults.enabled = False
    async with Client(
        region="us-east-1",
        endpoint_url=server.endpoint_url,
        credentials=("testing", "testing"),
        transport=faults,
        retry=RetryPolicy(max_attempts=50, base=0.001, cap=0.002),
        hot_keys=HotKeys(capacity=500, window=1e6, report=500),
    ) as db:
        name = f"t-{uuid.uuid4().hex[:16]}"
        table = await db.create_table(name, partition_key="PK", sort_key="SK")
        try:
            faults.enabled = True
            for n in range(60):
                key = f"k{n % 6}"
                await table.put({"PK": key, "SK": str(n)})
                await table.get({"PK": key, "SK": str(n)})
            throttled = faults.injected["throttle"]
            faults._throttle, faults._unprocessed = 0.0, 0.4
            items = [{"PK": f"b{n % 5}", "SK": str(n)} for n in range(100)]
            await table.batch_write(puts=items)
            faults.enabled = False
            assert throttled > 0 and faults.injected["unprocessed_items"] > 0
            hot = {h.key["PK"]: h for h in db.stats().hot_keys}
            assert sum(h.throttles for h in hot.values()) == throttled
            assert all(h.reasons.keys() <= {"Throttled"} for h in hot.values())
            # Small items: one write unit each, however many times a request was held back.
            assert sum(hot[f"b{n}"].write_units for n in range(5)) == pytest.approx(100.0, rel=1e-3)
            writes = [hot[f"k{n}"].write_units for n in range(6)]
            assert writes == pytest.approx([10.0] * 6, rel=1e-3)
        finally:
            await db.delete_table(name, wait=False)
