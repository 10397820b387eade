"""Test helpers that ship with the library: a scripted transport and a fault injector.

``ScriptedTransport`` lets a test (yours or ours) drive retries, throttling, checksum
failures and timeouts deterministically, with no socket::

    transport = ScriptedTransport([throttled(), answer({"Item": {"PK": {"S": "a"}}})])
    async with Client(region="us-east-1", endpoint_url="http://test", credentials=("a", "b"),
                      transport=transport) as db:
        await db.table("T").get({"PK": "a"})
    assert transport.operations == ["GetItem", "GetItem"]

``FaultInjector`` wraps any transport (a real one, against an emulator) and injects, at
random but reproducibly, the faults DynamoDB produces and no emulator does.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from .errors import ConfigurationError, TransportError
from .transport import HttpResponse, Transport

__all__ = ["FaultInjector", "ScriptedTransport", "answer", "error", "throttled"]

# One step of a script: a response, an exception to raise, or a function of the request.
Step = (
    HttpResponse
    | BaseException
    | Callable[[Mapping[str, str], bytes], HttpResponse | Awaitable[HttpResponse]]
)


def answer(body: Mapping[str, Any] | bytes, status: int = 200, *, crc: bool = True) -> HttpResponse:
    """A response with a JSON body (and a correct ``x-amz-crc32`` unless ``crc`` is false)."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {"x-amz-crc32": str(zlib.crc32(raw))} if crc else {}
    return HttpResponse(status, headers, raw)


def error(code: str, message: str = "", status: int = 400, **extra: Any) -> HttpResponse:
    """An error answer as DynamoDB sends it (``__type`` with the service prefix)."""
    body = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message, **extra}
    return answer(body, status)


def throttled() -> HttpResponse:
    return error("ProvisionedThroughputExceededException", "slow down")


class ScriptedTransport:
    """Answers each request with the next step of a script and records what was sent.

    When the script runs out, ``default`` answers (an error if none was given).
    """

    def __init__(self, steps: Iterable[Step] = (), *, default: Step | None = None) -> None:
        self.steps: list[Step] = list(steps)
        self.default = default
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.closed = False

    @property
    def operations(self) -> list[str]:
        """The operation of each request sent, in order."""
        return [h["X-Amz-Target"].rpartition(".")[2] for h, _ in self.requests]

    @property
    def payloads(self) -> list[dict[str, Any]]:
        """The decoded JSON body of each request sent, in order."""
        return [orjson.loads(body) for _, body in self.requests]

    async def send(self, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        self.requests.append((dict(headers), body))
        await asyncio.sleep(0)  # a real transport always yields to the loop
        if self.steps:
            step = self.steps.pop(0)
        elif self.default is not None:
            step = self.default
        else:
            raise TransportError("ScriptedTransport: the script has no more answers")
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, HttpResponse):
            return step
        result = step(headers, body)
        if isinstance(result, HttpResponse):
            return result
        return await result

    async def close(self) -> None:
        self.closed = True


_THROTTLE_CODES = ("ProvisionedThroughputExceededException", "ThrottlingException")
_SERVER_ERRORS = ((500, "InternalServerError"), (503, "ServiceUnavailable"))
# Parts of a BatchGetItem table request that DynamoDB repeats in UnprocessedKeys, so that the
# caller can send the entry back as it is.
_BATCH_OPERATIONS = frozenset({"BatchGetItem", "BatchWriteItem"})
_ECHOED = ("ProjectionExpression", "ExpressionAttributeNames", "ConsistentRead")
# Floating-point sums such as 0.1 + 0.2 + 0.7 land a hair above 1.
_EPSILON = 1e-9
# A BatchWriteItem request, and per table the write requests to send and to hold back.
_WritePlan = tuple[dict[str, Any], dict[str, list[Any]], dict[str, list[Any]]]


class FaultInjector:
    """A transport wrapper that injects the faults DynamoDB produces but no emulator does.

    Each request it affects draws, in turn: a latency, then one fault band —

    * ``throttle``: answered at once (not forwarded) with a 400
      ``ProvisionedThroughputExceededException`` or ``ThrottlingException``;
    * ``server_error``: answered at once with a 500 ``InternalServerError`` or a 503
      ``ServiceUnavailable``;
    * ``reset``: a ``TransportError``, half the time before forwarding (the server never saw
      the request) and half the time after (the server applied it but the answer is lost —
      what makes a retried non-idempotent write dangerous);
    * otherwise the request is forwarded, and with ``unprocessed`` > 0 a ``BatchGetItem`` or
      ``BatchWriteItem`` comes back partly done: each key or write request is independently
      reported unprocessed with that probability, merged with whatever the server itself
      left unprocessed. A ``BatchGetItem`` is sent whole and the chosen keys' items are taken
      out of ``Responses``; a ``BatchWriteItem`` is sent without the chosen requests (and not
      at all when every one is chosen).

    Example — a load test against an emulator that exercises every retry path::

        transport = FaultInjector(AiohttpTransport("http://localhost:8000"), seed=7,
                                  throttle=0.2, server_error=0.05, unprocessed=0.4)
        async with Client(region="us-east-1", endpoint_url="http://localhost:8000",
                          credentials=("a", "b"), transport=transport) as db:
            await run_workload(db)
        print(transport.injected, transport.forwarded)

    ``capacity`` (items per second) instead models a table's throughput: batches beyond it
    come back partly unprocessed, or throttled when nothing is left — load-dependent, unlike
    the fixed-probability faults, so it shows what an adaptive client gains.

    Set ``enabled = False`` (or name ``operations``) so that setup and verification pass
    through untouched. ``injected`` counts ``throttle``, ``server_error``, ``reset_before``,
    ``reset_after``, ``unprocessed_keys`` (keys moved to ``UnprocessedKeys``) and
    ``unprocessed_items`` (write requests held back and reported in ``UnprocessedItems``);
    ``forwarded`` counts the requests handed to the inner transport, pass-through included.

    Every random draw for a request is made as it arrives, before any await, in a fixed order
    (latency, band, the band's variant, then one draw per batch key or write request), from
    ``random.Random(seed)``: a single-task run is reproducible; concurrent tasks draw in the
    order their requests arrive.

    Caveats: a trimmed ``BatchWriteItem`` body is sent with the original headers, so its
    signature no longer matches — the emulators don't verify signatures, DynamoDB itself
    would refuse it; use ``unprocessed`` against an emulator only. A ``BatchGetItem`` item is
    matched to its key by the key's attributes, so with a projection that leaves them out
    the item stays in ``Responses`` while its key is reported unprocessed as well.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        seed: int = 0,
        throttle: float = 0.0,
        server_error: float = 0.0,
        reset: float = 0.0,
        latency: tuple[float, float] = (0.0, 0.0),
        unprocessed: float = 0.0,
        operations: Collection[str] | None = None,
        capacity: float | None = None,
    ) -> None:
        if capacity is not None and not capacity > 0:
            raise ConfigurationError(f"capacity must be a positive rate, got {capacity!r}")
        for name, p in (
            ("throttle", throttle),
            ("server_error", server_error),
            ("reset", reset),
            ("unprocessed", unprocessed),
        ):
            if not 0.0 <= p <= 1.0:  # written so that NaN fails too
                raise ConfigurationError(f"{name} must be a probability in [0, 1], got {p!r}")
        if throttle + server_error + reset > 1.0 + _EPSILON:
            raise ConfigurationError(
                "throttle + server_error + reset must not exceed 1, "
                f"got {throttle + server_error + reset!r}"
            )
        if len(latency) != 2:
            raise ConfigurationError(f"latency must be a (low, high) pair, got {latency!r}")
        lo, hi = latency
        if not (0.0 <= lo <= hi and math.isfinite(hi)):
            raise ConfigurationError(
                f"latency must satisfy 0 <= low <= high < inf, got {latency!r}"
            )
        # A bare string is a Collection of its characters: "GetItem" would match nothing.
        if isinstance(operations, str):
            raise ConfigurationError("operations must be a collection of names, not a string")
        self.transport = transport
        self.enabled = True
        self.injected: Counter[str] = Counter()
        self.forwarded = 0
        self._rng = random.Random(seed)
        self._throttle = throttle
        self._server_error = server_error
        self._reset = reset
        self._latency = (lo, hi)
        self._unprocessed = unprocessed
        self._operations = None if operations is None else frozenset(operations)
        self._capacity = capacity
        self._tokens = capacity or 0.0
        self._stamp = time.monotonic()

    async def send(self, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        operation = headers.get("X-Amz-Target", "").rpartition(".")[2]
        if not self.enabled or (self._operations is not None and operation not in self._operations):
            return await self._forward(headers, body)

        # Every draw happens here, before the first await, so that concurrent requests
        # cannot interleave inside one request's sequence of draws.
        rng = self._rng
        lo, hi = self._latency
        delay = rng.uniform(lo, hi) if hi > 0 else 0.0
        r = rng.random()
        fault: HttpResponse | None = None
        reset: str | None = None
        keys: dict[str, tuple[dict[str, Any], list[Any]]] = {}
        writes: _WritePlan | None = None
        if r < self._throttle:
            code = rng.choice(_THROTTLE_CODES)
            fault = error(code, "Rate of requests exceeds the allowed throughput (injected)")
        elif r < self._throttle + self._server_error:
            status, code = rng.choice(_SERVER_ERRORS)
            fault = error(code, "The server encountered an internal error (injected)", status)
        elif r < self._throttle + self._server_error + self._reset:
            reset = "reset_before" if rng.random() < 0.5 else "reset_after"
        elif self._capacity is not None and operation in _BATCH_OPERATIONS:
            fault, keys, writes = self._over_capacity(operation, body)
        elif self._unprocessed > 0 and operation == "BatchGetItem":
            keys = self._choose_keys(body)
        elif self._unprocessed > 0 and operation == "BatchWriteItem":
            writes = self._choose_writes(body)

        if delay > 0:
            await asyncio.sleep(delay)
        if fault is not None:
            self.injected["throttle" if fault.status < 500 else "server_error"] += 1
            return fault
        if reset == "reset_before":
            self.injected[reset] += 1
            raise TransportError("connection reset before the request was sent (injected)")
        if reset == "reset_after":
            await self._forward(headers, body)
            self.injected[reset] += 1
            raise TransportError("connection reset before the answer arrived (injected)")
        if keys:
            return await self._batch_get(headers, body, keys)
        if writes is not None:
            return await self._batch_write(headers, body, writes)
        return await self._forward(headers, body)

    async def close(self) -> None:
        await self.transport.close()

    def _over_capacity(
        self, operation: str, body: bytes
    ) -> tuple[HttpResponse | None, dict[str, tuple[dict[str, Any], list[Any]]], _WritePlan | None]:
        """A table of ``capacity`` items per second (one second of burst), as DynamoDB
        behaves: a batch over what is left is done in part, the rest reported unprocessed;
        with nothing left the whole request is throttled."""
        assert self._capacity is not None
        now = time.monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._capacity)
        self._stamp = now
        request = _batch_request(body)
        if request is None:
            return None, {}, None
        if self._tokens < 1:
            return (
                error("ProvisionedThroughputExceededException", "over capacity (injected)"),
                {},
                None,
            )
        allowed = int(self._tokens)
        keys: dict[str, tuple[dict[str, Any], list[Any]]] = {}
        keep: dict[str, list[Any]] = {}
        held: dict[str, list[Any]] = {}
        for table, spec in request["RequestItems"].items():
            entries = spec.get("Keys") if operation == "BatchGetItem" else spec
            if not isinstance(entries, list):
                continue
            done, over = entries[:allowed], entries[allowed:]
            allowed -= len(done)
            self._tokens -= len(done)
            if operation == "BatchGetItem":
                if over:
                    keys[table] = (spec, over)
            else:
                if done:
                    keep[table] = done
                if over:
                    held[table] = over
        return None, keys, (request, keep, held) if operation == "BatchWriteItem" else None

    async def _forward(self, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        self.forwarded += 1
        return await self.transport.send(headers, body)

    # BatchGetItem: the server does all the work; the answer is then made partial.

    def _choose_keys(self, body: bytes) -> dict[str, tuple[dict[str, Any], list[Any]]]:
        """Per table: the table's request and the keys to report unprocessed."""
        request = _batch_request(body)
        if request is None:
            return {}
        chosen: dict[str, tuple[dict[str, Any], list[Any]]] = {}
        for table, spec in request["RequestItems"].items():
            keys = spec.get("Keys") if isinstance(spec, dict) else None
            if not isinstance(keys, list):
                continue
            picked = [key for key in keys if self._rng.random() < self._unprocessed]
            if picked:
                chosen[table] = (spec, picked)
        return chosen

    async def _batch_get(
        self,
        headers: Mapping[str, str],
        body: bytes,
        chosen: dict[str, tuple[dict[str, Any], list[Any]]],
    ) -> HttpResponse:
        response = await self._forward(headers, body)
        data = _json_answer(response)
        if data is None:
            return response
        responses = data.get("Responses")
        if not isinstance(responses, dict):
            responses = {}
        unprocessed = data.get("UnprocessedKeys")
        if not isinstance(unprocessed, dict):
            unprocessed = data["UnprocessedKeys"] = {}
        moved = 0
        for table, (spec, keys) in chosen.items():
            items = responses.get(table)
            entry = unprocessed.get(table)
            if not isinstance(entry, dict):
                entry = unprocessed[table] = {}
            if not isinstance(entry.get("Keys"), list):
                entry["Keys"] = []
            for name in _ECHOED:
                if name in spec:
                    entry.setdefault(name, spec[name])
            for key in keys:
                # A key the server left unprocessed itself has no item to take out.
                if any(_same_item(key, other) for other in entry["Keys"]):
                    continue
                if isinstance(items, list):
                    for i, item in enumerate(items):
                        if _holds_key(item, key):
                            del items[i]
                            break
                entry["Keys"].append(key)
                moved += 1
        self.injected["unprocessed_keys"] += moved
        return _reanswer(response, data)

    # BatchWriteItem: the chosen requests are never sent, so the server cannot apply them.

    def _choose_writes(self, body: bytes) -> _WritePlan | None:
        """The request, and per table the write requests to send and those to hold back."""
        request = _batch_request(body)
        if request is None or not all(
            isinstance(requests, list) for requests in request["RequestItems"].values()
        ):
            return None  # malformed: let the server say so
        keep: dict[str, list[Any]] = {}
        held: dict[str, list[Any]] = {}
        for table, requests in request["RequestItems"].items():
            for write in requests:
                bucket = held if self._rng.random() < self._unprocessed else keep
                bucket.setdefault(table, []).append(write)
        return request, keep, held

    async def _batch_write(
        self, headers: Mapping[str, str], body: bytes, plan: _WritePlan
    ) -> HttpResponse:
        request, keep, held = plan
        if not held:
            return await self._forward(headers, body)
        count = sum(len(writes) for writes in held.values())
        if not keep:
            self.injected["unprocessed_items"] += count
            return answer({"UnprocessedItems": held})
        # The body shrank; any Content-Length a caller set would now be wrong.
        headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        response = await self._forward(headers, orjson.dumps({**request, "RequestItems": keep}))
        data = _json_answer(response)
        if data is None:
            # The whole batch failed, so holding part of it back changed nothing visible.
            return response
        merged = data.get("UnprocessedItems")
        if not isinstance(merged, dict):
            merged = data["UnprocessedItems"] = {}
        for table, writes in held.items():
            existing = merged.get(table)
            merged[table] = (existing if isinstance(existing, list) else []) + writes
        self.injected["unprocessed_items"] += count
        return _reanswer(response, data)


def _batch_request(body: bytes) -> dict[str, Any] | None:
    """A decoded batch request with a ``RequestItems`` object, or ``None``."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(payload, dict) and isinstance(payload.get("RequestItems"), dict):
        return payload
    return None


def _json_answer(response: HttpResponse) -> dict[str, Any] | None:
    """The decoded body of a 200 answer; ``None`` for anything that must pass unchanged."""
    if response.status != 200:
        return None
    try:
        data = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _reanswer(response: HttpResponse, data: dict[str, Any]) -> HttpResponse:
    raw = orjson.dumps(data)
    headers = {k.lower(): v for k, v in response.headers.items()}
    headers["x-amz-crc32"] = str(zlib.crc32(raw))
    if "content-length" in headers:
        headers["content-length"] = str(len(raw))
    return HttpResponse(response.status, headers, raw)


def _holds_key(item: Any, key: Any) -> bool:
    """Whether a returned item is the one ``key`` (exactly the key attributes) asked for."""
    return (
        isinstance(item, dict)
        and isinstance(key, dict)
        and all(name in item and _same_value(item[name], value) for name, value in key.items())
    )


def _same_item(a: Any, b: Any) -> bool:
    return (
        isinstance(a, dict)
        and isinstance(b, dict)
        and a.keys() == b.keys()
        and all(_same_value(a[name], b[name]) for name in a)
    )


def _same_value(a: Any, b: Any) -> bool:
    """AttributeValue equality, with N compared as numbers: DynamoDB stores "1.0" as 1."""
    if isinstance(a, dict) and isinstance(b, dict) and "N" in a and "N" in b:
        try:
            return bool(Decimal(a["N"]) == Decimal(b["N"]))
        except (InvalidOperation, TypeError):
            pass
    return bool(a == b)
