"""Pages of a query or scan: the ``Page`` result, opaque cursors, and the prefetching iterator.

A cursor is ``base64url(mac || orjson(LastEvaluatedKey))``. The MAC is a keyed BLAKE2b over
the request's *scope* (table, index, key condition — whatever makes two requests the same
listing) and the key. So a cursor that was edited, cut short, or made by another query or
table fails with ``InvalidCursor`` before anything is sent, never with a server error.

The MAC key is ``Client(cursor_key=...)``, or else a random key drawn once per process
(``process_cursor_key``): no outsider knows it, so nobody can mint a cursor carrying a key
of their choosing. Processes that must accept each other's cursors (several workers or hosts
behind one API, cursors that outlive a restart) pass them all the same ``cursor_key``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson

from .errors import InvalidCursor

__all__ = [
    "CursorCodec",
    "ItemIterator",
    "Page",
    "check_key_shape",
    "collect_page",
    "process_cursor_key",
]

Item = dict[str, Any]
WireKey = dict[str, Any]
# Fetch one server page: (ExclusiveStartKey or None, most items wanted or None) ->
# (decoded items, LastEvaluatedKey or None).
FetchPage = Callable[
    [WireKey | None, int | None], Coroutine[Any, Any, tuple[list[Item], WireKey | None]]
]

_MAC_BYTES = 12
_KEY_TYPES = frozenset(("S", "N", "B"))
# A LastEvaluatedKey holds the table key and, for an index, the index key: at most 4 parts.
_MAX_KEY_PARTS = 4
# Per key a cursor holds: a LastEvaluatedKey of the largest keys (2 KB + 1 KB, twice for an
# index), base64 and JSON, stays well below this.
_MAX_CURSOR_CHARS = 16_384


@dataclass(frozen=True, slots=True)
class Page:
    """One page of results: ``items`` and the ``cursor`` of the next page (``None`` at the end)."""

    items: list[dict[str, Any]]
    cursor: str | None


# Drawn once per process (a forked worker inherits its parent's): never a constant that an
# outsider could read in this source and mint cursors with.
_PROCESS_KEY = secrets.token_bytes(32)


def process_cursor_key() -> bytes:
    """The random cursor key of this process, used by every ``Client`` without its own."""
    return _PROCESS_KEY


class CursorCodec:
    """Turns a ``LastEvaluatedKey`` into an opaque URL-safe cursor and back, bound to a scope."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.blake2b(key, digest_size=32).digest()

    def _mac(self, scope: bytes, payload: bytes) -> bytes:
        h = hashlib.blake2b(key=self._key, digest_size=_MAC_BYTES)
        h.update(len(scope).to_bytes(4, "big"))
        h.update(scope)
        h.update(payload)
        return h.digest()

    def encode(self, scope: bytes, last_key: WireKey | None) -> str | None:
        """The cursor of ``last_key`` (``None`` at the end of the listing)."""
        return self.seal(scope, last_key) if last_key else None

    def decode(self, scope: bytes, cursor: str | None) -> WireKey | None:
        """The ``LastEvaluatedKey`` inside ``cursor``, or ``InvalidCursor``."""
        if cursor is None:
            return None
        last_key = self.open(scope, cursor)
        check_key_shape(last_key)
        return last_key  # type: ignore[no-any-return]  # shape checked just above

    def seal(self, scope: bytes, state: Any) -> str:
        """Any JSON-able ``state`` as a cursor bound to ``scope`` (a fan-out keeps one
        position per leg)."""
        payload = orjson.dumps(state, option=orjson.OPT_SORT_KEYS)
        raw = self._mac(scope, payload) + payload
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def open(self, scope: bytes, cursor: str, *, positions: int = 1) -> Any:
        """The state sealed in ``cursor``; ``InvalidCursor`` if it is not one of ours for
        ``scope``. The caller checks the state's shape. ``positions`` is how many keys the
        state may hold (one per leg of a fan-out): the size a cursor may have grows with it."""
        limit = _MAX_CURSOR_CHARS * max(1, positions)
        if not isinstance(cursor, str) or not cursor or len(cursor) > limit:
            raise InvalidCursor("cursor must be a non-empty string returned by a previous page")
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError) as exc:
            raise InvalidCursor("cursor is not valid URL-safe base64") from exc
        mac, payload = raw[:_MAC_BYTES], raw[_MAC_BYTES:]
        if len(mac) < _MAC_BYTES or not hmac.compare_digest(mac, self._mac(scope, payload)):
            raise InvalidCursor("cursor was altered, or belongs to another query, index or table")
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError as exc:  # only reachable with a forged MAC
            raise InvalidCursor("cursor payload is not readable") from exc


def check_key_shape(last_key: Any) -> None:
    """``InvalidCursor`` unless ``last_key`` looks like a DynamoDB key (1-4 S/N/B parts)."""
    if not isinstance(last_key, dict) or not 0 < len(last_key) <= _MAX_KEY_PARTS:
        raise InvalidCursor("cursor does not hold a key")
    for name, value in last_key.items():
        if (
            not name
            or not isinstance(value, dict)
            or len(value) != 1
            or next(iter(value)) not in _KEY_TYPES
            or not isinstance(next(iter(value.values())), str)
        ):
            raise InvalidCursor("cursor does not hold a key")


async def collect_page(
    fetch: FetchPage, start_key: WireKey | None, limit: int | None
) -> tuple[list[Item], WireKey | None]:
    """Fetch server pages until ``limit`` items are gathered or the listing ends.

    Without a limit this is one server page (up to 1 MB read). With one, a filter that drops
    items makes us read on, asking each time only for what is still missing, so the next
    cursor resumes right after the last item returned.
    """
    items, last_key = await fetch(start_key, limit)
    if limit is None:
        return items, last_key
    while last_key is not None and len(items) < limit:
        more, last_key = await fetch(last_key, limit - len(items))
        items.extend(more)
    return items, last_key


class ItemIterator:
    """Items of successive pages, with the next page fetched while the caller consumes this one.

    Leaving early (``break``) is fine: the prefetch is cancelled by ``aclose()``, by ``async
    with``, or at the latest when the iterator is garbage-collected.
    """

    __slots__ = (
        "__weakref__",
        "_buffer",
        "_done",
        "_fetch",
        "_index",
        "_next",
        "_remaining",
        "_start_key",
    )

    def __init__(
        self, fetch: FetchPage, *, limit: int | None = None, start_key: WireKey | None = None
    ) -> None:
        self._fetch = fetch
        self._remaining = limit
        self._start_key = start_key
        self._buffer: list[Item] = []
        self._index = 0
        self._next: asyncio.Task[tuple[list[Item], WireKey | None]] | None = None
        self._done = limit == 0

    def __aiter__(self) -> ItemIterator:
        return self

    async def __anext__(self) -> Item:
        index = self._index
        if index < len(self._buffer):
            self._index = index + 1
            return self._buffer[index]
        return await self._next_page()

    async def _next_page(self) -> Item:
        while True:
            if self._next is not None:
                task, self._next = self._next, None
                items, last_key = await task
            elif self._done:
                raise StopAsyncIteration
            else:  # the first page: awaited directly, no task needed
                start_key, self._start_key = self._start_key, None
                items, last_key = await self._fetch(start_key, self._remaining)
            remaining = self._remaining
            if remaining is not None:
                if len(items) > remaining:
                    del items[remaining:]
                remaining -= len(items)
                self._remaining = remaining
            if last_key is None or remaining == 0:
                self._done = True
            else:
                self._next = asyncio.get_running_loop().create_task(
                    self._fetch(last_key, remaining)
                )
            if items:
                self._buffer = items
                self._index = 1
                return items[0]

    async def aclose(self) -> None:
        """Stop: cancel the prefetch, if any, and wait for it to end."""
        self._done = True
        self._buffer = []
        task, self._next = self._next, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                if not task.cancelled():  # we were cancelled ourselves, not just the prefetch
                    raise
            except Exception:
                pass  # the caller left: a failed prefetch is moot

    async def __aenter__(self) -> ItemIterator:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        task = self._next
        if task is not None:
            if task.done():
                if not task.cancelled():
                    task.exception()  # mark it retrieved: nobody will ever ask for it
            else:
                task.cancel()
