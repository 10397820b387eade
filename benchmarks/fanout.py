"""A 10-shard fan-out query against the sequential shard loop, in the same run.

``python -m benchmarks --workload fanout`` compares the four clients on the same read
(the others' shard queries gathered at once); this script compares ways of reading with
asyncdyn itself, and can add a network round trip to every request.

Seeds ``--shards`` write shards of ``--per-shard`` ~1 KB items each on a local server, then
times, round after round (the order rotates), reading all of them in sort-key order:

* ``asyncdyn fan-out`` — ``Table.query_partitions(shards.partitions())``: every shard's query
  at once, merged as pages arrive;
* ``asyncdyn loop`` — what AWS's sample does: ``Table.query`` of one shard after the other,
  then a sort;
* ``aioboto3 loop`` — the same loop written with aioboto3's ``Table`` resource.

    python -m benchmarks.fanout --rounds 30
    python -m benchmarks.fanout --rounds 30 --latency 5    # + 5 ms per request, asyncdyn only

The local servers answer in well under a millisecond of network time but serve requests
mostly one at a time (dynalite runs on one JavaScript thread), so the fan-out is bounded by
the server's own work. ``--latency`` adds a fixed delay to each asyncdyn request (through
``asyncdyn.testing.FaultInjector``), as a network round trip to DynamoDB does, where the
partitions are served in parallel; the aioboto3 loop is left out then.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from asyncdyn import Client, Key, WriteSharding, local
from asyncdyn.runner import run
from asyncdyn.testing import FaultInjector
from asyncdyn.transport import AiohttpTransport

from .data import make_item
from .peers import ACCESS_KEY, REGION, SECRET_KEY

Reader = Callable[[], Awaitable[list[Any]]]


async def main_async(args: argparse.Namespace) -> None:
    import aioboto3
    from boto3.dynamodb.conditions import Key as BotoKey

    server = local.start(args.server)
    shards = WriteSharding("SHARD#{shard}#ORDERS", shards=args.shards)
    expected = args.shards * args.per_shard
    try:
        async with contextlib.AsyncExitStack() as stack:
            db = await stack.enter_async_context(
                Client(
                    region=REGION,
                    endpoint_url=server.endpoint_url,
                    credentials=(ACCESS_KEY, SECRET_KEY),
                    transport=FaultInjector(
                        AiohttpTransport(server.endpoint_url),
                        latency=(args.latency / 1000, args.latency / 1000),
                    ),
                )
            )
            table = await db.create_table(
                f"fanout-{uuid.uuid4().hex[:12]}", partition_key="PK", sort_key="SK"
            )
            rows = [
                make_item(shards.partition_for(f"order-{n}"), f"ORDER#{n:06d}", n)
                for n in range(expected * 3)
            ]
            # Keep exactly per-shard items in each shard.
            by_shard: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                by_shard.setdefault(row["PK"], []).append(row)
            seeded = [row for shard in by_shard.values() for row in shard[: args.per_shard]]
            assert len(seeded) == expected, "not enough items per shard; raise the multiplier"
            await table.batch_write(puts=seeded)

            session = aioboto3.Session(
                aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
            )
            resource = await stack.enter_async_context(
                session.resource("dynamodb", endpoint_url=server.endpoint_url)
            )
            boto_table = await resource.Table(table.name)

            async def fan_out() -> list[Any]:
                return [item async for item in table.query_partitions(shards.partitions())]

            async def asyncdyn_loop() -> list[Any]:
                items: list[Any] = []
                for partition in shards.partitions():
                    items += [item async for item in table.query(Key("PK").eq(partition))]
                return sorted(items, key=lambda item: item["SK"])

            async def aioboto3_loop() -> list[Any]:
                items: list[Any] = []
                for partition in shards.partitions():
                    request: dict[str, Any] = {
                        "KeyConditionExpression": BotoKey("PK").eq(partition)
                    }
                    while True:
                        page = await boto_table.query(**request)
                        items += page["Items"]
                        if "LastEvaluatedKey" not in page:
                            break
                        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
                return sorted(items, key=lambda item: item["SK"])

            readers: dict[str, Reader] = {
                "asyncdyn fan-out": fan_out,
                "asyncdyn loop": asyncdyn_loop,
            }
            if not args.latency:
                readers["aioboto3 loop"] = aioboto3_loop
            for read in readers.values():  # warm up connections and check the answer
                items = await read()
                assert len(items) == expected and [i["SK"] for i in items] == sorted(
                    i["SK"] for i in items
                ), "wrong answer"
            times: dict[str, list[float]] = {name: [] for name in readers}
            ratios: list[float] = []
            names = list(readers)
            for round_ in range(args.rounds):
                shift = round_ % len(names)
                for name in names[shift:] + names[:shift]:
                    started = time.perf_counter()
                    await readers[name]()
                    times[name].append(time.perf_counter() - started)
                ratios.append(times["asyncdyn loop"][-1] / times["asyncdyn fan-out"][-1])
    finally:
        server.stop()

    base = statistics.median(times["asyncdyn fan-out"])
    print(
        f"\n{args.shards} shards x {args.per_shard} items (~1 KB), {server.kind}, "
        f"+{args.latency:g} ms per request, medians of {args.rounds} rounds"
    )
    print("| reader | wall ms (median) | min-max ms | vs fan-out |")
    print("|---|---:|---:|---:|")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(
            f"| {name} | {median * 1000:.1f} | {min(samples) * 1000:.1f}-"
            f"{max(samples) * 1000:.1f} | {median / base:.2f}x |"
        )
    print(f"\nloop / fan-out, paired per round: median {statistics.median(ratios):.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shards", type=int, default=10)
    parser.add_argument("--per-shard", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--server", default="auto", choices=("auto", "dynalite", "moto"))
    parser.add_argument(
        "--latency", type=float, default=0.0, help="ms added to each asyncdyn request"
    )
    run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
