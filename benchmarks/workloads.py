"""Workloads: small registered units the harness runs for every client.

A workload says how to seed the table it reads (with asyncdyn, once per run), what its
i-th operation is for a given client adapter, how many items one operation moves, and how
to check one result (outside the timing, so no client skips decoding unnoticed).

Adding one (batch_get of 10,000 keys, a 10-shard fan-out, a time-series range...) is one
``register(Workload(...))`` call; give the adapters in ``peers.py`` the method it needs.
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


@cache
def _get_keys() -> tuple[Item, ...]:
    return tuple({"PK": f"ITEM#{n:06d}", "SK": "ITEM"} for n in range(GET_KEYS))


async def _seed_get(table: Any) -> None:
    await seed_items(
        table, [make_item(key["PK"], key["SK"], n) for n, key in enumerate(_get_keys())]
    )


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
