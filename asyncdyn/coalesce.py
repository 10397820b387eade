"""Coalescing: concurrent ``Table.get`` calls gathered into BatchGetItem requests.

The DataLoader pattern: a web service serving 1,000 requests at once issues 1,000 GetItem
calls, and DynamoDB would answer them as ten BatchGetItem calls of 100 keys at the same read
cost per item. With ``Client(coalesce_gets=True)`` every ``get`` made during one turn of the
event loop (or within ``coalesce_window`` seconds) joins a group per table, consistency and
projection; a group goes out when it holds 100 keys or when the turn ends, through the batch
engine (so unprocessed keys and throttling are retried as for ``batch_get``). Each group is
its own request: a failure reaches exactly the callers whose keys were in it. A caller that
is cancelled while waiting leaves the others alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from .batch import MAX_GET_KEYS, BatchEngine, Identity, Lane, _Get, fetch_all, key_identity
from .errors import ConfigurationError, InvalidItem, UnprocessedKeysError
from .marshal import Decoder, encode_key
from .stats import Stats

__all__ = ["GetCoalescer"]

Item = dict[str, Any]
_GroupKey = tuple[str, bool, tuple[str, ...], Any]


class _Group:
    """The gets of one table, consistency and projection waiting for the same request."""

    __slots__ = ("entries", "lane", "waiters")

    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        self.entries: dict[Identity, _Get] = {}
        self.waiters: dict[Identity, list[asyncio.Future[Item | None]]] = {}


class GetCoalescer:
    """Gathers one client's concurrent gets into BatchGetItem requests."""

    __slots__ = (
        "_decode",
        "_engine",
        "_groups",
        "_in_flight",
        "_lanes",
        "_stats",
        "_tasks",
        "_timer",
        "window",
    )

    def __init__(
        self, engine: BatchEngine, decoder: Decoder, stats: Stats, *, window: float = 0.0
    ) -> None:
        if window < 0:
            raise ConfigurationError("coalesce_window must not be negative")
        self._engine = engine
        self._decode = decoder.item
        self._stats = stats
        self.window = window
        self._groups: dict[_GroupKey, _Group] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.Handle | None = None
        self._lanes: dict[_GroupKey, Lane] = {}
        # Keys already on their way: a caller asking for one again waits for that answer.
        self._in_flight: dict[tuple[_GroupKey, Identity], _Group] = {}

    async def get(
        self,
        lane_for: Any,
        table: str,
        key: Mapping[str, Any],
        *,
        consistent: bool,
        attributes: Sequence[Any] | None,
    ) -> Item | None:
        """The item of ``key``, fetched with the other gets of this turn of the loop.

        ``lane_for(key_names)`` builds the read lane of a new group (``batch.read_lane``).
        """
        wire = encode_key(key)
        names = tuple(sorted(wire))
        try:
            identity = key_identity(wire, names)
        except ValueError as exc:
            raise InvalidItem(str(exc)) from None
        projection = None if attributes is None else repr(list(attributes))
        group_key: _GroupKey = (table, consistent, names, projection)
        waiter: asyncio.Future[Item | None] = asyncio.get_running_loop().create_future()
        self._stats.coalesced_gets += 1
        sent = self._in_flight.get((group_key, identity))
        if sent is not None:
            on_its_way = sent.entries[identity]
            on_its_way.again = [*(on_its_way.again or ()), key]
            sent.waiters[identity].append(waiter)
            return await waiter
        group = self._groups.get(group_key)
        if group is None:
            lane = self._lanes.get(group_key)
            if lane is None:
                lane = self._lanes[group_key] = lane_for(names)
            group = self._groups[group_key] = _Group(lane)
        entry = group.entries.get(identity)
        if entry is None:
            entry = group.entries[identity] = _Get(group.lane, identity, wire, key)
            group.waiters[identity] = []
        elif entry.again is None:
            entry.again = [key]  # keeps the wire item, to give each caller its own copy
        else:
            entry.again.append(key)
        group.waiters[identity].append(waiter)
        if len(group.entries) >= MAX_GET_KEYS:
            self._send(group_key)
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = (
                loop.call_soon(self._flush)
                if self.window == 0
                else loop.call_later(self.window, self._flush)
            )
        return await waiter

    def _flush(self) -> None:
        self._timer = None
        for group_key in list(self._groups):
            self._send(group_key)

    def _send(self, group_key: _GroupKey) -> None:
        group = self._groups.pop(group_key)
        for identity in group.entries:
            self._in_flight[(group_key, identity)] = group
        task = asyncio.get_running_loop().create_task(self._fetch(group_key, group))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fetch(self, group_key: _GroupKey, group: _Group) -> None:
        self._stats.coalesced_batches += 1
        try:
            outcome = await fetch_all(self._engine, list(group.entries.values()), window=1)
        except Exception as exc:  # every caller of this group, and no other, gets it
            self._settled(group_key, group)
            for waiters in group.waiters.values():
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(exc)
            return
        except BaseException:  # cancelled: the client is closing, so are its callers
            self._settled(group_key, group)
            for waiters in group.waiters.values():
                for waiter in waiters:
                    waiter.cancel()
            raise
        self._settled(group_key, group)
        left = {id(entry) for entry in outcome.leftovers}
        for identity, entry in group.entries.items():
            waiters = group.waiters[identity]
            if id(entry) in left:
                error = UnprocessedKeysError([None], [dict(entry.source)])
                error.__cause__ = outcome.error
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(error)
                continue
            item = entry.item
            for n, waiter in enumerate(waiters):
                if not waiter.done():
                    waiter.set_result(item if n == 0 or item is None else entry.copy(self._decode))

    def _settled(self, group_key: _GroupKey, group: _Group) -> None:
        for identity in group.entries:
            if self._in_flight.get((group_key, identity)) is group:
                del self._in_flight[(group_key, identity)]

    async def close(self) -> None:
        """Cancel the requests still running (their callers get ``CancelledError``)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
