"""The examples run: the FastAPI shop (every endpoint, paging by cursor, error codes) in
process over httpx's ASGI transport, and the bulk loader at small scale, on both servers
(placing an order is a transaction: moto only)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from asyncdyn import Client, GlobalIndex, Key
from asyncdyn.local import LocalServer
from asyncdyn.model import Repository
from examples.shop.app import Settings, create_app
from examples.shop.design import Customer, Order, OrderItem, TableMismatch, shop
from examples.shop.loadtest import parse_args, parse_duration_ms, parse_wrk

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Shop:
    """One running shop: its HTTP client and its repository (for seeding and checks)."""

    def __init__(self, http: httpx.AsyncClient, repo: Repository) -> None:
        self.http = http
        self.repo = repo


MakeShop = Callable[..., Awaitable[Shop]]


@pytest.fixture
async def make_shop(server: LocalServer, db: Client) -> AsyncIterator[MakeShop]:
    """Start the shop on a fresh table (its lifespan run: one Client, the table created
    from the design); everything is closed and the tables deleted afterwards."""
    tables: list[str] = []
    async with AsyncExitStack() as stack:

        async def make(*, coalesce_gets: bool = False) -> Shop:
            table = f"shop-{uuid.uuid4().hex[:12]}"
            settings = Settings(
                endpoint_url=server.endpoint_url, table=table, coalesce_gets=coalesce_gets
            )
            app = create_app(settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            tables.append(table)
            http = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop")
            )
            return Shop(http, shop.bind(db, table=table))

        yield make
    for table in tables:
        await db.delete_table(table, wait=False)


async def seed(repo: Repository, customer: str, orders: int) -> list[str]:
    """A customer and its orders (two lines each) through the entity writer: no
    transaction, so dynalite serves it too. Returns the order ids, oldest first."""
    ids = [f"{customer}-o{n:03d}" for n in range(orders)]
    async with repo.writer() as w:
        await w.put(Customer(customer_id=customer, email=f"{customer}@example.com", name="Ada"))
        for n, oid in enumerate(ids):
            placed = T0 + timedelta(minutes=n)
            await w.put(
                Order(
                    customer_id=customer,
                    order_id=oid,
                    total=Decimal("7.50"),
                    status="PENDING",
                    placed_at=placed,
                )
            )
            for line in (1, 2):
                await w.put(
                    OrderItem(
                        order_id=oid, line=line, sku=f"SKU-{line}", qty=line, price=Decimal("2.50")
                    )
                )
    return ids


async def test_customer_create_get_and_errors(make_shop: MakeShop) -> None:
    s = await make_shop()
    body = {"customer_id": "c1", "email": "ada@example.com", "name": "Ada"}
    created = await s.http.post("/customers", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["created_at"] is not None
    got = await s.http.get("/customers/c1")
    assert got.status_code == 200
    assert {k: got.json()[k] for k in body} == body
    # A second create of the same id is refused by the write's condition: nothing overwritten.
    again = await s.http.post("/customers", json={**body, "name": "Someone else"})
    assert again.status_code == 409
    assert (await s.http.get("/customers/c1")).json()["name"] == "Ada"
    assert (await s.http.get("/customers/nobody")).status_code == 404
    # An id that would forge another key is refused by the key template before sending.
    forged = await s.http.post("/customers", json={**body, "customer_id": "x#ORDER#1"})
    assert forged.status_code == 422
    assert "customer_id" in forged.json()["detail"]
    assert (await s.http.post("/customers", json={"customer_id": "c2"})).status_code == 422


async def test_orders_of_a_customer_paged_by_cursor(make_shop: MakeShop) -> None:
    s = await make_shop()
    ids = await seed(s.repo, "c1", 23)
    await seed(s.repo, "c2", 3)  # another customer's orders never show up in c1's pages
    seen: list[str] = []
    cursors: list[str] = []
    while True:
        params: dict[str, str | int] = {"limit": 10}
        if cursors:
            params["cursor"] = cursors[-1]
        r = await s.http.get("/customers/c1/orders", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [o["order_id"] for o in page["orders"]]
        if page["next"] is None:
            break
        cursors.append(page["next"])
    assert seen == ids[::-1]  # newest first, each once
    assert len(cursors) == 2  # 10 + 10 + 3
    first_cursor = cursors[0]
    # A cursor is bound to its query: edited, or replayed on another customer, it is refused.
    tampered = await s.http.get("/customers/c1/orders", params={"cursor": first_cursor[:-2]})
    assert tampered.status_code == 400
    replayed = await s.http.get("/customers/c2/orders", params={"cursor": first_cursor})
    assert replayed.status_code == 400
    assert (await s.http.get("/customers/c1/orders", params={"limit": 0})).status_code == 422


async def test_order_with_its_items_in_one_query(make_shop: MakeShop) -> None:
    s = await make_shop()
    ids = await seed(s.repo, "c1", 3)

    async def queries() -> int:
        # The app's own Client counts its requests (GET /stats).
        n: int = (await s.http.get("/stats")).json()["requests"].get("Query", 0)
        return n

    before = await queries()
    r = await s.http.get(f"/orders/{ids[1]}")
    assert r.status_code == 200, r.text
    assert await queries() - before == 1
    order = r.json()
    assert order["customer_id"] == "c1"
    assert order["status"] == "PENDING"
    assert Decimal(order["total"]) == Decimal("7.50")
    assert [(li["line"], li["sku"], li["qty"]) for li in order["lines"]] == [
        (1, "SKU-1", 1),
        (2, "SKU-2", 2),
    ]
    assert (await s.http.get("/orders/no-such-order")).status_code == 404


async def test_status_update_moves_the_order_between_status_pages(make_shop: MakeShop) -> None:
    s = await make_shop()
    ids = await seed(s.repo, "c1", 4)

    async def patch(order_id: str, status: str) -> httpx.Response:
        return await s.http.patch(f"/customers/c1/orders/{order_id}", json={"status": status})

    # PENDING -> PAID -> SHIPPED, nothing else: a skipped or backward step is 409.
    skipped = await patch(ids[2], "SHIPPED")
    assert skipped.status_code == 409 and "PENDING" in skipped.json()["detail"]
    r = await patch(ids[2], "PAID")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "PAID"
    assert (await patch(ids[2], "PAID")).status_code == 409
    r = await patch(ids[2], "SHIPPED")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "SHIPPED"
    for status in ("PENDING", "PAID", "SHIPPED", "CANCELLED"):
        again = await patch(ids[2], status)
        assert again.status_code == 409, (status, again.text)

    async def by_status(status: str) -> list[str]:
        r = await s.http.get("/orders", params={"status": status, "limit": 100})
        assert r.status_code == 200, r.text
        return [o["order_id"] for o in r.json()["orders"]]

    assert await by_status("SHIPPED") == [ids[2]]
    assert await by_status("PENDING") == [ids[3], ids[1], ids[0]]  # newest placed first
    # The stored item's GSI2 key was rewritten by the entity layer, not left stale.
    raw = await s.repo.table.get({"PK": "CUSTOMER#c1", "SK": f"ORDER#{ids[2]}"})
    assert raw is not None and raw["GSI2PK"] == "ORDER_STATUS#SHIPPED"
    missing = await s.http.patch("/customers/c1/orders/nope", json={"status": "PAID"})
    assert missing.status_code == 404
    # A refused transition wrote nothing: the item and its index keys are as they were.
    assert await s.repo.table.get({"PK": "CUSTOMER#c1", "SK": f"ORDER#{ids[2]}"}) == raw
    bad = await s.http.patch(f"/customers/c1/orders/{ids[0]}", json={"status": "LOST"})
    assert bad.status_code == 422
    assert (await s.http.get("/orders", params={"status": "LOST"})).status_code == 422


@pytest.mark.moto_only
async def test_place_order_in_one_transaction(make_shop: MakeShop) -> None:
    s = await make_shop()
    await seed(s.repo, "c1", 0)
    await seed(s.repo, "c2", 0)
    lines = [{"sku": "A", "qty": 2, "price": "3.10"}, {"sku": "B", "qty": 1, "price": "0.80"}]
    r = await s.http.post("/customers/c1/orders", json={"lines": lines})
    assert r.status_code == 201, r.text
    placed = r.json()
    assert Decimal(placed["total"]) == Decimal("7.00")
    assert placed["status"] == "PENDING"
    oid = placed["order_id"]
    got = (await s.http.get(f"/orders/{oid}")).json()
    assert got["order_id"] == oid
    # The answer is the order as written, its updated_at stamped by the transaction's put.
    assert placed["updated_at"] is not None and placed["updated_at"] == got["updated_at"]
    assert placed["lines"] == got["lines"]
    assert [li["sku"] for li in got["lines"]] == ["A", "B"]
    listed = (await s.http.get("/customers/c1/orders")).json()
    assert [o["order_id"] for o in listed["orders"]] == [oid]

    # A client-chosen id makes a resend safe: the second attempt is 409, not a second order.
    mine = {"order_id": "ord-1", "lines": lines[:1]}
    assert (await s.http.post("/customers/c1/orders", json=mine)).status_code == 201
    assert (await s.http.post("/customers/c1/orders", json=mine)).status_code == 409
    # Another customer reusing that id must not overwrite its items: 409, nothing written.
    stolen = {"order_id": "ord-1", "lines": [{"sku": "Z", "qty": 9, "price": "1"}]}
    assert (await s.http.post("/customers/c2/orders", json=stolen)).status_code == 409
    assert [li["sku"] for li in (await s.http.get("/orders/ord-1")).json()["lines"]] == ["A"]
    assert (await s.http.get("/customers/c2/orders")).json()["orders"] == []

    nobody = await s.http.post("/customers/nobody/orders", json={"lines": lines})
    assert nobody.status_code == 404
    forged = await s.http.post("/customers/c1/orders", json={"order_id": "1#X", "lines": lines})
    assert forged.status_code == 422
    assert (await s.http.post("/customers/c1/orders", json={"lines": []})).status_code == 422
    assert await s.repo.table.count(Key("PK").eq("CUSTOMER#nobody")) == 0


async def test_concurrent_gets_with_coalescing(make_shop: MakeShop) -> None:
    s = await make_shop(coalesce_gets=True)
    await seed(s.repo, "c1", 0)
    await seed(s.repo, "c2", 0)
    paths = ["/customers/c1", "/customers/c2", "/customers/none"] * 10
    answers = await asyncio.gather(*(s.http.get(p) for p in paths))
    assert [a.status_code for a in answers] == [200, 200, 404] * 10
    assert [a.json()["customer_id"] for a in answers if a.status_code == 200] == ["c1", "c2"] * 10
    stats = (await s.http.get("/stats")).json()
    # The 30 concurrent gets were folded into far fewer BatchGetItem calls.
    assert stats["coalesced_gets"] == 30
    assert 1 <= stats["coalesced_batches"] < 30
    assert stats["requests"].get("GetItem", 0) == 0


def test_every_access_pattern_of_the_shop_is_a_key_condition() -> None:
    report = shop.check()
    assert report.errors == []
    assert report.warnings == []
    assert set(shop.patterns) >= {
        "customer by id",
        "orders of a customer",
        "order with its items",
        "orders by status",
    }


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCDYN_COALESCE", "1")
    monkeypatch.setenv("ASYNCDYN_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("SHOP_TABLE", "Elsewhere")
    monkeypatch.setenv("ASYNCDYN_CURSOR_KEY", "00ff")
    got = Settings.from_env()
    assert (got.coalesce_gets, got.endpoint_url, got.table, got.cursor_key) == (
        True,
        "http://127.0.0.1:9",
        "Elsewhere",
        b"\x00\xff",
    )
    monkeypatch.delenv("ASYNCDYN_COALESCE")
    assert Settings.from_env().coalesce_gets is False


def bulk_load(server: LocalServer, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the bulk loader as a user would, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "examples.bulk_load", "--endpoint", server.endpoint_url, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_bulk_load_and_its_idempotent_rerun(
    server: LocalServer, db: Client, tmp_path: Path
) -> None:
    table = f"bulk-{uuid.uuid4().hex[:12]}"
    try:
        args = ("--table", table, "--customers", "40", "--orders", "2", "--lines", "3")
        first = bulk_load(server, *args)
        assert first.returncode == 0, first.stderr
        # 40 customers, 80 orders, 240 lines.
        assert "loaded 360 items (40 Customer, 80 Order, 240 OrderItem)" in first.stdout
        assert "items/s" in first.stdout
        repo = shop.bind(db, table=table)

        async def stored() -> list[dict[str, object]]:
            return [i async for i in repo.table.scan()]

        items = await stored()
        assert len(items) == 360
        # A re-run writes the same keys again: nothing duplicated, nothing lost.
        second = bulk_load(server, *args)
        assert second.returncode == 0, second.stderr
        again = await stored()
        assert len(again) == 360
        assert sorted((str(i["PK"]), str(i["SK"]), str(i.get("total"))) for i in again) == sorted(
            (str(i["PK"]), str(i["SK"]), str(i.get("total"))) for i in items
        )
        # The loaded data reads back as entities, derived keys included: an order and its
        # lines by order id alone (GSI1), and the customer.
        order = await repo.get(Order, customer_id="c0000003", order_id="c0000003-o001")
        assert order is not None and order.total > 0
        lines = [i async for i in repo.query(OrderItem, order_id="c0000003-o001")]
        assert [i.line for i in lines] == [1, 2, 3]
        assert sum(i.qty * i.price for i in lines) == order.total

        # JSONL in: a refused record is reported by line number and the others still load.
        path = tmp_path / "shop.jsonl"
        dumped = bulk_load(server, "--customers", "2", "--orders", "1", "--lines", "1",
                           "--dump", str(path))  # fmt: skip
        assert dumped.returncode == 0, dumped.stderr
        text = path.read_text().replace('"c0000001"', '"c#1"', 1)
        path.write_text(text)
        loaded = bulk_load(server, "--table", table, "--input", str(path))
        assert loaded.returncode == 2
        assert "refused record 4:" in loaded.stderr
        assert "customer_id" in loaded.stderr
        assert "loaded 5 items" in loaded.stdout
    finally:
        await db.delete_table(table, wait=False)


# wrk 4.1's report, as printed by a run of the load test (its error lines as wrk's source
# prints them when there are errors).
WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:52855
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   117.50ms   26.67ms   1.02s    70.15%
    Req/Sec    32.50     10.70    60.00     65.00%
  Latency Distribution
     50%  850.00us
     75%  134.81ms
     90%  147.71ms
     99%    1.02s
  67 requests in 2.05s, 23.22KB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:     32.61
Transfer/sec:     11.30KB
"""


def test_the_load_test_reads_wrk_output() -> None:
    p50, p99, rps, total, errors = parse_wrk(WRK_OUTPUT)
    assert (p50, p99, rps, total, errors) == (0.85, 1020.0, 32.61, 67, 7)
    assert parse_wrk(WRK_OUTPUT.replace("  Non-2xx or 3xx responses: 4\n", ""))[4] == 3
    assert parse_duration_ms("1.5m") == 90_000.0
    with pytest.raises(RuntimeError, match="could not read"):
        parse_wrk("wrk: connection refused")


def test_the_load_test_scale_options() -> None:
    quick = parse_args(["--quick", "--customers", "20"])
    assert (quick.duration, quick.warmup, quick.connections, quick.customers) == (2.0, 0.0, 4, 20)
    full = parse_args(["--duration", "3"])
    assert (full.duration, full.warmup, full.connections, full.customers) == (3.0, 2.0, 32, 500)
    with pytest.raises(SystemExit):
        parse_args(["--connections", "0"])


async def test_a_table_of_the_same_name_that_lacks_the_design_is_refused(
    server: LocalServer, db: Client
) -> None:
    # The README Quick start's "Shop" has GSI1 only: the shop's status listing (GSI2) would
    # fail on it with a 500 long after start-up. Both the app and the loader refuse it.
    table = f"shop-{uuid.uuid4().hex[:12]}"
    await db.create_table(
        table, partition_key="PK", sort_key="SK", indexes=[GlobalIndex("GSI1", "GSI1PK", "GSI1SK")]
    )
    try:
        app = create_app(Settings(endpoint_url=server.endpoint_url, table=table))
        with pytest.raises(TableMismatch) as info:
            async with app.router.lifespan_context(app):
                pass
        assert f"table {table!r} has no index 'GSI2'" in str(info.value)
        assert "restart `asyncdyn local`" in str(info.value) and "SHOP_TABLE" in str(info.value)
        loaded = bulk_load(server, "--table", table, "--customers", "1")
        assert loaded.returncode == 2 and "has no index 'GSI2'" in loaded.stderr
        assert "Traceback" not in loaded.stderr
    finally:
        await db.delete_table(table, wait=False)
