"""Client CPU per operation against a canned server: the issue's acceptance figure.

The canned server (:mod:`benchmarks.canned`, another process) answers GetItem with one
~1 KB item and Query with 50 of them, at a cost that never makes it the bottleneck. Each
client here runs N operations from ``--concurrency`` tasks; ``time.process_time()`` of this
process over the run, divided by N, is the client's CPU per operation. Rounds interleave
the clients; the table shows medians and the ratio to aiobotocore's raw client.

    python -m benchmarks.overhead [--ops N] [--rounds R] [--concurrency C]
                                  [--clients asyncdyn,aiobotocore,...] [--json FILE]
                                  [--profile asyncdyn]

Target (the issue): asyncdyn <= 0.25x aiobotocore's CPU per GetItem and per Query.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import io
import pstats
import sys
from collections.abc import Sequence

from .canned import CannedServer, start_canned
from .harness import (
    BASELINE,
    DEFAULT_CONCURRENCY,
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
from .peers import DEFAULT_PEERS, PEERS, Peer
from .workloads import WORKLOADS, Workload

TARGET = 0.25
DEFAULT_OPS = 3000
DEFAULT_ROUNDS = 5
DEFAULT_WORKLOADS = ("get", "query")
# A query moves 50 items: a third as many keeps its run about as long as get's.
QUERY_DIVISOR = 3
_PROFILE_LINES = 30


def overhead_table(summaries: Sequence[Summary]) -> str:
    headers = (
        "operation",
        "client",
        "CPU µs/op",
        "min-max µs",
        "ops/s",
        f"CPU vs {BASELINE} (paired)",
        "ratio of medians",
    )
    rows = [
        (
            s.workload,
            s.client,
            f"{s.cpu_us_per_op:,.1f}",
            f"{s.cpu_us_spread[0]:,.0f}-{s.cpu_us_spread[1]:,.0f}",
            f"{s.ops_per_s:,.0f}",
            "-" if s.cpu_vs_baseline_paired is None else f"{s.cpu_vs_baseline_paired:.3f}x",
            "-" if s.cpu_vs_baseline is None else f"{s.cpu_vs_baseline:.3f}x",
        )
        for s in summaries
    ]
    return format_table(headers, rows)


def verdicts(summaries: Sequence[Summary]) -> list[str]:
    lines = []
    for s in summaries:
        ratio = s.cpu_vs_baseline_paired
        if s.client == "asyncdyn" and ratio is not None:
            met = "met" if ratio <= TARGET else "MISSED"
            lines.append(
                f"{s.workload}: asyncdyn uses {ratio:.3f}x aiobotocore's CPU per operation "
                f"(median of per-round ratios; target <= {TARGET}x: {met})"
            )
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
    workloads = [WORKLOADS[name] for name in args.workload]
    ops_for = {
        name: (args.query_ops or max(1, args.ops // QUERY_DIVISOR)) if name == "query" else args.ops
        for name in args.workload
    }
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
            f"\nclient CPU per operation against the canned server; concurrency "
            f"{args.concurrency}; ops per round: "
            + ", ".join(f"{name} {n}" for name, n in ops_for.items())
            + f"; medians of {args.rounds} rounds\n"
        )
        print(overhead_table(summaries))
        print()
        for line in verdicts(summaries):
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
            target=TARGET,
        )
        write_json(args.json, meta, samples, summaries)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.overhead",
        description="Client CPU µs per GetItem and Query against a canned loopback server.",
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
        type=lambda v: split_names(v, ("get", "put", "query"), "workload"),
        default=list(DEFAULT_WORKLOADS),
        help="comma-separated from get, put, query (default: get,query)",
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
    if min(args.ops, args.rounds, args.concurrency, args.query_ops or 1) < 1:
        parser().error("--ops, --query-ops, --rounds and --concurrency must be positive")
    server = start_canned()
    try:
        return asyncio.run(_run(args, server))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
