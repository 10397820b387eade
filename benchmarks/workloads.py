"""Workloads: small registered units the harness runs for every client.

A workload says how to seed the table it reads (with asyncdyn, once per run), what its
i-th operation is for a given client adapter, how many items one operation moves, and how
to check one result (outside the timing, so no client skips decoding unnoticed).

Adding one (a 10-shard fan-out, a time-series range...) is one ``register(Workload(...))``
call; give the adapters in ``peers.py`` the method it needs. A workload on a method not every
adapter has names it in ``requires``; the harness skips it (reported "n/a") for the others.
A bulk workload, whose one operation already fans out into many requests, sets
``concurrency=1`` (one operation at a time) and a small ``warmup``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from .canned import QUERY_ITEMS
from .data import ATTRIBUTES, CITY, STATUS, make_item
from .peers import Item, Peer

__all__ = ["WORKLOADS", "Workload", "check_item", "register", "seed_items"]

# One operation of a run: (adapter, index of the operation in the run) -> its result.
Operation = Callable[[Peer, int], Awaitable[Any]]
# Seed the table through an asyncdyn Table before any client runs.
Seed = Callable[[Any], Awaitable[None]]
Check = Callable[[Peer, Any], None]

_SEED_CONCURRENCY = 32


@dataclass(frozen=True, slots=True)
class Workload:
    """One kind of operation the harness measures for each client."""

    name: str
    summary: str
    operation: Operation
    check: Check
    items_per_op: int = 1
    default_ops: int = 1000
    """Operations per client and round on a local server (tuned to dynalite on 2 cores)."""
    seed: Seed | None = None
    concurrency: int | None = None
    """Tasks issuing operations at once, instead of the harness's ``--concurrency``."""
    warmup: int | None = None
    """Untimed operations per client before the rounds, instead of the harness's ``--warmup``."""
    requires: str | None = None
    """The optional :class:`Peer` method the operation calls (adapters without it skip)."""
    in_default_run: bool = True
    """Run when ``--workload`` is not given (the bulk ones are asked for by name)."""

    def supports(self, peer: Peer) -> bool:
        """Whether ``peer`` can run this workload."""
        return self.requires is None or peer.supports(self.requires)


WORKLOADS: dict[str, Workload] = {}
"""Every registered workload by name, in registration order."""


def register(workload: Workload) -> Workload:
    if workload.name in WORKLOADS:
        raise ValueError(f"workload {workload.name!r} is already registered")
    WORKLOADS[workload.name] = workload
    return workload


def check_item(peer: Peer, item: Any) -> None:
    """Fail unless ``item`` is a whole decoded benchmark item (nested map included)."""
    if item is None:
        raise AssertionError(f"{peer.name}: item missing")
    plain = peer.plain(item)
    if len(plain) != ATTRIBUTES or plain["status"] != STATUS:
        raise AssertionError(f"{peer.name}: unexpected item {plain!r:.200}")
    if plain["customer"]["address"]["city"] != CITY:
        raise AssertionError(f"{peer.name}: nested map not decoded: {plain['customer']!r:.200}")


async def seed_items(table: Any, items: Sequence[Item]) -> None:
    """Put ``items`` through an asyncdyn ``Table``, a bounded number at a time."""
    limit = asyncio.Semaphore(_SEED_CONCURRENCY)

    async def put(item: Item) -> None:
        async with limit:
            await table.put(item)

    async with asyncio.TaskGroup() as group:
        for item in items:
            group.create_task(put(item))


# --------------------------------------------------------------------------- get

GET_KEYS = 1000


def _item_keys(prefix: str, count: int) -> tuple[Item, ...]:
    return tuple({"PK": f"{prefix}#{n:06d}", "SK": "ITEM"} for n in range(count))


async def _seed_keys(table: Any, keys: Sequence[Item]) -> None:
    await seed_items(table, [make_item(key["PK"], key["SK"], n) for n, key in enumerate(keys)])


@cache
def _get_keys() -> tuple[Item, ...]:
    return _item_keys("ITEM", GET_KEYS)


async def _seed_get(table: Any) -> None:
    await _seed_keys(table, _get_keys())


def _get(peer: Peer, i: int) -> Awaitable[Any]:
    keys = _get_keys()
    return peer.get(keys[i % GET_KEYS])


register(
    Workload(
        name="get",
        summary=f"GetItem of one ~1 KB item, keys cycling over {GET_KEYS} items",
        operation=_get,
        check=check_item,
        default_ops=1500,
        seed=_seed_get,
    )
)


# --------------------------------------------------------------------------- put

PUT_ITEMS = 1000


@cache
def _put_items() -> tuple[Item, ...]:
    # Built once: making the item is the caller's work, not the client's.
    return tuple(make_item(f"PUT#{n:06d}", "ITEM", n) for n in range(PUT_ITEMS))


def _put(peer: Peer, i: int) -> Awaitable[Any]:
    return peer.put(_put_items()[i % PUT_ITEMS])


def _check_put(peer: Peer, result: Any) -> None:
    if result is not None:
        raise AssertionError(f"{peer.name}: put returned {result!r:.200}")


register(
    Workload(
        name="put",
        summary=f"PutItem of one ~1 KB item, overwriting {PUT_ITEMS} keys in turn",
        operation=_put,
        check=_check_put,
        default_ops=1500,
    )
)


# ------------------------------------------------------------------------- query

QUERY_PARTITION = "ORDERS#QUERY"


async def _seed_query(table: Any) -> None:
    await seed_items(
        table,
        [make_item(QUERY_PARTITION, f"ORDER#{n:08d}", n) for n in range(QUERY_ITEMS)],
    )


def _query(peer: Peer, i: int) -> Awaitable[Any]:
    return peer.query(QUERY_PARTITION)


def _check_query(peer: Peer, items: Any) -> None:
    if len(items) != QUERY_ITEMS:
        raise AssertionError(f"{peer.name}: query returned {len(items)} items, not {QUERY_ITEMS}")
    check_item(peer, items[-1])


register(
    Workload(
        name="query",
        summary=f"Query of one {QUERY_ITEMS}-item partition (~50 KB), every page read",
        operation=_query,
        check=_check_query,
        items_per_op=QUERY_ITEMS,
        default_ops=250,
        seed=_seed_query,
    )
)


# ---------------------------------------------------------------------- batch_get

BATCH_ITEMS = 10_000
"""Keys one batch_get operation fetches, items one batch_write operation puts."""


@cache
def _batch_get_keys() -> tuple[Item, ...]:
    return _item_keys("BGET", BATCH_ITEMS)


async def _seed_batch_get(table: Any) -> None:
    await _seed_keys(table, _batch_get_keys())


def _batch_get(peer: Peer, i: int) -> Awaitable[Any]:
    return peer.batch_get(_batch_get_keys())


def _check_batch_get(peer: Peer, items: Any) -> None:
    # asyncdyn answers one entry per key (None when missing); the others only what was found.
    found = [item for item in items if item is not None]
    if len(found) != BATCH_ITEMS:
        raise AssertionError(
            f"{peer.name}: batch_get returned {len(found)} items, not {BATCH_ITEMS}"
        )
    check_item(peer, found[-1])


register(
    Workload(
        name="batch_get",
        summary=f"{BATCH_ITEMS:,} ~1 KB items by key (BatchGetItem), one operation at a time",
        operation=_batch_get,
        check=_check_batch_get,
        items_per_op=BATCH_ITEMS,
        # 1 s (asyncdyn) to 2.7 s (aioboto3) per operation on dynalite.
        default_ops=3,
        seed=_seed_batch_get,
        concurrency=1,
        warmup=1,
        requires="batch_get",
        in_default_run=False,
    )
)


# -------------------------------------------------------------------- batch_write


@cache
def _batch_write_items() -> tuple[Item, ...]:
    # Built once, like put's: making the items is the caller's work, not the client's.
    return tuple(make_item(f"BPUT#{n:06d}", "ITEM", n) for n in range(BATCH_ITEMS))


def _batch_write(peer: Peer, i: int) -> Awaitable[Any]:
    return peer.batch_write(_batch_write_items())


def _check_batch_write(peer: Peer, result: Any) -> None:
    if result is not None:
        raise AssertionError(f"{peer.name}: batch_write returned {result!r:.200}")


register(
    Workload(
        name="batch_write",
        summary=f"{BATCH_ITEMS:,} ~1 KB items put (BatchWriteItem), overwriting the same keys",
        operation=_batch_write,
        check=_check_batch_write,
        items_per_op=BATCH_ITEMS,
        # One op is 400 sequential requests for the botocore clients: ~6 s on dynalite.
        default_ops=1,
        concurrency=1,
        warmup=1,
        requires="batch_write",
        in_default_run=False,
    )
)
