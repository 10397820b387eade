"""Offloaded attributes: put and get of items with a 1 MB attribute, through S3 and DynamoDB.

Against moto on loopback (one process serves both S3 and DynamoDB): each round writes
``--items`` items, ``--concurrency`` at a time, each with a fresh 1 MB ``blob`` (random
bytes, so compression has nothing to win) that goes to S3 before its PutItem; then reads
them back with ``get`` (the object fetched from S3), then with ``fetch="lazy"`` (only the
item); then writes ``--items`` more with one ``batch_write`` call and again through one
``writer()`` fed by a single task (uploads in the background, ``--concurrency`` at once,
each request joining a BatchWriteItem once its object is in S3). For scale,
``s3 put_object`` is aiobotocore alone uploading the same 1 MB bodies (no DynamoDB write):
the floor under ``put``. Reported per phase: items/s, MB/s of attribute payload, and the
client's CPU per item (``time.process_time`` of this process; the server runs in its own).

    python -m benchmarks.large --items 64 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

from asyncdyn import Client, LargeAttributes, S3Offload, Table, local
from asyncdyn.runner import run

from .peers import ACCESS_KEY, REGION, SECRET_KEY

MB = 1024 * 1024


async def phase(
    count: int, concurrency: int, one: Callable[[int], Awaitable[None]]
) -> tuple[float, float]:
    """Wall seconds and client CPU seconds of ``count`` calls, ``concurrency`` in flight."""
    gate = asyncio.Semaphore(concurrency)

    async def bounded(i: int) -> None:
        async with gate:
            await one(i)

    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(bounded(i) for i in range(count)))
    return time.perf_counter() - started, time.process_time() - cpu


async def timed(call: Awaitable[None]) -> tuple[float, float]:
    """Wall seconds and client CPU seconds of one call."""
    cpu = time.process_time()
    started = time.perf_counter()
    await call
    return time.perf_counter() - started, time.process_time() - cpu


async def main_async(args: argparse.Namespace) -> None:
    server = local.start("moto")
    try:
        session = AioSession()
        async with session.create_client(
            "s3",
            region_name=REGION,
            endpoint_url=server.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=AioConfig(s3={"addressing_style": "path"}),
        ) as s3:
            bucket = f"bench-{uuid.uuid4().hex[:10]}"
            await s3.create_bucket(Bucket=bucket)
            baseline = await bare_puts(args, s3, bucket)
        async with Client(
            region=REGION,
            endpoint_url=server.endpoint_url,
            credentials=(ACCESS_KEY, SECRET_KEY),
            max_concurrency=args.concurrency,
        ) as db:
            made = await db.create_table(
                f"large-{uuid.uuid4().hex[:10]}", partition_key="PK", sort_key="SK"
            )
            eager = db.table(
                made.name, large=LargeAttributes(offload={"blob": S3Offload(bucket, "bench")})
            )
            async with Client(
                region=REGION,
                endpoint_url=server.endpoint_url,
                credentials=(ACCESS_KEY, SECRET_KEY),
                max_concurrency=args.concurrency,
            ) as lazy_db:
                lazy = lazy_db.table(
                    made.name,
                    large=LargeAttributes(
                        offload={"blob": S3Offload(bucket, "bench", fetch="lazy")}
                    ),
                )
                await measure(args, eager, lazy, baseline)
    finally:
        server.stop()


async def bare_puts(args: argparse.Namespace, s3: Any, bucket: str) -> list[tuple[float, float]]:
    size = args.size_mb * MB
    runs: list[tuple[float, float]] = []
    for round_ in range(args.rounds + 1):
        blobs = [os.urandom(size) for _ in range(args.items)]

        async def put(i: int, blobs: list[bytes] = blobs) -> None:
            await s3.put_object(Bucket=bucket, Key=f"bare/{i}", Body=blobs[i])

        measured = await phase(args.items, args.concurrency, put)
        if round_:
            runs.append(measured)
    return runs


async def measure(
    args: argparse.Namespace, eager: Table, lazy: Table, baseline: list[tuple[float, float]]
) -> None:
    size = args.size_mb * MB
    results: dict[str, list[tuple[float, float]]] = {
        "s3 put_object (aiobotocore alone)": baseline,
        "put": [],
        "get": [],
        "get lazy": [],
        "batch_write": [],
        "writer": [],
    }
    for round_ in range(args.rounds + 1):  # round 0 warms the pools up
        blobs = [os.urandom(size) for _ in range(args.items)]

        async def put(i: int, blobs: list[bytes] = blobs) -> None:
            await eager.put({"PK": f"DOC#{i}", "SK": "V", "blob": blobs[i]})

        async def get(i: int) -> None:
            item = await eager.get({"PK": f"DOC#{i}", "SK": "V"})
            assert item is not None and len(item["blob"]) == size

        async def get_lazy(i: int) -> None:
            item = await lazy.get({"PK": f"DOC#{i}", "SK": "V"})
            assert item is not None and item["blob"].size == size

        for name, one in (("put", put), ("get", get), ("get lazy", get_lazy)):
            measured = await phase(args.items, args.concurrency, one)
            if round_:
                results[name].append(measured)

        # New keys each round: a batch write never deletes superseded objects anyway.
        batch = [
            {"PK": f"BATCH#{round_}#{i}", "SK": "V", "blob": os.urandom(size)}
            for i in range(args.items)
        ]
        measured = await timed(eager.batch_write(puts=batch))
        fed = [
            {"PK": f"WRITER#{round_}#{i}", "SK": "V", "blob": os.urandom(size)}
            for i in range(args.items)
        ]

        async def write_all(items: list[dict[str, Any]] = fed) -> None:
            async with eager.writer(max_in_flight=args.concurrency) as w:
                for item in items:
                    await w.put(item)

        written = await timed(write_all())
        if round_:
            results["batch_write"].append(measured)
            results["writer"].append(written)

    print(
        f"\n{args.items} items x {args.size_mb} MB attribute, {args.concurrency} in flight, "
        f"moto on loopback (S3 + DynamoDB), medians of {args.rounds} rounds"
    )
    print("| phase | items/s | MB/s | client CPU ms per item |")
    print("|---|---:|---:|---:|")
    for name, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        per_second = args.items / wall
        moved = per_second * args.size_mb if name != "get lazy" else 0.0
        print(f"| {name} | {per_second:,.1f} | {moved:,.1f} | {cpu / args.items * 1000:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--size-mb", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
