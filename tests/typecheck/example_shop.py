"""User code written against the entity layer: ``mypy --strict`` must accept it (see
tests/unit/test_model_typing.py), so the decorator's constructor and the repository's
return types are what a type checker sees."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from asyncdyn import Client
from asyncdyn.model import Design, DesignReport, Entity, Finding, field

shop = Design("Shop", indexes={"GSI1": ("GSI1PK", "GSI1SK")})


@shop.entity("Customer")
class Customer(Entity):
    customer_id: str
    email: str
    created_at: datetime | None = field(created=True, default=None)  # default: for mypy
    version: int = field(version=True, default=0)
    key = shop.key(pk="CUSTOMER#{customer_id}", sk="METADATA")


@shop.entity("Order")
class Order(Entity):
    customer_id: str
    order_id: str
    total: Decimal
    placed_at: datetime
    key = shop.key(pk="CUSTOMER#{customer_id}", sk="ORDER#{order_id}")
    by_day = shop.index("GSI1", pk="ORDERS", sk="{placed_at}#{order_id}")


pages = shop.collection("customer_page", Customer, Order)
orders_of_customer = shop.pattern("orders of a customer", Order)
recent_orders = shop.pattern(
    "recent orders",
    Order.by_day,
    range=Order.placed_at,
    allow={"hot-key-constant": "an admin view, a few reads a day"},
)


async def use(db: Client) -> list[str]:
    repo = shop.bind(db)
    written: Customer = await repo.put(Customer(customer_id="1", email="a@example.com"))
    version: int = written.version
    got: Customer | None = await repo.get(Customer, customer_id="1")
    totals: list[Decimal] = [o.total async for o in repo.query(Order, customer_id="1")]
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    recent = repo.query(Order.by_day, where=Order.field_ref("placed_at").gte(t0))
    ids = [o.order_id async for o in recent]
    both = await repo.batch_get(
        [Customer.ref(customer_id="1"), Order.ref(customer_id="1", order_id="2")]
    )
    rows = [row async for row in repo.query(pages, customer_id="1")]
    report: DesignReport = shop.check(await repo.describe())
    errors: list[Finding] = report.errors
    ran = [o async for o in repo.run(orders_of_customer, customer_id="1")]
    page = await repo.page(recent_orders, limit=10, where=Order.field_ref("placed_at").gte(t0))
    return [
        str(version),
        str(got),
        str(totals),
        *ids,
        str(both),
        str(rows),
        str(errors),
        str(ran),
        str(page.cursor),
    ]
