"""Query, one page of it with a signed cursor, and count: listings of one partition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ..errors import (
    InvalidExpression,
    InvalidItem,
)
from ..expressions import (
    KeyCondition,
)
from ..paging import (
    FetchPage,
    ItemIterator,
    Page,
    WireKey,
    collect_page,
)
from .core import (
    _EXACT,
    _PAGING_FIELDS,
    Attributes,
    ConditionArg,
    Item,
    TableCore,
    _check_limit,
    _expressions,
)

__all__ = ["Listing"]


class Listing(TableCore):
    __slots__ = ()

    def _listing(
        self,
        *,
        key_condition: KeyCondition | str | None,
        index: str | None,
        filter: ConditionArg,
        attributes: Attributes,
        descending: bool,
        consistent: bool,
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
    ) -> tuple[dict[str, Any], list[str]]:
        """The request of a query or scan, and the attributes to remove from its items again
        (the TTL attribute, when fetched only to hide expired items)."""
        if index is None and isinstance(key_condition, KeyCondition):
            self._check_key_condition(key_condition)
        request = self._request()
        if index is not None:
            request["IndexName"] = index
        if descending:
            request["ScanIndexForward"] = False
        if consistent:
            request["ConsistentRead"] = True
        projection, strip = self._projected(attributes, names)
        self._check_large("filter", filter, names)
        _expressions(
            request,
            key_condition=key_condition,
            filter=filter,
            attributes=projection,
            names=names,
            values=values,
        )
        return request, strip

    def _check_key_condition(self, condition: KeyCondition) -> None:
        """Refuse, before sending, a key condition on attributes that are not the table's
        key, when the key schema is known (declared with ``key=``, created or described):
        the server's answer ("Query condition missed key schema element") names no table
        and says nothing of what to do. Index queries are left to the server (an index key
        may span several attributes)."""
        schema = self._key_schema
        if schema is None:
            return
        pk, sk = schema.partition_key, schema.sort_key
        where = f"table {self.name!r} (key: {', '.join(schema.names)})"
        name = condition.partition_name
        if name is not None and name != pk:
            raise InvalidExpression(
                f"Key({name!r}) is not the partition key of {where}: a query reads one "
                f"partition, Key({pk!r}).eq(value), with at most one sort-key condition; "
                f"select on {name!r} with filter=Attr({name!r})..., or query an index keyed "
                f"on it (index=...)"
            )
        name = condition.sort_name
        if name is not None and name != sk:
            which = "has no sort key" if sk is None else f"has the sort key {sk!r}"
            raise InvalidExpression(
                f"Key({name!r}) is not a key attribute of {where}: the table {which}; "
                f"select on {name!r} with filter=Attr({name!r})..., or query an index keyed "
                f"on it (index=...)"
            )

    def _fetcher(
        self,
        operation: str,
        base: dict[str, Any],
        *,
        exact: bool = False,
        strip: Sequence[str] = (),
    ) -> FetchPage:
        """One page of ``operation``; ``exact`` decodes numbers exactly whatever the client's
        number mode (a fan-out needs exact keys to merge and resume); ``strip`` as from
        ``_listing``."""
        call_read = self._client._dispatcher.call_read
        decode_items = self._decode_items
        if exact and self._client._numbers == "float":
            decode_items = _EXACT.items
            large = self._large
            if large is not None:
                store, exact_items = self._client._offload_store, _EXACT.items
                names = self._known_key_names()
                decode_items = lambda wires: [  # noqa: E731
                    large.expand(i, store, names, self.name) for i in exact_items(wires)
                ]

        def read(data: dict[str, Any]) -> tuple[list[Item], WireKey | None]:
            # Decoded as the answer is read (Dispatcher.call_read): the wire page dies at once.
            return decode_items(data.get("Items") or []), data.get("LastEvaluatedKey") or None

        async def fetch(
            start_key: WireKey | None, limit: int | None
        ) -> tuple[list[Item], WireKey | None]:
            request = base
            if start_key is not None or limit is not None:
                request = dict(base)
                if start_key is not None:
                    request["ExclusiveStartKey"] = start_key
                if limit is not None:
                    request["Limit"] = limit
            items, last_key = await call_read(operation, request, read)
            if self._expiry is not None:
                live = self._live
                items = [shown for item in items if (shown := live(item, strip)) is not None]
            return items, last_key

        return fetch

    @staticmethod
    def _scope(operation: str, request: Mapping[str, Any]) -> bytes:
        defining = {k: v for k, v in request.items() if k not in _PAGING_FIELDS}
        try:
            return operation.encode() + orjson.dumps(defining, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError as exc:  # a lone surrogate in an index name, say
            raise InvalidItem(f"{operation}: the request cannot be sent as JSON: {exc}") from None

    def query(
        self,
        key_condition: KeyCondition | str,
        *,
        index: str | None = None,
        filter: ConditionArg = None,
        attributes: Attributes = None,
        limit: int | None = None,
        descending: bool = False,
        consistent: bool = False,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> ItemIterator:
        """Every item matching ``key_condition``, in sort-key order, page after page.

        ``async for item in table.query(Key("PK").eq("A") & Key("SK").begins_with("B"))``.
        The next page is fetched while the current one is consumed. ``limit`` caps the items
        yielded (not DynamoDB's evaluation limit). Leaving the loop early is fine; ``async
        with table.query(...) as items`` also cancels the prefetch at once.
        """
        _check_limit(limit)
        request, strip = self._listing(
            key_condition=key_condition,
            index=index,
            filter=filter,
            attributes=attributes,
            descending=descending,
            consistent=consistent,
            names=names,
            values=values,
        )
        return ItemIterator(self._fetcher("Query", request, strip=strip), limit=limit)

    async def query_page(
        self,
        key_condition: KeyCondition | str,
        *,
        index: str | None = None,
        filter: ConditionArg = None,
        attributes: Attributes = None,
        limit: int | None = None,
        descending: bool = False,
        consistent: bool = False,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        cursor: str | None = None,
    ) -> Page:
        """One page of a query, and the ``cursor`` for the next one (``None`` at the end).

        With ``limit``, the page holds up to ``limit`` items (reading on past items a filter
        drops); without, it is one server page (up to 1 MB read). A cursor only fits the
        same query: another table, index, condition or order raises ``InvalidCursor``.
        """
        _check_limit(limit)
        request, strip = self._listing(
            key_condition=key_condition,
            index=index,
            filter=filter,
            attributes=attributes,
            descending=descending,
            consistent=consistent,
            names=names,
            values=values,
        )
        return await self._page("Query", request, limit, cursor, strip)

    async def _page(
        self,
        operation: str,
        request: dict[str, Any],
        limit: int | None,
        cursor: str | None,
        strip: Sequence[str],
    ) -> Page:
        codec = self._client._cursors
        scope = self._scope(operation, request)
        start_key = codec.decode(scope, cursor)
        fetch = self._fetcher(operation, request, strip=strip)
        items, last_key = await collect_page(fetch, start_key, limit)
        return Page(items, codec.encode(scope, last_key))

    async def count(
        self,
        key_condition: KeyCondition | str | None = None,
        *,
        index: str | None = None,
        filter: ConditionArg = None,
        consistent: bool = False,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> int:
        """How many items match (a query with ``key_condition``, else a scan), every page."""
        operation = "Scan" if key_condition is None else "Query"
        request, _ = self._listing(
            key_condition=key_condition,
            index=index,
            filter=filter,
            attributes=None,
            descending=False,
            consistent=consistent,
            names=names,
            values=values,
        )
        request["Select"] = "COUNT"
        total = 0
        while True:
            data = await self._call(operation, request)
            total += int(data.get("Count", 0))
            last_key = data.get("LastEvaluatedKey")
            if not last_key:
                return total
            request = {**request, "ExclusiveStartKey": last_key}
