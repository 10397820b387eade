"""The shop's single-table design: customers, their orders, and each order's items.

One table ``Shop`` holds three entity types. The access patterns, each one key condition:

* a customer by id: ``PK=CUSTOMER#{customer_id}``, ``SK=METADATA``;
* a customer's orders, newest first, paged: the same partition, ``SK`` begins with ``ORDER#``
  (order ids sort by time, see ``new_order_id``);
* an order with its items, by order id alone, in one query: the collection ``order_with_items``
  on GSI1, where the order (``GSI1SK=CUSTOMER#...``) sorts before its items (``ITEM#...``);
* orders by status: GSI2, ``ORDER_STATUS#{status}``, sorted by the time placed. The entity
  layer rewrites GSI2's keys whenever the status changes, so the index never goes stale;
* a customer by email: GSI1 (not served over HTTP here; the design check covers it).
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime
from decimal import Decimal

from asyncdyn import ResourceInUse, TableNotFound
from asyncdyn.model import Design, Entity, Repository, field

shop = Design(
    "Shop",
    key=("PK", "SK"),
    indexes={"GSI1": ("GSI1PK", "GSI1SK"), "GSI2": ("GSI2PK", "GSI2SK")},
    type_attribute="Type",
)


@shop.entity("Customer")
class Customer(Entity):
    customer_id: str
    email: str
    name: str
    # The defaults are for type checkers: the entity layer fills both on every write.
    created_at: datetime | None = field(created=True, default=None)
    updated_at: datetime | None = field(updated=True, default=None)
    key = shop.key(pk="CUSTOMER#{customer_id}", sk="METADATA")
    by_email = shop.index("GSI1", pk="CUSTOMER_EMAIL#{email}", sk="CUSTOMER#{customer_id}")


@shop.entity("Order")
class Order(Entity):
    customer_id: str
    order_id: str
    total: Decimal
    status: str
    placed_at: datetime
    updated_at: datetime | None = field(updated=True, default=None)
    key = shop.key(pk="CUSTOMER#{customer_id}", sk="ORDER#{order_id}")
    by_id = shop.index("GSI1", pk="ORDER#{order_id}", sk="CUSTOMER#{customer_id}")
    by_status = shop.index("GSI2", pk="ORDER_STATUS#{status}", sk="{placed_at}#ORDER#{order_id}")


@shop.entity("OrderItem")
class OrderItem(Entity):
    order_id: str
    line: int
    sku: str
    qty: int
    price: Decimal
    # Items live under the order's own partition and in its GSI1 partition, beside the order.
    key = shop.key(pk="ORDER#{order_id}", sk="ITEM#{line:03d}")
    by_order = shop.index("GSI1", pk="ORDER#{order_id}", sk="ITEM#{line:03d}")


# The status an order may move to, and from which: PENDING -> PAID -> SHIPPED. The shop
# checks it as the update's condition, so the rule holds under concurrent requests.
NEXT_FROM: dict[str, tuple[str, ...]] = {"PAID": ("PENDING",), "SHIPPED": ("PAID",)}

# One query on GSI1 by order id returns the order and then its items, no filter needed.
order_with_items = shop.collection("order_with_items", Order, OrderItem, index="GSI1")

customer_by_id = shop.pattern("customer by id", Customer)
customer_by_email = shop.pattern("customer by email", Customer, by=("email",))
orders_of_customer = shop.pattern("orders of a customer", Order)
order_and_items = shop.pattern("order with its items", order_with_items)
orders_by_status = shop.pattern(
    "orders by status",
    Order.by_status,
    allow={"hot-key-enum": "an example shop: a few orders a second per status"},
)


def new_order_id() -> str:
    """A time-ordered id (milliseconds, then randomness), so that a customer's orders sort
    by when they were placed and ``descending=True`` lists the newest first."""
    return f"{time.time_ns() // 1_000_000:013d}-{secrets.token_hex(4)}"


class TableMismatch(RuntimeError):
    """The table of the shop's name exists but does not fit the design (another program's
    table of the same name, such as the README Quick start's ``Shop``)."""


async def ensure_table(repo: Repository) -> None:
    """Create the table from the design unless it is there already (a demo convenience: a
    production service would leave this to its deployment), and refuse one that lacks the
    design's indexes or keys before any request would fail on it."""
    try:
        described = await repo.describe()
    except TableNotFound:
        try:
            await repo.create_table()
        except ResourceInUse:  # another worker created it first
            pass
        return
    live = [f.message for f in repo.design.check(described).errors if f.code.startswith("live-")]
    if live:
        raise TableMismatch(
            f"{'; '.join(live)}: table {repo.table.name!r} was made by something else (the "
            "README Quick start makes a 'Shop' table too); restart `asyncdyn local`, which "
            "keeps nothing, or set SHOP_TABLE to another table name"
        )
