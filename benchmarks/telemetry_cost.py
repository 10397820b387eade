"""What telemetry costs per operation: asyncdyn against the in-memory canned transport
(``benchmarks.inprocess``), with telemetry off or on in one of these set-ups:

* ``off``: ``Client()`` as everyone gets it (the cost promised to be nil);
* ``api``: ``Client(telemetry=True)`` with only opentelemetry-api, no SDK configured (the
  global providers are no-ops);
* ``sdk``: the SDK's tracer and meter providers with nothing to export to;
* ``memory``: the SDK with its in-memory span exporter and metric reader (every span kept,
  every metric aggregated).

    python -m benchmarks.telemetry_cost --telemetry memory --workload get --ops 2000
    valgrind --tool=callgrind --callgrind-out-file=cg.out \\
        python -m benchmarks.telemetry_cost --telemetry sdk --workload get --ops 200

Under callgrind, compare two runs with different ``--ops``: the difference divided by the
extra operations is the cost of one, start-up left out.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from asyncdyn import Client, Telemetry

from .inprocess import _WARMUP, CannedTransport, _operations

SETUPS = ("off", "api", "sdk", "memory")


def _telemetry(setup: str) -> tuple[Telemetry | bool, Any]:
    """The ``telemetry=`` argument for ``setup``, and what keeps its exporter alive."""
    if setup == "off":
        return False, None
    if setup == "api":
        return True, None
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    tracer_provider = TracerProvider()
    readers: list[Any] = []
    kept: Any = None
    if setup == "memory":
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        readers.append(InMemoryMetricReader())
        kept = (exporter, readers[0])
    meter_provider = MeterProvider(metric_readers=readers)
    return Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider), kept


async def _run(args: argparse.Namespace) -> None:
    telemetry, kept = _telemetry(args.telemetry)
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        credentials=("AKIDBENCHMARK", "benchmark-secret-key"),
        transport=CannedTransport(),
        telemetry=telemetry,
    ) as db:
        ops = _operations(db.table("bench", key=("PK", "SK")))
        for name in args.workload:
            op = ops[name]
            for _ in range(_WARMUP):
                await op()
            start = time.process_time()
            for _ in range(args.ops):
                await op()
            spent = time.process_time() - start
            print(
                f"{name} (telemetry {args.telemetry}): "
                f"{spent / args.ops * 1e6:,.1f} µs CPU per operation ({args.ops} ops)"
            )
    if kept is not None:
        exporter, reader = kept
        print(f"kept {len(exporter.get_finished_spans())} spans", file=sys.stderr)
        reader.get_metrics_data()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.telemetry_cost", description=__doc__)
    p.add_argument("--telemetry", choices=SETUPS, default="off")
    p.add_argument(
        "--workload",
        type=lambda v: [w for w in v.split(",") if w],
        default=["get", "query", "batch_get", "put", "batch_write"],
    )
    p.add_argument("--ops", type=int, default=200)
    asyncio.run(_run(p.parse_args(argv)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
