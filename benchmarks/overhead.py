"""Client CPU per operation against a canned server: the issue's acceptance figure.

The canned server (:mod:`benchmarks.canned`, another process) answers GetItem with one
~1 KB item, Query with 50 of them and BatchGetItem with one per requested key (``batch_get``
here asks for 100 keys: one request, each client's own BatchGetItem call), at a cost that
never makes it the bottleneck. Each
client here runs N operations from ``--concurrency`` tasks; ``time.process_time()`` of this
process over the run, divided by N, is the client's CPU per operation (all of the process's
threads: pydynox's Rust runtime works on threads of its own). Rounds interleave the clients;
the table shows medians and the ratios to aiobotocore's raw client, to aiodynamo and to
pydynox's low-level client.

    python -m benchmarks.overhead [--ops N] [--rounds R] [--concurrency C]
                                  [--workload get,query,batch_get,put]
                                  [--clients asyncdyn,aiobotocore,...] [--json FILE]
                                  [--profile asyncdyn]

The event loop is uvloop's when it is installed (``pip install 'asyncdyn[fast]'``), unless
``ASYNCDYN_LOOP=asyncio``; the table's title says which.

Targets, asyncdyn's CPU per operation: issue 7's, GetItem <= 0.10x aiobotocore and <= 0.40x
aiodynamo, BatchGetItem (100 keys) <= 0.10x and <= 0.50x, Query (50 items) <= 0.12x and
<= 0.40x; issue 21's, each of the three <= 0.10x aiobotocore and <= 0.50x pydynox.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import pstats
import statistics
import sys
from collections.abc import Awaitable, Sequence
from functools import cache
from typing import Any

from asyncdyn.runner import loop_name, run

from .canned import BATCH_GET_ITEMS, CannedServer, start_canned
from .harness import (
    BASELINE,
    DEFAULT_CONCURRENCY,
    Sample,
    Summary,
    bind,
    drive,
    format_table,
    metadata,
    open_peers,
    run_matrix,
    split_names,
    summarize,
    write_json,
)
from .peers import DEFAULT_PEERS, PEERS, Item, Peer
from .workloads import WORKLOADS, Workload, check_item, configure

OTHER_BASELINES = ("aiodynamo", "pydynox")
"""The other clients each asyncdyn ratio is also taken against (paired, like aiobotocore's)."""
TARGETS: dict[str, dict[str, float]] = {
    "get": {BASELINE: 0.10, "aiodynamo": 0.40, "pydynox": 0.50},
    "batch_get": {BASELINE: 0.10, "aiodynamo": 0.50, "pydynox": 0.50},
    "query": {BASELINE: 0.10, "aiodynamo": 0.40, "pydynox": 0.50},
}
"""Ceilings of asyncdyn's CPU per operation as a fraction of each client's: issue 7's against
aiodynamo, issue 21's against aiobotocore (Query tightened from 0.12) and pydynox."""
DEFAULT_OPS = 3000
DEFAULT_ROUNDS = 5
DEFAULT_WORKLOADS = ("get", "query", "batch_get")
# A query moves 50 items: a third as many keeps its run about as long as get's.
QUERY_DIVISOR = 3
# A 100-key batch get costs about as much as 10 to 15 gets.
BATCH_DIVISOR = 15
_PROFILE_LINES = 30


@cache
def _batch_keys() -> tuple[Item, ...]:
    return tuple({"PK": f"BGET#{n:06d}", "SK": "ITEM"} for n in range(BATCH_GET_ITEMS))


def _batch_get(peer: Peer, i: int) -> Awaitable[Any]:
    return peer.batch_get(_batch_keys())


def _check_batch_get(peer: Peer, items: Any) -> None:
    found = [item for item in items if item is not None]
    if len(found) != BATCH_GET_ITEMS:
        raise AssertionError(
            f"{peer.name}: batch_get returned {len(found)} items, not {BATCH_GET_ITEMS}"
        )
    for item in (found[0], found[-1]):
        check_item(peer, item)
    pks = {peer.plain(item)["PK"] for item in found}
    if pks != {key["PK"] for key in _batch_keys()}:
        raise AssertionError(f"{peer.name}: batch_get answered other keys than it asked for")


BATCH_GET = Workload(
    name="batch_get",
    summary=f"BatchGetItem of {BATCH_GET_ITEMS} ~1 KB items (one request)",
    operation=_batch_get,
    check=_check_batch_get,
    items_per_op=BATCH_GET_ITEMS,
    warmup=20,
    requires="batch_get",
)
"""Not the harness's ``batch_get`` (10,000 keys, 100 requests): one request's worth."""

_WORKLOADS = {"get": WORKLOADS["get"], "put": WORKLOADS["put"], "query": WORKLOADS["query"]}
_WORKLOADS["batch_get"] = BATCH_GET


def paired_ratios(samples: Sequence[Sample], baseline: str) -> dict[tuple[str, str], float]:
    """(workload, client) -> median over rounds of CPU per op / ``baseline``'s that round."""
    base = {(s.workload, s.round): s.cpu_us_per_op for s in samples if s.client == baseline}
    ratios: dict[tuple[str, str], list[float]] = {}
    for s in samples:
        reference = base.get((s.workload, s.round))
        if reference:
            ratios.setdefault((s.workload, s.client), []).append(s.cpu_us_per_op / reference)
    return {pair: statistics.median(values) for pair, values in ratios.items()}


def overhead_table(summaries: Sequence[Summary], samples: Sequence[Sample]) -> str:
    others = {name: paired_ratios(samples, name) for name in OTHER_BASELINES}
    headers = (
        "operation",
        "client",
        "CPU µs/op",
        "min-max µs",
        "ops/s",
        f"CPU vs {BASELINE} (paired)",
        *(f"CPU vs {name} (paired)" for name in OTHER_BASELINES),
    )
    rows = []
    for s in summaries:
        ratios = [others[name].get((s.workload, s.client)) for name in OTHER_BASELINES]
        rows.append(
            (
                s.workload,
                s.client,
                f"{s.cpu_us_per_op:,.1f}",
                f"{s.cpu_us_spread[0]:,.0f}-{s.cpu_us_spread[1]:,.0f}",
                f"{s.ops_per_s:,.0f}",
                "-" if s.cpu_vs_baseline_paired is None else f"{s.cpu_vs_baseline_paired:.3f}x",
                *("-" if r is None else f"{r:.3f}x" for r in ratios),
            )
        )
    return format_table(headers, rows)


def verdicts(summaries: Sequence[Summary], samples: Sequence[Sample]) -> list[str]:
    others = {name: paired_ratios(samples, name) for name in OTHER_BASELINES}
    lines = []
    for s in summaries:
        if s.client != "asyncdyn" or s.workload not in TARGETS:
            continue
        checks = []
        for name, target in TARGETS[s.workload].items():
            ratio = (
                s.cpu_vs_baseline_paired
                if name == BASELINE
                else others[name].get((s.workload, s.client))
            )
            if ratio is not None:
                met = "met" if ratio <= target else "MISSED"
                checks.append(f"{ratio:.3f}x {name} (target <= {target}x: {met})")
        if checks:
            lines.append(f"{s.workload}: asyncdyn's CPU per operation is " + ", ".join(checks))
    if lines:
        lines.append("(each ratio: the median over rounds of the ratio within a round)")
    return lines


async def profile(
    peers: Sequence[Peer], workloads: Sequence[Workload], ops_for: dict[str, int], concurrency: int
) -> str:
    """One more run per (workload, peer) under cProfile; the top functions per operation.

    cProfile slows every Python call down, so the absolute figures are inflated; the
    split between functions is what this is for.
    """
    out = io.StringIO()
    for workload in workloads:
        ops = ops_for[workload.name]
        for peer in peers:
            profiler = cProfile.Profile()
            gc.collect()
            profiler.enable()
            try:
                await drive(bind(workload, peer), ops, concurrency, collect=False)
            finally:
                profiler.disable()
            stats = pstats.Stats(profiler, stream=io.StringIO())
            out.write(f"\n## {workload.name} / {peer.name}: top functions, µs per operation\n")
            out.write(_per_op_table(stats, ops))
    return out.getvalue()


def _per_op_table(stats: pstats.Stats, ops: int) -> str:
    entries = []
    # pstats keeps its table in .stats: (file, line, name) -> (cc, nc, tottime, cumtime, callers)
    for (filename, line, name), (_, calls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        entries.append((tottime, cumtime, calls, f"{_short(filename)}:{line}({name})"))
    entries.sort(reverse=True)
    total = sum(e[0] for e in entries)
    headers = ("own µs/op", "cum µs/op", "calls/op", "function")
    rows = [
        (f"{own / ops * 1e6:.1f}", f"{cum / ops * 1e6:.1f}", f"{calls / ops:.1f}", where)
        for own, cum, calls, where in entries[:_PROFILE_LINES]
    ]
    return (
        f"(profiled total {total / ops * 1e6:.0f} µs/op)\n\n" + _plain_table(headers, rows) + "\n"
    )


def _plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    # The function column comes last and is left-aligned, unlike format_table's layout.
    lines = ["| " + " | ".join(headers) + " |", "|" + "---:|" * (len(headers) - 1) + "---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/asyncdyn/", "/lib/python3"):
        if marker in filename:
            tail = filename.split(marker, 1)[1]
            return ("asyncdyn/" + tail) if marker == "/asyncdyn/" else tail
    return filename


async def _run(args: argparse.Namespace, server: CannedServer) -> int:
    # The canned server answers the same 50 items for any partition: checks expect those.
    configure(canned=True)
    workloads = [_WORKLOADS[name] for name in args.workload]
    ops_for = {name: _ops(args, name) for name in args.workload}
    async with contextlib.AsyncExitStack() as stack:
        peers = await open_peers(
            args.clients, server.endpoint_url, "canned", args.concurrency, stack
        )
        if not peers:
            print("no client could be set up", file=sys.stderr)
            return 1
        samples = await run_matrix(
            peers,
            workloads,
            ops_for=lambda w: ops_for[w.name],
            rounds=args.rounds,
            concurrency=args.concurrency,
            server=server,
            warmup=args.warmup,
            latencies=False,
        )
        summaries = summarize(samples)
        print(
            f"\nclient CPU per operation against the canned server; {loop_name()} event loop; "
            f"concurrency "
            f"{args.concurrency}; ops per round: "
            + ", ".join(f"{name} {n}" for name, n in ops_for.items())
            + f"; medians of {args.rounds} rounds\n"
        )
        print(overhead_table(summaries, samples))
        print()
        for line in verdicts(summaries, samples):
            print(line)
        if args.profile:
            chosen = [p for p in peers if p.name in args.profile]
            print(await profile(chosen, workloads, ops_for, args.concurrency))
    if args.json:
        meta = metadata(
            server="canned",
            concurrency=args.concurrency,
            rounds=args.rounds,
            ops=ops_for,
            targets=TARGETS,
            loop=loop_name(),
        )
        write_json(args.json, meta, samples, summaries)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def _ops(args: argparse.Namespace, workload: str) -> int:
    if workload == "query":
        return int(args.query_ops or max(1, args.ops // QUERY_DIVISOR))
    if workload == "batch_get":
        return int(args.batch_ops or max(1, args.ops // BATCH_DIVISOR))
    return int(args.ops)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.overhead",
        description="Client CPU µs per GetItem, Query and BatchGetItem against a canned "
        "loopback server.",
    )
    p.add_argument(
        "--ops",
        type=int,
        default=DEFAULT_OPS,
        help=f"GetItem (and PutItem) operations per client and round (default {DEFAULT_OPS})",
    )
    p.add_argument(
        "--query-ops",
        type=int,
        default=None,
        help=f"Query operations per client and round (default --ops / {QUERY_DIVISOR})",
    )
    p.add_argument(
        "--batch-ops",
        type=int,
        default=None,
        help="BatchGetItem (100 keys) operations per client and round "
        f"(default --ops / {BATCH_DIVISOR})",
    )
    p.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    p.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    p.add_argument(
        "--clients",
        type=lambda v: split_names(v, PEERS, "client"),
        default=[*DEFAULT_PEERS, "floor"],
        help=f"comma-separated from {','.join(PEERS)} (default: all; floor is the "
        "cost of a bare asyncio+httptools exchange, for reference)",
    )
    p.add_argument(
        "--workload",
        type=lambda v: split_names(v, _WORKLOADS, "workload"),
        default=list(DEFAULT_WORKLOADS),
        help="comma-separated from get, put, query, batch_get (default: get,query,batch_get)",
    )
    p.add_argument("--warmup", type=int, default=200, help="untimed operations per client first")
    p.add_argument(
        "--profile",
        type=lambda v: split_names(v, PEERS, "client"),
        default=None,
        metavar="CLIENTS",
        help="after measuring, profile these clients (cProfile) and print where CPU goes",
    )
    p.add_argument("--json", metavar="FILE", help="also write every sample and the medians here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if min(args.ops, args.rounds, args.concurrency, args.query_ops or 1, args.batch_ops or 1) < 1:
        parser().error(
            "--ops, --query-ops, --batch-ops, --rounds and --concurrency must be positive"
        )
    server = start_canned()
    try:
        return run(_run(args, server))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
