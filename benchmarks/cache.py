"""1,000 concurrent callers reading a Zipf-distributed key set: with and without ``ItemCache``.

Each burst starts ``--callers`` tasks that each ``await table.get(key)``, the keys drawn from
``--keys`` keys with Zipf weights (``--s``, 1.1 by default: a few keys take most reads, as on
a product page or a session table). Four clients read the same bursts, in an order that
rotates per round: plain, ``coalesce_gets=True``, ``cache=ItemCache(...)`` and both. The
caches stay warm from burst to burst (a service that has been running; ``ttl`` is longer than
the run), after one warm-up burst per client.

Reported per configuration (medians of the rounds): wall time per burst, client CPU per get
(the benchmark process's CPU time over the burst; the server runs in its own process), HTTP
requests sent per burst, and the cache's hit rate over the measured bursts.

    python -m benchmarks.cache --server canned --rounds 20
    python -m benchmarks.cache --server dynalite --rounds 10

``canned`` (benchmarks/canned.py) answers from bytes built at start-up, so the client's own
cost stands out; ``dynalite`` stores and looks up every item (the 10,000 keys are loaded
first), so the server's cost per request shows too.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from itertools import accumulate
from typing import Any

from asyncdyn import Client, ItemCache, local
from asyncdyn.runner import run

from .canned import start_canned
from .data import make_item
from .peers import ACCESS_KEY, REGION, SECRET_KEY

CONFIGS = ("plain", "coalesce", "cache", "cache+coalesce")


def zipf_keys(n: int, s: float, draws: int, rng: random.Random) -> list[int]:
    """``draws`` key numbers in ``range(n)``, key ``k`` drawn with weight ``1 / (k + 1) ** s``."""
    cumulative = list(accumulate(1.0 / (k + 1) ** s for k in range(n)))
    return rng.choices(range(n), cum_weights=cumulative, k=draws)


def key_of(number: int) -> dict[str, str]:
    return {"PK": f"USER#{number % 97}", "SK": f"ITEM#{number:06d}"}


async def main_async(args: argparse.Namespace) -> None:
    server: Any = start_canned() if args.server == "canned" else local.start(args.server)
    rng = random.Random(11)
    try:
        clients = {
            config: Client(
                region=REGION,
                endpoint_url=server.endpoint_url,
                credentials=(ACCESS_KEY, SECRET_KEY),
                max_concurrency=args.concurrency,
                coalesce_gets="coalesce" in config,
                cache=ItemCache(max_items=args.max_items, ttl=3600.0)
                if "cache" in config
                else None,
            )
            for config in CONFIGS
        }
        name = f"cache-{uuid.uuid4().hex[:12]}"
        if args.server != "canned":
            table = await clients["plain"].create_table(name, partition_key="PK", sort_key="SK")
            keys = [key_of(n) for n in range(args.keys)]
            await table.batch_write(
                puts=[make_item(k["PK"], k["SK"], n) for n, k in enumerate(keys)]
            )
        bursts = [
            [key_of(n) for n in zipf_keys(args.keys, args.s, args.callers, rng)]
            for _ in range(args.rounds + 1)
        ]

        async def burst(client: Client, keys: list[dict[str, str]]) -> tuple[float, int, float]:
            t = client.table(name)
            before = client.stats().total_requests
            cpu = time.process_time()
            started = time.perf_counter()
            got = await asyncio.gather(*(t.get(key) for key in keys))
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
            assert all(item is not None for item in got)
            return elapsed, client.stats().total_requests - before, cpu

        for client in clients.values():  # connection pools and caches warmed by one burst
            await burst(client, bursts[0])
        marks = {
            c: (clients[c].stats().cache_hits, clients[c].stats().cache_misses) for c in CONFIGS
        }
        walls: dict[str, list[float]] = {c: [] for c in CONFIGS}
        sent: dict[str, list[int]] = {c: [] for c in CONFIGS}
        cpus: dict[str, list[float]] = {c: [] for c in CONFIGS}
        for round_, keys in enumerate(bursts[1:]):
            order = CONFIGS[round_ % 4 :] + CONFIGS[: round_ % 4]
            for config in order:
                wall, requests, cpu = await burst(clients[config], keys)
                walls[config].append(wall)
                sent[config].append(requests)
                cpus[config].append(cpu)
        hit_rates = {}
        for config, client in clients.items():
            stats = client.stats()
            hits = stats.cache_hits - marks[config][0]
            misses = stats.cache_misses - marks[config][1]
            hit_rates[config] = hits / (hits + misses) if hits + misses else 0.0
        # One hit alone, without the task and gather of a burst around it: what the cache
        # itself costs (lookup, copy of a ~1 KB item, counters) inside ``Table.get``.
        hot = clients["cache"].table(name)
        cpu = time.process_time()
        for _ in range(args.hit_loop):
            await hot.get(bursts[0][0])
        per_hit = (time.process_time() - cpu) / args.hit_loop
        for client in clients.values():
            await client.close()
    finally:
        server.stop()

    distinct = statistics.median(len({tuple(k.values()) for k in keys}) for keys in bursts[1:])
    print(
        f"\n{args.callers} concurrent gets per burst over {args.keys:,} keys (Zipf s={args.s}, "
        f"median {distinct:.0f} distinct keys per burst), max_concurrency {args.concurrency}, "
        f"{server.kind}, medians of {args.rounds} bursts"
    )
    print(
        "| client | ms per burst | gets/s | client CPU µs per get | requests per burst | hit rate |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for config in CONFIGS:
        wall = statistics.median(walls[config])
        cpu = statistics.median(cpus[config]) / args.callers
        print(
            f"| {config} | {wall * 1000:.1f} | {args.callers / wall:,.0f} | {cpu * 1e6:.1f} "
            f"| {statistics.median(sent[config]):,.0f} | {hit_rates[config]:.1%} |"
        )
    report_hit(per_hit, args.hit_loop)


def report_hit(per_hit: float, count: int) -> None:
    print(f"\none cached get alone (sequential, {count:,} times): {per_hit * 1e6:.1f} µs CPU")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--callers", type=int, default=1000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--s", type=float, default=1.1, help="the Zipf exponent")
    parser.add_argument("--max-items", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--hit-loop", type=int, default=20_000)
    parser.add_argument(
        "--server", default="canned", choices=("canned", "auto", "dynalite", "moto")
    )
    run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
