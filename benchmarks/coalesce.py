"""1,000 concurrent callers each doing one get: with and without get coalescing, same run.

Each round starts 1,000 tasks that each ``await table.get(key)`` over 700 distinct keys (300
repeats, 50 missing) — a web service under a burst — once with a plain client and once with
``Client(coalesce_gets=True)``, the order alternating; both clients have the same
``max_concurrency``. Reported: wall time per burst, gets/s, and HTTP requests per burst.

    python -m benchmarks.coalesce --rounds 20
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from typing import Any

from asyncdyn import Client, local
from asyncdyn.runner import run

from .data import make_item
from .peers import ACCESS_KEY, REGION, SECRET_KEY


async def main_async(args: argparse.Namespace) -> None:
    server = local.start(args.server)
    rng = random.Random(5)
    try:
        clients = {
            coalesce: Client(
                region=REGION,
                endpoint_url=server.endpoint_url,
                credentials=(ACCESS_KEY, SECRET_KEY),
                max_concurrency=args.concurrency,
                coalesce_gets=coalesce,
            )
            for coalesce in (False, True)
        }
        plain = clients[False]
        table = await plain.create_table(
            f"coalesce-{uuid.uuid4().hex[:12]}", partition_key="PK", sort_key="SK"
        )
        stored = [make_item(f"USER#{n % 97}", f"ITEM#{n:05d}", n) for n in range(650)]
        await table.batch_write(puts=stored)
        distinct: list[dict[str, Any]] = [{"PK": i["PK"], "SK": i["SK"]} for i in stored]
        distinct += [{"PK": "USER#0", "SK": f"MISSING#{n}"} for n in range(50)]
        keys = distinct + [rng.choice(distinct) for _ in range(args.callers - len(distinct))]
        rng.shuffle(keys)

        async def burst(client: Client) -> tuple[float, int, float, float]:
            t = client.table(table.name)
            before = client.stats().total_requests
            server_cpu = server.cpu_seconds()
            client_cpu = time.process_time()
            started = time.perf_counter()
            got = await asyncio.gather(*(t.get(key) for key in keys))
            elapsed = time.perf_counter() - started
            assert sum(item is not None for item in got) == len(keys) - sum(
                key["SK"].startswith("MISSING") for key in keys
            )
            sent = client.stats().total_requests - before
            cpu = time.process_time() - client_cpu
            return elapsed, sent, server.cpu_seconds() - server_cpu, cpu

        for client in clients.values():  # warm up the connection pools
            await burst(client)
        walls: dict[bool, list[float]] = {False: [], True: []}
        requests: dict[bool, list[int]] = {False: [], True: []}
        server_cpu: dict[bool, list[float]] = {False: [], True: []}
        client_cpu: dict[bool, list[float]] = {False: [], True: []}
        ratios: list[float] = []
        for round_ in range(args.rounds):
            for coalesce in (False, True) if round_ % 2 == 0 else (True, False):
                wall, sent, cpu, own_cpu = await burst(clients[coalesce])
                client_cpu[coalesce].append(own_cpu)
                walls[coalesce].append(wall)
                requests[coalesce].append(sent)
                server_cpu[coalesce].append(cpu)
            ratios.append(walls[False][-1] / walls[True][-1])
        for client in clients.values():
            await client.close()
    finally:
        server.stop()

    print(
        f"\n{len(keys)} concurrent gets ({len(distinct)} distinct keys), max_concurrency "
        f"{args.concurrency}, {server.kind}, medians of {args.rounds} rounds"
    )
    print(
        "| coalesce_gets | ms per burst | gets/s | HTTP requests per burst "
        "| server CPU ms | client CPU ms |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for coalesce in (False, True):
        wall = statistics.median(walls[coalesce])
        print(
            f"| {coalesce} | {wall * 1000:.1f} | {len(keys) / wall:,.0f} "
            f"| {statistics.median(requests[coalesce]):,.0f} "
            f"| {statistics.median(server_cpu[coalesce]) * 1000:.0f} "
            f"| {statistics.median(client_cpu[coalesce]) * 1000:.0f} |"
        )
    print(f"\nwithout / with, paired per round: median {statistics.median(ratios):.2f}x")
    # The server's CPU per burst bounds the speed-up wherever the server is the bottleneck.
    cpu_ratio = statistics.median(server_cpu[False]) / statistics.median(server_cpu[True])
    print(f"server CPU without / with: {cpu_ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--callers", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--server", default="auto", choices=("auto", "dynalite", "moto"))
    run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
