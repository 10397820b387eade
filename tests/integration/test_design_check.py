"""Access patterns against a live table on moto and dynalite: ``design.check(await
repo.describe())``, patterns run through the repository, and ``asyncdyn design check``
end to end (a process, as CI would run it)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from asyncdyn import Client, GlobalIndex, TableNotFound
from asyncdyn.cli import EXIT_DESIGN, EXIT_DYNAMODB, EXIT_OK
from asyncdyn.local import LocalServer
from asyncdyn.model import Design, Entity
from tests.model_shop import (
    Customer,
    Order,
    OrderItem,
    customer_by_email,
    customer_with_orders,
    order_by_id,
    order_with_items,
    pending_orders,
    shop,
)

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 1, 3, tzinfo=UTC)


async def design_check(*argv: str) -> tuple[int, str, str]:
    """``python -m asyncdyn.cli design check ...`` from the checkout (this copy of asyncdyn),
    with no AWS configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "asyncdyn.cli",
        "design",
        "check",
        *argv,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def drop(db: Client, name: str) -> None:
    try:
        await db.delete_table(name, wait=False)
    except TableNotFound:
        pass


async def test_the_live_table_made_from_the_design_checks_clean_and_patterns_run(
    db: Client,
) -> None:
    name = f"t-{uuid.uuid4().hex[:16]}"
    repo = shop.bind(db, table=name)
    await repo.create_table()
    try:
        report = shop.check(await repo.describe())
        assert report.ok and report.live and report.warnings == []
        await repo.put(Customer(customer_id="1", email="ada@example.com", name="Ada"))
        for n in range(1, 4):
            await repo.put(
                Order(
                    customer_id="1",
                    order_id=f"{n:03d}",
                    total=Decimal(n),
                    status="PENDING" if n < 3 else "SHIPPED",
                    placed_at=T0 + timedelta(days=n),
                )
            )
            await repo.put(OrderItem(order_id="001", item_id=n, sku=f"SKU-{n}"))
        found = [c async for c in repo.run(customer_by_email, email="ada@example.com")]
        assert [c.name for c in found] == ["Ada"]
        assert [o.customer_id async for o in repo.run(order_by_id, order_id="002")] == ["1"]
        rows = [type(r).__name__ async for r in repo.run(order_with_items, order_id="001")]
        assert rows == ["Order", "OrderItem", "OrderItem", "OrderItem"]
        pending = repo.run(
            pending_orders, where=Order.placed_at.between(T0, T0 + timedelta(days=30))
        )
        assert [o.order_id async for o in pending] == ["001", "002"]
        page = await repo.page(customer_with_orders, customer_id="1", limit=2)
        more = await repo.page(customer_with_orders, customer_id="1", cursor=page.cursor)
        assert [type(r).__name__ for r in page.items + more.items] == [
            "Customer",
            "Order",
            "Order",
            "Order",
        ]
    finally:
        await drop(db, name)


async def test_a_table_missing_an_index_or_projecting_keys_only_fails_the_check(
    db: Client,
) -> None:
    name = f"t-{uuid.uuid4().hex[:16]}"
    await db.create_table(
        name,
        partition_key="PK",
        sort_key="SK",
        indexes=[GlobalIndex("GSI2", "GSI2PK", "GSI2SK", projection="KEYS_ONLY")],
    )
    try:
        report = shop.check(await db.table(name).describe())
        assert not report.ok
        missing = [f for f in report.errors if f.code == "live-missing-index"]
        assert [f.index for f in missing] == ["GSI1"]
        gaps = [f for f in report.errors if f.code == "projection-gap"]
        assert [(f.pattern, f.index) for f in gaps] == [("pending orders in a date range", "GSI2")]
    finally:
        await drop(db, name)


async def test_design_projections_reach_the_table(db: Client) -> None:
    d = Design(
        "t-" + uuid.uuid4().hex[:16],
        indexes={"GSI1": ("GSI1PK", "GSI1SK")},
        projections={"GSI1": ["total"]},
    )

    @d.entity("Order")
    class Ord(Entity):
        order_id: str
        status: str
        total: Decimal
        note: str | None = None
        key = d.key(pk="ORDER#{order_id}", sk="ORDER")
        by_status = d.index("GSI1", pk="STATUS#{status}", sk="ORDER#{order_id}")

    d.pattern("orders by status", Ord.by_status)
    repo = d.bind(db)
    await repo.create_table()
    try:
        described = await repo.describe()
        (gsi,) = described["GlobalSecondaryIndexes"]
        assert gsi["Projection"]["ProjectionType"] == "INCLUDE"
        report = d.check(described)
        assert report.ok and [f.code for f in report.warnings] == ["projection-gap", "hot-key-enum"]
        await repo.put(Ord(order_id="1", status="NEW", total=Decimal(5), note="kept"))
        (got,) = [o async for o in repo.query(Ord.by_status, status="NEW")]
        assert got.total == 5 and got.note is None  # the warning's point: not projected
    finally:
        await drop(db, d.name)


async def test_the_command_checks_a_live_table_and_exits_by_the_report(
    db: Client, server: LocalServer
) -> None:
    good = f"t-{uuid.uuid4().hex[:16]}"
    await shop.bind(db, table=good).create_table()
    bad = f"t-{uuid.uuid4().hex[:16]}"
    await db.create_table(bad, partition_key="PK", sort_key="SK")
    try:
        url = ["--endpoint-url", server.endpoint_url]
        status, out, err = await design_check(
            "tests.model_shop:shop", *url, "--table", good, "--format", "json"
        )
        assert status == EXIT_OK, err
        data = json.loads(out)
        assert data["ok"] and data["live"] and data["counts"]["error"] == 0
        status, out, err = await design_check(
            "tests.model_shop:shop", *url, "--table", bad, "--format", "md"
        )
        assert status == EXIT_DESIGN, err
        assert "| error | live-missing-index |" in out and "checked against the live" in out
        status, out, err = await design_check(
            "tests.model_shop:shop", *url, "--table", f"t-{uuid.uuid4().hex[:16]}"
        )
        assert status == EXIT_DYNAMODB and "does not exist" in err
    finally:
        await drop(db, good)
        await drop(db, bad)
