"""Entity reads vs raw-dict reads: client CPU per operation against the canned server.

The canned server (another process) answers GetItem with one ~1 KB order item and Query with
50; the entity ``CannedOrder`` declares that item's fields, with ``customer_id`` and
``order_id`` read back from the key templates (the canned items do not store them, as a
design that keeps key fields only in the key would not). Each round runs the raw ``Table``
call and the repository call ``--ops`` times from ``--concurrency`` tasks; rounds
interleave; the table shows the median CPU per op and the entity/raw ratio (target: 1.3x).
``collection(50)`` reads a Customer+Order collection (the canned partition holds only the 50
orders) against the raw partition query; ``batch_get(100)`` 100 typed refs against 100 keys.

    python -m benchmarks.entities [--ops N] [--rounds R] [--concurrency C] [--peers]

``--inprocess get.raw,get.entity,...`` runs those operations one after another against
``benchmarks.inprocess``'s in-memory transport (the canned server's bytes, no sockets, no
server): only asyncdyn's own work runs, so under callgrind the instruction counts are stable
on a shared machine. Each operation's loop runs inside its own C function (printed next to
it): that function's inclusive instruction count divided by ``--ops`` is one operation's
cost, start-up and warm-up excluded::

    ALL=get.raw,get.entity,query.raw,query.entity,collection.raw,collection.entity
    ALL=$ALL,batch_get.raw,batch_get.entity
    valgrind --tool=callgrind --callgrind-out-file=cg.out \\
        python -m benchmarks.entities --inprocess $ALL --ops 40
    python -m benchmarks.entities --inprocess $ALL --ops 40 --report cg.out

``--report`` reads the callgrind file (through ``callgrind_annotate``) instead of running,
and prints instructions per operation and the entity/raw ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from asyncdyn import Client, Key
from asyncdyn.model import Design, Entity, Repository
from asyncdyn.runner import loop_name, run

from .canned import start_canned
from .entity_peers import pydynox_ops, pynamodb_ops
from .inprocess import CannedTransport

bench = Design("bench")


@bench.entity("Order")
class CannedOrder(Entity):
    customer_id: str
    order_id: str
    status: str
    total: Decimal
    quantity: int
    created: int
    gift: bool
    customer: dict[str, Any]
    tags: list[str]
    note: str
    key = bench.key(pk="CUSTOMER#{customer_id}", sk="ORDER#{order_id}")


@bench.entity("Customer")
class CannedCustomer(Entity):
    customer_id: str
    name: str
    key = bench.key(pk="CUSTOMER#{customer_id}", sk="METADATA")


customer_page = bench.collection("customer_page", CannedCustomer, CannedOrder)
BATCH = 100


Op = Callable[[], Awaitable[Any]]


def operations(db: Client, repo: Repository) -> dict[str, Op]:
    table = db.table("bench")
    key = {"PK": "CUSTOMER#000123", "SK": "ORDER#00000000"}
    condition = Key("PK").eq("CUSTOMER#000123") & Key("SK").begins_with("ORDER#")

    async def raw_get() -> Any:
        return await table.get(key)

    async def entity_get() -> Any:
        return await repo.get(CannedOrder, customer_id="000123", order_id="00000000")

    async def raw_query() -> Any:
        return [i async for i in table.query(condition)]

    async def entity_query() -> Any:
        return [o async for o in repo.query(CannedOrder, customer_id="000123")]

    async def raw_collection() -> Any:
        return [i async for i in table.query(Key("PK").eq("CUSTOMER#000123"))]

    async def entity_collection() -> Any:
        return [r async for r in repo.query(customer_page, customer_id="000123")]

    keys = [{"PK": f"CUSTOMER#{n:06d}", "SK": "ORDER#00000001"} for n in range(BATCH)]
    refs = [CannedOrder.ref(customer_id=f"{n:06d}", order_id="00000001") for n in range(BATCH)]

    async def raw_batch_get() -> Any:
        return await table.batch_get(keys)

    async def entity_batch_get() -> Any:
        return await repo.batch_get(refs)

    return {
        "get raw": raw_get,
        "get entity": entity_get,
        "query(50) raw": raw_query,
        "query(50) entity": entity_query,
        "collection(50) raw": raw_collection,
        "collection(50) entity": entity_collection,
        "batch_get(100) raw": raw_batch_get,
        "batch_get(100) entity": entity_batch_get,
    }


async def measure(op: Op, ops: int, concurrency: int) -> float:
    """CPU seconds of this process per operation."""
    per_task = ops // concurrency

    async def worker() -> None:
        for _ in range(per_task):
            await op()

    start = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - start) / (per_task * concurrency)


async def main_async(
    ops: int, rounds: int, concurrency: int, peers: bool
) -> dict[str, list[float]]:
    with start_canned() as server:
        async with Client(
            region="us-east-1",
            endpoint_url=server.endpoint_url,
            credentials=("bench", "bench"),
        ) as db:
            repo = bench.bind(db)
            ops_by_name = operations(db, repo)
            if peers:
                ops_by_name.update(pydynox_ops(server.endpoint_url, "bench"))
                ops_by_name.update(pynamodb_ops(server.endpoint_url, "bench"))
                for name in [n for n in ops_by_name if "pydynox" in n or "pynamodb" in n]:
                    # Each peer really reads and decodes what the canned server sends.
                    result = await ops_by_name[name]()
                    if name.startswith("get"):
                        assert result is not None and result.status, (name, result)
                    else:
                        assert len(result) == 50 and result[-1].note, (name, len(result))
            got = await ops_by_name["get entity"]()
            assert isinstance(got, CannedOrder) and got.order_id == "00000000", got
            rows = await ops_by_name["query(50) entity"]()
            assert len(rows) == 50 and all(isinstance(r, CannedOrder) for r in rows)
            both = await ops_by_name["collection(50) entity"]()
            assert len(both) == 50 and all(isinstance(r, CannedOrder) for r in both)
            batch = await ops_by_name["batch_get(100) entity"]()
            assert len(batch) == BATCH and all(isinstance(r, CannedOrder) for r in batch)
            samples: dict[str, list[float]] = {name: [] for name in ops_by_name}
            for op in ops_by_name.values():  # warm-up
                await measure(op, concurrency * 10, concurrency)
            for _ in range(rounds):
                for name, op in ops_by_name.items():
                    divisor = 1 if name.startswith("get") else 3 if "50" in name else 10
                    n = max(ops // divisor, concurrency)
                    samples[name].append(await measure(op, n, concurrency))
            return samples


# ``--inprocess`` names: read.kind -> the operation's name in ``operations``.
_READS = {"get": "get", "query": "query(50)", "collection": "collection(50)"}
_READS["batch_get"] = "batch_get(100)"


def _through(
    c_function: Callable[[Callable[[Any], Any]], Any],
) -> Callable[[Callable[[], Any]], Any]:
    """Call ``body`` once from inside a distinct C function, so that callgrind's inclusive
    cost of that function is exactly the body's (``callgrind_annotate --inclusive=yes``)."""
    return lambda body: c_function(lambda _: body())


# One C function per measured operation (CPython 3.11/3.12 names, as callgrind shows them).
_WRAPPERS: list[tuple[str, Callable[[Callable[[], Any]], Any]]] = [
    ("builtin_sorted", _through(lambda f: sorted([0], key=f))),
    ("builtin_min", _through(lambda f: min([0], key=f))),
    ("map_next", _through(lambda f: list(map(f, [0])))),
    ("filter_next", _through(lambda f: list(filter(f, [0])))),
    ("functools_reduce", _through(lambda f: functools.reduce(lambda a, b: f(b), [0, 0]))),
    ("starmap_next", _through(lambda f: list(itertools.starmap(f, [(0,)])))),
    ("dropwhile_next", _through(lambda f: list(itertools.dropwhile(f, [0])))),
    ("takewhile_next", _through(lambda f: list(itertools.takewhile(f, [0])))),
]


def inprocess(names: list[str], ops: int) -> None:
    """``ops`` of each named operation, one after another, on the in-memory transport; the
    n-th operation's loop runs inside the n-th C function of ``_WRAPPERS`` (printed), for
    callgrind."""
    loop = asyncio.new_event_loop()
    try:
        db = Client(
            region="us-east-1",
            endpoint_url="http://127.0.0.1:1",
            credentials=("bench", "bench"),
            transport=CannedTransport(),
        )
        loop.run_until_complete(db.__aenter__())
        by_name = operations(db, bench.bind(db))

        async def repeat(op: Op, n: int) -> None:
            for _ in range(n):
                await op()

        for (c_name, wrap), short in zip(_WRAPPERS, names, strict=False):
            read, _, kind = short.partition(".")
            op = by_name[f"{_READS[read]} {kind}"]
            # Warm-up: caches, compiled plans, first allocations.
            loop.run_until_complete(repeat(op, 20))
            start = time.process_time()
            wrap(lambda op=op: loop.run_until_complete(repeat(op, ops)))  # type: ignore[misc]
            spent = time.process_time() - start
            print(
                f"{short}: {spent / max(ops, 1) * 1e6:,.1f} us CPU per operation ({ops} ops), "
                f"measured inside {c_name}"
            )
        loop.run_until_complete(db.__aexit__(None, None, None))
    finally:
        loop.close()


def report(path: str, names: list[str], ops: int) -> None:
    """Instructions per operation from a callgrind file of ``--inprocess names --ops ops``:
    the inclusive count of each operation's C function, divided by ``ops``."""
    shown = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    inclusive: dict[str, int] = {}
    for line in shown.splitlines():
        count, _, rest = line.strip().partition(" ")
        function = rest.rsplit(":", 1)[-1].split(" ")[0] if ":" in rest else ""
        if count.replace(",", "").isdigit() and function and function not in inclusive:
            inclusive[function] = int(count.replace(",", ""))
    per_op = {}
    for (c_name, _), short in zip(_WRAPPERS, names, strict=False):
        per_op[short] = inclusive[c_name] / ops
        print(f"{short:<20} {per_op[short]:>14,.0f} instructions per operation")
    for read in _READS:
        raw, entity = per_op.get(f"{read}.raw"), per_op.get(f"{read}.entity")
        if raw and entity:
            print(f"{read:<12} entity / raw {entity / raw:.3f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--inprocess",
        type=lambda v: [w for w in v.split(",") if w],
        default=None,
        help="read.kind,... (get, query, collection, batch_get; raw or entity): in-memory "
        "transport, one after another, for callgrind",
    )
    parser.add_argument("--ops", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--peers", action="store_true", help="also pydynox and PynamoDB models, when importable"
    )
    parser.add_argument("--report", help="a callgrind file of an --inprocess run: its figures")
    args = parser.parse_args(argv)
    if args.inprocess is not None and args.report:
        report(args.report, args.inprocess, args.ops)
        return 0
    if args.inprocess is not None:
        inprocess(args.inprocess, args.ops)
        return 0
    samples = run(main_async(args.ops, args.rounds, args.concurrency, args.peers))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"entity vs raw reads, client CPU per op (median of {args.rounds}, {loop_name()})")
    for op in ("get", "query(50)", "collection(50)", "batch_get(100)"):
        raw, entity = medians[f"{op} raw"], medians[f"{op} entity"]
        # Paired per round (raw and entity ran back to back): steadier than the ratio of
        # medians on a machine shared with other work.
        ratios = sorted(
            e / r for e, r in zip(samples[f"{op} entity"], samples[f"{op} raw"], strict=True)
        )
        print(
            f"{op:<15} raw {raw * 1e6:8.1f} us   entity {entity * 1e6:8.1f} us   "
            f"paired ratio {statistics.median(ratios):.2f}x "
            f"(min {ratios[0]:.2f}, max {ratios[-1]:.2f})"
        )
    for peer in ("pydynox", "pynamodb"):
        for op in ("get", "query(50)"):
            name = f"{op} {peer}"
            if name in medians:
                entity = medians[f"{op} entity"]
                ratios = sorted(
                    e / p for e, p in zip(samples[f"{op} entity"], samples[name], strict=True)
                )
                print(
                    f"{name:<20} {medians[name] * 1e6:8.1f} us   asyncdyn entity / {peer} "
                    f"paired {statistics.median(ratios):.2f}x ({entity * 1e6:.1f} us)"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
