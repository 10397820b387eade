"""Several legs at once: scans (parallel with ``segments``) and the fan-out of one query
over many partitions (``query_partitions``), merged in sort-key order."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Iterable, Mapping
from typing import Any, overload

from ..errors import (
    ConfigurationError,
)
from ..expressions import (
    Key,
    KeyCondition,
)
from ..fanout import FanOutPlan, Leg, LegState, check_states
from ..paging import (
    ItemIterator,
    Page,
)
from .core import (
    MAX_SEGMENTS,
    Attributes,
    ConditionArg,
    Item,
    _check_limit,
)
from .listing import Listing

__all__ = ["Parallel"]


def _check_segments(segments: Any) -> None:
    if isinstance(segments, bool) or not isinstance(segments, int):
        raise ConfigurationError(f"segments must be an int, not {type(segments).__name__}")
    if not 1 <= segments <= MAX_SEGMENTS:
        raise ConfigurationError(f"segments must be from 1 to {MAX_SEGMENTS}, got {segments}")


def _fan_out_partitions(partitions: Iterable[Any], sort_condition: Any) -> list[Any]:
    """The partition values of a fan-out, checked: at least one, none twice."""
    if sort_condition is not None and not isinstance(sort_condition, KeyCondition):
        raise ConfigurationError(
            "sort_condition must be a Key(...) condition on the sort key, "
            f"not {type(sort_condition).__name__}"
        )
    values = list(partitions)
    if not values:
        raise ConfigurationError("query_partitions needs at least one partition")
    try:
        distinct = len(set(values))
    except TypeError:
        raise ConfigurationError("partition values are strings, numbers or bytes") from None
    if distinct != len(values):
        raise ConfigurationError("a partition is listed twice: its items would come twice")
    return values


class Parallel(Listing):
    __slots__ = ()

    @overload
    def scan(
        self,
        *,
        filter: ConditionArg = None,
        attributes: Attributes = None,
        index: str | None = None,
        limit: int | None = None,
        consistent: bool = False,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        segments: None = None,
        part: None = None,
    ) -> ItemIterator: ...

    @overload
    def scan(
        self,
        *,
        filter: ConditionArg = None,
        attributes: Attributes = None,
        index: str | None = None,
        limit: int | None = None,
        consistent: bool = False,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        segments: int,
        part: tuple[int, int] | None = None,
    ) -> AsyncGenerator[Item, None]: ...

    def scan(
        self,
        *,
        filter: ConditionArg = None,
        attributes: Attributes = None,
        index: str | None = None,
        limit: int | None = None,
        consistent: bool = False,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        segments: int | None = None,
        part: tuple[int, int] | None = None,
    ) -> ItemIterator | AsyncGenerator[Item, None]:
        """Every item of the table (or index), page after page, prefetching the next page.

        With ``segments=N`` it is a parallel scan: N segments read concurrently (through
        the client's in-flight limit), each a page ahead, items handed out as pages arrive;
        a slow consumer holds the segments back (at most three pages each). ``limit`` caps the
        items yielded. Iterate inside ``contextlib.aclosing(...)`` to cancel at once when
        leaving early.

        ``part=(i, n)`` (with ``segments=k``) scans only share i of n of the table: segments
        i*k to i*k+k-1 of n*k, so that n processes or machines, each scanning its part, read
        every item exactly once between them (``asyncdyn export --part i/n``).
        """
        _check_limit(limit)
        if part is not None and segments is None:
            raise ConfigurationError("scan(part=...) needs segments (the segments per part)")
        if segments is not None:
            _check_segments(segments)
            return self._parallel_scan(
                segments, filter, attributes, index, limit, consistent, names, values, part
            )
        request, strip = self._listing(
            key_condition=None,
            index=index,
            filter=filter,
            attributes=attributes,
            descending=False,
            consistent=consistent,
            names=names,
            values=values,
        )
        return ItemIterator(self._fetcher("Scan", request, strip=strip), limit=limit)

    async def scan_page(
        self,
        *,
        filter: ConditionArg = None,
        attributes: Attributes = None,
        index: str | None = None,
        limit: int | None = None,
        consistent: bool = False,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        cursor: str | None = None,
        segments: int | None = None,
    ) -> Page:
        """One page of a scan and the cursor of the next; see ``query_page``.

        With ``segments=N`` (and a ``limit``, required then) the page comes from N segments
        read concurrently and the cursor resumes every segment where it stopped.
        """
        _check_limit(limit)
        if segments is not None:
            if limit is None:
                raise ConfigurationError("a parallel scan_page needs a limit (items per page)")
            plan = await self._segments(
                segments, filter, attributes, index, consistent, names, values
            )
            return await self._fan_out_page("Scan", plan, "scan", limit, cursor, False, False)
        request, strip = self._listing(
            key_condition=None,
            index=index,
            filter=filter,
            attributes=attributes,
            descending=False,
            consistent=consistent,
            names=names,
            values=values,
        )
        return await self._page("Scan", request, limit, cursor, strip)

    def query_partitions(
        self,
        partitions: Iterable[Any],
        sort_condition: KeyCondition | None = None,
        *,
        index: str | None = None,
        filter: ConditionArg = None,
        attributes: Attributes = None,
        limit: int | None = None,
        descending: bool = False,
        consistent: bool = False,
        merge: bool = True,
        ordered: bool = False,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[Item, None]:
        """One query per partition key value, run concurrently, as one stream of items.

        ``sort_condition`` is the sort-key part (``Key("SK").begins_with("ORDER#")``); each
        partition gets it under its own partition key (read from the table's schema, once).
        With ``merge`` (the default) items come in sort-key order across all partitions (the
        index's sort key with ``index``), ties in partition order; ``merge=False`` yields
        them as pages arrive. ``limit`` stops as soon as it is met and cancels the rest;
        memory stays at most three pages per partition.

        ``ordered=True`` says the partitions hold consecutive sort-key ranges in the order
        given, as ``TimeBuckets.partitions`` lists them: they are then read one after the
        other (the last first when ``descending``), starting in waves of 1, 2, 4... so that
        "the latest 100" over two years reads only the newest bucket when it holds 100.

        To stop early and cancel what is still running at once, iterate inside ``async with
        contextlib.aclosing(table.query_partitions(...)) as items:``. Bad arguments raise at
        the call; the table's schema is read on the first iteration.
        """
        _check_limit(limit)
        return self._query_partitions(
            _fan_out_partitions(partitions, sort_condition),
            sort_condition,
            index,
            filter,
            attributes,
            limit,
            descending,
            consistent,
            merge,
            ordered,
            names,
            values,
        )

    async def _query_partitions(
        self,
        partitions: list[Any],
        sort_condition: KeyCondition | None,
        index: str | None,
        filter: ConditionArg,
        attributes: Attributes,
        limit: int | None,
        descending: bool,
        consistent: bool,
        merge: bool,
        ordered: bool,
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
    ) -> AsyncGenerator[Item, None]:
        plan = await self._fan_out_plan(
            partitions,
            sort_condition,
            index,
            filter,
            attributes,
            descending,
            consistent,
            names,
            values,
        )
        legs = [Leg(self._fetcher("Query", request, exact=True)) for request in plan.requests]
        items = plan.run(legs, merge=merge, ordered=ordered, limit=limit)
        async with contextlib.aclosing(items):
            async for item in items:
                yield plan.shown(item)

    async def query_partitions_page(
        self,
        partitions: Iterable[Any],
        sort_condition: KeyCondition | None = None,
        *,
        limit: int,
        cursor: str | None = None,
        index: str | None = None,
        filter: ConditionArg = None,
        attributes: Attributes = None,
        descending: bool = False,
        consistent: bool = False,
        merge: bool = True,
        ordered: bool = False,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> Page:
        """Up to ``limit`` items of ``query_partitions`` and the cursor of the next page.

        The cursor holds every partition's position, so the next page continues the same
        order with nothing repeated or skipped; it fits only the same fan-out (same
        partitions, conditions and order), else ``InvalidCursor`` before anything is sent.
        """
        _check_limit(limit)
        plan = await self._fan_out_plan(
            partitions,
            sort_condition,
            index,
            filter,
            attributes,
            descending,
            consistent,
            names,
            values,
        )
        return await self._fan_out_page(
            "Query", plan, f"merge={merge} ordered={ordered}", limit, cursor, merge, ordered
        )

    async def _fan_out_page(
        self,
        operation: str,
        plan: FanOutPlan,
        label: str,
        limit: int,
        cursor: str | None,
        merge: bool,
        ordered: bool,
    ) -> Page:
        codec = self._client._cursors
        scope = f"fan-out {label} {len(plan.requests)}".encode() + b"".join(
            self._scope(operation, request) for request in plan.requests
        )
        states: list[LegState] = (
            [None] * len(plan.requests)
            if cursor is None
            else check_states(
                codec.open(scope, cursor, positions=len(plan.requests)), len(plan.requests)
            )
        )
        legs = [
            Leg(
                self._fetcher(operation, request, exact=True), start if start is not False else None
            )
            for request, start in zip(plan.requests, states, strict=True)
        ]
        running = [leg for leg, state in zip(legs, states, strict=True) if state is not False]
        generator = plan.run(running, merge=merge, ordered=ordered, limit=limit)
        async with contextlib.aclosing(generator):
            items = [plan.shown(item) async for item in generator]
        after = [
            False if state is False else leg.state(plan.key_of)
            for leg, state in zip(legs, states, strict=True)
        ]
        done = all(state is False for state in after)
        return Page(items, None if done else codec.seal(scope, after))

    async def _fan_out_plan(
        self,
        partitions: Iterable[Any],
        sort_condition: KeyCondition | None,
        index: str | None,
        filter: ConditionArg,
        attributes: Attributes,
        descending: bool,
        consistent: bool,
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
    ) -> FanOutPlan:
        values_of = _fan_out_partitions(partitions, sort_condition)
        schema = await self._schema_with(index)
        partition_key, sort_key = schema.for_index(index)
        needed = [*schema.names]
        if index is not None:
            needed += [name for name in (partition_key, sort_key) if name and name not in needed]
        projection, strip = self._projected(attributes, names, needed)
        requests = []
        for value in values_of:
            key = Key(partition_key).eq(value)
            condition = key if sort_condition is None else key & sort_condition
            requests.append(
                self._listing(
                    key_condition=condition,
                    index=index,
                    filter=filter,
                    attributes=projection,
                    descending=descending,
                    consistent=consistent,
                    names=names,
                    values=values,
                )[0]
            )
        return FanOutPlan(requests, needed, sort_key, strip, descending, self._floats())

    async def _segments(
        self,
        segments: int,
        filter: ConditionArg,
        attributes: Attributes,
        index: str | None,
        consistent: bool,
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
        part: tuple[int, int] | None = None,
    ) -> FanOutPlan:
        """One scan request per segment, and the keys that give a segment its position."""
        _check_segments(segments)
        first, total = 0, segments
        if part is not None:
            share, count = part
            if not 0 <= share < count or count * segments > MAX_SEGMENTS:
                raise ConfigurationError(
                    f"part {part!r}: (i, n) with 0 <= i < n and n * segments <= {MAX_SEGMENTS}"
                )
            first, total = share * segments, count * segments
        schema = await self._schema_with(index)
        needed = [*schema.names]
        if index is not None:
            needed += [name for name in schema.for_index(index) if name and name not in needed]
        projection, strip = self._projected(attributes, names, needed)
        base, _ = self._listing(
            key_condition=None,
            index=index,
            filter=filter,
            attributes=projection,
            descending=False,
            consistent=consistent,
            names=names,
            values=values,
        )
        requests = [
            {**base, "Segment": n, "TotalSegments": total} for n in range(first, first + segments)
        ]
        return FanOutPlan(requests, needed, strip=strip, convert=self._floats())

    async def _parallel_scan(
        self,
        segments: int,
        filter: ConditionArg,
        attributes: Attributes,
        index: str | None,
        limit: int | None,
        consistent: bool,
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
        part: tuple[int, int] | None = None,
    ) -> AsyncGenerator[Item, None]:
        plan = await self._segments(
            segments, filter, attributes, index, consistent, names, values, part
        )
        legs = [Leg(self._fetcher("Scan", request, exact=True)) for request in plan.requests]
        items = plan.run(legs, merge=False, ordered=False, limit=limit)
        async with contextlib.aclosing(items):
            async for item in items:
                yield plan.shown(item)
