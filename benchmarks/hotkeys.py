"""A skewed workload, then ``db.stats().hot_keys``: does the hot key come out on top?

Writes and reads partition keys drawn from a Zipf distribution (key ``i`` with weight
``1 / (i + 1) ** s``) over a table with a global index, concurrently, with
``Client(hot_keys=True)``, then prints the hot keys and how their ranking compares with the
requests actually sent::

    python -m benchmarks.hotkeys                       # dynalite (else moto) on 127.0.0.1
    python -m benchmarks.hotkeys --server moto --ops 3000 --keys 5000 --zipf 1.1
    python -m benchmarks.hotkeys --capacity INDEXES    # DynamoDB's figures, not estimates
    python -m benchmarks.hotkeys --endpoint http://127.0.0.1:8000

Only loopback endpoints are accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from collections import Counter
from typing import Any

from asyncdyn import Client, GlobalIndex, HotKey, HotKeys

from .harness import check_loopback, format_table, start_server


def zipf_keys(count: int, keys: int, s: float, seed: int) -> list[str]:
    """``count`` partition keys drawn from a Zipf(``s``) law over ``keys`` values."""
    rng = random.Random(seed)
    weights = [1.0 / (i + 1) ** s for i in range(keys)]
    return [f"user#{i}" for i in rng.choices(range(keys), weights=weights, k=count)]


async def run(
    endpoint_url: str,
    *,
    ops: int,
    keys: int,
    s: float,
    concurrency: int,
    capacity: str,
    sketch: int,
    seed: int = 1,
) -> tuple[tuple[HotKey, ...], Counter[str], float]:
    """Half puts, half gets over Zipf keys; returns the hot keys, the requests per key and
    the seconds the workload took."""
    async with Client(
        region="us-east-1",
        endpoint_url=endpoint_url,
        credentials=("bench", "bench"),
        consumed_capacity=capacity,  # type: ignore[arg-type]
        hot_keys=HotKeys(capacity=sketch, report=10),
    ) as db:
        name = f"hotkeys-{uuid.uuid4().hex[:8]}"
        table = await db.create_table(
            name,
            partition_key="PK",
            sort_key="SK",
            indexes=[GlobalIndex("ByRegion", "region", "SK")],
        )
        try:
            drawn = zipf_keys(ops, keys, s, seed)
            queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
            for n, key in enumerate(drawn):
                queue.put_nowait((n, key))

            async def worker() -> None:
                while not queue.empty():
                    n, key = queue.get_nowait()
                    sk = f"item#{n % 4}"
                    if n % 2 == 0:
                        item: dict[str, Any] = {
                            "PK": key,
                            "SK": sk,
                            "region": f"r{n % 3}",
                            "body": "x" * (200 + n % 1500),
                        }
                        await table.put(item)
                    else:
                        await table.get({"PK": key, "SK": sk})

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            took = time.perf_counter() - started
            return db.stats().hot_keys, Counter(drawn), took
        finally:
            await db.delete_table(name, wait=False)


def report(hot: tuple[HotKey, ...], requested: Counter[str], took: float) -> str:
    rows = []
    rank = {key: at for at, (key, _) in enumerate(requested.most_common(), 1)}
    for h in hot:
        value = next(iter(h.key.values()))
        rows.append(
            [
                h.index or "-",
                f"{next(iter(h.key))}={value}",
                f"{h.read_units:.1f}",
                f"{h.write_units:.1f}",
                f"{h.read_rate:.1f}",
                f"{h.write_rate:.1f}",
                f"{h.share:.1%}",
                f"{h.error:.3f}",
                str(h.throttles),
                str(rank.get(str(value), "-")) if h.index is None else "-",
                h.suggestion or "",
            ]
        )
    headers = ["index", "key", "RCU", "WCU", "RCU/s", "WCU/s", "share", "error", "thr", "req#"]
    table = format_table([*headers, "suggestion"], rows)
    return f"{sum(requested.values())} requests in {took:.2f}s\n{table}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.hotkeys", description=__doc__)
    p.add_argument("--server", default="auto", choices=["auto", "dynalite", "moto"])
    p.add_argument("--endpoint", type=check_loopback, help="a running loopback server")
    p.add_argument("--ops", type=int, default=2000)
    p.add_argument("--keys", type=int, default=1000, help="distinct partition keys")
    p.add_argument("--zipf", type=float, default=1.1, help="the Zipf exponent s")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--capacity", default="NONE", choices=["NONE", "INDEXES"])
    p.add_argument("--sketch", type=int, default=100, help="counters in the sketch")
    args = p.parse_args(argv)
    server = None if args.endpoint else start_server(args.server)
    endpoint = args.endpoint or server.endpoint_url  # type: ignore[union-attr]
    try:
        hot, requested, took = asyncio.run(
            run(
                endpoint,
                ops=args.ops,
                keys=args.keys,
                s=args.zipf,
                concurrency=args.concurrency,
                capacity=args.capacity,
                sketch=args.sketch,
            )
        )
    finally:
        if server is not None:
            server.stop()
    print(report(hot, requested, took))
    return 0


if __name__ == "__main__":
    sys.exit(main())
