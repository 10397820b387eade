"""The benchmark harness: run workloads for several clients side by side and report.

Every (workload, client) pair runs ``ops`` operations from ``concurrency`` tasks, each
issuing its calls one after another (a bulk workload such as batch_get sets its own
concurrency, 1: its one operation already fans out). A client without the method a
workload needs skips it, shown as "n/a". Rounds interleave the clients (the order rotates each
round) so a burst of machine noise hits them all alike, and the tables show medians over
rounds. Client CPU is ``time.process_time()`` of this process; the server always runs in
another process, whose CPU is read from /proc.

The default run (every workload, four clients, dynalite) is sized to finish in about 90 s on
two quiet cores, seeding and server start included: README's first command installs and runs
it in under 3 minutes on a fresh machine. The bulk workloads move 10,000 items per operation
and run one round by default (one operation is already 100 to 400 requests).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import ipaddress
import json
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from asyncdyn.runner import run

from .peers import DEFAULT_PEERS, PEERS, Peer, make_peer
from .workloads import BATCH_ITEMS, WORKLOADS, Workload, configure

__all__ = [
    "Sample",
    "Server",
    "Summary",
    "bind",
    "drive",
    "format_table",
    "main",
    "metadata",
    "open_peers",
    "run_matrix",
    "summarize",
]

BASELINE = "aiobotocore"
DEFAULT_WORKLOADS = tuple(name for name, w in WORKLOADS.items() if w.in_default_run)
DEFAULT_CONCURRENCY = 16
DEFAULT_ROUNDS = 3
DEFAULT_WARMUP = 100
MOTO_SCALE = 10
_LOOPBACK_NAMES = ("localhost",)


class Server(Protocol):
    """What the harness needs of a server it started (``LocalServer``, ``CannedServer``)."""

    kind: str
    endpoint_url: str

    def cpu_seconds(self) -> float: ...

    def stop(self) -> None: ...


@dataclass(slots=True)
class Sample:
    """One (round, workload, client) run."""

    client: str
    workload: str
    round: int
    ops: int
    items: int
    wall_s: float
    cpu_s: float
    server_cpu_s: float | None
    latencies: list[float] | None = field(default=None, repr=False)
    concurrency: int | None = None

    @property
    def cpu_us_per_op(self) -> float:
        return self.cpu_s / self.ops * 1e6

    @property
    def cpu_us_per_item(self) -> float:
        return self.cpu_s / max(1, self.items) * 1e6

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.wall_s

    def record(self) -> dict[str, Any]:
        """The sample for JSON: latencies reduced to percentiles."""
        data = asdict(self)
        lat = data.pop("latencies")
        data["cpu_us_per_op"] = self.cpu_us_per_op
        data["cpu_us_per_item"] = self.cpu_us_per_item
        data["ops_per_s"] = self.ops_per_s
        data["items_per_s"] = self.items / self.wall_s
        if lat:
            data["p50_ms"] = _percentile(sorted(lat), 0.50) * 1e3
            data["p99_ms"] = _percentile(sorted(lat), 0.99) * 1e3
        return data


@dataclass(slots=True)
class Summary:
    """Medians over the rounds of one (workload, client) pair."""

    client: str
    workload: str
    rounds: int
    ops_per_s: float
    items_per_s: float
    cpu_us_per_op: float
    cpu_us_spread: tuple[float, float]
    """Lowest and highest CPU µs/op over the rounds."""
    cpu_us_per_item: float
    p50_ms: float | None
    p99_ms: float | None
    server_share: float | None
    """Server CPU seconds per wall second (1.0 = one core busy all the time)."""
    cpu_vs_baseline: float | None
    """Median CPU µs/op divided by aiobotocore's median for the same workload."""
    cpu_vs_baseline_paired: float | None
    """Median over rounds of (CPU µs/op / aiobotocore's in the same round): machine noise
    that slows a whole round down cancels out of each ratio."""


def _percentile(ordered: Sequence[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(
    call: Callable[[int], Awaitable[Any]],
    ops: int,
    concurrency: int,
    latencies: list[float] | None = None,
    *,
    collect: bool = True,
) -> tuple[float, float, Any]:
    """Run ``call(0) .. call(ops - 1)`` from ``concurrency`` tasks, each awaiting in turn.

    Returns (wall seconds, client CPU seconds, the last result) and appends each call's
    latency to ``latencies`` when given. ``collect`` runs the garbage collector first.
    """
    next_index = 0
    last: Any = None
    perf = time.perf_counter

    async def worker() -> None:
        nonlocal next_index, last
        while next_index < ops:
            index = next_index
            next_index += 1
            if latencies is None:
                last = await call(index)
            else:
                started = perf()
                last = await call(index)
                latencies.append(perf() - started)

    if collect:
        # Garbage left by the previous client must not be collected on this one's time.
        gc.collect()
    cpu0, wall0 = time.process_time(), perf()
    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, ops)):
            group.create_task(worker())
    wall, cpu = perf() - wall0, time.process_time() - cpu0
    return wall, cpu, last


async def open_peers(
    names: Iterable[str],
    endpoint_url: str,
    table: str,
    concurrency: int,
    stack: contextlib.AsyncExitStack,
) -> list[Peer]:
    """Set up each named adapter (closed by ``stack``); a missing library is skipped."""
    peers: list[Peer] = []
    for name in names:
        peer = make_peer(name)
        try:
            await peer.setup(endpoint_url, table, concurrency=concurrency)
        except ImportError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
            continue
        stack.push_async_callback(peer.close)
        peers.append(peer)
    return peers


async def run_matrix(
    peers: Sequence[Peer],
    workloads: Sequence[Workload],
    *,
    ops_for: Callable[[Workload], int],
    rounds: int,
    concurrency: int,
    server: Server | None,
    warmup: int = DEFAULT_WARMUP,
    latencies: bool = True,
    skipped: list[tuple[str, str]] | None = None,
    rounds_for: Callable[[Workload], int] | None = None,
    warmup_for: Callable[[Workload], int] | None = None,
) -> list[Sample]:
    """Warm every client up on every workload, then run the interleaved rounds.

    A workload's own ``concurrency``, ``warmup`` and ``warm`` operation win over the
    arguments, and ``warmup_for`` (the warm-up operations per client) over those;
    ``rounds_for`` gives a workload fewer rounds than ``rounds`` (it then runs in the
    first ones). A client that does not support a workload (``Workload.supports``,
    or ``NotImplementedError`` from its first operation) skips it; the (workload, client)
    pair is appended to ``skipped``.
    """
    runnable: dict[str, list[Peer]] = {}
    for workload in workloads:
        tasks = workload_concurrency(workload, concurrency)
        # At least one operation per task by default, so that every connection is open; a
        # workload's own count is enough as it is (a fan-out opens ten at once).
        if warmup_for is not None:
            warm = warmup_for(workload)
        elif workload.warmup is not None:
            warm = workload.warmup
        else:
            warm = max(warmup, tasks)
        runnable[workload.name] = []
        for peer in peers:
            if not workload.supports(peer):
                _skip(workload, peer, skipped)
                continue
            # Opens the pool's connections and fills lazy caches (botocore loads its models).
            implemented = True
            try:
                _, _, result = await drive(
                    bind(workload, peer, warm=True), warm, tasks, collect=False
                )
            except* NotImplementedError:
                implemented = False
            if not implemented:
                _skip(workload, peer, skipped)
                continue
            if workload.warm is None and warm > 0:
                workload.check(peer, result)
            runnable[workload.name].append(peer)
    # Everything alive now (libraries, service models, the workloads' data) lives to the
    # end: frozen, it is no longer walked by the collection before each sample, which
    # otherwise took ~0.15 s per sample here, longer than a small sample itself.
    gc.collect()
    gc.freeze()
    try:
        return await _rounds(
            peers, workloads, runnable, ops_for, rounds, concurrency, server, latencies, rounds_for
        )
    finally:
        gc.unfreeze()


async def _rounds(
    peers: Sequence[Peer],
    workloads: Sequence[Workload],
    runnable: dict[str, list[Peer]],
    ops_for: Callable[[Workload], int],
    rounds: int,
    concurrency: int,
    server: Server | None,
    latencies: bool,
    rounds_for: Callable[[Workload], int] | None,
) -> list[Sample]:
    samples: list[Sample] = []
    for round_ in range(rounds):
        shift = round_ % len(peers)
        order = [*peers[shift:], *peers[:shift]]
        for workload in workloads:
            total = rounds if rounds_for is None else min(rounds, rounds_for(workload))
            if round_ >= total:
                continue
            ops = ops_for(workload)
            tasks = workload_concurrency(workload, concurrency)
            for peer in order:
                if peer not in runnable[workload.name]:
                    continue
                lat: list[float] | None = [] if latencies else None
                server_cpu0 = server.cpu_seconds() if server is not None else 0.0
                wall, cpu, result = await drive(bind(workload, peer), ops, tasks, lat)
                server_cpu = server.cpu_seconds() - server_cpu0 if server is not None else None
                workload.check(peer, result)
                sample = Sample(
                    client=peer.name,
                    workload=workload.name,
                    round=round_ + 1,
                    ops=ops,
                    items=ops * workload.items_moved(),
                    wall_s=wall,
                    cpu_s=cpu,
                    server_cpu_s=server_cpu,
                    latencies=lat,
                    concurrency=tasks,
                )
                samples.append(sample)
                items = f" {sample.items / wall:9.0f} items/s" if sample.items > ops else ""
                print(
                    f"  round {round_ + 1}/{total} {workload.name:<11} {peer.name:<12}"
                    f" {sample.ops_per_s:9.1f} ops/s{items} {sample.cpu_us_per_op:11.1f} µs CPU/op",
                    file=sys.stderr,
                )
    return samples


def workload_concurrency(workload: Workload, default: int) -> int:
    """The tasks ``workload`` runs from: its own setting, else the harness's."""
    return workload.concurrency if workload.concurrency is not None else default


def _skip(workload: Workload, peer: Peer, skipped: list[tuple[str, str]] | None) -> None:
    print(f"  {workload.name}: {peer.name} does not support it, skipped (n/a)", file=sys.stderr)
    if skipped is not None:
        skipped.append((workload.name, peer.name))


def bind(workload: Workload, peer: Peer, *, warm: bool = False) -> Callable[[int], Awaitable[Any]]:
    """``workload``'s operation for ``peer`` (its warm-up one with ``warm``), as ``drive``
    calls it."""
    operation = (workload.warm if warm else None) or workload.operation
    return lambda index: operation(peer, index)


def summarize(samples: Sequence[Sample]) -> list[Summary]:
    """Medians per (workload, client), in the order first seen; latencies pooled over rounds."""
    groups: dict[tuple[str, str], list[Sample]] = {}
    for sample in samples:
        groups.setdefault((sample.workload, sample.client), []).append(sample)
    summaries: list[Summary] = []
    for (workload, client), group in groups.items():
        cpu = [s.cpu_us_per_op for s in group]
        pooled = sorted(x for s in group for x in (s.latencies or ()))
        shares = [s.server_cpu_s / s.wall_s for s in group if s.server_cpu_s is not None]
        summaries.append(
            Summary(
                client=client,
                workload=workload,
                rounds=len(group),
                ops_per_s=statistics.median(s.ops_per_s for s in group),
                items_per_s=statistics.median(s.items / s.wall_s for s in group),
                cpu_us_per_op=statistics.median(cpu),
                cpu_us_spread=(min(cpu), max(cpu)),
                cpu_us_per_item=statistics.median(s.cpu_us_per_item for s in group),
                p50_ms=_percentile(pooled, 0.50) * 1e3 if pooled else None,
                p99_ms=_percentile(pooled, 0.99) * 1e3 if pooled else None,
                server_share=statistics.median(shares) if shares else None,
                cpu_vs_baseline=None,
                cpu_vs_baseline_paired=None,
            )
        )
    baseline = {s.workload: s.cpu_us_per_op for s in summaries if s.client == BASELINE}
    per_round = {(s.workload, s.round): s.cpu_us_per_op for s in samples if s.client == BASELINE}
    for summary in summaries:
        base = baseline.get(summary.workload)
        if base:
            summary.cpu_vs_baseline = summary.cpu_us_per_op / base
        paired = [
            s.cpu_us_per_op / per_round[s.workload, s.round]
            for s in groups[summary.workload, summary.client]
            if (s.workload, s.round) in per_round
        ]
        if paired:
            summary.cpu_vs_baseline_paired = statistics.median(paired)
    return summaries


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Markdown table, columns padded so it also reads well in a terminal."""
    table = [list(headers), *[list(row) for row in rows]]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = (
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(("-" * (w + 1) + ":") if i >= 2 else "-" * (w + 2) for i, w in enumerate(widths))
        + "|"
    )
    return "\n".join([line(table[0]), rule, *(line(row) for row in table[1:])])


def _fmt(value: float | None, spec: str, suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def _rate(value: float) -> str:
    """Operations per second: whole numbers, but a bulk workload's 0.4 stays readable."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def harness_table(summaries: Sequence[Summary], skipped: Sequence[tuple[str, str]] = ()) -> str:
    """The results, one row per (client, workload); ``skipped`` pairs as "n/a" rows."""
    headers = (
        "client",
        "workload",
        "ops/s",
        "items/s",
        "p50 ms",
        "p99 ms",
        "CPU µs/op",
        "CPU µs/item",
        f"CPU vs {BASELINE}",
        "server CPU",
    )
    rows: list[tuple[str, ...]] = [
        (
            s.client,
            s.workload,
            _rate(s.ops_per_s),
            f"{s.items_per_s:,.0f}",
            _fmt(s.p50_ms, ".2f"),
            _fmt(s.p99_ms, ".2f"),
            f"{s.cpu_us_per_op:,.0f}",
            f"{s.cpu_us_per_item:,.1f}" if s.cpu_us_per_item < 100 else f"{s.cpu_us_per_item:,.0f}",
            _fmt(s.cpu_vs_baseline_paired, ".2f", "x"),
            _fmt(None if s.server_share is None else s.server_share * 100, ".0f", "%"),
        )
        for s in summaries
    ]
    for workload, client in skipped:
        # Right after the workload's last row so far (at the end if it has none).
        at = max((i + 1 for i, row in enumerate(rows) if row[1] == workload), default=len(rows))
        rows.insert(at, (client, workload, *["n/a"] * (len(headers) - 2)))
    return format_table(headers, rows)


def metadata(**extra: Any) -> dict[str, Any]:
    """Where and with what a run was made, for the JSON output."""
    versions = {}
    for peer in PEERS.values():
        dist = peer().distribution
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[dist] = importlib.metadata.version(dist)
    for dist in ("botocore", "aiohttp", "orjson", "httptools"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[dist] = importlib.metadata.version(dist)
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "argv": sys.argv,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg(),
        "versions": versions,
        **extra,
    }


def write_json(path: str, meta: dict[str, Any], samples: Sequence[Sample], summaries: Any) -> None:
    out = {
        "meta": meta,
        "summary": [asdict(s) for s in summaries],
        "samples": [s.record() for s in samples],
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(out, indent=2) + "\n")


def split_names(value: str, known: Iterable[str], what: str) -> list[str]:
    """A comma-separated choice list, checked against ``known``."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    known = list(known)
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown) or '(none given)'}; choose from {', '.join(known)}"
        )
    return names


def check_loopback(endpoint_url: str) -> str:
    """Refuse any endpoint but the loopback: a benchmark must never load a real table."""
    host = urlsplit(endpoint_url).hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host in _LOOPBACK_NAMES
    if not loopback:
        raise argparse.ArgumentTypeError(
            f"{endpoint_url!r} is not on this machine: only loopback endpoints are benchmarked"
        )
    return endpoint_url.rstrip("/")


def start_server(kind: str) -> Server:
    if kind == "canned":
        from .canned import start_canned

        return start_canned()
    from asyncdyn.local import dynalite_path, start

    if kind == "auto" and dynalite_path() is None:
        print(
            "dynalite is not installed, so moto serves (about 10x slower, one request at a "
            "time); to install dynalite (Node.js and npm needed): python -c "
            "'import asyncdyn.local as l; l.install_dynalite()'",
            file=sys.stderr,
        )
    server: Server = start(kind)
    return server


async def _prepare_table(endpoint_url: str, table: str, workloads: Sequence[Workload]) -> None:
    from asyncdyn import Client

    from .peers import ACCESS_KEY, REGION, SECRET_KEY

    async with Client(
        region=REGION, endpoint_url=endpoint_url, credentials=(ACCESS_KEY, SECRET_KEY)
    ) as db:
        target = await db.create_table(table, partition_key="PK", sort_key="SK")
        for workload in workloads:
            if workload.seed is not None:
                await workload.seed(target)


async def _drop_table(endpoint_url: str, table: str) -> None:
    from asyncdyn import Client

    from .peers import ACCESS_KEY, REGION, SECRET_KEY

    async with Client(
        region=REGION, endpoint_url=endpoint_url, credentials=(ACCESS_KEY, SECRET_KEY)
    ) as db:
        await db.delete_table(table)


async def _run(args: argparse.Namespace, server: Server | None, started: float) -> int:
    endpoint_url = server.endpoint_url if server is not None else args.endpoint_url
    canned = server is not None and server.kind == "canned"
    workloads = [WORKLOADS[name] for name in args.workload]
    # moto serves one request at a time on a fresh connection (~10x slower than dynalite):
    # the default counts would keep a run going for many minutes.
    scale = MOTO_SCALE if server is not None and server.kind == "moto" else 1
    defaults = (("operation counts", args.ops), ("--items", args.items))
    scaled = [what for what, given in defaults if not given]
    if scale > 1 and scaled:
        print(f"moto: default {' and '.join(scaled)} divided by {scale}", file=sys.stderr)
    sizes = configure(args.items or BATCH_ITEMS // scale, canned=canned)
    table = "canned" if canned else f"asyncdyn-bench-{uuid.uuid4().hex[:12]}"
    print(f"server: {server.kind if server else 'external'} at {endpoint_url}", file=sys.stderr)
    if not canned:
        print(f"creating and seeding table {table} (--items {sizes.items:,})", file=sys.stderr)
        await _prepare_table(endpoint_url, table, workloads)
    rounds_for = (lambda w: args.rounds) if args.rounds else _default_rounds
    try:
        async with contextlib.AsyncExitStack() as stack:
            peers = await open_peers(args.clients, endpoint_url, table, args.concurrency, stack)
            if not peers:
                print("no client could be set up", file=sys.stderr)
                return 1
            skipped: list[tuple[str, str]] = []
            samples = await run_matrix(
                peers,
                workloads,
                ops_for=lambda w: args.ops or max(1, w.default_ops // scale),
                rounds=max(rounds_for(w) for w in workloads),
                concurrency=args.concurrency,
                server=server,
                warmup=DEFAULT_WARMUP // scale,
                skipped=skipped,
                rounds_for=rounds_for,
                warmup_for=None if args.warmup is None else lambda w: args.warmup,
            )
    finally:
        # Only an external server outlives the run; leave it as we found it.
        if server is None:
            await _drop_table(endpoint_url, table)
    summaries = summarize(samples)
    kind = server.kind if server is not None else f"external {endpoint_url}"
    own = {w.name: w.concurrency for w in workloads if w.concurrency is not None}
    round_counts = {w.name: rounds_for(w) for w in workloads}
    print(
        f"\n{kind}; concurrency {args.concurrency}"
        + "".join(f", {name} {n}" for name, n in own.items())
        + f"; --items {sizes.items:,}; {_rounds_text(round_counts)}; "
        "CPU is this process's (all clients run here, one after another)\n"
    )
    print(harness_table(summaries, skipped))
    if args.json:
        meta = metadata(
            server=kind,
            concurrency=args.concurrency,
            workload_concurrency=own,
            rounds=round_counts,
            items=sizes.items,
            unsupported=[{"workload": w, "client": c} for w, c in skipped],
        )
        write_json(args.json, meta, samples, summaries)
        print(f"\nwrote {args.json}", file=sys.stderr)
    if args.hot_keys and not canned:  # the canned server answers no writes
        # A cycle at import time otherwise: benchmarks.hotkeys uses this module's helpers.
        from .hotkeys import report as hot_report
        from .hotkeys import run as hot_run

        hot, requested, took = await hot_run(
            endpoint_url,
            ops=max(1, args.hot_keys // scale),
            keys=1000,
            s=1.1,
            concurrency=args.concurrency,
            capacity="NONE",
            sketch=256,
        )
        print("\nhot keys after a skewed workload (Zipf s=1.1 over 1,000 keys; estimated):")
        print(hot_report(hot, requested, took))
    if args.plot:
        from .plot import plot_summaries

        plot_summaries(summaries, args.plot, title=f"python -m benchmarks: {kind}")
        print(f"wrote {args.plot}", file=sys.stderr)
    print(
        f"run took {time.perf_counter() - started:.0f} s (server start included)", file=sys.stderr
    )
    return 0


def _default_rounds(workload: Workload) -> int:
    return workload.rounds if workload.rounds is not None else DEFAULT_ROUNDS


def _rounds_text(counts: dict[str, int]) -> str:
    """The rounds of a run, e.g. "medians of 3 rounds (batch_get: 1, batch_write: 1)"."""
    common = statistics.mode(counts.values())
    others = [f"{name}: {n}" for name, n in counts.items() if n != common]
    text = "1 round" if common == 1 else f"medians of {common} rounds"
    return text + (f" ({', '.join(others)})" if others else "")


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return number


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run get/put/query/fan-out/time-series/batch workloads for asyncdyn and "
        "its peers side by side, on a server started for the run.",
    )
    p.add_argument(
        "--endpoint-url",
        type=check_loopback,
        help="use this running server (e.g. DynamoDB Local at http://localhost:8000) "
        "instead of starting one; server CPU is then not reported",
    )
    p.add_argument(
        "--server",
        choices=("auto", "moto", "dynalite", "canned"),
        default="auto",
        help="server to start: auto = dynalite if installed, else moto; canned = fixed "
        "answers at near-zero server cost, to isolate client CPU (default: auto)",
    )
    p.add_argument(
        "--workload",
        type=lambda v: split_names(v, WORKLOADS, "workload"),
        default=list(DEFAULT_WORKLOADS),
        help=f"comma-separated from {','.join(WORKLOADS)} (default: all)",
    )
    p.add_argument(
        "--clients",
        type=lambda v: split_names(v, PEERS, "client"),
        default=list(DEFAULT_PEERS),
        help=f"comma-separated from {','.join(PEERS)} (default: {','.join(DEFAULT_PEERS)})",
    )
    p.add_argument(
        "--concurrency",
        type=_positive,
        default=DEFAULT_CONCURRENCY,
        help=f"concurrent tasks per workload (default: {DEFAULT_CONCURRENCY}); workloads that "
        "set their own keep it: "
        + ", ".join(f"{w.name} {w.concurrency}" for w in WORKLOADS.values() if w.concurrency),
    )
    p.add_argument(
        "--items",
        type=_positive,
        default=None,
        metavar="N",
        help=f"data size (default {BATCH_ITEMS:,}; {BATCH_ITEMS // MOTO_SCALE:,} on moto): "
        "batch_get reads N keys and batch_write puts N items per operation; get and put "
        "cycle over N/10 keys; the query partition, each fan-out shard and each month of "
        "the time series hold N/200 items",
    )
    p.add_argument(
        "--ops",
        type=_positive,
        default=None,
        help="operations per workload, client and round, for every workload chosen (default: "
        "per workload, " + ", ".join(f"{w.name} {w.default_ops}" for w in WORKLOADS.values()) + ")",
    )
    p.add_argument(
        "--rounds",
        type=_positive,
        default=None,
        help=f"rounds for every workload (default: {DEFAULT_ROUNDS}, and "
        + ", ".join(f"{w.name} {w.rounds}" for w in WORKLOADS.values() if w.rounds)
        + ")",
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="untimed operations per client and workload first, for every workload chosen "
        f"(default: per workload, {DEFAULT_WARMUP} or the concurrency if higher, "
        + ", ".join(f"{w.name} {w.warmup}" for w in WORKLOADS.values() if w.warmup)
        + "; the bulk workloads warm up on 250 items)",
    )
    p.add_argument(
        "--hot-keys",
        type=int,
        default=2000,
        metavar="OPS",
        help="after the workloads, this many puts and gets over Zipf-distributed keys, then "
        "stats().hot_keys (0: skip; benchmarks.hotkeys has the options)",
    )
    p.add_argument("--json", metavar="FILE", help="also write every sample and the medians here")
    p.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also draw the comparison as a bar chart (needs matplotlib)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    p = parser()
    args = p.parse_args(argv)
    if args.warmup is not None and args.warmup < 0:
        p.error("--warmup must not be negative")
    if args.plot:
        # Before the run, not after two minutes of it.
        from .plot import require_matplotlib

        try:
            require_matplotlib()
        except RuntimeError as exc:
            p.error(str(exc))
    server = None if args.endpoint_url else start_server(args.server)
    try:
        return run(_run(args, server, started))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if server is not None:
            server.stop()
