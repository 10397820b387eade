"""A stateful, model-based test of the batch engine against moto and dynalite (issue 16).

A hypothesis ``RuleBasedStateMachine`` drives, on a small key space (10 keys, so that
overwrites and duplicates are frequent), ``batch_write`` (duplicate keys in one call),
a shared ``writer()`` (put / delete / flush / leaving the block, also from concurrent
tasks), ``batch_get`` (duplicates, missing keys, numbers written another way), coalesced
``get``s gathered at once, and cancelled ``batch_write`` calls and writer blocks. Every
request of the client under test goes through ``asyncdyn.testing.FaultInjector`` (seeded
per example): throttling, partly unprocessed batches, 5xx, resets before the server saw
the request and after it (a lost answer).

The model is what was *acknowledged*: per key, the set of values the table may hold — one
value after an acknowledged write, several after a write whose outcome is legitimately
unknown (cancelled, or reported unwritten after an attempt whose answer was lost), until
the next acknowledged write of that key. After every step the table is read directly,
around the faults (a consistent scan on a fault-free client): every key within its allowed
set, nothing else. Every read answer must equal the model for keys with a certain value.
A report of unwritten work (``UnprocessedItemsError``) must name exactly what was not
written: never a request superseded by a later written one, never nothing when something
was lost; a request it names is really absent on the server unless one of its attempts
lost its answer.

Scenarios switch rule groups on, so that a defect of one area fails only its scenario;
``core`` is the baseline. ``ASYNCDYN_SOAK=full`` runs many more and longer examples;
``pytest -s`` prints a summary of operations and injected faults per scenario.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import os
import threading
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import orjson
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from asyncdyn import (
    AsyncDynError,
    Client,
    RetriesExhausted,
    RetryPolicy,
    Table,
    TransportError,
    UnprocessedItemsError,
    UnprocessedKeysError,
)
from asyncdyn.batch import BatchWriter
from asyncdyn.lean import LeanTransport
from asyncdyn.local import LocalServer
from asyncdyn.testing import FaultInjector
from asyncdyn.transport import HttpResponse, Transport

T = TypeVar("T")
FULL = os.environ.get("ASYNCDYN_SOAK") == "full"

# CI: a few seconds per server and scenario; the soak run explores far more.
# Shrinking a failure replays steps against a real server many times (minutes): on in the
# soak run or with ASYNCDYN_MODEL_SHRINK=1, off in CI, where the failing steps are printed
# unshrunk.
SHRINK = FULL or os.environ.get("ASYNCDYN_MODEL_SHRINK") == "1"
MODEL_SETTINGS = settings(
    max_examples=300 if FULL else 10,
    stateful_step_count=40 if FULL else 12,
    deadline=None,
    derandomize=not FULL,
    database=None,
    # No Phase.explain: its line tracer would slow a blocked loop down (see watchdog).
    phases=(Phase.explicit, Phase.generate, Phase.shrink)
    if SHRINK
    else (Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
STEP_TIMEOUT = 30.0  # seconds per step: a hang fails the step instead of the session
# The client under test retries little and fast, so that some calls do run out of retries
# and report their unprocessed work: the reports are what this test checks.
FAULTY_RETRY = RetryPolicy(max_attempts=4, base=0.001, cap=0.004, deadline=10.0)
# Harsher, for the writer scenarios: a one-request chunk then fails about half the time,
# so that flushes leave failures behind for a later request of the same key to supersede.
HARSH_FAULTS: dict[str, float] = {
    "throttle": 0.2,
    "server_error": 0.05,
    "reset": 0.1,
    "unprocessed": 0.5,
}
FAULTS: dict[str, float] = {
    "throttle": 0.12,
    "server_error": 0.05,
    "reset": 0.1,
    "unprocessed": 0.3,
}

# The table: PK (S) and SK (N). Ten keys; numbers of up to 38 digits.
PARTITIONS = ("a", "b")
CORE_SORT_KEYS: tuple[int | Decimal, ...] = (0, 1, 2, Decimal("1.5"), 10**37 + 1)
# Defect 1: numbers past 28 digits that differ only in their last digit are distinct keys.
BIG_SORT_KEYS: tuple[int | Decimal, ...] = (1, 10**28 + 1, 10**28 + 2, 10**37 + 1, 10**37 + 2)
KEY_COUNT = len(PARTITIONS) * len(CORE_SORT_KEYS)
assert KEY_COUNT == len(PARTITIONS) * len(BIG_SORT_KEYS)

MKey = tuple[str, Decimal]  # a key as the model knows it: numbers compared by value
Item = dict[str, Any]


def mkey_of(item: Mapping[str, Any]) -> MKey:
    return (str(item["PK"]), Decimal(item["SK"]))


def _wire_mkey(wire: Mapping[str, Any]) -> MKey:
    return (wire["PK"]["S"], Decimal(wire["SK"]["N"]))


def _show(value: Item | None) -> str:
    return "absent" if value is None else f"v{value['v']}"


# ------------------------------------------------------------------------------ transports


class Gate:
    """The innermost wrapper: optional latency before or after the server sees a request
    (an answer delayed after the write was applied), and a hold on answers, so that a step
    can act while a request is known to be in flight."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.before = 0.0
        self.after = 0.0
        self.hold: asyncio.Event | None = None
        self.arrived: asyncio.Event | None = None
        # What reached the server, per key, for the failure messages: (key, what) in order.
        self.history: list[tuple[MKey, str]] = []

    async def send(self, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        if self.before:
            await asyncio.sleep(self.before)
        writes = list(_writes(body))
        response = await self.inner.send(headers, body)
        unprocessed = {key for key, _ in _writes(response.body, "UnprocessedItems")}
        for key, what in writes:
            self.history.append(
                (key, f"{what} sent, {'un' if key in unprocessed else ''}processed")
            )
        if self.after:
            await asyncio.sleep(self.after)
        hold = self.hold
        if hold is not None:
            if self.arrived is not None:
                self.arrived.set()
            await hold.wait()
        return response

    async def close(self) -> None:
        await self.inner.close()


class Faults(FaultInjector):
    """The FaultInjector, noting the keys of every write request whose answer it dropped
    after forwarding it: such a write may have been applied although it is reported
    unwritten."""

    def __init__(self, transport: Transport, **options: Any) -> None:
        super().__init__(transport, **options)
        self.lost: set[MKey] = set()

    async def send(self, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        try:
            return await super().send(headers, body)
        except TransportError as exc:
            if "before the answer arrived" in str(exc):  # FaultInjector's reset_after
                self.lost.update(_written_keys(body))
            raise


def _written_keys(body: bytes) -> Iterator[MKey]:
    for key, _ in _writes(body):
        yield key


def _writes(body: bytes, field: str = "RequestItems") -> Iterator[tuple[MKey, str]]:
    """The keys of the write requests in a BatchWriteItem body (or answer, with
    ``field="UnprocessedItems"``), each with ``put v<n>`` or ``delete``."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    if not isinstance(request, dict):
        return
    for requests in (request.get(field) or {}).values():
        if not isinstance(requests, list):
            continue  # a BatchGetItem
        for write in requests:
            if "PutRequest" in write:
                item = write["PutRequest"]["Item"]
                yield _wire_mkey(item), f"put v{item.get('v', {}).get('N', '?')}"
            else:
                yield _wire_mkey(write["DeleteRequest"]["Key"]), "delete"


# ----------------------------------------------------------------------------- watchdog


class LoopBlocked(Exception):
    """Raised inside the event loop's thread when a step blocked the loop (a spin that never
    awaits cannot be stopped by ``asyncio.wait_for``)."""


class EventLoopBlocked(AssertionError):
    """A step blocked the event loop (a ``LoopBlocked`` was needed to stop it)."""


@contextlib.contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    target = threading.get_ident()
    done = threading.Event()

    def fire() -> None:
        if not done.wait(seconds):
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(target), ctypes.py_object(LoopBlocked)
            )

    thread = threading.Thread(target=fire, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


# ----------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    name: str
    big_numbers: bool = False  # 29- and 38-digit sort keys one apart (defect 1)
    flush: bool = False  # writer.flush() between puts (defect 6: stale reports)
    concurrent_writer: bool = False  # puts and flushes from concurrent tasks (defect 3)
    cancel: bool = False  # cancelled batch_write and writer blocks (defects 4, 14)
    read_after_write: bool = False  # a coalesced get after a write completed (defect 7)
    bad_key: bool = False  # one caller's bad key in a coalesced group (defect 8)
    close_gathering: bool = False  # Client.close() while gets gather (defect 9)
    harsh: bool = False  # HARSH_FAULTS instead of FAULTS
    weight: int = 1  # times the examples: a defect that takes a longer search


SCENARIOS = [
    Scenario("core"),
    Scenario("big_numbers", big_numbers=True),
    Scenario("flush", flush=True, harsh=True, weight=3),
    Scenario("concurrent_writer", concurrent_writer=True, harsh=True, weight=2),
    Scenario("cancel", cancel=True),
    Scenario("read_after_write", read_after_write=True),
    Scenario("bad_key", bad_key=True),
    Scenario("close_gathering", close_gathering=True),
]


@dataclass
class Env:
    """One test run: its event loop, the server, a fault-free client, the summary."""

    loop: asyncio.AbstractEventLoop
    server: LocalServer
    clean: Client
    scenario: Scenario
    operations: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    examples: int = 0

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = STEP_TIMEOUT) -> T:
        try:
            with watchdog(timeout + 1.0):
                return self.loop.run_until_complete(asyncio.wait_for(coroutine, timeout))
        except LoopBlocked:
            pass
        # Raised outside the handler, with no context: one failure wherever the spin was.
        raise EventLoopBlocked(f"a step blocked the event loop for {timeout + 1.0} s")


# -------------------------------------------------------------------------- writer ledger


@dataclass
class Request:
    key: MKey
    value: Item | None  # None: a delete
    position: int


class Ledger:
    """What one writer was given, and what it acknowledged (``on_acknowledged``)."""

    def __init__(self) -> None:
        self.requests: dict[int, Request] = {}
        self.position = 0
        self.latest: dict[MKey, int] = {}  # the last request accepted per key
        self.buffered: set[int] = set()  # accepted since the last flush began
        self.replaced: set[int] = set()  # replaced in the buffer: never sent
        self.sent: set[int] = set()  # sent, not yet acknowledged nor failed
        self.failed: dict[int, Request] = {}  # sent, never acknowledged; not yet reported
        self.written: set[int] = set()  # acknowledged, as the last request of its key
        self.acks: list[int] = []

    def attach(self, writer: BatchWriter) -> None:
        writer.on_acknowledged = self.acks.extend

    def accept(self, key: MKey, value: Item | None) -> Request:
        request = Request(key, value, self.position)
        self.position += 1
        self.requests[request.position] = request
        self.buffered.add(request.position)
        self.latest[key] = request.position
        return request

    def took(self, request: Request, before: int) -> None:
        """``put``/``delete`` of ``request`` returned; ``before`` is how many acks had come
        before it was called. An earlier request of its key acknowledged meanwhile was
        replaced in the writer's buffer, never sent: ``put`` does not wait for the network
        (the buffer has room: ten keys), so no chunk can have been acknowledged meanwhile.
        Only the writer knows whether the earlier one was still buffered (a flush under way
        sends at once)."""
        kept: list[int] = []
        for position in self.acks[before:]:
            if position < request.position and self.requests[position].key == request.key:
                self.replaced.add(position)
            else:
                kept.append(position)
        del self.acks[before:]
        self.acks.extend(kept)


# -------------------------------------------------------------------------------- machine

key_indexes = st.integers(0, KEY_COUNT - 1)
key_lists = st.lists(key_indexes, max_size=8)


class BatchModel(RuleBasedStateMachine):
    def __init__(self, env: Env) -> None:
        super().__init__()
        self.env = env
        self.scenario = env.scenario
        sort_keys = BIG_SORT_KEYS if self.scenario.big_numbers else CORE_SORT_KEYS
        self.keys: list[tuple[str, int | Decimal]] = [
            (pk, sk) for pk in PARTITIONS for sk in sort_keys
        ]
        self.allowed: dict[MKey, list[Item | None]] = {}
        self.versions = itertools.count(1)
        self.faults: Faults | None = None
        self.gate: Gate | None = None
        self.db: Client | None = None
        self.table_name = ""
        self.writer: BatchWriter | None = None
        self.ledger = Ledger()
        self.broken = False
        env.examples += 1

    # -- set-up and tear-down -------------------------------------------------------------

    @initialize(seed=st.integers(0, 2**32 - 1))
    def start(self, seed: int) -> None:
        self.table_name = f"model-{uuid.uuid4().hex[:12]}"
        self.env.run(
            self.env.clean.create_table(self.table_name, partition_key="PK", sort_key=("SK", "N"))
        )
        self.db, self.gate, self.faults = self._client(seed)

    def _client(self, seed: int) -> tuple[Client, Gate, Faults]:
        """A client under test: coalesced gets, few fast retries, every request through
        the fault injector (seeded) and the gate."""
        gate = Gate(LeanTransport(self.env.server.endpoint_url))
        faults = Faults(gate, seed=seed, **(HARSH_FAULTS if self.scenario.harsh else FAULTS))
        client = Client(
            region="us-east-1",
            endpoint_url=self.env.server.endpoint_url,
            credentials=("testing", "testing"),
            transport=faults,
            retry=FAULTY_RETRY,
            adaptive_rate=False,
            max_concurrency=8,
            coalesce_gets=True,
        )
        return client, gate, faults

    def teardown(self) -> None:
        env = self.env
        if self.faults is not None:
            env.injected.update(self.faults.injected)
        if self.writer is not None and not self.broken:
            with contextlib.suppress(Exception):
                env.run(self.writer.__aexit__(None, None, None))
        if self.db is not None:
            with contextlib.suppress(Exception):
                env.run(self.db.close())
        if self.table_name:
            with contextlib.suppress(Exception):
                env.run(env.clean.delete_table(self.table_name, wait=False))

    @property
    def table(self) -> Table:
        assert self.db is not None
        # The key given: no DescribeTable through the faults (nothing to model there).
        return self.db.table(self.table_name, key=("PK", "SK"))

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = STEP_TIMEOUT) -> T:
        try:
            return self.env.run(coroutine, timeout)
        except (EventLoopBlocked, TimeoutError):
            self.broken = True
            raise

    def step(self, name: str) -> None:
        self.env.operations[name] += 1
        assert self.faults is not None
        self.faults.lost.clear()

    # -- the model ------------------------------------------------------------------------

    def key(self, index: int, *, respelled: bool = False) -> dict[str, Any]:
        pk, sk = self.keys[index]
        if respelled and isinstance(sk, int) and sk < 10**6:
            return {"PK": pk, "SK": Decimal(f"{sk}.0")}  # DynamoDB stores it as sk
        return {"PK": pk, "SK": sk}

    def new_item(self, index: int) -> Item:
        pk, sk = self.keys[index]
        n = next(self.versions)
        return {"PK": pk, "SK": sk, "v": n, "note": f"version {n}"}

    def values(self, key: MKey) -> list[Item | None]:
        return self.allowed.get(key, [None])

    def certain(self, key: MKey) -> bool:
        return len(self.values(key)) == 1

    def note(self, key: MKey, what: str) -> None:
        if self.gate is not None:
            self.gate.history.append((key, what))

    def acknowledged(self, key: MKey, value: Item | None) -> None:
        self.note(key, f"model: acknowledged {_show(value)}")
        self.allowed[key] = [value]

    def maybe(self, key: MKey, value: Item | None) -> None:
        self.note(key, f"model: maybe {_show(value)}")
        values = self.values(key)
        if value not in values:
            self.allowed[key] = [*values, value]

    def expect_read(self, what: str, key: Mapping[str, Any], got: Item | None) -> None:
        mkey = mkey_of(key)
        values = self.values(mkey)
        assert got in values, (
            f"{what} of {key} returned {_show(got)}, the model allows "
            f"{[_show(v) for v in values]}: {got!r}"
        )

    def story(self, mkey: MKey) -> str:
        """The batch writes of ``mkey`` that reached the server and what the model made
        of them, in order, for a failure message."""
        assert self.gate is not None
        seen = [what for key, what in self.gate.history if key == mkey]
        return f"that key's writes that reached the server, and the model: {seen[-16:]}"

    @invariant()
    def table_matches_model(self) -> None:
        if self.db is None or self.broken:
            return
        stored = self.run(self._scan())
        for index in range(KEY_COUNT):
            mkey = mkey_of(self.key(index))
            got = stored.pop(mkey, None)
            values = self.values(mkey)
            assert got in values, (
                f"the table holds {_show(got)} for {mkey}, the model allows "
                f"{[_show(v) for v in values]}: {got!r}; {self.story(mkey)}"
            )
        assert not stored, f"the table holds keys never written: {list(stored)}"

    async def _scan(self) -> dict[MKey, Item]:
        seen: dict[MKey, Item] = {}
        async for item in self.env.clean.table(self.table_name).scan(consistent=True):
            mkey = mkey_of(item)
            assert mkey not in seen, f"the scan returned {mkey} twice"
            seen[mkey] = item
        return seen

    # -- batch_write ----------------------------------------------------------------------

    @staticmethod
    def intended(
        puts: Sequence[Item], deletes: Sequence[Mapping[str, Any]]
    ) -> dict[MKey, Item | None]:
        """What a batch_write means: as if the puts ran in order, then the deletes."""
        final: dict[MKey, Item | None] = {}
        for item in puts:
            final[mkey_of(item)] = item
        for key in deletes:
            final[mkey_of(key)] = None
        return final

    def settle_batch(
        self, final: dict[MKey, Item | None], error: UnprocessedItemsError | None
    ) -> None:
        assert self.faults is not None
        unwritten: dict[MKey, Item | None] = {}
        if error is not None:
            for item in error.puts:
                assert mkey_of(item) not in unwritten, f"{item} reported twice: {error!r}"
                unwritten[mkey_of(item)] = item
            for key in error.deletes:
                assert mkey_of(key) not in unwritten, f"{key} reported twice: {error!r}"
                unwritten[mkey_of(key)] = None
        for mkey, value in unwritten.items():
            assert mkey in final and final[mkey] == value, (
                f"reported unwritten: {mkey} -> {_show(value)}, but the call's last request "
                f"for that key is {_show(final.get(mkey))}"
            )
        maybe = maybe_applied_keys(error)
        for mkey, value in final.items():
            if mkey not in unwritten:
                self.acknowledged(mkey, value)
            elif maybe is not None:
                # The report tells "maybe applied" (sent, no answer) from "never applied".
                assert mkey in maybe or mkey not in self.faults.lost, (
                    f"{mkey} is reported never applied, but an answer to it was lost"
                )
                if mkey in maybe:
                    self.maybe(mkey, value)
            elif mkey in self.faults.lost:
                self.maybe(mkey, value)  # an attempt's answer was lost: maybe applied
            # else: reported never applied, so the table must not hold it

    @rule(puts=key_lists, deletes=st.lists(key_indexes, max_size=4))
    def batch_write(self, puts: list[int], deletes: list[int]) -> None:
        self.step("batch_write")
        items = [self.new_item(i) for i in puts]
        keys = [self.key(i, respelled=n % 2 == 1) for n, i in enumerate(deletes)]
        error: UnprocessedItemsError | None = None
        try:
            self.run(self.table.batch_write(puts=items, deletes=keys))
        except UnprocessedItemsError as exc:
            error = exc
            self.env.operations["batch_write: unprocessed reported"] += 1
        self.settle_batch(self.intended(items, keys), error)

    # -- batch_get ------------------------------------------------------------------------

    @rule(indexes=st.lists(key_indexes, max_size=12), respell=st.booleans())
    def batch_get(self, indexes: list[int], respell: bool) -> None:
        self.step("batch_get")
        keys = [self.key(i, respelled=respell and n % 2 == 0) for n, i in enumerate(indexes)]
        unanswered: list[Mapping[str, Any]] = []
        try:
            got = self.run(self.table.batch_get(keys, consistent=True))
        except UnprocessedKeysError as exc:
            self.env.operations["batch_get: unprocessed reported"] += 1
            assert isinstance(exc.partial, list) and isinstance(exc.unprocessed, list)
            got, unanswered = exc.partial, exc.unprocessed
            asked = {mkey_of(k) for k in keys}
            assert all(mkey_of(k) in asked for k in unanswered), exc.unprocessed
        assert len(got) == len(keys)
        missing = {mkey_of(k) for k in unanswered}
        for key, item in zip(keys, got, strict=True):
            if mkey_of(key) not in missing:
                self.expect_read("batch_get", key, item)
        for n, item in enumerate(got):  # each position its own copy
            for other in got[n + 1 :]:
                assert item is None or item is not other, "two positions share one dict"

    # -- the shared writer ----------------------------------------------------------------

    def open_writer(self) -> BatchWriter:
        if self.writer is None:
            self.writer = self.table.writer()
            self.ledger = Ledger()
            self.ledger.attach(self.writer)
            self.run(self.writer.__aenter__())
        return self.writer

    async def writer_request(
        self, writer: BatchWriter, ledger: Ledger, index: int, put: bool
    ) -> None:
        before = len(ledger.acks)
        if put:
            item = self.new_item(index)
            request = ledger.accept(mkey_of(item), item)
            await writer.put(item)
        else:
            key = self.key(index)
            request = ledger.accept(mkey_of(key), None)
            await writer.delete(key)
        ledger.took(request, before)

    @rule(index=key_indexes, put=st.booleans())
    def writer_put_or_delete(self, index: int, put: bool) -> None:
        self.step("writer put" if put else "writer delete")
        writer = self.open_writer()
        self.run(self.writer_request(writer, self.ledger, index, put))
        self.settle_ledger(self.ledger)

    def settle_ledger(self, ledger: Ledger, *, drained: bool = False) -> None:
        """Apply what the writer acknowledged to the model; with ``drained`` (a flush or the
        exit returned), whatever was sent and not acknowledged has failed."""
        assert self.faults is not None
        acks = list(ledger.acks)
        ledger.acks.clear()  # the writer's callback holds this list
        for position in acks:
            if position in ledger.replaced:
                continue  # replaced in the buffer before it was sent
            request = ledger.requests[position]
            assert position not in ledger.written, f"position {position} acknowledged twice"
            ledger.buffered.discard(position)
            ledger.sent.discard(position)
            if ledger.latest[request.key] == position:
                ledger.written.add(position)
                self.acknowledged(request.key, request.value)
            else:
                # A later request for the key was accepted: this one was written before it,
                # or is moot because of it (the writer acknowledges both alike).
                self.maybe(request.key, request.value)
        if drained:
            ledger.sent.update(ledger.buffered - ledger.replaced)
            ledger.buffered.clear()
            for position in sorted(ledger.sent):
                request = ledger.requests[position]
                ledger.failed[position] = request
                if request.key in self.faults.lost:
                    self.maybe(request.key, request.value)
            ledger.sent.clear()

    def drained(self, ledger: Ledger) -> None:
        """The writer is about to send its buffer (flush or exit)."""
        ledger.sent.update(ledger.buffered - ledger.replaced)
        ledger.buffered.clear()

    @precondition(lambda self: self.scenario.flush and self.writer is not None)
    @rule()
    def writer_flush(self) -> None:
        self.step("writer flush")
        assert self.writer is not None
        self.drained(self.ledger)
        self.run(self.writer.flush())
        self.settle_ledger(self.ledger, drained=True)

    @precondition(lambda self: self.writer is not None)
    @rule()
    def writer_exit(self) -> None:
        self.step("writer exit")
        writer, ledger = self.writer, self.ledger
        assert writer is not None
        self.writer = None
        self.drained(ledger)
        error: UnprocessedItemsError | None = None
        try:
            self.run(writer.__aexit__(None, None, None))
        except UnprocessedItemsError as exc:
            error = exc
            self.env.operations["writer exit: unprocessed reported"] += 1
        self.settle_ledger(ledger, drained=True)
        self.check_report(ledger, error)

    @precondition(lambda self: self.scenario.flush)
    @rule(
        pair=st.tuples(key_indexes, key_indexes),
        ops=st.lists(
            st.tuples(st.sampled_from(["put", "put", "delete", "flush"]), st.integers(0, 1)),
            min_size=2,
            max_size=10,
        ),
    )
    def writer_session(self, pair: tuple[int, int], ops: list[tuple[str, int]]) -> None:
        """Several puts, deletes and flushes of the shared writer in a row, on two keys
        (so that a later request for a key often follows one that failed)."""
        self.step("writer session")
        writer = self.open_writer()

        async def session() -> None:
            for op, which in ops:
                index = pair[which]
                if op == "flush":
                    self.drained(self.ledger)
                    await writer.flush()
                    self.settle_ledger(self.ledger, drained=True)
                else:
                    await self.writer_request(writer, self.ledger, index, op == "put")

        self.run(session())
        self.settle_ledger(self.ledger)

    def check_report(self, ledger: Ledger, error: UnprocessedItemsError | None) -> None:
        """The exit's report names the failed requests that still matter: each failed
        request that is the last one given for its key must be named; one after which a
        later request for its key was written must not be (resending it would undo that
        write); one followed only by failed requests may be."""
        reported_puts = {item["v"]: item for item in (error.puts if error else [])}
        reported_deletes = Counter(mkey_of(k) for k in (error.deletes if error else []))
        # Latest first: deletes of one key are told apart by nothing, so the one that must
        # be named takes a reported delete before an earlier one that may be.
        for position, request in sorted(ledger.failed.items(), reverse=True):
            later = [
                p for p in ledger.requests if p > position and ledger.requests[p].key == request.key
            ]
            superseded = any(p in ledger.written for p in later)
            required = not later
            if request.value is not None:
                named = reported_puts.pop(request.value["v"], None) is not None
            else:
                named = reported_deletes[request.key] > 0
                if named:
                    reported_deletes[request.key] -= 1
            what = (
                f"{'put ' + _show(request.value) if request.value else 'delete'} of {request.key}"
            )
            assert not (named and superseded), (
                f"the {what} is reported unwritten although a later request for that key was "
                "written: resending it would undo that write"
            )
            assert named or not required, f"the {what} failed and was never reported"
        assert not reported_puts, (
            f"reported unwritten but never failed: {list(reported_puts.values())}"
        )
        assert not +reported_deletes, (
            f"deletes reported unwritten but never failed: {reported_deletes}"
        )
        ledger.failed.clear()

    @precondition(lambda self: self.scenario.concurrent_writer)
    @rule(
        ops=st.lists(
            st.tuples(
                st.sampled_from(["put", "delete", "flush", "timed-out flush"]),
                key_indexes,
                st.integers(0, 3),
            ),
            min_size=2,
            max_size=6,
        )
    )
    def writer_concurrent(self, ops: list[tuple[str, int, int]]) -> None:
        """Puts, deletes and flushes of the shared writer from concurrent tasks, started a
        few loop turns apart; some flushes time out (their caller stops waiting), the
        others must still return once the writer is drained."""
        self.step("writer concurrent")
        writer = self.open_writer()
        self.drained(self.ledger)  # what is buffered now goes with the first flush

        async def one(op: str, index: int) -> None:
            if op == "flush":
                self.drained(self.ledger)
                await writer.flush()
            elif op == "timed-out flush":  # a caller that gives up on its flush
                self.drained(self.ledger)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(writer.flush(), 0.002)
            else:
                await self.writer_request(writer, self.ledger, index, op == "put")

        async def all_of() -> None:
            tasks = []
            for op, index, pause in ops:
                tasks.append(asyncio.create_task(one(op, index)))
                for _ in range(pause):
                    await asyncio.sleep(0)
            await asyncio.gather(*tasks)
            await writer.flush()  # settle what the last put left buffered

        self.drained(self.ledger)
        self.run(all_of(), timeout=3.0)
        self.settle_ledger(self.ledger, drained=True)

    # -- coalesced gets -------------------------------------------------------------------

    async def gather_gets(
        self, table: Table, keys: list[dict[str, Any]], consistent: bool
    ) -> list[Item | None | BaseException]:
        return list(
            await asyncio.gather(
                *(table.get(key, consistent=consistent) for key in keys), return_exceptions=True
            )
        )

    def expect_gets(
        self, keys: list[dict[str, Any]], got: list[Item | None | BaseException]
    ) -> None:
        for key, answer in zip(keys, got, strict=True):
            if isinstance(answer, UnprocessedKeysError | RetriesExhausted):
                self.env.operations["coalesced get: unprocessed reported"] += 1
                continue
            assert not isinstance(answer, BaseException), (
                f"coalesced get of {key} raised {answer!r}"
            )
            self.expect_read("coalesced get", key, answer)

    @rule(indexes=st.lists(key_indexes, min_size=1, max_size=8), consistent=st.booleans())
    def coalesced_gets(self, indexes: list[int], consistent: bool) -> None:
        self.step("coalesced gets")
        keys = [self.key(i, respelled=n % 3 == 1) for n, i in enumerate(indexes)]
        self.expect_gets(keys, self.run(self.gather_gets(self.table, keys, consistent)))

    @precondition(lambda self: self.scenario.read_after_write)
    @rule(index=key_indexes)
    def coalesced_read_after_write(self, index: int) -> None:
        """A consistent get sent, its answer held; a write of the key completes; a second
        consistent get of the key, made after that, must see the write."""
        self.step("coalesced read after write")
        assert self.gate is not None
        key = self.key(index)
        before = list(self.values(mkey_of(key)))
        item = self.new_item(index)

        async def scenario() -> tuple[Item | None | BaseException, Item | None | BaseException]:
            gate = self.gate
            assert gate is not None
            gate.hold, gate.arrived = asyncio.Event(), asyncio.Event()
            try:
                first = asyncio.create_task(self.table.get(key, consistent=True))
                arrived = asyncio.create_task(gate.arrived.wait())
                # Its request reached the server and the answer is held (or it failed).
                await asyncio.wait([first, arrived], return_when=asyncio.FIRST_COMPLETED)
                arrived.cancel()
                await self.env.clean.table(self.table_name).put(item)
                second = asyncio.ensure_future(self.table.get(key, consistent=True))
                await asyncio.sleep(0.01)
            finally:
                gate.hold.set()
                gate.hold = gate.arrived = None
            results = await asyncio.gather(first, second, return_exceptions=True)
            return results[0], results[1]

        first, second = self.run(scenario())
        self.acknowledged(mkey_of(item), item)
        if not isinstance(first, UnprocessedKeysError | RetriesExhausted):
            assert not isinstance(first, BaseException), repr(first)
            assert first in [*before, item], f"first get returned {_show(first)}"
        self.expect_gets([key], [second])

    @precondition(lambda self: self.scenario.bad_key)
    @rule(indexes=st.lists(key_indexes, min_size=1, max_size=6), at=st.integers(0, 6))
    def coalesced_gets_with_a_bad_key(self, indexes: list[int], at: int) -> None:
        """One caller's key does not match the schema (a string for the number SK): that
        caller gets its error, every other caller its answer."""
        self.step("coalesced gets with a bad key")
        keys = [self.key(i) for i in indexes]
        bad = {"PK": "a", "SK": "not a number"}
        at = min(at, len(keys))
        got = self.run(self.gather_gets(self.table, [*keys[:at], bad, *keys[at:]], True))
        error = got.pop(at)
        # moto does not check key types in BatchGetItem: there the key merely finds nothing.
        lax = self.env.server.kind == "moto" and error is None
        assert isinstance(error, AsyncDynError) or lax, f"the bad key got {error!r}"
        self.expect_gets(keys, got)

    @precondition(lambda self: self.scenario.close_gathering)
    @rule(indexes=st.lists(key_indexes, min_size=1, max_size=6), turns=st.integers(0, 3))
    def close_while_gathering(self, indexes: list[int], turns: int) -> None:
        """``Client.close()`` while coalesced gets gather or are in flight: every get ends
        promptly, with its answer or a typed error."""
        self.step("close while gathering")
        keys = [self.key(i) for i in indexes]
        db, _, faults = self._client(len(keys) * 10 + turns)
        table = db.table(self.table_name, key=("PK", "SK"))

        async def scenario() -> list[Item | None | BaseException]:
            tasks = [asyncio.ensure_future(table.get(key, consistent=True)) for key in keys]
            for _ in range(turns):
                await asyncio.sleep(0)
            await db.close()
            done, pending = await asyncio.wait(tasks, timeout=1.0)
            for task in pending:
                task.cancel()
            assert not pending, f"{len(pending)} get(s) still waiting 1 s after close()"
            return [_outcome(task) for task in tasks]

        try:
            got = self.run(scenario())
        finally:
            self.env.injected.update(faults.injected)
        for key, answer in zip(keys, got, strict=True):
            if isinstance(answer, BaseException):
                assert isinstance(answer, AsyncDynError), f"get of {key} ended with {answer!r}"
            else:
                self.expect_read("coalesced get before close", key, answer)

    # -- cancellation ---------------------------------------------------------------------

    @precondition(lambda self: self.scenario.cancel)
    @rule(
        puts=key_lists,
        deletes=st.lists(key_indexes, max_size=3),
        wait=st.sampled_from([0.0, 0.002, 0.01, 0.03]),
        after=st.booleans(),
    )
    def cancelled_batch_write(
        self, puts: list[int], deletes: list[int], wait: float, after: bool
    ) -> None:
        """A batch_write cancelled part-way: the keys it touches are uncertain, nothing
        else changes, and the cancellation is what the caller sees."""
        self.step("cancelled batch_write")
        items = [self.new_item(i) for i in puts]
        keys = [self.key(i) for i in deletes]

        async def scenario() -> tuple[bool, BaseException | None]:
            task = asyncio.create_task(self.table.batch_write(puts=items, deletes=keys))
            await asyncio.sleep(wait)
            cancelled = task.cancel()
            (outcome,) = await asyncio.gather(task, return_exceptions=True)
            return cancelled, outcome

        cancelled, outcome = self.with_latency(after, scenario)
        final = self.intended(items, keys)
        if not cancelled:  # it had finished: an ordinary call
            assert outcome is None or isinstance(outcome, UnprocessedItemsError), repr(outcome)
            self.settle_batch(final, outcome)
            return
        assert isinstance(outcome, asyncio.CancelledError), (
            f"batch_write was cancelled but raised {outcome!r}"
        )
        for mkey, value in final.items():
            self.maybe(mkey, value)
        self.env.run(asyncio.sleep(0.02))  # a request cut off on the wire lands before the check

    @precondition(lambda self: self.scenario.cancel)
    @rule(
        requests=st.lists(st.tuples(key_indexes, st.booleans()), min_size=1, max_size=10),
        wait=st.sampled_from([0.0, 0.002, 0.01, 0.03]),
        after=st.booleans(),
    )
    def cancelled_writer_block(
        self, requests: list[tuple[int, bool]], wait: float, after: bool
    ) -> None:
        """A writer block cancelled part-way (in its exit drain, since ten keys never fill
        a chunk): what it acknowledged is written; everything else it accepted is reported
        (``w.unwritten``, or an error chained to the cancellation) — never silently lost."""
        self.step("cancelled writer block")
        ledger = Ledger()
        holder: list[BatchWriter] = []

        async def block() -> None:
            async with self.table.writer() as writer:
                holder.append(writer)
                ledger.attach(writer)
                for index, put in requests:
                    await self.writer_request(writer, ledger, index, put)
                self.drained(ledger)

        async def scenario() -> tuple[bool, BaseException | None]:
            task = asyncio.create_task(block())
            await asyncio.sleep(wait)
            cancelled = task.cancel()
            (outcome,) = await asyncio.gather(task, return_exceptions=True)
            return cancelled, outcome

        cancelled, outcome = self.with_latency(after, scenario)
        self.env.run(asyncio.sleep(0.02))
        if not cancelled:
            self.settle_ledger(ledger, drained=True)
            assert outcome is None or isinstance(outcome, UnprocessedItemsError), repr(outcome)
            self.check_report(ledger, outcome)
            return
        assert isinstance(outcome, asyncio.CancelledError), (
            f"the writer block was cancelled but raised {outcome!r}"
        )
        self.settle_ledger(ledger)
        # Accepted and never acknowledged: the key may hold it or not (it may have been
        # in flight when cancelled); it must be reported.
        unacknowledged = {
            p: r
            for p, r in ledger.requests.items()
            if p not in ledger.replaced and p not in ledger.written and ledger.latest[r.key] == p
        }
        report = reported_unwritten(holder[0] if holder else None, outcome)
        if report is None:
            for request in unacknowledged.values():
                self.maybe(request.key, request.value)
            lost = list(unacknowledged.values())
            assert not lost, (
                f"the cancelled writer block accepted {len(lost)} request(s) "
                f"({[(r.key, _show(r.value)) for r in lost]}) that it neither acknowledged "
                "nor reported"
            )
            return
        puts, deletes, maybe = report
        named_puts = {item["v"] for item in puts}
        named_deletes = {mkey_of(key) for key in deletes}
        for request in unacknowledged.values():
            named = (
                request.value["v"] in named_puts
                if request.value is not None
                else request.key in named_deletes
            )
            assert named, f"{request} was accepted, not acknowledged and not reported"
            if maybe is None or request.key in maybe:
                self.maybe(request.key, request.value)
            else:  # reported never applied: the table must not hold it
                assert request.key not in self.faults.lost, (
                    f"{request} is reported never applied, but an answer to it was lost"
                )

    def with_latency(self, after: bool, scenario: Any) -> Any:
        """Run ``scenario()`` with a few milliseconds on every request of the client under
        test, before the server sees it or after (then the write is applied and its answer
        late)."""
        gate = self.gate
        assert gate is not None
        if after:
            gate.after = 0.005
        else:
            gate.before = 0.005
        try:
            return self.run(scenario())
        finally:
            gate.before = gate.after = 0.0


def _outcome(task: asyncio.Future[T]) -> T | BaseException:
    if task.cancelled():
        return asyncio.CancelledError()
    error = task.exception()
    return error if error is not None else task.result()


def maybe_applied_keys(report: Any) -> set[MKey] | None:
    """The keys of the requests a report says may have been applied (sent, and no answer
    came back: ``maybe_puts``/``maybe_deletes``), or ``None`` when it does not say."""
    maybe_puts = getattr(report, "maybe_puts", None)
    maybe_deletes = getattr(report, "maybe_deletes", None)
    if maybe_puts is None or maybe_deletes is None:
        return None
    return {mkey_of(value) for value in [*maybe_puts, *maybe_deletes]}


def reported_unwritten(
    writer: BatchWriter | None, outcome: BaseException | None
) -> tuple[list[Item], list[dict[str, Any]], set[MKey] | None] | None:
    """What a cancelled writer reported as accepted and not (known to be) written: its
    ``unwritten`` attribute (an ``UnprocessedItemsError``) or an ``UnprocessedItemsError``
    chained to the cancellation — puts, deletes and the keys maybe applied (``None``: not
    told); ``None`` when it reported nothing."""
    reports: list[Any] = []
    report = getattr(writer, "unwritten", None)
    if report is not None:
        reports.append(report)
    seen: set[int] = set()
    cause = outcome
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, UnprocessedItemsError):
            reports.append(cause)
        cause = cause.__cause__ or cause.__context__
    if not reports:
        return None
    puts: list[Item] = []
    deletes: list[dict[str, Any]] = []
    maybe: set[MKey] | None = set()
    for one in reports:
        puts += list(getattr(one, "puts", ()))
        deletes += list(getattr(one, "deletes", ()))
        keys = maybe_applied_keys(one)
        maybe = None if keys is None or maybe is None else maybe | keys
    return puts, deletes, maybe


# -------------------------------------------------------------------------------- the test


@pytest.mark.parametrize("scenario", [pytest.param(s, id=s.name) for s in SCENARIOS])
def test_batch_engine_matches_model(server: LocalServer, scenario: Scenario) -> None:
    loop = asyncio.new_event_loop()
    try:
        clean = Client(
            region="us-east-1",
            endpoint_url=server.endpoint_url,
            credentials=("testing", "testing"),
            retry=RetryPolicy(deadline=30.0),
        )
        env = Env(loop, server, clean, scenario)
        try:
            run_state_machine_as_test(
                lambda: BatchModel(env),
                settings=settings(
                    MODEL_SETTINGS, max_examples=MODEL_SETTINGS.max_examples * scenario.weight
                ),
            )
        finally:
            print(
                f"\nMODEL {server.kind}/{scenario.name}: {env.examples} examples; "
                f"operations {dict(sorted(env.operations.items()))}; "
                f"injected {dict(sorted(env.injected.items()))}"
            )
            env.run(clean.close())
    finally:
        loop.close()


def test_lost_answer_keys_are_tracked() -> None:
    """The model's notion of a lost answer reads the write keys of a BatchWriteItem."""
    body = orjson.dumps(
        {
            "RequestItems": {
                "T": [
                    {
                        "PutRequest": {
                            "Item": {"PK": {"S": "a"}, "SK": {"N": "1.0"}, "v": {"N": "1"}}
                        }
                    },
                    {
                        "DeleteRequest": {
                            "Key": {"PK": {"S": "b"}, "SK": {"N": "10000000000000000000000000001"}}
                        }
                    },
                ]
            }
        }
    )
    assert list(_written_keys(body)) == [("a", Decimal(1)), ("b", Decimal(10**28 + 1))]
