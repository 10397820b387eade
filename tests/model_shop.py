"""The playbook's e-commerce design, shared by the entity layer's unit and integration tests."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from asyncdyn.model import Design, Entity, field

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
    created_at: datetime | None = field(created=True)
    updated_at: datetime | None = field(updated=True)
    version: int = field(version=True)
    key = shop.key(pk="CUSTOMER#{customer_id}", sk="METADATA")
    by_email = shop.index("GSI1", pk="CUSTOMER_EMAIL#{email}", sk="CUSTOMER#{customer_id}")


@shop.entity("Order", aliases=("Purchase",))
class Order(Entity):
    customer_id: str
    order_id: str
    total: Decimal
    status: str
    placed_at: datetime
    note: str | None = field(default=None, name="n")
    expires: datetime | None = field(ttl=True, default=None)
    key = shop.key(pk="CUSTOMER#{customer_id}", sk="ORDER#{order_id}")
    by_id = shop.index("GSI1", pk="ORDER#{order_id}", sk="CUSTOMER#{customer_id}")
    by_status = shop.index("GSI2", pk="ORDER_STATUS#{status}", sk="{placed_at}#ORDER#{order_id}")


@shop.entity("OrderItem")
class OrderItem(Entity):
    order_id: str
    item_id: int
    sku: str
    qty: int = 1
    key = shop.key(pk="ORDER#{order_id}", sk="ITEM#{item_id:05d}")
    by_order = shop.index("GSI1", pk="ORDER#{order_id}", sk="ITEM#{item_id:05d}")


customer_page = shop.collection("customer_page", Customer, Order)
order_page = shop.collection("order_page", Order, OrderItem, index="GSI1")

# The playbook's access patterns, each a key condition (design.check() proves it).
customer_by_id = shop.pattern("customer by id", Customer)
orders_of_customer = shop.pattern("orders of a customer", Order, reads_per_second=500)
items_of_order = shop.pattern("items of an order", OrderItem)
customer_by_email = shop.pattern("customer by email", Customer, by=("email",))
order_by_id = shop.pattern("order by id", Order, by=("order_id",))
pending_orders = shop.pattern(
    "pending orders in a date range",
    Order.by_status,
    status="PENDING",
    range=Order.placed_at,
    writes_per_second=50,
    allow={"hot-key-enum": "a few hundred orders a day; GSI2 stays far below 1,000 WCU/s"},
)
customer_with_orders = shop.pattern("customer with orders", customer_page)
order_with_items = shop.pattern("order with its items", (Order, OrderItem), by=("order_id",))
