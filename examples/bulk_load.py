"""Bulk-load the shop's table: generate (or read from JSONL) customers, orders and order
lines, and write them through the entity layer's buffered writer.

    python -m examples.bulk_load --endpoint http://127.0.0.1:8000 --customers 10000
    python -m examples.bulk_load --customers 100 --dump shop.jsonl   # write the records only
    python -m examples.bulk_load --input shop.jsonl                 # load a JSONL file

One JSON object a line: ``{"type": "Customer" | "Order" | "OrderItem", ...fields}``, datetimes
as ISO-8601 with a zone, money as strings (``"12.50"``: exact, not a float). The generator is
deterministic (``--seed``), and every write is a whole-item put of a fixed key, so a re-run
after a crash or a partial load writes the same items again: nothing is duplicated.

The writer batches 25 puts a request, runs batches concurrently, retries unprocessed items
and throttling with backoff, and slows down when throttled. At the end the script reports
items/s and, if anything could not be written, how many (``writer.unwritten``) and exits 1.
A record that the entity layer refuses (``InvalidItem``: e.g. an id with ``#``) is reported
with its line number and not loaded (exit 2); the rest of the file is.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from asyncdyn import Client, InvalidItem
from asyncdyn.model import Entity, Repository

from .shop.design import Customer, Order, OrderItem, TableMismatch, ensure_table, shop

DEFAULT_ENDPOINT = "http://127.0.0.1:8000"
STATUSES = ("PENDING", "PAID", "SHIPPED", "DELIVERED", "CANCELLED")
T0 = datetime(2026, 1, 1, tzinfo=UTC)

Record = dict[str, Any]


def generate(customers: int, orders: int, lines: int, seed: int) -> Iterator[Record]:
    """Deterministic records: ``customers`` customers with ``orders`` orders of ``lines``
    lines each; the same arguments give the same records (and so the same items)."""
    rng = random.Random(seed)
    for c in range(customers):
        cid = f"c{c:07d}"
        yield {"type": "Customer", "customer_id": cid, "email": f"{cid}@example.com",
               "name": f"Customer {c}"}  # fmt: skip
        for o in range(orders):
            oid = f"{cid}-o{o:03d}"
            items: list[Record] = []
            total = Decimal(0)
            for n in range(1, lines + 1):
                qty, price = rng.randrange(1, 5), Decimal(rng.randrange(100, 10000)) / 100
                total += qty * price
                items.append({"type": "OrderItem", "order_id": oid, "line": n, "qty": qty,
                              "sku": f"SKU-{rng.randrange(500)}", "price": str(price)})  # fmt: skip
            placed = T0 + timedelta(minutes=rng.randrange(60 * 24 * 365))
            yield {"type": "Order", "customer_id": cid, "order_id": oid, "total": str(total),
                   "status": rng.choice(STATUSES), "placed_at": placed.isoformat()}  # fmt: skip
            yield from items


def read_jsonl(path: Path) -> Iterator[Record]:
    with path.open("rb") as f:
        for line in f:
            if line.strip():
                yield orjson.loads(line)


def entity_of(record: Record) -> Entity:
    """The entity a record describes; ``InvalidItem`` names what is wrong with it."""
    kind = record.get("type")
    fields = {k: v for k, v in record.items() if k != "type"}
    try:
        if kind == "Customer":
            return Customer(**fields)
        if kind == "Order":
            fields["total"] = Decimal(fields["total"])
            fields["placed_at"] = datetime.fromisoformat(fields["placed_at"])
            return Order(**fields)
        if kind == "OrderItem":
            fields["price"] = Decimal(fields["price"])
            return OrderItem(**fields)
    except (KeyError, TypeError, ArithmeticError, ValueError) as exc:
        if isinstance(exc, InvalidItem):
            raise
        raise InvalidItem(f"{kind} record: {exc!r}") from exc
    raise InvalidItem(f"unknown record type {kind!r} (Customer, Order or OrderItem)")


@dataclass
class Report:
    loaded: Counter[str] = field(default_factory=Counter)
    refused: list[tuple[int, str]] = field(default_factory=list)
    unwritten: int = 0
    seconds: float = 0.0

    @property
    def items(self) -> int:
        return sum(self.loaded.values())


async def load(repo: Repository, records: Iterator[Record], *, max_in_flight: int) -> Report:
    report = Report()
    started = time.perf_counter()
    writer = repo.writer(max_in_flight=max_in_flight)
    try:
        async with writer as w:
            for number, record in enumerate(records, start=1):
                try:
                    # Refused before anything is sent: a bad record never reaches the table.
                    await w.put(entity_of(record))
                except InvalidItem as exc:
                    report.refused.append((number, str(exc)))
                    continue
                report.loaded[str(record["type"])] += 1
    finally:
        report.seconds = time.perf_counter() - started
        # After a failed or cancelled exit: what was accepted but not written. A re-run
        # writes it (puts of fixed keys are idempotent).
        unwritten = writer.unwritten
        if unwritten is not None:
            report.unwritten = len(unwritten.puts) + len(unwritten.deletes)
    return report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m examples.bulk_load", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--endpoint", default=os.environ.get("ASYNCDYN_ENDPOINT", DEFAULT_ENDPOINT))
    p.add_argument("--region", default=os.environ.get("ASYNCDYN_REGION", "us-east-1"))
    p.add_argument("--table", default=os.environ.get("SHOP_TABLE", "Shop"))
    p.add_argument("--input", type=Path, help="a JSONL file of records (default: generate)")
    p.add_argument("--customers", type=int, default=1000)
    p.add_argument("--orders", type=int, default=3, help="orders per customer")
    p.add_argument("--lines", type=int, default=2, help="lines per order")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--dump", type=Path, help="write the generated records here and exit")
    p.add_argument("--max-in-flight", type=int, default=16, help="batches written at once")
    return p.parse_args(argv)  # fmt: skip


async def run(args: argparse.Namespace) -> int:
    records = (
        read_jsonl(args.input)
        if args.input
        else generate(args.customers, args.orders, args.lines, args.seed)
    )
    if args.dump:
        with args.dump.open("wb") as f:
            for r in records:
                f.write(orjson.dumps(r) + b"\n")
        print(f"wrote {args.dump}")
        return 0
    async with Client(region=args.region, endpoint_url=args.endpoint) as db:
        repo = shop.bind(db, table=args.table)
        try:
            await ensure_table(repo)
        except TableMismatch as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        report = await load(repo, records, max_in_flight=args.max_in_flight)
        stats = db.stats()
    rate = report.items / report.seconds if report.seconds else 0.0
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(report.loaded.items()))
    print(f"loaded {report.items} items ({kinds}) into {args.table!r} in {report.seconds:.2f} s: "
          f"{rate:,.0f} items/s, {stats.requests.get('BatchWriteItem', 0)} BatchWriteItem "
          f"requests, {stats.retries} retries")  # fmt: skip
    for number, why in report.refused:
        print(f"refused record {number}: {why}", file=sys.stderr)
    if report.unwritten:
        print(f"NOT written: {report.unwritten} items (run again to finish)", file=sys.stderr)
        return 1
    return 2 if report.refused else 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
