"""asyncdyn alone, against an in-memory transport that hands back the canned server's bytes.

No sockets, no other client, no server process: only asyncdyn's own work (encoding, signing,
the checksum, parsing, decoding, batch bookkeeping) runs, so instruction counts under
callgrind are stable on a shared machine and the profile shows where asyncdyn's CPU goes.

    python -m benchmarks.inprocess [--workload get,query,batch_get,put,batch_write] [--ops N]
    valgrind --tool=callgrind --callgrind-out-file=cg.out \
        python -m benchmarks.inprocess --workload batch_get --ops 200
    ASYNCDYN_PURE=1 python -m benchmarks.inprocess ...   # the pure-Python decoder
    python -m benchmarks.inprocess --hot-keys ...        # with Client(hot_keys=True)

With ``--profile`` it prints cProfile's top functions instead of timing. The warm-up
operations run before the measured ones; under callgrind compare runs with different
``--ops`` (the difference divided by the extra operations is the cost of one).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncdyn
from asyncdyn import Client, Key, marshal
from asyncdyn.transport import HttpResponse

from .canned import BATCH_GET_ITEMS, BatchGetAnswers, answers
from .data import make_item

_TARGET = "x-amz-target"
_WARMUP = 20


class CannedTransport:
    """The canned server's answers, without the server: one ``send`` is one dict lookup."""

    def __init__(self) -> None:
        table, default = answers()
        self._table = {target: _split(raw) for target, raw in table.items()}
        self._default = _split(default)
        self._batch_get = BatchGetAnswers()
        self._batch_cache: dict[bytes, HttpResponse] = {}

    async def send(self, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        target = headers.get("X-Amz-Target") or headers.get(_TARGET) or ""
        if target.endswith("BatchGetItem"):
            response = self._batch_cache.get(body)
            if response is None:
                response = self._batch_cache[body] = _split(self._batch_get.answer(body))
            return response
        return self._table.get(target.encode(), self._default)

    async def close(self) -> None:
        return None


def _split(raw: bytes) -> HttpResponse:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("ascii").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return HttpResponse(status, headers, body)


def _operations(table: Any) -> dict[str, Callable[[], Awaitable[Any]]]:
    keys = [{"PK": f"BGET#{n:06d}", "SK": "ITEM"} for n in range(BATCH_GET_ITEMS)]
    items = [make_item("CUSTOMER#000123", f"ORDER#{n:08d}", n) for n in range(25)]

    async def get() -> Any:
        item = await table.get({"PK": "CUSTOMER#000123", "SK": "ORDER#00000000"})
        assert item is not None and item["PK"] == "CUSTOMER#000123"
        return item

    async def query() -> Any:
        page = await table.query_page(Key("PK").eq("CUSTOMER#000123"))
        assert len(page.items) == 50
        return page

    async def batch_get() -> Any:
        rows = await table.batch_get(keys)
        assert len(rows) == BATCH_GET_ITEMS and rows[-1]["PK"] == keys[-1]["PK"]
        return rows

    async def put() -> None:
        await table.put(items[0])

    async def batch_write() -> None:
        await table.batch_write(puts=items)

    return {
        "get": get,
        "query": query,
        "batch_get": batch_get,
        "put": put,
        "batch_write": batch_write,
    }


async def _run(args: argparse.Namespace) -> None:
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        credentials=("AKIDBENCHMARK", "benchmark-secret-key"),
        transport=CannedTransport(),
        hot_keys=args.hot_keys,
    ) as db:
        # The key stated: batch writes need it, and the canned transport has no DescribeTable.
        ops = _operations(db.table("bench", key=("PK", "SK")))
        print(
            f"asyncdyn {asyncdyn.__version__}, compiled decoder: {marshal.COMPILED}",
            file=sys.stderr,
        )
        for name in args.workload:
            op = ops[name]
            for _ in range(_WARMUP):
                await op()
            profiler = cProfile.Profile() if args.profile else None
            start = time.process_time()
            if profiler is not None:
                profiler.enable()
            for _ in range(args.ops):
                await op()
            if profiler is not None:
                profiler.disable()
            spent = time.process_time() - start
            print(f"{name}: {spent / args.ops * 1e6:,.1f} µs CPU per operation ({args.ops} ops)")
            if profiler is not None:
                pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.inprocess", description=__doc__)
    p.add_argument(
        "--workload",
        type=lambda v: [w for w in v.split(",") if w],
        default=["get", "query", "batch_get", "put", "batch_write"],
    )
    p.add_argument("--ops", type=int, default=200)
    p.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    p.add_argument("--hot-keys", action="store_true", help="count hot keys (Client(hot_keys=True))")
    args = p.parse_args(argv)
    asyncio.run(_run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
