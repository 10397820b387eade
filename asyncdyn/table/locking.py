"""Optimistic locking: ``put_versioned`` and ``modify`` (read, change, write if unchanged).

A write whose answer was lost is recognised by the version it wrote (``asyncdyn.resend``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import (
    AsyncDynError,
    ConditionalCheckFailed,
    ConfigurationError,
    InvalidItem,
)
from ..expressions import (
    Attr,
)
from .core import (
    Item,
)
from .items import Items

__all__ = ["Locking"]


class Locking(Items):
    __slots__ = ()

    async def put_versioned(self, item: Mapping[str, Any], *, version: str = "version") -> Item:
        """Optimistic locking: write ``item`` only if the stored item's ``version`` is the
        one ``item`` carries (or, when it carries none, only if no item with that version
        exists yet), with ``version`` incremented in the same request. Returns what was
        written. A lost race raises ``ConditionalCheckFailed`` whose ``.item`` is the stored
        item as it is now (``None`` if it was deleted): merge, and try again with it.

        When an answer is lost, the resend recognises this call's own write (the version it
        wrote, with its content) and returns success; when it cannot tell, ``OutcomeUnknown``.
        """
        expected = item.get(version)
        if expected is not None and (isinstance(expected, bool) or not isinstance(expected, int)):
            raise InvalidItem(f"the version must be an int, not {type(expected).__name__}", version)
        written = {**item, version: 1 if expected is None else expected + 1}
        condition = Attr(version).not_exists() if expected is None else Attr(version).eq(expected)
        try:
            await self.put(written, condition=condition, returns_on_failure="ALL_OLD")
        except ConditionalCheckFailed as exc:
            if exc.item is None:  # a server without ReturnValuesOnConditionCheckFailure
                schema = await self.key_schema()
                exc.item = await self.get({n: item[n] for n in schema.names}, consistent=True)
            exc.lost_race(self.name, await self._key_of(item), version, expected, exc.item)
            raise
        return written

    async def _key_of(self, item: Mapping[str, Any]) -> dict[str, Any] | None:
        """The key of ``item`` for an error message; ``None`` when the table cannot be
        described (a failure of its own must not hide the race being reported)."""
        try:
            schema = await self.key_schema()
        except AsyncDynError:
            return None
        return {n: item[n] for n in schema.names if n in item}

    async def modify(
        self,
        key: Mapping[str, Any],
        change: Callable[[Item | None], Mapping[str, Any]],
        *,
        version: str = "version",
        attempts: int = 10,
    ) -> Item:
        """Read-modify-write under optimistic locking: ``change(current)`` (``None`` when
        there is no item) returns the new item; it is written with ``put_versioned``, and on
        a lost race ``change`` runs again on the item that won, up to ``attempts`` times
        (then the last ``ConditionalCheckFailed`` is raised). Returns what was written.
        ``OutcomeUnknown`` (a write whose answer was lost and that could not be recognised)
        is raised as it is: running ``change`` again could apply it twice."""
        if attempts < 1:
            raise ConfigurationError("attempts must be at least 1")
        current = await self.get(key, consistent=True)
        for attempt in range(attempts):
            wanted = dict(change(None if current is None else dict(current)))
            wanted[version] = None if current is None else current.get(version)
            if wanted[version] is None:
                del wanted[version]
            try:
                return await self.put_versioned(wanted, version=version)
            except ConditionalCheckFailed as exc:
                if attempt == attempts - 1:
                    raise
                current = exc.item
        raise AssertionError("unreachable")  # pragma: no cover
