"""Load-test the shop with wrk, with get coalescing off and then on.

    python -m examples.shop.loadtest                 # 10 s per run, 32 connections
    python -m examples.shop.loadtest --quick         # CI: 2 s per run, 4 connections

It starts a local DynamoDB-compatible server (``asyncdyn.local``: dynalite when installed,
else moto), seeds customers and orders with the bulk loader, then for each setting starts
the service under uvicorn on a free 127.0.0.1 port and drives it with wrk (``wrk.lua``:
half GET /customers/{id}, half GET /orders/{id}, over the seeded keys, at random). wrk's
``--latency`` distribution gives p50 and p99; the table also shows requests/s, the
service's CPU per request and the DynamoDB requests it made (``GET /stats``).

Only 127.0.0.1 is ever a target. Every process started here is stopped at the end. Any
non-2xx answer or socket error fails the run (exit 1): a load test that measures errors
measures nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson

from asyncdyn import Client, TableNotFound, local

from ..bulk_load import generate, load
from .design import ensure_table, shop

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
HOST = "127.0.0.1"

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass(frozen=True, slots=True)
class Result:
    """One wrk run: latencies in milliseconds, and what the service did meanwhile."""

    label: str
    p50_ms: float
    p99_ms: float
    rps: float
    requests: int
    errors: int
    app_cpu_us: float  # the service's CPU time per HTTP request (uvicorn + app + asyncdyn)
    db_requests: dict[str, int]
    coalesced_gets: int


def parse_duration_ms(text: str) -> float:
    """``"1.23ms"`` / ``"850.00us"`` / ``"1.02s"`` -> milliseconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if m is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(output: str) -> tuple[float, float, float, int, int]:
    """p50 ms, p99 ms, requests/s, requests and errors (non-2xx answers plus socket
    errors) from wrk's ``--latency`` output."""
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s+(\d+) requests in", output, re.MULTILINE)
    if "50" not in pct or "99" not in pct or rps is None or total is None:
        raise RuntimeError(f"could not read wrk's output:\n{output}")
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non2xx:
        errors += int(non2xx.group(1))
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sock:
        errors += sum(int(n) for n in sock.groups())
    return (
        parse_duration_ms(pct["50"]),
        parse_duration_ms(pct["99"]),
        float(rps.group(1)),
        int(total.group(1)),
        errors,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (Linux ``/proc``; 0.0 elsewhere)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# No proxy, whatever the environment says: the service is on loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get_json(url: str, timeout: float = 5.0) -> object:
    with _OPENER.open(url, timeout=timeout) as answer:
        return orjson.loads(answer.read())


async def seed(endpoint: str, table: str, customers: int) -> list[str]:
    """Customers with one order (of two lines) each, through the bulk loader; returns the
    request paths: every customer and every order, as many of each."""
    async with Client(region="us-east-1", endpoint_url=endpoint) as db:
        repo = shop.bind(db, table=table)
        await ensure_table(repo)
        report = await load(repo, generate(customers, 1, 2, seed=7), max_in_flight=8)
    if report.unwritten or report.refused:
        raise RuntimeError(f"seeding failed: {report}")
    paths = [f"/customers/c{c:07d}" for c in range(customers)]
    paths += [f"/orders/c{c:07d}-o000" for c in range(customers)]
    return paths


async def drop_table(endpoint: str, table: str) -> None:
    async with Client(region="us-east-1", endpoint_url=endpoint) as db:
        try:
            await db.delete_table(table, wait=False)
        except TableNotFound:
            pass


class Service:
    """The shop under uvicorn, one process on a free loopback port."""

    def __init__(self, endpoint: str, table: str, *, coalesce: bool) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        env = {
            **os.environ,
            "ASYNCDYN_ENDPOINT": endpoint,
            "SHOP_TABLE": table,
            "SHOP_CREATE_TABLE": "0",
            "ASYNCDYN_COALESCE": "1" if coalesce else "0",
        }
        argv = [sys.executable, "-m", "uvicorn", "examples.shop.app:app", "--host", HOST,
                "--port", str(self.port), "--no-access-log", "--log-level", "warning"]  # fmt: skip
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self.log, stderr=self.log)

    def wait_ready(self, probe: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited:\n{self.output()}")
            try:
                get_json(self.url + probe, timeout=1.0)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn did not answer:\n{self.output()}") from None
                time.sleep(0.1)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def run_wrk(args: argparse.Namespace, url: str, paths_file: Path, seconds: float) -> str:
    argv = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{seconds:g}s",
            "--timeout", "5s", "--latency", "-s", str(HERE / "wrk.lua"), url]  # fmt: skip
    env = {**os.environ, "SHOP_PATHS": str(paths_file)}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def measure(
    args: argparse.Namespace, endpoint: str, table: str, paths: list[str], paths_file: Path
) -> list[Result]:
    results = []
    for coalesce in (False, True):
        service = Service(endpoint, table, coalesce=coalesce)
        try:
            service.wait_ready(paths[0])
            if args.warmup > 0:
                run_wrk(args, service.url, paths_file, args.warmup)
            before = get_json(service.url + "/stats")
            cpu0 = cpu_seconds(service.process.pid)
            out = run_wrk(args, service.url, paths_file, args.duration)
            cpu = cpu_seconds(service.process.pid) - cpu0
            after = get_json(service.url + "/stats")
        finally:
            service.stop()
        if args.verbose:
            print(out)
        p50, p99, rps, total, errors = parse_wrk(out)
        assert isinstance(before, dict) and isinstance(after, dict)
        db = {k: n - before["requests"].get(k, 0) for k, n in after["requests"].items()}
        db = {k: n for k, n in db.items() if n > 0 and k != "DescribeTable"}
        results.append(
            Result(
                label="on" if coalesce else "off",
                p50_ms=p50,
                p99_ms=p99,
                rps=rps,
                requests=total,
                errors=errors,
                app_cpu_us=cpu / total * 1e6 if total else 0.0,
                db_requests=db,
                coalesced_gets=after["coalesced_gets"] - before["coalesced_gets"],
            )
        )
    return results


def table_of(results: list[Result]) -> str:
    head = ("| coalesce_gets | p50 ms | p99 ms | req/s | service CPU µs/req "
            "| DynamoDB requests | errors |")  # fmt: skip
    rows = [head, "|---|---:|---:|---:|---:|---|---:|"]
    for r in results:
        db = ", ".join(f"{k} {n}" for k, n in sorted(r.db_requests.items()))
        if r.coalesced_gets:
            db += f" ({r.coalesced_gets} gets coalesced)"
        rows.append(f"| {r.label} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.rps:,.0f} "
                    f"| {r.app_cpu_us:,.0f} | {db} | {r.errors} |")  # fmt: skip
    return "\n".join(rows)


DEFAULT = {"duration": 10.0, "warmup": 2.0, "connections": 32, "customers": 500}
QUICK = {"duration": 2.0, "warmup": 0.0, "connections": 4, "customers": 50}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m examples.shop.loadtest",
        description="Load-test the shop with wrk, coalescing off and on.",
    )
    # Scale options default to None: --quick then picks its own, and what is given wins.
    p.add_argument("--duration", type=float, help="seconds per run (default 10)")
    p.add_argument("--warmup", type=float, help="seconds of unmeasured load first (default 2)")
    p.add_argument("--connections", type=int, help="wrk connections (default 32)")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (2 cores are shared)")
    p.add_argument("--customers", type=int, help="seeded customers, one order each (500)")
    p.add_argument("--server", choices=("auto", "dynalite", "moto"), default="auto")
    p.add_argument("--endpoint", help="use this running server instead of starting one")
    p.add_argument(
        "--quick",
        action="store_true",
        help="CI scale: 2 s, no warm-up, 4 connections, 50 customers",
    )
    p.add_argument("--verbose", action="store_true", help="print wrk's own output too")
    args = p.parse_args(argv)  # fmt: skip
    scale = QUICK if args.quick else DEFAULT
    for name, value in scale.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.duration <= 0 or args.connections < 1 or args.threads < 1 or args.customers < 1:
        p.error("--duration, --connections, --threads and --customers must be positive")
    args.threads = min(args.threads, args.connections)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk (or brew install wrk)", file=sys.stderr)
        return 2
    server = None
    if args.endpoint:
        endpoint, kind = args.endpoint, "given endpoint"
    else:
        server = local.start(args.server)
        endpoint, kind = server.endpoint_url, server.kind
    table = f"Shop-load-{uuid.uuid4().hex[:8]}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            paths = asyncio.run(seed(endpoint, table, args.customers))
            paths_file = Path(tmp) / "paths.txt"
            paths_file.write_text("\n".join(paths) + "\n")
            results = measure(args, endpoint, table, paths, paths_file)
    finally:
        if server is not None:
            server.stop()  # the table goes with it
        else:
            asyncio.run(drop_table(endpoint, table))  # a server of yours: leave it as found
    print(f"server: {kind}; {os.cpu_count()} cores; wrk -t{args.threads} -c{args.connections} "
          f"-d{args.duration:g}s; {args.customers} customers + {args.customers} orders; "
          "half GET /customers/{id}, half GET /orders/{id}")  # fmt: skip
    print(table_of(results))
    failed = [r for r in results if r.errors or r.requests == 0]
    if failed:
        print(f"FAILED: errors in the runs with coalescing {[r.label for r in failed]}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
