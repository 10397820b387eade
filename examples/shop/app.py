"""The shop service: FastAPI over asyncdyn's entity layer.

Run it against a local server (``asyncdyn local`` or ``python -m asyncdyn.local``)::

    ASYNCDYN_ENDPOINT=http://127.0.0.1:8000 uvicorn examples.shop.app:app

Settings come from the environment (``Settings.from_env``):

* ``ASYNCDYN_ENDPOINT`` (default ``http://127.0.0.1:8000``), ``ASYNCDYN_REGION``;
* ``ASYNCDYN_COALESCE=1``: concurrent gets of one key share one GetItem;
* ``SHOP_TABLE`` (default ``Shop``), created with its indexes at start-up when missing;
* ``ASYNCDYN_CURSOR_KEY`` (hex): the key that signs page cursors. Give every worker the same
  one when several processes serve the API, or a cursor from one is refused by another.

Errors map to HTTP: a missing customer or order is 404, a conditional failure (a customer
or order id already taken, a status change the order's status does not allow: PENDING ->
PAID -> SHIPPED only) is 409, an id the key templates refuse (``InvalidItem``, e.g. one
containing ``#``) is 422 like any other invalid request, and a cursor that was not issued
by this service is 400.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from asyncdyn import (
    Attr,
    Client,
    ConditionalCheckFailed,
    InvalidCursor,
    InvalidItem,
    TransactionCanceled,
)
from asyncdyn.model import Repository

from .design import (
    NEXT_FROM,
    Customer,
    Order,
    OrderItem,
    ensure_table,
    new_order_id,
    order_with_items,
    shop,
)
from .schemas import (
    ClientStats,
    CustomerIn,
    CustomerOut,
    OrderIn,
    OrderOut,
    OrderPage,
    OrderWithLines,
    Problem,
    Status,
    StatusIn,
)

__all__ = ["Settings", "app", "create_app"]

DEFAULT_ENDPOINT = "http://127.0.0.1:8000"


@dataclass(frozen=True, slots=True)
class Settings:
    endpoint_url: str = DEFAULT_ENDPOINT
    region: str = "us-east-1"
    table: str = "Shop"
    coalesce_gets: bool = False
    cursor_key: bytes | None = None
    create_table: bool = True

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        key = env.get("ASYNCDYN_CURSOR_KEY")
        return cls(
            endpoint_url=env.get("ASYNCDYN_ENDPOINT", DEFAULT_ENDPOINT),
            region=env.get("ASYNCDYN_REGION", "us-east-1"),
            table=env.get("SHOP_TABLE", "Shop"),
            coalesce_gets=env.get("ASYNCDYN_COALESCE", "0") == "1",
            cursor_key=bytes.fromhex(key) if key else None,
            create_table=env.get("SHOP_CREATE_TABLE", "1") == "1",
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service for ``settings`` (default: from the environment). One ``Client`` per
    app, opened and closed by the lifespan, shared by every request: its connection pool
    and concurrency limit are per process, not per request."""
    settings = Settings.from_env() if settings is None else settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with Client(
            region=settings.region,
            endpoint_url=settings.endpoint_url,
            coalesce_gets=settings.coalesce_gets,
            cursor_key=settings.cursor_key,
        ) as db:
            repo = shop.bind(db, table=settings.table)
            if settings.create_table:
                await ensure_table(repo)
            app.state.repo = repo
            yield

    app = FastAPI(title="asyncdyn shop", lifespan=lifespan)
    app.state.settings = settings
    _add_error_handlers(app)
    _add_routes(app)
    return app


async def get_repo(request: Request) -> Repository:
    # async on purpose: FastAPI runs a plain-def dependency in a worker thread, a thread
    # hand-off per request (measured: ~5% of the service's CPU) for one attribute read.
    repo: Repository = request.app.state.repo
    return repo


Repo = Annotated[Repository, Depends(get_repo)]


def _add_error_handlers(app: FastAPI) -> None:
    # The exception hierarchy is the contract: InvalidItem is raised before anything is sent,
    # ConditionalCheckFailed means the write was not applied, so 409 is safe to report.
    async def invalid_item(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    async def invalid_cursor(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"invalid cursor: {exc}"}, status_code=400)

    async def conflict(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": "conflict: the write's condition failed"}, status_code=409)

    app.add_exception_handler(InvalidItem, invalid_item)
    app.add_exception_handler(InvalidCursor, invalid_cursor)
    app.add_exception_handler(ConditionalCheckFailed, conflict)


# OpenAPI documentation of the error answers (FastAPI's ``responses=``).
Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": Problem}}
CONFLICT: Responses = {409: {"model": Problem}}


def _add_routes(app: FastAPI) -> None:
    @app.post("/customers", status_code=201, responses=CONFLICT)
    async def create_customer(body: CustomerIn, repo: Repo) -> CustomerOut:
        # Conditional on no such customer: a second create of one id is 409, not an overwrite.
        written = await repo.put(
            Customer(customer_id=body.customer_id, email=body.email, name=body.name),
            condition=Attr("PK").not_exists(),
        )
        return CustomerOut.of(written)

    @app.get("/customers/{customer_id}", responses=NOT_FOUND)
    async def get_customer(customer_id: str, repo: Repo) -> CustomerOut:
        found = await repo.get(Customer, customer_id=customer_id)
        if found is None:
            raise HTTPException(404, f"no customer {customer_id!r}")
        return CustomerOut.of(found)

    @app.post(
        "/customers/{customer_id}/orders", status_code=201, responses={**NOT_FOUND, **CONFLICT}
    )
    async def place_order(customer_id: str, body: OrderIn, repo: Repo) -> OrderWithLines:
        order_id = body.order_id or new_order_id()
        lines = [
            OrderItem(order_id=order_id, line=n, sku=li.sku, qty=li.qty, price=li.price)
            for n, li in enumerate(body.lines, start=1)
        ]
        order = Order(
            customer_id=customer_id,
            order_id=order_id,
            total=sum((li.price * li.qty for li in body.lines), Decimal(0)),
            status="PENDING",
            placed_at=datetime.now(UTC),
        )
        customer_key = {"PK": f"CUSTOMER#{customer_id}", "SK": "METADATA"}
        # Building the actions validates every key (InvalidItem -> 422) before anything is
        # sent. One transaction: the customer exists, and neither the order nor any of its
        # lines does (an order id reused by another customer must not overwrite its items).
        # Each action carries its entity as it writes it (updated_at stamped once, when the
        # action is built): after the commit, that is what is stored, and what we answer.
        new = Attr("PK").not_exists()
        order_put = repo.tx_put(order, condition=new)
        line_puts = [repo.tx_put(line, condition=new) for line in lines]
        try:
            await repo.db.transact_write(
                [repo.table.tx_check(customer_key, Attr("PK").exists()), order_put, *line_puts]
            )
        except TransactionCanceled as exc:
            codes = [r.code for r in exc.reasons]
            if codes and codes[0] == "ConditionalCheckFailed":
                raise HTTPException(404, f"no customer {customer_id!r}") from exc
            if "ConditionalCheckFailed" in codes:
                raise HTTPException(409, f"order {order_id!r} exists already") from exc
            raise
        return OrderWithLines.of_parts(order_put.entity, [a.entity for a in line_puts])

    @app.get("/customers/{customer_id}/orders")
    async def list_orders(
        customer_id: str,
        repo: Repo,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: str | None = None,
    ) -> OrderPage:
        # Newest first; the signed cursor only opens this very query (customer included).
        page = await repo.page(
            Order, customer_id=customer_id, limit=limit, cursor=cursor, descending=True
        )
        return OrderPage(orders=[OrderOut.of(o) for o in page.items], next=page.cursor)

    @app.get("/orders", responses={400: {"model": Problem}})
    async def orders_by_status(
        status: Status,
        repo: Repo,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: str | None = None,
    ) -> OrderPage:
        page = await repo.page(
            Order.by_status, status=status, limit=limit, cursor=cursor, descending=True
        )
        return OrderPage(orders=[OrderOut.of(o) for o in page.items], next=page.cursor)

    @app.get("/orders/{order_id}", responses=NOT_FOUND)
    async def get_order(order_id: str, repo: Repo) -> OrderWithLines:
        # One Query on GSI1: the order, then its items in line order, typed, no filter.
        order: Order | None = None
        items: list[OrderItem] = []
        async for row in repo.query(order_with_items, order_id=order_id):
            if isinstance(row, Order):
                order = row
            elif isinstance(row, OrderItem):
                items.append(row)
        if order is None:
            raise HTTPException(404, f"no order {order_id!r}")
        return OrderWithLines.of_parts(order, items)

    @app.patch("/customers/{customer_id}/orders/{order_id}", responses={**NOT_FOUND, **CONFLICT})
    async def set_status(customer_id: str, order_id: str, body: StatusIn, repo: Repo) -> OrderOut:
        previous = NEXT_FROM.get(body.status, ())
        if not previous:
            raise HTTPException(409, f"no order moves to {body.status} through this API")
        # GSI2's keys derive from status and placed_at: derive="fetch" reads the item and
        # writes on condition that what it read is still stored, so the index follows. The
        # transition's own condition is checked by DynamoDB in the same write: two
        # concurrent "PAID"s cannot both pass, and a stale read cannot move an order back.
        try:
            updated = await repo.update(
                Order.ref(customer_id=customer_id, order_id=order_id),
                derive="fetch",
                condition=Order.field_ref("status").is_in(previous),
                status=body.status,
            )
        except ConditionalCheckFailed as exc:
            now = exc.current.status if isinstance(exc.current, Order) else "changed"
            raise HTTPException(
                409,
                f"order {order_id!r} is {now}: only {' or '.join(previous)} moves to {body.status}",
            ) from exc
        if updated is None:
            raise HTTPException(404, f"no order {order_id!r} of customer {customer_id!r}")
        assert isinstance(updated, Order)
        return OrderOut.of(updated)

    @app.get("/stats")
    async def stats(repo: Repo) -> ClientStats:
        s = repo.db.stats()
        return ClientStats(
            requests=dict(s.requests),
            retries=s.retries,
            throttles=s.throttles,
            errors=dict(s.errors),
            coalesced_gets=s.coalesced_gets,
            coalesced_batches=s.coalesced_batches,
        )


app = create_app()
