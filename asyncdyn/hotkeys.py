"""Hot keys at run time: consumed capacity per partition key value, in bounded memory.

DynamoDB serves each partition key value from one partition, and one partition gives at most
1,000 write units and 3,000 read units per second, whatever the table's capacity. A key that
takes most of a table's traffic is throttled long before the table is busy. ``HotKeys``
counts, for every request the client sends, the capacity it consumed per (table, index,
partition key value) and keeps the heaviest of them in a Space-Saving sketch
(Metwally, Agrawal, El Abbadi, 2005): ``capacity`` counters, never more, however many
distinct keys pass.

What a key weighs
    Its *load*: read units / 3,000 + write units / 1,000, the fraction of one partition's
    per-second limits it uses, so that reads and writes rank by how near they bring a
    partition to throttling. Capacity comes from DynamoDB when the client asks for it with
    ``consumed_capacity="INDEXES"`` (a batch's or transaction's per-table figure is divided
    among its keys in proportion to their sizes); otherwise it is estimated from the item
    sizes DynamoDB would count (``wire_item_size``): a read 0.5 unit per 4 KB eventually
    consistent, 1 strongly consistent; a write 1 unit per 1 KB; twice that in a transaction.
    A write also costs a write on every global secondary index whose partition key the item
    carries, counted against that index's key value (a put's item names it; an update or a
    delete does not say which index keys it touched, so its index writes are counted only
    when DynamoDB reports them, and then against the index as a whole).

Error bound
    Space-Saving over-counts, never under-counts: a key's ``load`` is at most its true load
    plus ``error``, and ``error`` is at most W / capacity, W being the total load recorded (in
    the window). Every key whose true load exceeds W / capacity is in the sketch. Its read
    and write units are counted exactly from the moment it entered the sketch (a lower bound).

Time
    Counts decay exponentially with time constant ``window`` seconds (forward decay: a
    weight is scaled up by its arrival time instead of scaling every counter down), so the
    sketch describes roughly the last ``window`` seconds and a key that cooled off sinks.
    A rate is the decayed units divided by the decayed length of the time observed (at least
    one second): exact for a steady rate, from the first second on.

Key schemas
    The partition key attribute of a table and of its indexes is learned from every
    ``CreateTable``/``DescribeTable``/``UpdateTable`` answer the client sees, and from a key
    declared with ``Client.table(name, key=...)``. Until it is known, a one-attribute key
    is its own partition key; anything else is counted in the table's total only
    (``HotKeysReport.unattributed``).
"""

from __future__ import annotations

import base64
import heapq
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from itertools import count
from typing import Any

import orjson

from .errors import ConfigurationError, ThrottlingReason
from .marshal import wire_item_size

__all__ = [
    "READ_LIMIT",
    "WRITE_LIMIT",
    "HotKey",
    "HotKeys",
    "SpaceSaving",
]

READ_LIMIT = 3000.0
"""Read units per second one partition serves (DynamoDB's per-partition limit)."""
WRITE_LIMIT = 1000.0
"""Write units per second one partition serves."""
# A key is advised to be sharded once its rate passes this fraction of a partition's limit,
# and the shards it needs are counted so that each stays below it.
_HEADROOM = 0.8
# Forward-decay weights grow as e^(age / window); renormalised long before a float overflows.
_RENORMALISE = 32.0

_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
_MULTI_KEY = frozenset({"BatchGetItem", "BatchWriteItem", "TransactGetItems", "TransactWriteItems"})
_dumps = orjson.dumps
_SCHEMA_ANSWERS = {"CreateTable": "TableDescription", "UpdateTable": "TableDescription"}
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)
_EQUALS = re.compile(r"^\(?\s*([#\w.-]+)\s*=\s*([:#\w.-]+)\s*\)?$")

# (table, index or None, attribute name, type tag, wire value)
KeyId = tuple[str, str | None, str, str, str]


class _Counter:
    """One monitored key: its load (upper bound) and what it did since it was monitored."""

    __slots__ = ("error", "key", "load", "reasons", "reads", "throttles", "writes")

    def __init__(self, key: KeyId, load: float, error: float) -> None:
        self.key = key
        self.load = load
        self.error = error
        self.reads = 0.0
        self.writes = 0.0
        self.throttles = 0
        self.reasons: dict[str, int] = {}


class SpaceSaving:
    """The Space-Saving heavy-hitter sketch over weighted updates, ``capacity`` counters.

    A key not monitored when the sketch is full takes over the counter with the smallest
    load, inheriting that load as its ``error``. The minimum is found through a heap whose
    entries may be stale (loads only grow between renormalisations): a stale top entry is
    pushed back with its current load, so an update costs a dict lookup and an addition,
    and only a takeover touches the heap. The heap holds one entry per counter.
    """

    __slots__ = ("_heap", "_seq", "capacity", "counters", "total")

    def __init__(self, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ConfigurationError(f"the sketch's capacity must be a positive int: {capacity!r}")
        self.capacity = capacity
        self.counters: dict[KeyId, _Counter] = {}
        self._heap: list[tuple[float, int, _Counter]] = []
        self._seq = count()
        self.total = 0.0

    def add(self, key: KeyId, load: float) -> _Counter:
        self.total += load
        counters = self.counters
        counter = counters.get(key)
        if counter is not None:
            counter.load += load
            return counter
        if len(counters) < self.capacity:
            counter = _Counter(key, load, 0.0)
        else:
            victim = self._pop_min()
            del counters[victim.key]
            counter = _Counter(key, victim.load + load, victim.load)
        counters[key] = counter
        heapq.heappush(self._heap, (counter.load, next(self._seq), counter))
        return counter

    def _pop_min(self) -> _Counter:
        heap = self._heap
        while True:
            load, _, counter = heap[0]
            if load == counter.load:
                heapq.heappop(heap)
                return counter
            heapq.heapreplace(heap, (counter.load, next(self._seq), counter))

    def scale(self, factor: float) -> None:
        """Multiply every count by ``factor`` (the decay's renormalisation)."""
        self.total *= factor
        for counter in self.counters.values():
            counter.load *= factor
            counter.error *= factor
            counter.reads *= factor
            counter.writes *= factor
        self._heap = [(c.load, next(self._seq), c) for c in self.counters.values()]
        heapq.heapify(self._heap)

    def top(self, n: int) -> list[_Counter]:
        return heapq.nlargest(n, self.counters.values(), key=lambda c: c.load)


@dataclass(frozen=True, slots=True)
class HotKey:
    """One of the heaviest partition key values of the last ``window`` seconds.

    ``key`` is ``{partition key attribute: value}`` (of the index when ``index`` is set).
    ``read_units`` and ``write_units`` are the capacity units it consumed in the window
    (exponentially decayed), ``read_rate`` and ``write_rate`` the same per second. ``share``
    is its part of the load of its table (or index) in the window, ``error`` the bound on how
    much its load may be over-counted (see the module docstring). ``throttles`` counts the
    throttled requests attributed to it, by reason in ``reasons`` (``"Throttled"`` when
    DynamoDB gave none). ``shards`` and ``suggestion``: set when it nears a partition's
    limits, or was throttled for its key range — how many ``WriteSharding`` shards keep each
    below 80 % of the limit.
    """

    table: str
    index: str | None
    key: Mapping[str, Any]
    read_units: float
    write_units: float
    read_rate: float
    write_rate: float
    share: float
    error: float
    throttles: int
    reasons: Mapping[str, int]
    shards: int | None
    suggestion: str | None


@dataclass(slots=True)
class _Schema:
    """Partition key attribute of a table and of its indexes; which indexes are global."""

    partition_key: str
    key_names: tuple[str, ...]
    # index name -> (partition key attribute, global?)
    indexes: dict[str, tuple[str, bool]]


@dataclass(slots=True)
class _Charge:
    table: str
    index: str | None
    wire: Mapping[str, Any] | None  # the partition key's wire value; None: not attributable
    name: str
    read: float
    write: float


class HotKeys:
    """Counts consumed capacity per partition key value; turn it on with
    ``Client(hot_keys=True)`` or ``Client(hot_keys=HotKeys(...))`` and read
    ``db.stats().hot_keys``.

    Args:
        capacity: counters kept (memory is fixed by it: about 500 bytes each, with a
            short key value); a count's error is at most the window's total load / ``capacity``.
        window: seconds of the decay's time constant (the sliding window).
        report: how many keys ``stats().hot_keys`` lists.
        clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(
        self,
        capacity: int = 1000,
        *,
        window: float = 60.0,
        report: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not window > 0:
            raise ConfigurationError(f"HotKeys.window must be positive seconds, got {window!r}")
        if isinstance(report, bool) or not isinstance(report, int) or report < 1:
            raise ConfigurationError(f"HotKeys.report must be a positive int, got {report!r}")
        self.sketch = SpaceSaving(capacity)
        self.window = window
        self.report = report
        self._clock = clock
        self._start = clock()
        self._landmark = self._start
        self._scale = 1.0  # e^((now - landmark) / window) at the last update
        # (table, index) -> decayed load, including what no key could be charged with.
        self._totals: dict[tuple[str, str | None], float] = {}
        self._unattributed: dict[str, float] = {}
        self._schemas: dict[str, _Schema] = {}
        self._declared: Callable[[str], Any] | None = None
        self._exact = True  # measure item sizes for the answer being recorded
        self.skipped = 0  # answers whose request could not be read (see ``reader``)

    # -- what the client tells it ---------------------------------------------------------

    def bind_schemas(self, lookup: Callable[[str], Any]) -> None:
        """``lookup(table)`` gives the ``KeySchema`` the client knows for a table (declared
        or described), or ``None``: consulted for tables no answer described yet."""
        if self._declared is not None:
            # Two clients' keys in one sketch would mix their shares and schemas.
            raise ConfigurationError("a HotKeys counts for one client; give each its own")
        self._declared = lookup

    def learn(self, description: Mapping[str, Any]) -> None:
        """Read the key schema of a table from its ``TableDescription``."""
        try:
            name = description["TableName"]
            names = _key_names(description["KeySchema"])
            indexes = {
                index["IndexName"]: (_key_names(index["KeySchema"])[0], kind == "Global")
                for kind in ("Global", "Local")
                for index in description.get(f"{kind}SecondaryIndexes") or ()
            }
        except (KeyError, TypeError, IndexError):
            return  # a partial description (DeleteTable's): nothing to learn
        self._schemas[name] = _Schema(names[0], names, indexes)

    def _schema(self, table: str) -> _Schema | None:
        schema = self._schemas.get(table)
        if schema is None and self._declared is not None:
            declared = self._declared(table)
            if declared is not None:
                pk = declared.partition_key
                # A KeySchema does not say which indexes are global: one keyed like the table
                # lives in the table's partitions (a local index), any other is global.
                indexes = {
                    name: (keys[0], keys[0] != pk) for name, keys in declared.indexes.items()
                }
                schema = self._schemas[table] = _Schema(pk, tuple(declared.names), indexes)
        return schema

    # -- recording ----------------------------------------------------------------------

    def reader(
        self, operation: str, payload: Mapping[str, Any], read: Callable[[dict[str, Any]], Any]
    ) -> Callable[[dict[str, Any]], Any]:
        """``read`` that first records the answer's capacity (``Dispatcher`` wraps with it)."""

        def recording(data: dict[str, Any]) -> Any:
            try:
                self.record(operation, payload, data)
            except (KeyError, TypeError, ValueError, AttributeError, IndexError):
                # A payload of a shape asyncdyn does not build (a raw Client.call): counting
                # must never fail the request it only observes.
                self.skipped += 1
            return read(data)

        return recording

    def record(self, operation: str, payload: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        """Count what one successful answer consumed."""
        answer = _SCHEMA_ANSWERS.get(operation)
        if answer is not None or operation == "DescribeTable":
            description = data.get(answer or "Table")
            if isinstance(description, Mapping):
                self.learn(description)
            return
        # Only figures the request asked for: moto sends them unasked, and wrong (one unit
        # per batch whatever its size).
        asked = payload.get("ReturnConsumedCapacity") == "INDEXES"
        reported = _reported(data.get("ConsumedCapacity")) if asked else {}
        # Sizes matter only to divide DynamoDB's figure among several keys (or to estimate
        # without one): a single-key answer with a report skips measuring its item.
        self._exact = not reported or operation in _MULTI_KEY
        charges = self._charges(operation, payload, data)
        if charges is None:
            return
        if reported:
            charges = _apply_reported(charges, reported, operation in _READS)
        self._add(charges)

    def throttled(self, operation: str, payload: Mapping[str, Any], error: Any) -> None:
        """Attribute a throttled request to the keys it asked for, per throttling reason
        (a request that cannot be read is counted in ``skipped``: the caller gets its
        ``Throttled`` either way)."""
        try:
            self._throttled(operation, payload, error)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError):
            self.skipped += 1

    def _throttled(self, operation: str, payload: Mapping[str, Any], error: Any) -> None:
        reasons: tuple[ThrottlingReason, ...] = getattr(error, "reasons", ()) or ()
        self._exact = False  # nothing was consumed: only the keys matter
        charges = self._charges(operation, payload, {}) or []
        self._advance()
        sketch = self.sketch
        targets = [(r.reason, r.table, r.index) for r in reasons] or [("Throttled", None, None)]
        for reason, table, index in targets:
            for charge in charges:
                if charge.wire is None or (table is not None and charge.table != table):
                    continue
                if table is not None and charge.index != index:
                    continue
                if table is None and charge.index is not None:
                    continue  # no reason given: the base table's keys
                counter = sketch.add(_key_id(charge), 0.0)
                counter.throttles += 1
                counter.reasons[reason] = counter.reasons.get(reason, 0) + 1

    def _advance(self) -> float:
        """The forward-decay weight of now, renormalising when it grows large."""
        now = self._clock()
        age = (now - self._landmark) / self.window
        if age > _RENORMALISE:
            factor = math.exp(-age)
            self.sketch.scale(factor)
            for group in self._totals:
                self._totals[group] *= factor
            for table in self._unattributed:
                self._unattributed[table] *= factor
            self._landmark = now
            age = 0.0
        self._scale = math.exp(age) if age > 0 else 1.0
        return self._scale

    def _add(self, charges: list[_Charge]) -> None:
        weight = self._advance()
        sketch = self.sketch
        totals = self._totals
        for charge in charges:
            load = (charge.read / READ_LIMIT + charge.write / WRITE_LIMIT) * weight
            group = (charge.table, charge.index)
            totals[group] = totals.get(group, 0.0) + load
            if charge.wire is None:
                unattributed = self._unattributed
                units = (charge.read + charge.write) * weight
                unattributed[charge.table] = unattributed.get(charge.table, 0.0) + units
                continue
            counter = sketch.add(_key_id(charge), load)
            counter.reads += charge.read * weight
            counter.writes += charge.write * weight

    def _charges(
        self, operation: str, payload: Mapping[str, Any], data: Mapping[str, Any]
    ) -> list[_Charge] | None:
        """Estimated units per key of a request and its answer (``data`` is empty for a
        throttled one: only the keys matter then); ``None`` for an operation that consumes
        no item capacity."""
        charges: list[_Charge] = []
        if operation == "GetItem":
            units = self._read_units(data.get("Item"), payload.get("ConsistentRead") is True)
            self._charge_key(charges, payload["TableName"], payload.get("Key"), units, 0.0)
        elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
            self._charge_write(charges, operation, payload, data.get("Attributes"), 1.0)
        elif operation == "BatchGetItem":
            self._batch_get(charges, payload, data)
        elif operation == "BatchWriteItem":
            self._batch_write(charges, payload, data)
        elif operation == "TransactGetItems":
            responses = data.get("Responses") or ()
            for at, action in enumerate(payload.get("TransactItems") or ()):
                get = action.get("Get") or {}
                answer = responses[at] if at < len(responses) else None
                item = answer.get("Item") if isinstance(answer, dict) else None
                units = 2.0 * self._read_units(item, True)
                self._charge_key(charges, get.get("TableName", ""), get.get("Key"), units, 0.0)
        elif operation == "TransactWriteItems":
            for action in payload.get("TransactItems") or ():
                for kind, part in action.items():
                    op = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}
                    self._charge_write(charges, op.get(kind, "UpdateItem"), part, None, 2.0)
        elif operation in ("Query", "Scan"):
            self._listing(charges, operation, payload, data)
        else:
            return None
        return charges

    def _partition(
        self, table: str, index: str | None, wire: Any
    ) -> tuple[str, Mapping[str, Any] | None]:
        """The partition key attribute and its wire value in ``wire`` (a key or an item)."""
        schema = self._schema(table)
        if schema is None:
            if index is None and isinstance(wire, dict) and len(wire) == 1:
                name, value = next(iter(wire.items()))
                return name, value
            return "", None
        name = schema.partition_key if index is None else schema.indexes.get(index, ("", 0))[0]
        value = wire.get(name) if isinstance(wire, dict) else None
        return name, value if isinstance(value, dict) else None

    def _charge_key(
        self, charges: list[_Charge], table: str, wire: Any, read: float, write: float
    ) -> None:
        name, value = self._partition(table, None, wire)
        charges.append(_Charge(table, None, value, name, read, write))

    def _charge_write(
        self,
        charges: list[_Charge],
        operation: str,
        request: Mapping[str, Any],
        returned: Any,
        factor: float,
    ) -> None:
        table = request.get("TableName", "")
        item = request.get("Item") if operation == "PutItem" else None
        if item is None:
            item = returned if isinstance(returned, dict) else None
        units = factor * self._blocks(item, 1024)
        self._charge_key(charges, table, item or request.get("Key"), 0.0, units)
        if operation != "PutItem" or not isinstance(item, dict):
            return
        schema = self._schema(table)
        if schema is None:
            return
        for index, (name, is_global) in schema.indexes.items():
            value = item.get(name)
            if is_global and isinstance(value, dict):
                # The index holds the item under its own key: an upper bound (a projection
                # of some attributes costs less), which reported figures correct.
                charges.append(_Charge(table, index, value, name, 0.0, units))

    def _batch_get(
        self, charges: list[_Charge], payload: Mapping[str, Any], data: Mapping[str, Any]
    ) -> None:
        responses = data.get("Responses") or {}
        unprocessed = data.get("UnprocessedKeys") or {}
        for table, request in (payload.get("RequestItems") or {}).items():
            keys = request.get("Keys") or ()
            if not keys:
                continue
            names = tuple(keys[0])
            consistent = request.get("ConsistentRead") is True
            schema = self._schema(table)
            pk = schema.partition_key if schema is not None else None
            if pk is None and len(names) == 1:
                pk = names[0]
            served = responses.get(table, ())
            for item in served:  # each item returned is a key served
                value = item.get(pk) if pk is not None else None
                units = self._read_units(item, consistent)
                charges.append(_Charge(table, None, value, pk or "", units, 0.0))
            left = (unprocessed.get(table) or {}).get("Keys", ())
            if len(served) + len(left) >= len(keys):
                continue
            # Keys that found no item still cost the minimum read.
            seen = {_identity(item, names) for item in served}
            seen.update(_identity(key, names) for key in left)
            for key in keys:
                if _identity(key, names) not in seen:
                    self._charge_key(charges, table, key, _read_units(0, consistent), 0.0)

    def _batch_write(
        self, charges: list[_Charge], payload: Mapping[str, Any], data: Mapping[str, Any]
    ) -> None:
        unprocessed = data.get("UnprocessedItems") or {}
        for table, requests in (payload.get("RequestItems") or {}).items():
            # The batch engine sends each write pre-serialised: read back, on this path only.
            requests = [_plain(request) for request in requests]
            left_over = unprocessed.get(table) or ()
            schema = self._schema(table)
            names = schema.key_names if schema is not None else ()
            left = {_identity(_written(r), names) for r in left_over} if names else set()
            for request in requests:
                wire = _written(request)
                if left_over and (not names or _identity(wire, names) in left):
                    continue  # not applied (or, with no schema, cannot tell which were)
                put = request.get("PutRequest")
                part = {"TableName": table, "Item": wire} if put else {"TableName": table}
                if not put:
                    part["Key"] = wire
                op = "PutItem" if put else "DeleteItem"
                self._charge_write(charges, op, part, None, 1.0)

    def _listing(
        self,
        charges: list[_Charge],
        operation: str,
        payload: Mapping[str, Any],
        data: Mapping[str, Any],
    ) -> None:
        table = payload.get("TableName", "")
        index = payload.get("IndexName")
        items = data.get("Items") or ()
        # A page is rounded up once, over all the items it read.
        if not self._exact or len(_dumps(items)) <= 4096:
            size = 0
        else:
            size = sum(map(wire_item_size, items))
        units = _read_units(size, payload.get("ConsistentRead") is True)
        if operation == "Scan":  # spread over every partition: the table's total only
            charges.append(_Charge(table, index, None, "", units, 0.0))
            return
        schema = self._schema(table)
        name = ""
        if schema is not None:
            if index is None:
                name = schema.partition_key
            else:
                name, is_global = schema.indexes.get(index, ("", False))
                if not is_global:  # a local index reads the table's partition
                    index = None
        value = _key_condition_value(payload, name) if name else None
        charges.append(_Charge(table, index, value, name, units, 0.0))

    def _blocks(self, item: Any, unit: int) -> int:
        """The ``unit``-byte blocks DynamoDB counts for a wire item (at least one). Its
        JSON is never shorter than its DynamoDB size (every name and value is there, with
        quotes and type tags around it), so an item whose JSON fits one block is not walked:
        orjson writes it some twenty times faster than the exact walk measures it."""
        if not self._exact or not isinstance(item, dict) or len(_dumps(item)) <= unit:
            return 1
        return max(1, -(-wire_item_size(item) // unit))

    def _read_units(self, item: Any, consistent: bool) -> float:
        blocks = self._blocks(item, 4096) if item is not None else 1
        return float(blocks) if consistent else blocks / 2.0

    # -- reporting ----------------------------------------------------------------------

    def top(self, n: int | None = None) -> tuple[HotKey, ...]:
        """The ``n`` (default ``report``) heaviest keys, heaviest first."""
        now = self._clock()
        decay = math.exp(-(now - self._landmark) / self.window)
        observed = max(now - self._start, 0.0)
        # The decayed length of the time observed: a steady rate r leaves r * this.
        span = max(self.window * (1.0 - math.exp(-observed / self.window)), 1.0)
        hot = []
        for counter in self.sketch.top(self.report if n is None else n):
            table, index, name, tag, value = counter.key
            reads = counter.reads * decay
            writes = counter.writes * decay
            read_rate, write_rate = reads / span, writes / span
            total = self._totals.get((table, index), 0.0)
            shards, suggestion = _advice(
                read_rate, write_rate, counter.reasons, name, _decode(tag, value)
            )
            hot.append(
                HotKey(
                    table=table,
                    index=index,
                    key={name: _decode(tag, value)},
                    read_units=reads,
                    write_units=writes,
                    read_rate=read_rate,
                    write_rate=write_rate,
                    share=min(counter.load / total, 1.0) if total > 0 else 0.0,
                    error=counter.error * decay,
                    throttles=counter.throttles,
                    reasons=dict(counter.reasons),
                    shards=shards,
                    suggestion=suggestion,
                )
            )
        return tuple(hot)

    def unattributed(self) -> dict[str, float]:
        """Capacity units (decayed) per table that no partition key could be charged with:
        scans, and keys of tables whose key schema is not known."""
        decay = math.exp(-(self._clock() - self._landmark) / self.window)
        return {table: units * decay for table, units in self._unattributed.items()}


def _key_names(schema: Iterable[Mapping[str, str]]) -> tuple[str, ...]:
    by_role = {part["KeyType"]: part["AttributeName"] for part in reversed(list(schema))}
    return (by_role["HASH"], by_role["RANGE"]) if "RANGE" in by_role else (by_role["HASH"],)


def _key_id(charge: _Charge) -> KeyId:
    assert charge.wire is not None
    tag, value = next(iter(charge.wire.items()))
    return (charge.table, charge.index, charge.name, tag, value)


def _identity(wire: Any, names: tuple[str, ...]) -> tuple[Any, ...]:
    """A hashable form of the key attributes ``names`` of a wire key or item."""
    try:
        return tuple([tuple(wire[name].items()) for name in names])
    except (KeyError, TypeError, AttributeError):
        return ()


def _plain(request: Any) -> Any:
    """A request entry as a dict, from the ``orjson.Fragment`` the batch engine sends."""
    return orjson.loads(orjson.dumps(request)) if isinstance(request, orjson.Fragment) else request


def _written(request: Mapping[str, Any]) -> Any:
    """The item of a BatchWriteItem PutRequest, or the key of a DeleteRequest."""
    put = request.get("PutRequest")
    if isinstance(put, dict):
        return put.get("Item")
    delete = request.get("DeleteRequest")
    return delete.get("Key") if isinstance(delete, dict) else None


def _read_units(size: int, consistent: bool) -> float:
    units = max(1, -(-size // 4096))
    return float(units) if consistent else units / 2.0


def _write_units(size: int) -> float:
    return float(max(1, -(-size // 1024)))


def _reported(consumed: Any) -> dict[tuple[str, str | None], float]:
    """DynamoDB's ``INDEXES`` figures per (table, index); empty when it gave only totals."""
    figures: dict[tuple[str, str | None], float] = {}
    for entry in consumed if isinstance(consumed, list) else (consumed,):
        if not isinstance(entry, dict) or not isinstance(entry.get("Table"), dict):
            continue
        table = entry.get("TableName", "")
        units = entry["Table"].get("CapacityUnits")
        if isinstance(units, int | float):
            figures[(table, None)] = float(units)
        # A local index's units are the table's partitions' own: charged to the table.
        local = entry.get("LocalSecondaryIndexes")
        for part in local.values() if isinstance(local, dict) else ():
            units = part.get("CapacityUnits") if isinstance(part, dict) else None
            if isinstance(units, int | float):
                figures[(table, None)] = figures.get((table, None), 0.0) + float(units)
        indexes = entry.get("GlobalSecondaryIndexes")
        for index, part in indexes.items() if isinstance(indexes, dict) else ():
            units = part.get("CapacityUnits") if isinstance(part, dict) else None
            if isinstance(units, int | float):
                figures[(table, index)] = float(units)
    return figures


def _apply_reported(
    charges: list[_Charge], reported: dict[tuple[str, str | None], float], read: bool
) -> list[_Charge]:
    """The estimates of each (table, index) scaled to the units DynamoDB reported for it,
    divided among its keys in proportion to their estimates (their sizes). A group the
    report leaves out keeps its estimate: DynamoDB lists every index a write consumed, and
    an index is only estimated for an item that carries its key, but emulators (moto,
    dynalite) list no index at all."""
    groups: dict[tuple[str, str | None], list[_Charge]] = {}
    for charge in charges:
        groups.setdefault((charge.table, charge.index), []).append(charge)
    for group, units in reported.items():
        members = groups.get(group)
        if not members:
            # Reported for nothing we could attribute (an update's index writes): the
            # index's total still counts it.
            reads, writes = (units, 0.0) if read else (0.0, units)
            charges.append(_Charge(group[0], group[1], None, "", reads, writes))
            continue
        estimated = sum(c.read + c.write for c in members)
        for charge in members:
            part = units * (charge.read + charge.write) / estimated if estimated else 0.0
            if read:
                charge.read = part
            else:
                charge.write = part
    return charges


def _key_condition_value(payload: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    """The value a Query's key condition gives the partition key attribute ``name``."""
    expression = payload.get("KeyConditionExpression")
    if not isinstance(expression, str):
        return None
    names = payload.get("ExpressionAttributeNames") or {}
    values = payload.get("ExpressionAttributeValues") or {}
    for term in _AND.split(expression.strip()):
        match = _EQUALS.match(term.strip())
        if match is None:
            continue
        left, right = match.groups()
        if right.startswith("#"):
            left, right = right, left
        if names.get(left, left) == name and right.startswith(":"):
            value = values.get(right)
            return value if isinstance(value, Mapping) else None
    return None


def _decode(tag: str, value: Any) -> Any:
    """A key value as the caller wrote it (only reported: never logged)."""
    if tag == "N":
        text = str(value)
        return Decimal(text) if any(c in text for c in ".eE") else int(text)
    if tag == "B":
        return base64.b64decode(value)
    return value


def _advice(
    read_rate: float, write_rate: float, reasons: Mapping[str, int], name: str, value: Any
) -> tuple[int | None, str | None]:
    """How many shards keep the key's rate under 80 % of a partition's limits, when it
    nears them or was throttled for its key range."""
    needed = max(
        math.ceil(write_rate / (_HEADROOM * WRITE_LIMIT)),
        math.ceil(read_rate / (_HEADROOM * READ_LIMIT)),
    )
    key_range = any("KeyRange" in reason for reason in reasons)
    if needed < 2 and not key_range:
        return None, None
    shards = max(needed, 2)
    why = (
        f"{write_rate:.0f} WCU/s of {WRITE_LIMIT:.0f}, {read_rate:.0f} RCU/s of {READ_LIMIT:.0f}"
        + (" and throttled for its key range" if key_range else "")
    )
    advice = (
        f"{name}={value!r} takes {why} per partition: spread it over "
        f"WriteSharding('{value}#{{shard}}', shards={shards})"
    )
    if read_rate / READ_LIMIT > write_rate / WRITE_LIMIT:
        advice += " (or serve its reads from an ItemCache)"
    return shards, advice
