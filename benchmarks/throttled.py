"""A bulk load against a table at capacity: what the adaptive rate saves.

The local servers never throttle, so ``FaultInjector(capacity=...)`` plays a table that takes
that many items per second (one second of burst): batches beyond it come back partly
unprocessed, or throttled when nothing is left, as DynamoDB does. Each round loads the same
items into a fresh table twice, with ``adaptive_rate`` off and on (the order alternates), and
reports the wall time, items/s, BatchWriteItem requests and items refused.

    python -m benchmarks.throttled --items 5000 --capacity 1000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from typing import Any

from asyncdyn import Client, RetryPolicy, local
from asyncdyn.runner import run
from asyncdyn.testing import FaultInjector
from asyncdyn.transport import AiohttpTransport

from .peers import ACCESS_KEY, REGION, SECRET_KEY


async def load_once(
    endpoint_url: str, *, adaptive: bool, items: int, capacity: float
) -> dict[str, Any]:
    injector = FaultInjector(AiohttpTransport(endpoint_url), capacity=capacity)
    injector.enabled = False
    async with Client(
        region=REGION,
        endpoint_url=endpoint_url,
        credentials=(ACCESS_KEY, SECRET_KEY),
        retry=RetryPolicy(max_attempts=30, deadline=300.0),
        transport=injector,
        adaptive_rate=adaptive,
    ) as db:
        table = await db.create_table(
            f"throttled-{uuid.uuid4().hex[:12]}", partition_key="PK", sort_key="SK"
        )
        rows = [{"PK": f"P#{n % 10}", "SK": f"{n:07d}", "n": n} for n in range(items)]
        injector.enabled = True
        await asyncio.sleep(1.0)  # the simulated table starts with a full second of burst
        started = time.perf_counter()
        await table.batch_write(puts=rows)
        elapsed = time.perf_counter() - started
        injector.enabled = False
        requests = db.stats().requests["BatchWriteItem"]
        await db.delete_table(table.name, wait=False)
    return {
        "seconds": elapsed,
        "items_per_s": items / elapsed,
        "requests": requests,
        "refused_items": injector.injected["unprocessed_items"]
        + 25 * injector.injected["throttle"],
        "throttled_requests": injector.injected["throttle"],
    }


async def main_async(args: argparse.Namespace) -> None:
    server = local.start(args.server)
    results: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    try:
        for round_ in range(args.rounds):
            order = (False, True) if round_ % 2 == 0 else (True, False)
            for adaptive in order:
                result = await load_once(
                    server.endpoint_url, adaptive=adaptive, items=args.items, capacity=args.capacity
                )
                results[adaptive].append(result)
                print(
                    f"round {round_ + 1} adaptive={adaptive}: "
                    + ", ".join(
                        f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in result.items()
                    ),
                    flush=True,
                )
    finally:
        server.stop()
    print(
        f"\n{args.items} items, table capacity {args.capacity:.0f} items/s, {server.kind}, "
        f"medians of {args.rounds} rounds"
    )
    print(
        "| adaptive_rate | seconds | items/s | BatchWriteItem requests | items refused "
        "| throttled requests |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for adaptive in (False, True):
        rows = results[adaptive]

        def med(key: str, rows: list[dict[str, Any]] = rows) -> float:
            return float(statistics.median(row[key] for row in rows))

        print(
            f"| {adaptive} | {med('seconds'):.2f} | {med('items_per_s'):,.0f} "
            f"| {med('requests'):,.0f} | {med('refused_items'):,.0f} "
            f"| {med('throttled_requests'):,.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--capacity", type=float, default=1000.0, help="items/s the table takes")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--server", default="auto", choices=("auto", "dynalite", "moto"))
    run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
