"""Per-client counters: requests by operation, retries, throttles, errors, consumed capacity."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .hotkeys import HotKey, HotKeys

__all__ = ["CacheCounters", "Stats", "StatsSnapshot"]


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    """A copy of a client's counters at one moment.

    ``requests`` counts HTTP requests sent, by operation; ``retries`` the attempts repeated
    after a retryable failure; ``throttles`` the throttling answers among those; ``errors``
    the error answers by code; ``consumed_capacity`` the capacity units DynamoDB reported per
    table (only when the client asks for ``ReturnConsumedCapacity``); ``coalesced_gets`` the
    ``get`` calls served by ``coalesced_batches`` BatchGetItem calls (``coalesce_gets=True``);
    ``resends`` the requests the lean transport moved to a new connection because the pooled
    one it took was seen closed before any byte of the request was written (never a second
    send: a request that left is never sent again outside the retry policy); ``hot_keys`` the
    heaviest partition key values by consumed capacity (``Client(hot_keys=...)``; empty
    otherwise, see ``asyncdyn.hotkeys``).
    ``cache_hits``, ``cache_misses`` and ``cache_invalidations`` add up the counters of the
    ``ItemCache`` objects this client reads through (the client's and its tables').
    """

    requests: Mapping[str, int] = field(default_factory=dict)
    retries: int = 0
    throttles: int = 0
    errors: Mapping[str, int] = field(default_factory=dict)
    consumed_capacity: Mapping[str, float] = field(default_factory=dict)
    coalesced_gets: int = 0
    coalesced_batches: int = 0
    resends: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    cache_invalidations: int = 0
    hot_keys: tuple[HotKey, ...] = ()

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


class CacheCounters:
    """What one ``ItemCache`` did: reads it answered (``hits``) or sent on (``misses``),
    entries dropped by writes and streams (``invalidations``) or for room (``evictions``)."""

    __slots__ = ("evictions", "hits", "invalidations", "misses")

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0
        self.invalidations = 0
        self.evictions = 0


class Stats:
    """Mutable counters owned by one client; cheap enough to update on every request."""

    __slots__ = (
        "caches",
        "coalesced_batches",
        "coalesced_gets",
        "consumed_capacity",
        "errors",
        "hot_keys",
        "requests",
        "resends",
        "retries",
        "throttles",
    )

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.retries = 0
        self.throttles = 0
        self.errors: Counter[str] = Counter()
        self.consumed_capacity: defaultdict[str, float] = defaultdict(float)
        self.coalesced_gets = 0
        self.coalesced_batches = 0
        self.resends = 0
        self.caches: list[CacheCounters] = []  # of the item caches read through, once each
        # Off unless the client turns it on: the dispatcher records into it when set.
        self.hot_keys: HotKeys | None = None

    def record_capacity(self, consumed: Any) -> None:
        """Add a response's ``ConsumedCapacity`` (one entry or a list of them)."""
        entries = consumed if isinstance(consumed, list) else (consumed,)
        for entry in entries:
            if isinstance(entry, dict):
                units = entry.get("CapacityUnits")
                table = entry.get("TableName", "")
                if isinstance(units, int | float):
                    self.consumed_capacity[str(table)] += float(units)

    def snapshot(self) -> StatsSnapshot:
        return StatsSnapshot(
            requests=dict(self.requests),
            retries=self.retries,
            throttles=self.throttles,
            errors=dict(self.errors),
            consumed_capacity=dict(self.consumed_capacity),
            coalesced_gets=self.coalesced_gets,
            coalesced_batches=self.coalesced_batches,
            resends=self.resends,
            cache_hits=sum(c.hits for c in self.caches),
            cache_misses=sum(c.misses for c in self.caches),
            cache_invalidations=sum(c.invalidations for c in self.caches),
            hot_keys=self.hot_keys.top() if self.hot_keys is not None else (),
        )
