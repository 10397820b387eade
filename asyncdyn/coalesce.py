"""Coalescing: concurrent ``Table.get`` calls gathered into BatchGetItem requests.

The DataLoader pattern: a web service serving 1,000 requests at once issues 1,000 GetItem
calls, and DynamoDB would answer them as ten BatchGetItem calls of 100 keys at the same read
cost per item. With ``Client(coalesce_gets=True)`` every ``get`` made during one turn of the
event loop (or within ``coalesce_window`` seconds) joins a group per table, consistency,
projection and key shape; a group goes out when it holds 100 keys or when the turn ends,
through the batch engine (so unprocessed keys and throttling are retried as for
``batch_get``).

The rules that keep each caller's answer its own:

- A get joins only a group whose request has not started: one still gathering, or one full
  (100 keys) whose task has not run yet, which a repeated key joins. A request already on
  its way may have been read before the call, so its answer may predate a write the caller
  completed just before (a strongly consistent read must see it); for eventually consistent
  reads the same rule holds, so that no read is ever older than its call. The cost: a key
  asked again while its first request is in flight is fetched again.
- Each group is its own request: a failure reaches exactly the callers in it. A key is
  checked before it joins (a bad one fails its caller at once), and a ValidationException
  on a request of several keys is bisected, so that only the callers of the key(s) the
  server refuses get it and every other caller gets its item.
- A caller cancelled while waiting leaves the others alone. ``close()`` ends every get still
  waiting, gathered or sent, with ``ClientClosed``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from .batch import MAX_GET_KEYS, BatchEngine, Identity, Lane, _Get, fetch_all, key_identity
from .errors import (
    ClientClosed,
    ConfigurationError,
    InvalidItem,
    UnprocessedKeysError,
    ValidationError,
)
from .marshal import Decoder, WireItem
from .stats import Stats

__all__ = ["GetCoalescer"]

Item = dict[str, Any]
# Table, consistency, key attribute names, their wire types, projection.
_GroupKey = tuple[str, bool, tuple[str, ...], tuple[str, ...], str | None]


class _Group:
    """The gets of one table, consistency, projection and key shape waiting for the same
    request."""

    __slots__ = ("entries", "lane", "waiters")

    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        self.entries: dict[Identity, _Get] = {}
        self.waiters: dict[Identity, list[asyncio.Future[Item | None]]] = {}

    def fail(self, error: BaseException) -> None:
        """Give ``error`` to every caller still waiting."""
        for waiters in self.waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(error)


def _closed_error() -> ClientClosed:
    error = ClientClosed("the client was closed before this get was answered")
    error.maybe_applied = False  # a read: nothing to apply
    return error


class GetCoalescer:
    """Gathers one client's concurrent gets into BatchGetItem requests."""

    __slots__ = (
        "_closed",
        "_decode",
        "_engine",
        "_groups",
        "_lanes",
        "_sending",
        "_stats",
        "_timer",
        "_unstarted",
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
        # Groups still gathering: the only ones a new get may join.
        self._groups: dict[_GroupKey, _Group] = {}
        # Groups sent, by the task fetching them (close() settles them even if the task
        # never got to run).
        self._sending: dict[asyncio.Task[None], _Group] = {}
        # The keys of groups sent but whose task has not started: nothing of their request
        # exists yet, so a caller asking for one of them again may still join.
        self._unstarted: dict[tuple[_GroupKey, Identity], _Group] = {}
        self._timer: asyncio.Handle | None = None
        self._lanes: dict[_GroupKey, Lane] = {}
        self._closed = False

    async def get(
        self,
        lane_for: Callable[[tuple[str, ...]], Lane],
        table: str,
        key: Mapping[str, Any],
        wire: WireItem,
        *,
        consistent: bool,
        projection: object,
    ) -> Item | None:
        """The item of ``key`` (encoded: ``wire``), fetched with the other gets of this turn
        of the loop. ``projection`` is what the group's lane projects (its ``repr`` tells
        groups apart); ``lane_for(key_names)`` builds the read lane of a new group
        (``batch.read_lane``)."""
        if self._closed:
            raise _closed_error()
        names = tuple(sorted(wire))
        try:
            identity = key_identity(wire, names)
        except ValueError as exc:
            raise InvalidItem(str(exc)) from None
        # A table's key attribute has one type, so DynamoDB refuses a request holding a key
        # of another type as a whole: grouped by type too, such a key shares a request only
        # with keys just as wrong, never with good ones.
        types = tuple([next(iter(wire[name])) for name in names])
        group_key: _GroupKey = (
            table,
            consistent,
            names,
            types,
            None if projection is None else repr(projection),
        )
        waiter: asyncio.Future[Item | None] = asyncio.get_running_loop().create_future()
        self._stats.coalesced_gets += 1
        queued = self._unstarted.get((group_key, identity))
        if queued is not None:
            joined = queued.entries[identity]
            joined.again = [*(joined.again or ()), key]
            queued.waiters[identity].append(waiter)
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
            self._unstarted[(group_key, identity)] = group
        task = asyncio.get_running_loop().create_task(self._fetch(group_key, group))
        self._sending[task] = group
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.pop(task, None)

    async def _fetch(self, group_key: _GroupKey, group: _Group) -> None:
        self._started(group_key, group)  # from here on, a new get makes a new request
        self._stats.coalesced_batches += 1
        try:
            failures = await self._settle(list(group.entries.values()))
        except BaseException:  # cancelled: only close() does that, so the callers get that
            group.fail(_closed_error())
            raise
        for identity, entry in group.entries.items():
            waiters = group.waiters[identity]
            error = failures.get(id(entry))
            if error is not None:
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(error)
                continue
            item = entry.item
            for n, waiter in enumerate(waiters):
                if not waiter.done():
                    waiter.set_result(item if n == 0 or item is None else entry.copy(self._decode))

    def _started(self, group_key: _GroupKey, group: _Group) -> None:
        for identity in group.entries:
            if self._unstarted.get((group_key, identity)) is group:
                del self._unstarted[(group_key, identity)]

    async def _settle(self, entries: list[_Get]) -> dict[int, Exception]:
        """Fetch ``entries`` (each keeps its item); the error of each one not answered, by
        ``id(entry)``.

        DynamoDB refuses a whole request for one bad key (a key too long, a projection it
        cannot apply to that item...). Such a ValidationException on several keys is
        bisected: each half is asked again, until the keys that cause it are alone, so the
        error reaches only their callers (about 2·log2(n) requests for one culprit among n).
        """
        try:
            outcome = await fetch_all(self._engine, entries, window=1)
        except ValidationError as exc:
            if len(entries) == 1:
                return {id(entries[0]): exc}
            half = len(entries) // 2
            first, second = await asyncio.gather(
                self._settle(entries[:half]), self._settle(entries[half:])
            )
            return first | second
        except Exception as exc:  # every caller of these keys, and no other, gets it
            return {id(entry): exc for entry in entries}
        failures: dict[int, Exception] = {}
        for entry in outcome.leftovers:
            error = UnprocessedKeysError([None], [dict(entry.source)])
            error.__cause__ = outcome.error
            failures[id(entry)] = error
        return failures

    async def close(self) -> None:
        """End every get still waiting with ``ClientClosed``: those gathering at once, those
        sent by cancelling their requests. Later gets raise it too."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        gathering = list(self._groups.values())
        self._groups.clear()
        for group in gathering:
            group.fail(_closed_error())
        sending = list(self._sending.items())
        self._unstarted.clear()
        for task, _ in sending:
            task.cancel()
        # A task cancelled before it first ran never runs its body (nor its except clause),
        # so its callers are settled here; for the others this finds them settled already.
        for _, group in sending:
            group.fail(_closed_error())
        if sending:
            await asyncio.wait([task for task, _ in sending])
