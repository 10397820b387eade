"""How fast a table comes out of DynamoDB three ways, on a local moto server:

* ``scan``: ``asyncdyn export --out`` (a parallel scan, ``--segments 4``) in one process;
* ``parts``: the same split ``--part i/3`` over three processes at once;
* ``native``: ``asyncdyn export --native ... --download``: DynamoDB's own export to S3,
  then the data files read back concurrently into JSON lines. Its figures are the download
  alone (moto finishes an export at once; AWS takes minutes, without read capacity).

Run: ``python -m benchmarks.native_export [ITEMS]`` (default 20,000). Prints items/s and
the client CPU per item of each way. moto, not the client, bounds the scan figures: compare
the client CPU columns, and the download rate, which no server scan limits.
"""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory

import asyncdyn
from asyncdyn import Client, local

ROOT = Path(asyncdyn.__file__).parent.parent


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(argv: list[str], parts: int = 1) -> tuple[float, float]:
    """Wall seconds and client CPU seconds of ``asyncdyn ARGV`` in ``parts`` processes."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cpu, start = children_cpu(), time.perf_counter()
    extra = [[]] if parts == 1 else [["--part", f"{i}/{parts}"] for i in range(parts)]
    processes = [
        subprocess.Popen([sys.executable, "-m", "asyncdyn.cli", *argv, *more], env=env)
        for more in extra
    ]
    if any(process.wait() != 0 for process in processes):
        raise SystemExit(f"failed: {argv}")
    return time.perf_counter() - start, children_cpu() - cpu


async def fill(url: str, table: str, bucket: str, count: int) -> None:
    async with Client(region="us-east-1", endpoint_url=url, credentials=("a", "b")) as db:
        t = await db.create_table(table, partition_key="PK", sort_key=("SK", "N"))
        await t.batch_write(
            puts=(
                {"PK": f"user#{i:07d}", "SK": i % 9, "name": f"name {i}", "n": i, "doc": {"a": [1]}}
                for i in range(count)
            )
        )
        await t.enable_point_in_time_recovery()
        async with t.s3() as s3:
            await s3.client.create_bucket(Bucket=bucket)


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with local.start("moto") as server, TemporaryDirectory() as tmp:
        url, table, bucket = server.endpoint_url, f"bench-{uuid.uuid4().hex[:8]}", "bench-bkt"
        asyncio.run(fill(url, table, bucket, count))
        common = ["--table", table, "--endpoint-url", url, "--no-progress"]
        out = Path(tmp) / "out.jsonl"
        results = {
            "scan": run(["export", "--out", str(out), "--segments", "4", *common]),
            "parts": run(["export", "--out", str(out), "--segments", "4", *common], parts=3),
        }
        # The export itself first, then its download alone.
        run(["export", "--native", f"s3://{bucket}/x", *common])
        download = ["export", "--native", f"s3://{bucket}/y", "--download", str(out), *common]
        native_wall, native_cpu = run(download)
        # The export request and its polling, measured apart, are taken off the download.
        bare_wall, bare_cpu = run(["export", "--native", f"s3://{bucket}/z", *common])
        results["native"] = (native_wall - bare_wall, native_cpu - bare_cpu)
        lines = sum(1 for _ in out.open("rb"))
        assert lines == count, (lines, count)
    print(f"{count:,} items, moto on loopback")
    print(f"{'way':<8} {'seconds':>8} {'items/s':>10} {'client CPU µs/item':>20}")
    for way, (wall, cpu) in results.items():
        print(f"{way:<8} {wall:>8.2f} {count / wall:>10,.0f} {cpu / count * 1e6:>20.1f}")


if __name__ == "__main__":
    main()
