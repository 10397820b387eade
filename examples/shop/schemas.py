"""The HTTP models of the shop: what clients send and what they get back.

Kept apart from the entities (``design``) on purpose: the wire shape of the API may differ
from the stored shape, and pydantic validates the request before the entity layer sees it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .design import Customer, Order, OrderItem

Status = Literal["PENDING", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"]

# A transaction holds at most 100 actions: the customer check, the order, and its lines.
MAX_LINES = 98


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=64)
    email: str = Field(min_length=3, max_length=254)
    name: str = Field(min_length=1, max_length=200)


class CustomerOut(BaseModel):
    customer_id: str
    email: str
    name: str
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, c: Customer) -> CustomerOut:
        return cls(
            customer_id=c.customer_id,
            email=c.email,
            name=c.name,
            created_at=c.created_at,
            updated_at=c.updated_at,
        )


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=64)
    qty: int = Field(ge=1, le=1000)
    price: Decimal = Field(ge=0, max_digits=12, decimal_places=2)


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Optional: a client that picks its own id can resend a lost request safely (the second
    # attempt gets 409, never a second order).
    order_id: str | None = Field(default=None, min_length=1, max_length=64)
    lines: list[LineIn] = Field(min_length=1, max_length=MAX_LINES)


class LineOut(BaseModel):
    line: int
    sku: str
    qty: int
    price: Decimal

    @classmethod
    def of(cls, i: OrderItem) -> LineOut:
        return cls(line=i.line, sku=i.sku, qty=i.qty, price=i.price)


class OrderOut(BaseModel):
    customer_id: str
    order_id: str
    status: str
    total: Decimal
    placed_at: datetime
    updated_at: datetime | None

    @classmethod
    def of(cls, o: Order) -> OrderOut:
        return cls(
            customer_id=o.customer_id,
            order_id=o.order_id,
            status=o.status,
            total=o.total,
            placed_at=o.placed_at,
            updated_at=o.updated_at,
        )


class OrderWithLines(OrderOut):
    lines: list[LineOut]

    @classmethod
    def of_parts(cls, o: Order, items: list[OrderItem]) -> OrderWithLines:
        return cls(
            **OrderOut.of(o).model_dump(),
            lines=[LineOut.of(i) for i in items],
        )


class StatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status


class OrderPage(BaseModel):
    orders: list[OrderOut]
    # The opaque, signed cursor of the next page (``?cursor=``), or null at the end.
    next: str | None


class Problem(BaseModel):
    detail: str


class ClientStats(BaseModel):
    """The shared Client's counters (``db.stats()``): what the load test reports beside
    wrk's figures, e.g. how many gets coalescing folded into how many BatchGetItem calls."""

    requests: dict[str, int]
    retries: int
    throttles: int
    errors: dict[str, int]
    coalesced_gets: int
    coalesced_batches: int
