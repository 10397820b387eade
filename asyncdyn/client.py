"""``Client`` and ``Table``: the typed façade. It builds requests; the dispatcher does the I/O."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, overload

import orjson

from .batch import (
    MAX_WRITE_REQUESTS,
    BatchEngine,
    BatchWriter,
    Lane,
    Outcome,
    aligned,
    delete_entry,
    fetch_all,
    key_identity,
    key_names_of,
    put_entry,
    read_entries,
    read_lane,
    stream_entries,
    write_lane,
)
from .coalesce import GetCoalescer
from .credentials import (
    Credentials,
    CredentialsProvider,
    credentials_provider,
    resolve_endpoint,
    resolve_region,
)
from .errors import (
    ConditionalCheckFailed,
    ConfigurationError,
    InvalidExpression,
    InvalidItem,
    TableNotFound,
    TransactionCanceled,
    UnprocessedKeysError,
)
from .expressions import (
    Attr,
    Condition,
    Key,
    KeyCondition,
    Path,
    Placeholders,
    Update,
    projection_with,
)
from .fanout import FanOutPlan, Leg, LegState, check_states
from .lean import LeanTransport
from .marshal import NumberMode, WireItem, as_floats, decoder, encode_item, encode_key
from .paging import (
    CursorCodec,
    FetchPage,
    ItemIterator,
    Page,
    WireKey,
    collect_page,
    process_cursor_key,
)
from .retry import RetryPolicy
from .schema import (
    BillingMode,
    GlobalIndex,
    KeySchema,
    KeySpec,
    LocalIndex,
    StreamView,
    create_table_request,
)
from .signing import SigV4Signer
from .stats import StatsSnapshot
from .streams import (
    CheckpointStore,
    StartPosition,
    Stream,
    streams_endpoint_for,
)
from .transactions import TxAction, TxGet, check_actions, transact_get, transact_write
from .transport import (
    STREAMS_TARGET,
    AiohttpTransport,
    Dispatcher,
    Recognise,
    Transport,
    endpoint_host,
)
from .ttl import is_expired

__all__ = ["Client", "Table"]

Item = dict[str, Any]
ConditionArg = Condition | str | None
Attributes = str | Iterable[str | Attr | tuple[str | int, ...]] | None
Projection = list[str | Attr | Path] | None
ReturnValues = Literal["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"]
ReturnOnFailure = Literal["NONE", "ALL_OLD"]
ConsumedCapacityMode = Literal["NONE", "TOTAL", "INDEXES"]

_NUMBER_MODES = ("auto", "decimal", "float")
_WRITE_RETURNS = ("NONE", "ALL_OLD")
_UPDATE_RETURNS = ("NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW")
# Fields that move a listing along rather than define it; everything else binds a cursor.
_PAGING_FIELDS = ("ExclusiveStartKey", "Limit", "ReturnConsumedCapacity")
_EXACT = decoder("auto")
# DynamoDB allows up to 1,000,000 segments; more than a few thousand legs is a mistake here.
MAX_SEGMENTS = 4096


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigurationError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


def _expressions(
    request: dict[str, Any],
    *,
    key_condition: KeyCondition | str | None = None,
    condition: ConditionArg = None,
    filter: ConditionArg = None,
    update: Update | str | None = None,
    attributes: Attributes = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> None:
    """Add the expressions of a request, with one shared set of placeholders."""
    ph = Placeholders(names, values)
    if key_condition is not None:
        request["KeyConditionExpression"] = ph.key_condition(key_condition)
    if update is not None:
        request["UpdateExpression"] = ph.update(update)
    if condition is not None:
        request["ConditionExpression"] = ph.condition(condition)
    if filter is not None:
        request["FilterExpression"] = ph.condition(filter)
    if attributes is not None:
        request["ProjectionExpression"] = ph.projection(attributes)
    ph.apply(request)


class Client:
    """An asyncio DynamoDB client: one pooled connection set, one in-flight limit, one retry policy.

    Example::

        async with Client(region="us-east-1", endpoint_url="http://localhost:8000") as db:
            orders = db.table("MyTable")
            await orders.put({"PK": "CUSTOMER#123", "SK": "ORDER#456", "total": 99.99})
            item = await orders.get({"PK": "CUSTOMER#123", "SK": "ORDER#456"})

    Args:
        region: AWS region; default from the environment / AWS config (``AWS_REGION``...).
        endpoint_url: default ``AWS_ENDPOINT_URL_DYNAMODB``, ``AWS_ENDPOINT_URL``, the AWS
            config, then the public endpoint of the region.
        credentials: a ``Credentials``, an ``(access_key, secret_key[, token])`` tuple, a
            ``CredentialsProvider``, or ``None`` for the standard AWS provider chain (env,
            profiles, SSO, web identity, container and instance metadata), refreshed before expiry.
        max_concurrency: requests in flight at once, for all operations of this client; the
            connection pool is sized to match.
        retry: the ``RetryPolicy`` of each logical operation.
        timeout: seconds one request may take before it is abandoned (and retried); ``None``
            leaves only the transport's 60 s read timeout and the policy's deadline.
        numbers: how N values decode: ``"auto"`` (int when integral, else Decimal),
            ``"decimal"`` or ``"float"``.
        consumed_capacity: ask DynamoDB for ``ReturnConsumedCapacity`` and add it up in
            ``stats()``.
        cursor_key: secret bytes that sign page cursors; default: a random key drawn once
            per process, so pass one shared key where several processes serve one API.
        profile: the AWS config profile to read region, endpoint and credentials from.
        transport: a ``Transport`` to use instead of the pooled one (tests, proxies).
        adaptive_rate: slow batch calls down per table when DynamoDB throttles them or leaves
            work unprocessed, and speed them up again when it stops (see ``AdaptiveRate``).
        coalesce_gets: gather ``get`` calls made at the same time into BatchGetItem requests
            (needs the ``dynamodb:BatchGetItem`` permission, which ``GetItem`` does not grant).
        coalesce_window: with ``coalesce_gets``, seconds to wait for more gets before sending
            (0: the gets of one turn of the event loop).
        http: the pooled transport when ``transport`` is not given: ``"lean"`` (asyncio
            protocols and httptools, about half aiohttp's CPU per request) or ``"aiohttp"``.
    """

    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        credentials: CredentialsProvider
        | Credentials
        | tuple[str, str]
        | tuple[str, str, str | None]
        | None = None,
        max_concurrency: int = 64,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        numbers: NumberMode = "auto",
        consumed_capacity: ConsumedCapacityMode = "NONE",
        cursor_key: bytes | None = None,
        profile: str | None = None,
        transport: Transport | None = None,
        adaptive_rate: bool = True,
        coalesce_gets: bool = False,
        coalesce_window: float = 0.0,
        http: Literal["lean", "aiohttp"] = "lean",
    ) -> None:
        if max_concurrency < 1:
            raise ConfigurationError("max_concurrency must be at least 1")
        if timeout is not None and timeout <= 0:
            raise ConfigurationError("timeout must be positive or None")
        _check_choice("numbers", numbers, _NUMBER_MODES)
        _check_choice("consumed_capacity", consumed_capacity, ("NONE", "TOTAL", "INDEXES"))
        self.region = resolve_region(region, profile=profile)
        self.endpoint_url = resolve_endpoint(endpoint_url, self.region, profile=profile)
        host = endpoint_host(self.endpoint_url)
        _check_choice("http", http, ("lean", "aiohttp"))
        # A transport of the caller's also carries Streams requests (it may be a proxy or a
        # test double that knows nothing of a second endpoint).
        self._custom_transport = transport is not None
        if transport is None:
            make = LeanTransport if http == "lean" else AiohttpTransport
            transport = make(self.endpoint_url, max_connections=max_concurrency)
        self.max_concurrency = max_concurrency
        self._decoder = decoder(numbers)
        self._numbers = numbers
        self._dispatcher = Dispatcher(
            transport,
            signer=SigV4Signer(region=self.region, host=host),
            credentials=credentials_provider(credentials, profile=profile),
            host=host,
            decoder=self._decoder,
            retry=retry if retry is not None else RetryPolicy(),
            limiter=asyncio.Semaphore(max_concurrency),
            timeout=timeout,
        )
        self._consumed_capacity = None if consumed_capacity == "NONE" else consumed_capacity
        # Chunk tasks kept ahead of the in-flight limit, so that a slot freed is refilled at once.
        self._window = 2 * max_concurrency
        self._batch = BatchEngine(
            self._dispatcher,
            self._decoder,
            consumed_capacity=self._consumed_capacity,
            adaptive=adaptive_rate,
        )
        self._coalescer = (
            GetCoalescer(self._batch, self._decoder, self._dispatcher.stats, window=coalesce_window)
            if coalesce_gets
            else None
        )
        self._cursors = CursorCodec(cursor_key or process_cursor_key())
        self._tables: dict[str, Table] = {}
        self._closed = False
        # The Streams dispatcher is made on first use: most clients never read a stream.
        self._profile = profile
        self._http = http
        self._streams: Dispatcher | None = None
        self._streams_transport: Transport | None = None

    def __repr__(self) -> str:
        return f"Client(region={self.region!r}, endpoint_url={self.endpoint_url!r})"

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every pooled connection. The client cannot be used afterwards."""
        self._closed = True
        if self._coalescer is not None:
            await self._coalescer.close()
        streams_transport, self._streams_transport = self._streams_transport, None
        if streams_transport is not None:
            await streams_transport.close()
        await self._dispatcher.transport.close()

    def table(
        self,
        name: str,
        *,
        key: KeySchema | tuple[str] | tuple[str, str] | None = None,
    ) -> Table:
        """The ``Table`` named ``name`` (no request is made).

        ``key`` — ``("PK", "SK")``, ``("PK",)`` or a ``KeySchema`` — states the table's key so
        that batch writes, transactions and fan-outs need no ``DescribeTable`` (a role allowed
        only the data-plane actions has no ``dynamodb:DescribeTable``). Index queries in a
        fan-out still describe the table, unless ``key`` is a ``KeySchema`` with its indexes.
        """
        table = self._tables.get(name)
        if table is None:
            table = self._tables[name] = Table(self, name)
        if key is not None:
            schema = key if isinstance(key, KeySchema) else _key_schema_of(key)
            if table._key_schema is not None and table._key_schema.names != schema.names:
                raise ConfigurationError(
                    f"table {name!r} has the key {table._key_schema.names}, not {schema.names}"
                )
            if table._key_schema is None or isinstance(key, KeySchema):
                table._key_schema = schema
        return table

    def stream(
        self,
        table_name: str,
        *,
        start: StartPosition = "trim_horizon",
        checkpoints: CheckpointStore | None = None,
        poll_interval: float = 1.0,
        rediscover_interval: float = 60.0,
        limit: int = 1000,
        buffer: int = 8,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> Stream:
        """A consumer of the table's DynamoDB stream (no request is made yet).

        ``table_name`` may also be a stream ARN. ``start`` is where shards without a
        checkpoint begin: ``"trim_horizon"`` (the oldest record kept, 24 hours back) or
        ``"latest"`` (only changes made from now on). ``checkpoints`` is a
        ``CheckpointStore`` (default: a ``MemoryCheckpoints``); save to it with
        ``await stream.checkpoint(record)``. ``poll_interval`` is the pause after an empty
        read of a shard, ``rediscover_interval`` how often shards are listed again,
        ``limit`` the records asked per GetRecords (at most 1000), ``buffer`` how many
        batches may wait for the caller. ``clock`` and ``sleep`` replace the event loop's
        (tests). Example::

            stream = db.stream("Orders", checkpoints=TableCheckpoints(ckpt, "indexer"))
            async with stream.records() as records:
                async for record in records:
                    handle(record.event, record.keys, record.old, record.new)
                    await stream.checkpoint(record)
        """
        is_arn = table_name.startswith("arn:") and "/stream/" in table_name
        return Stream(
            table_name,
            describe_table=None if is_arn else self.table(table_name).describe,
            dispatcher=self._streams_dispatcher,
            decoder=self._decoder,
            start=start,
            checkpoints=checkpoints,
            poll_interval=poll_interval,
            rediscover_interval=rediscover_interval,
            limit=limit,
            buffer=buffer,
            clock=clock,
            sleep=sleep,
        )

    def _streams_dispatcher(self) -> Dispatcher:
        """The Streams API dispatcher: the same endpoint for a local server or a proxy; for
        AWS, streams.dynamodb.<region>, with its own connection pool."""
        if self._streams is None:
            transport = self._dispatcher.transport
            host = endpoint_host(self.endpoint_url)
            public = streams_endpoint_for(self.endpoint_url, self.region)
            if public is not None and not self._custom_transport:
                url = resolve_endpoint(None, self.region, service="streams", profile=self._profile)
                make = LeanTransport if self._http == "lean" else AiohttpTransport
                transport = self._streams_transport = make(
                    url, max_connections=self.max_concurrency
                )
                host = endpoint_host(url)
            self._streams = self._dispatcher.sibling(
                transport, host=host, target_prefix=STREAMS_TARGET
            )
        return self._streams

    def stats(self) -> StatsSnapshot:
        """A snapshot of this client's counters."""
        return self._dispatcher.stats.snapshot()

    async def call(self, operation: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Send any DynamoDB operation with a raw wire payload; returns the raw answer.

        The escape hatch for operations the typed API does not cover; it still goes through
        the limiter, signing, checksums, error mapping and retries.
        """
        return await self._dispatcher.call(operation, payload)

    def _capacity_field(self) -> dict[str, str]:
        capacity = self._consumed_capacity
        return {} if capacity is None else {"ReturnConsumedCapacity": capacity}

    async def transact_write(
        self,
        actions: Iterable[TxAction],
        *,
        token: str | None = None,
        retry_conflicts: bool = False,
    ) -> None:
        """Apply ``actions`` (from ``Table.tx_put/tx_update/tx_delete/tx_check``) all or none.

        Checked before sending: 1-100 actions, at most 4 MB, one action per item
        (``InvalidTransaction`` otherwise). ``token`` is the ``ClientRequestToken`` (one is
        made when not given); every retry of the call resends it, so a commit whose answer
        was lost is applied once. A failed condition raises ``TransactionCanceled`` with one
        reason per action, in order (``code`` ``None`` for the actions that were fine).
        ``retry_conflicts=True`` retries, with backoff, cancellations caused only by
        conflicting transactions or throttling.
        """
        listed = list(actions)
        key_names: dict[str, tuple[str, ...]] = {}
        for action in listed:
            if (
                isinstance(action, TxAction)
                and action.kind == "Put"
                and action.table not in key_names
            ):
                key_names[action.table] = (await self.table(action.table).key_schema()).names
        check_actions(listed, key_names)
        extra = (
            {}
            if self._consumed_capacity is None
            else {"ReturnConsumedCapacity": self._consumed_capacity}
        )
        await transact_write(
            self._dispatcher, listed, token=token, retry_conflicts=retry_conflicts, extra=extra
        )

    async def transact_get(self, gets: Iterable[TxGet]) -> list[Item | None]:
        """Read up to 100 items as one consistent snapshot, aligned with ``gets`` (from
        ``Table.tx_get``); ``None`` for an item that does not exist."""
        listed = list(gets)
        extra = (
            {}
            if self._consumed_capacity is None
            else {"ReturnConsumedCapacity": self._consumed_capacity}
        )
        items = await transact_get(self._dispatcher, listed, self._decoder, extra)
        return [
            self.table(get.table)._live(item, get.strip)
            for get, item in zip(listed, items, strict=True)
        ]

    async def batch_get(
        self,
        requests: Mapping[str, Iterable[Mapping[str, Any]]],
        *,
        consistent: bool = False,
        attributes: Attributes = None,
        rate: float | None = None,
    ) -> dict[str, list[Item | None]]:
        """Fetch keys of several tables at once: ``{table: keys}`` -> ``{table: items}``.

        Like ``Table.batch_get`` for each table, but chunks mix the tables, so a few keys
        each of many tables take few requests. ``UnprocessedKeysError.partial`` is then a
        dict of aligned lists and ``unprocessed`` a dict of key lists, both by table.
        """
        positions: dict[str, list[Any]] = {}
        strips: dict[str, list[str]] = {}
        distinct: list[Any] = []
        if attributes is not None and not isinstance(attributes, str):
            attributes = list(attributes)  # read once per table below
        for name, keys in requests.items():
            keys = list(keys)
            projection, strips[name] = self.table(name)._projected(attributes)
            lane = read_lane(
                self._batch,
                name,
                key_names_of(keys),
                consistent=consistent,
                attributes=projection,
                rate=rate,
            )
            unique, positions[name] = read_entries(lane, keys, f"requests[{name!r}]")
            distinct.extend(unique)
        outcome = await fetch_all(self._batch, distinct, window=self._window)
        decode = self._decoder.item
        result = {
            name: [self.table(name)._live(item, strips[name]) for item in aligned(at, decode)]
            for name, at in positions.items()
        }
        if outcome.leftovers:
            unprocessed: dict[str, list[Item]] = {}
            for entry in outcome.leftovers:
                unprocessed.setdefault(entry.lane.name, []).append(dict(entry.source))
            raise UnprocessedKeysError(result, unprocessed) from outcome.error
        return result

    # -- control plane -------------------------------------------------------------------

    async def create_table(
        self,
        name: str,
        *,
        partition_key: KeySpec,
        sort_key: KeySpec | None = None,
        indexes: Iterable[GlobalIndex | LocalIndex] = (),
        billing: BillingMode = "PAY_PER_REQUEST",
        read_capacity: int | None = None,
        write_capacity: int | None = None,
        stream: StreamView | None = None,
        wait: bool = True,
    ) -> Table:
        """Create a table (and its indexes); with ``wait``, return once it is ACTIVE.

        Keys are ``"PK"`` (a string key) or ``("PK", "N")``. Example::

            await db.create_table("Shop", partition_key="PK", sort_key="SK",
                                  indexes=[GlobalIndex("GSI1", "GSI1PK", "GSI1SK")])
        """
        request = create_table_request(
            name,
            partition_key=partition_key,
            sort_key=sort_key,
            indexes=list(indexes),
            billing=billing,
            read_capacity=read_capacity,
            write_capacity=write_capacity,
            stream=stream,
        )
        await self._dispatcher.call("CreateTable", request)
        table = self.table(name)
        if wait:
            await table.wait_until_active()
        return table

    async def delete_table(self, name: str, *, wait: bool = True, timeout: float = 120.0) -> None:
        """Delete a table; with ``wait``, return once DynamoDB no longer knows it."""
        await self._dispatcher.call("DeleteTable", {"TableName": name})
        self._tables.pop(name, None)
        if wait:
            await _poll(
                lambda: self._gone(name), timeout, f"table {name!r} still exists after {timeout}s"
            )

    async def _gone(self, name: str) -> bool:
        try:
            await self._dispatcher.call("DescribeTable", {"TableName": name})
        except TableNotFound:
            return True
        return False

    async def list_tables(self) -> list[str]:
        """The names of all tables in the region (every page)."""
        names: list[str] = []
        request: dict[str, Any] = {}
        while True:
            data = await self._dispatcher.call("ListTables", request)
            names.extend(data.get("TableNames", ()))
            last = data.get("LastEvaluatedTableName")
            if not last:
                return names
            request = {"ExclusiveStartTableName": last}


async def _poll(check: Any, timeout: float, message: str) -> None:
    """Call ``check()`` with growing pauses until it is true, or raise ``TimeoutError``."""
    deadline = time.monotonic() + timeout
    pause = 0.02
    while not await check():
        if time.monotonic() + pause > deadline:
            raise TimeoutError(message)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 1.0)


class Table:
    """Operations on one table. Get one from ``Client.table(name)``; it holds no connection."""

    __slots__ = (
        "_call",
        "_client",
        "_decode",
        "_decode_items",
        "_expiry",
        "_key_schema",
        "name",
    )

    def __init__(self, client: Client, name: str) -> None:
        self._client = client
        self.name = name
        self._call = client._dispatcher.call
        self._decode = client._decoder.item
        self._decode_items = client._decoder.items
        self._key_schema: KeySchema | None = None
        self._expiry: str | None = None

    def hide_expired(self, attribute: str | None) -> Table:
        """Make every read of this table (get, batch, query, scan, fan-out, transact_get) skip
        items whose TTL ``attribute`` has passed but which DynamoDB has not deleted yet (it can
        take days); ``None`` turns it off. A read with ``attributes`` (in any form: names,
        ``Attr`` paths, a raw string) also fetches the TTL attribute, and removes it again
        from the items unless it was asked for. It applies to this ``Table`` object, which
        ``Client.table(name)`` shares. Returns it."""
        if attribute is not None and (not isinstance(attribute, str) or not attribute):
            raise ConfigurationError("hide_expired takes the TTL attribute's name, or None")
        self._expiry = attribute
        return self

    def _projected(
        self,
        attributes: Attributes,
        names: Mapping[str, str] | None = None,
        required: Iterable[str] = (),
    ) -> tuple[Projection, list[str]]:
        """The projection every read sends for ``attributes`` (a raw string read into its
        paths with ``names``): with the ``required`` attributes and, when expired items are
        hidden, the TTL attribute; and those of them the caller did not ask for, which
        ``_live`` (or a fan-out plan) removes from each item again."""
        expiry = self._expiry
        extra = [*required, expiry] if expiry is not None else required
        return projection_with(attributes, extra, names)

    def _live(self, item: Item | None, strip: Iterable[str] = ()) -> Item | None:
        """``item`` as the caller sees it: ``None`` when it is expired and hidden, else
        without the attributes fetched only for our own use (``strip``)."""
        if item is None:
            return None
        expiry = self._expiry
        if expiry and is_expired(item, expiry):
            return None
        for name in strip:
            item.pop(name, None)
        return item

    def __repr__(self) -> str:
        return f"Table({self.name!r})"

    def _key(self, key: Mapping[str, Any]) -> WireItem:
        """``key`` encoded, and checked against the key schema when it is already known (a
        key declared with ``Client.table(name, key=...)`` or described): a wrong key is then
        refused before sending instead of by the server."""
        wire = encode_key(key)
        schema = self._key_schema
        if schema is not None and wire.keys() != set(schema.names):
            raise InvalidItem(
                f"a key of table {self.name!r} has exactly the attributes "
                f"{', '.join(schema.names)}, not {', '.join(wire)}"
            )
        return wire

    def _item(self, item: Mapping[str, Any]) -> WireItem:
        """``item`` encoded, with its key attributes checked when the key schema is known."""
        wire = encode_item(item)
        schema = self._key_schema
        if schema is not None:
            for name in schema.names:
                value = wire.get(name)
                if value is None:
                    raise InvalidItem(
                        f"the item has no key attribute {name!r} (keys of {self.name!r} are "
                        f"{', '.join(schema.names)})"
                    )
                try:
                    key_identity(wire, (name,))
                except ValueError:
                    raise InvalidItem(
                        "key attribute must be a non-empty string, number or binary", name
                    ) from None
        return wire

    def _check_update(self, update: Update | str) -> None:
        """Refuse an update of a key attribute when the key schema is known (DynamoDB
        refuses it: "This attribute is part of the key")."""
        schema = self._key_schema
        if schema is None or not isinstance(update, Update):
            return
        for path in update.paths:
            if path[0] in schema.names:
                raise InvalidExpression(
                    f"update of {path[0]!r}: it is part of the key of {self.name!r}, "
                    "which an update cannot change"
                )

    def _request(self, **fields: Any) -> dict[str, Any]:
        request: dict[str, Any] = {"TableName": self.name, **fields}
        if self._client._consumed_capacity is not None:
            request["ReturnConsumedCapacity"] = self._client._consumed_capacity
        return request

    # -- single items --------------------------------------------------------------------

    async def get(
        self,
        key: Mapping[str, Any],
        *,
        consistent: bool = False,
        attributes: Attributes = None,
        names: Mapping[str, str] | None = None,
    ) -> Item | None:
        """The item with this primary key, or ``None``.

        ``attributes`` limits the answer to those attributes: names, ``Attr`` paths, or one
        raw ProjectionExpression string (its ``#tokens`` defined in ``names``).
        """
        projection, strip = self._projected(attributes, names)
        # Checked before anything is sent (or joins a coalesced request): a bad key fails
        # its own caller at once and nobody else.
        wire = self._key(key)
        coalescer = self._client._coalescer
        if coalescer is not None:

            def lane(key_names: tuple[str, ...]) -> Lane:
                return read_lane(
                    self._client._batch,
                    self.name,
                    key_names,
                    consistent=consistent,
                    attributes=projection,
                    rate=None,
                )

            item = await coalescer.get(
                lane, self.name, key, wire, consistent=consistent, projection=projection
            )
            return self._live(item, strip)
        request = self._request(Key=wire)
        if consistent:
            request["ConsistentRead"] = True
        if projection is not None:
            _expressions(request, attributes=projection)
        data = await self._call("GetItem", request)
        item = data.get("Item")
        return None if item is None else self._live(self._decode(item), strip)

    async def put(
        self,
        item: Mapping[str, Any],
        *,
        condition: ConditionArg = None,
        returns: Literal["NONE", "ALL_OLD"] = "NONE",
        returns_on_failure: ReturnOnFailure = "NONE",
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> Item | None:
        """Write an item whole, replacing any item with the same key.

        Returns the replaced item when ``returns="ALL_OLD"`` (``None`` if there was none).
        A false ``condition`` raises ``ConditionalCheckFailed``; with
        ``returns_on_failure="ALL_OLD"`` its ``.item`` is the item that failed it.
        """
        wire = self._item(item)
        request = self._request(Item=wire)
        return await self._write(
            "PutItem",
            request,
            condition,
            returns,
            _WRITE_RETURNS,
            returns_on_failure,
            names,
            values,
            recognise=self._recogniser(wire),
        )

    async def update(
        self,
        key: Mapping[str, Any],
        update: Update | str,
        *,
        condition: ConditionArg = None,
        returns: ReturnValues = "NONE",
        returns_on_failure: ReturnOnFailure = "NONE",
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        idempotent: bool = False,
    ) -> Item | None:
        """Change some attributes of an item (creating it if needed).

        ``update`` combines actions with ``&``: ``Attr("status").set("SHIPPED") &
        Attr("views").add(1)``, or is a raw UpdateExpression with ``names``/``values``.
        ``returns`` is one of NONE, ALL_OLD, UPDATED_OLD, ALL_NEW, UPDATED_NEW.

        An update that is not idempotent (``ADD`` to a number, ``a + :n``, ``list_append``)
        whose answer is lost raises ``OutcomeUnknown`` rather than being sent twice.
        ``idempotent=True`` makes it exactly-once instead: it is sent as a one-action
        TransactWriteItems whose ``ClientRequestToken`` every resend repeats (twice the
        write capacity; ``returns`` must be ``"NONE"``). A false condition still raises
        ``ConditionalCheckFailed``.
        """
        if idempotent:
            await self._update_once(
                key,
                update,
                condition=condition,
                returns=returns,
                returns_on_failure=returns_on_failure,
                names=names,
                values=values,
            )
            return None
        request = self._request(Key=self._key(key))
        self._check_update(update)
        _expressions(request, update=update, condition=condition, names=names, values=values)
        return await self._write(
            "UpdateItem", request, None, returns, _UPDATE_RETURNS, returns_on_failure, None, None
        )

    async def delete(
        self,
        key: Mapping[str, Any],
        *,
        condition: ConditionArg = None,
        returns: Literal["NONE", "ALL_OLD"] = "NONE",
        returns_on_failure: ReturnOnFailure = "NONE",
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> Item | None:
        """Delete the item with this key (no error if there is none)."""
        request = self._request(Key=self._key(key))
        return await self._write(
            "DeleteItem",
            request,
            condition,
            returns,
            _WRITE_RETURNS,
            returns_on_failure,
            names,
            values,
        )

    async def _write(
        self,
        operation: str,
        request: dict[str, Any],
        condition: ConditionArg,
        returns: str,
        allowed: tuple[str, ...],
        returns_on_failure: str,
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
        *,
        recognise: Recognise | None = None,
    ) -> Item | None:
        _check_choice("returns", returns, allowed)
        _check_choice("returns_on_failure", returns_on_failure, _WRITE_RETURNS)
        if condition is not None or names or values:
            _expressions(request, condition=condition, names=names, values=values)
        if returns != "NONE":
            request["ReturnValues"] = returns
        if returns_on_failure != "NONE":
            request["ReturnValuesOnConditionCheckFailure"] = returns_on_failure
        # What to do when an answer is lost (resend, recognise, or OutcomeUnknown) is the
        # dispatcher's one rule (asyncdyn.resend); a put brings its own way to recognise
        # its applied write.
        data = await self._client._dispatcher.call(
            operation, request, recognise=recognise, key=self._named_key(request)
        )
        attributes = data.get("Attributes")
        return None if attributes is None else self._decode(attributes)

    def _named_key(self, request: Mapping[str, Any]) -> Item | None:
        """The key a write names in an ``OutcomeUnknown``: its ``Key``, or a put item's key
        attributes when the key schema is known (``None`` otherwise)."""
        wire = request.get("Key")
        if wire is None and self._key_schema is not None:
            item = request["Item"]
            wire = {name: item[name] for name in self._key_schema.names if name in item}
        return None if wire is None else self._decode(wire)

    def _recogniser(self, wire: WireItem) -> Recognise:
        """Whether the item a resent conditional put found is exactly the one it wrote:
        then its first attempt was applied and the condition failed on it."""

        async def recognise(found: Item | None) -> bool:
            if found is None:
                # A server that does not return the item on a condition failure (dynalite
                # ignores ReturnValuesOnConditionCheckFailure), or there is none: read it.
                names = (await self.key_schema()).names
                data = await self._call(
                    "GetItem",
                    {
                        "TableName": self.name,
                        "Key": {name: wire[name] for name in names},
                        "ConsistentRead": True,
                    },
                )
                raw = data.get("Item")
                if raw is None:
                    return False
                found = self._decode(raw)
            # Both sides decoded alike: numbers compare as the server normalises them.
            return bool(found == self._decode(wire))

        return recognise

    async def _update_once(
        self,
        key: Mapping[str, Any],
        update: Update | str,
        *,
        condition: ConditionArg,
        returns: str,
        returns_on_failure: ReturnOnFailure,
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
    ) -> None:
        """``update(..., idempotent=True)``: one Update action of a TransactWriteItems, whose
        ClientRequestToken each resend repeats, so DynamoDB applies it once (for 10 minutes)."""
        if returns != "NONE":
            raise ConfigurationError(
                "update(..., idempotent=True) is sent as a transaction, which returns no "
                f"attributes: returns must be 'NONE', not {returns!r} (read the item after)"
            )
        action = self.tx_update(
            key,
            update,
            condition=condition,
            returns_on_failure=returns_on_failure,
            names=names,
            values=values,
        )
        try:
            # A cancellation applied nothing: a conflict with another transaction is retried.
            await self._client.transact_write([action], retry_conflicts=True)
        except TransactionCanceled as exc:
            reason = exc.reasons[0] if exc.reasons else None
            if reason is None or reason.code != "ConditionalCheckFailed":
                raise
            failed = ConditionalCheckFailed(
                "ConditionalCheckFailedException",
                reason.message or "The conditional request failed",
                status=exc.status,
                body=exc.body,
                operation="UpdateItem",
            )
            failed.item = reason.item
            raise failed from exc

    # -- transactions and optimistic locking ----------------------------------------------

    def _action(
        self,
        kind: str,
        body: dict[str, Any],
        key: WireItem,
        condition: ConditionArg,
        update: Update | str | None,
        returns_on_failure: ReturnOnFailure,
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
    ) -> TxAction:
        _check_choice("returns_on_failure", returns_on_failure, _WRITE_RETURNS)
        body["TableName"] = self.name
        if condition is not None or update is not None or names or values:
            _expressions(body, condition=condition, update=update, names=names, values=values)
        if returns_on_failure != "NONE":
            body["ReturnValuesOnConditionCheckFailure"] = returns_on_failure
        return TxAction(kind, self.name, body, key)

    def tx_put(
        self,
        item: Mapping[str, Any],
        *,
        condition: ConditionArg = None,
        returns_on_failure: ReturnOnFailure = "NONE",
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> TxAction:
        """A put for ``Client.transact_write`` (the item is encoded and checked now)."""
        wire = self._item(item)
        return self._action(
            "Put", {"Item": wire}, wire, condition, None, returns_on_failure, names, values
        )

    def tx_update(
        self,
        key: Mapping[str, Any],
        update: Update | str,
        *,
        condition: ConditionArg = None,
        returns_on_failure: ReturnOnFailure = "NONE",
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> TxAction:
        """An update for ``Client.transact_write``."""
        wire = self._key(key)
        self._check_update(update)
        return self._action(
            "Update", {"Key": wire}, wire, condition, update, returns_on_failure, names, values
        )

    def tx_delete(
        self,
        key: Mapping[str, Any],
        *,
        condition: ConditionArg = None,
        returns_on_failure: ReturnOnFailure = "NONE",
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> TxAction:
        """A delete for ``Client.transact_write``."""
        wire = self._key(key)
        return self._action(
            "Delete", {"Key": wire}, wire, condition, None, returns_on_failure, names, values
        )

    def tx_check(
        self,
        key: Mapping[str, Any],
        condition: Condition | str,
        *,
        returns_on_failure: ReturnOnFailure = "NONE",
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> TxAction:
        """A condition on another item that the transaction needs to hold (nothing written)."""
        wire = self._key(key)
        return self._action(
            "ConditionCheck",
            {"Key": wire},
            wire,
            condition,
            None,
            returns_on_failure,
            names,
            values,
        )

    def tx_get(
        self,
        key: Mapping[str, Any],
        *,
        attributes: Attributes = None,
        names: Mapping[str, str] | None = None,
    ) -> TxGet:
        """A read for ``Client.transact_get``."""
        body: dict[str, Any] = {"TableName": self.name, "Key": encode_key(key)}
        projection, strip = self._projected(attributes, names)
        if projection is not None:
            _expressions(body, attributes=projection)
        return TxGet(self.name, body, tuple(strip))

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
            raise
        return written

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

    # -- batches -------------------------------------------------------------------------

    async def batch_get(
        self,
        keys: Iterable[Mapping[str, Any]],
        *,
        consistent: bool = False,
        attributes: Attributes = None,
        rate: float | None = None,
        names: Mapping[str, str] | None = None,
    ) -> list[Item | None]:
        """The items of any number of keys, aligned with ``keys`` (``None``: no such item).

        Duplicate keys are fetched once (each position gets its own copy); chunks of 100 go
        out concurrently; keys DynamoDB leaves unprocessed are retried with backoff. If some
        are still unanswered when the retry budget runs out, ``UnprocessedKeysError`` carries
        ``partial`` (aligned, what was fetched) and ``unprocessed`` (those keys). With
        ``attributes``, the key attributes needed to match answers are fetched and dropped
        again unless asked for. ``rate`` caps this call at that many keys per second.
        """
        keys = list(keys)
        if not keys:
            return []
        projection, strip = self._projected(attributes, names)
        lane = read_lane(
            self._client._batch,
            self.name,
            key_names_of(keys),
            consistent=consistent,
            attributes=projection,
            rate=rate,
        )
        distinct, positions = read_entries(lane, keys)
        outcome = await fetch_all(self._client._batch, distinct, window=self._client._window)
        result = aligned(positions, self._decode)
        if self._expiry is not None:
            result = [self._live(item, strip) for item in result]
        if outcome.leftovers:
            unprocessed = [dict(entry.source) for entry in outcome.leftovers]
            raise UnprocessedKeysError(result, unprocessed) from outcome.error
        return result

    async def batch_get_iter(
        self,
        keys: Iterable[Mapping[str, Any]],
        *,
        consistent: bool = False,
        attributes: Attributes = None,
        rate: float | None = None,
        window: int | None = None,
        names: Mapping[str, str] | None = None,
    ) -> AsyncGenerator[tuple[Mapping[str, Any], Item | None], None]:
        """Stream ``(key, item)`` pairs for a key set too large to hold, as chunks complete.

        ``keys`` is read lazily; at most ``window`` chunks of 100 (default: twice the
        client's ``max_concurrency``) are in flight or waiting for you, so memory stays
        bounded. Pairs come in completion order; a key given twice is paired twice.
        Duplicates are merged only within a chunk. Keys never answered raise
        ``UnprocessedKeysError`` (``unprocessed`` set, ``partial`` empty) after every other
        pair has been yielded. Leaving the loop early cancels the chunks still running.
        """
        iterator = iter(keys)
        first = next(iterator, None)
        if first is None:
            return
        projection, strip = self._projected(attributes, names)
        lane = read_lane(
            self._client._batch,
            self.name,
            key_names_of([first]),
            consistent=consistent,
            attributes=projection,
            rate=rate,
        )
        engine = self._client._batch
        outcome: Outcome[Any] = Outcome()
        entries = stream_entries(lane, itertools.chain((first,), iterator))
        decode = self._decode
        chunks = engine.gets(entries, outcome, window=window or self._client._window)
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                for entry in chunk:
                    item = self._live(entry.item, strip)
                    yield entry.source, item
                    for again in entry.again or ():
                        yield again, None if item is None else self._live(entry.copy(decode), strip)
        if outcome.leftovers:
            unprocessed = [
                dict(k) for entry in outcome.leftovers for k in (entry.source, *(entry.again or ()))
            ]
            raise UnprocessedKeysError([], unprocessed) from outcome.error

    async def batch_write(
        self,
        *,
        puts: Iterable[Mapping[str, Any]] = (),
        deletes: Iterable[Mapping[str, Any]] = (),
        rate: float | None = None,
    ) -> None:
        """Write any number of items and delete any number of keys, in concurrent batches.

        Every input is checked first: a bad one raises ``InvalidItem`` naming it
        (``puts[17].price``) and nothing is sent. Two requests for the same key: the last
        one wins, as if the puts ran in order and then the deletes. Chunks of 25 (and at most
        16 MB) go out concurrently; what DynamoDB leaves unprocessed is retried with backoff.
        If some requests still cannot be written, ``UnprocessedItemsError`` lists exactly
        those; all the others are written. ``rate`` caps this call at that many items per
        second. Needs the table's key schema (one DescribeTable per client).
        """
        schema = await self.key_schema()
        lane = write_lane(self._client._batch, self.name, schema.names, rate=rate)
        entries = [put_entry(lane, item, f"puts[{i}]") for i, item in enumerate(puts)]
        entries += [delete_entry(lane, key, f"deletes[{i}]") for i, key in enumerate(deletes)]
        writer = BatchWriter(
            self._client._batch, lane, max_in_flight=self._client.max_concurrency, buffer=None
        )
        for entry in entries:
            writer._add(entry)
        await writer.close()

    def writer(
        self,
        *,
        rate: float | None = None,
        max_in_flight: int | None = None,
        buffer: int | None = None,
        skip_invalid: bool = False,
    ) -> BatchWriter:
        """A buffered writer for this table, to use as ``async with table.writer() as w``.

        ``max_in_flight`` bounds the chunks being written at once (default: the client's
        ``max_concurrency``); ``buffer`` the requests queued or in flight before ``put``
        waits (default: two chunks per slot); ``rate`` caps it at that many items per
        second; ``skip_invalid`` records bad items in ``w.rejected`` instead of raising.
        See ``BatchWriter``.
        """
        in_flight = self._client.max_concurrency if max_in_flight is None else max_in_flight

        async def lane() -> Lane:
            schema = await self.key_schema()
            return write_lane(self._client._batch, self.name, schema.names, rate=rate)

        return BatchWriter(
            self._client._batch,
            lane,
            max_in_flight=in_flight,
            buffer=2 * MAX_WRITE_REQUESTS * in_flight if buffer is None else buffer,
            skip_invalid=skip_invalid,
        )

    # -- query and scan ------------------------------------------------------------------

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
        request = self._request()
        if index is not None:
            request["IndexName"] = index
        if descending:
            request["ScanIndexForward"] = False
        if consistent:
            request["ConsistentRead"] = True
        projection, strip = self._projected(attributes, names)
        _expressions(
            request,
            key_condition=key_condition,
            filter=filter,
            attributes=projection,
            names=names,
            values=values,
        )
        return request, strip

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
    ) -> ItemIterator | AsyncGenerator[Item, None]:
        """Every item of the table (or index), page after page, prefetching the next page.

        With ``segments=N`` it is a parallel scan: N segments read concurrently (through
        the client's in-flight limit), each a page ahead, items handed out as pages arrive;
        a slow consumer holds the segments back (at most three pages each). ``limit`` caps the
        items yielded. Iterate inside ``contextlib.aclosing(...)`` to cancel at once when
        leaving early.
        """
        _check_limit(limit)
        if segments is not None:
            _check_segments(segments)
            return self._parallel_scan(
                segments, filter, attributes, index, limit, consistent, names, values
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

    # -- fan-out -------------------------------------------------------------------------

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
    ) -> FanOutPlan:
        """One scan request per segment, and the keys that give a segment its position."""
        _check_segments(segments)
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
        requests = [{**base, "Segment": n, "TotalSegments": segments} for n in range(segments)]
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
    ) -> AsyncGenerator[Item, None]:
        plan = await self._segments(segments, filter, attributes, index, consistent, names, values)
        legs = [Leg(self._fetcher("Scan", request, exact=True)) for request in plan.requests]
        items = plan.run(legs, merge=False, ordered=False, limit=limit)
        async with contextlib.aclosing(items):
            async for item in items:
                yield plan.shown(item)

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

    # -- control plane -------------------------------------------------------------------

    async def describe(self) -> dict[str, Any]:
        """DescribeTable's ``Table`` description, as DynamoDB returns it."""
        data = await self._call("DescribeTable", {"TableName": self.name})
        table: dict[str, Any] = data["Table"]
        self._key_schema = KeySchema.from_description(table)
        return table

    async def key_schema(self) -> KeySchema:
        """The key attribute names of the table and its indexes (described once, then cached)."""
        if self._key_schema is None:
            await self.describe()
            assert self._key_schema is not None
        return self._key_schema

    def _floats(self) -> Callable[[Item], Item] | None:
        """How a fan-out's exactly decoded items reach a ``numbers="float"`` caller."""
        return as_floats if self._client._numbers == "float" else None

    async def _schema_with(self, index: str | None) -> KeySchema:
        """The key schema, described afresh when it does not know ``index`` (a key declared
        with ``Client.table(name, key=...)`` names no index)."""
        schema = await self.key_schema()
        if index is not None and index not in schema.indexes:
            await self.describe()
            schema = await self.key_schema()
        return schema

    async def wait_until_active(self, timeout: float = 120.0) -> None:
        """Return once the table and all its global indexes are ACTIVE."""

        async def active() -> bool:
            try:
                table = await self.describe()
            except TableNotFound:
                return False
            indexes = table.get("GlobalSecondaryIndexes") or ()
            return table.get("TableStatus") == "ACTIVE" and all(
                index.get("IndexStatus", "ACTIVE") == "ACTIVE" for index in indexes
            )

        await _poll(active, timeout, f"table {self.name!r} not ACTIVE after {timeout}s")

    async def enable_stream(
        self, view: StreamView = "NEW_AND_OLD_IMAGES", *, wait: bool = True
    ) -> str:
        """Turn on the table's stream (UpdateTable) and return its ARN; with ``wait``, return
        once the table is ACTIVE again."""
        if view not in ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
            raise ConfigurationError(f"unknown stream view type {view!r}")
        data = await self._call(
            "UpdateTable",
            {
                "TableName": self.name,
                "StreamSpecification": {"StreamEnabled": True, "StreamViewType": view},
            },
        )
        if wait:
            await self.wait_until_active()
        arn = (data.get("TableDescription") or {}).get("LatestStreamArn")
        if not arn:
            arn = (await self.describe()).get("LatestStreamArn")
        return str(arn)

    async def enable_ttl(self, attribute: str) -> None:
        """Have DynamoDB delete items once the epoch seconds in ``attribute`` have passed."""
        await self._call(
            "UpdateTimeToLive",
            {
                "TableName": self.name,
                "TimeToLiveSpecification": {"Enabled": True, "AttributeName": attribute},
            },
        )

    async def describe_ttl(self) -> dict[str, Any]:
        """The table's ``TimeToLiveDescription`` (status and attribute name)."""
        data = await self._call("DescribeTimeToLive", {"TableName": self.name})
        description: dict[str, Any] = data.get("TimeToLiveDescription", {})
        return description


def _check_limit(limit: int | None) -> None:
    # bool is an int subclass: limit=True would silently mean 1.
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigurationError(f"limit must be a positive int or None, not {limit!r}")


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


def _key_schema_of(key: Any) -> KeySchema:
    if (
        not isinstance(key, tuple)
        or not 1 <= len(key) <= 2
        or not all(isinstance(name, str) and name for name in key)
    ):
        raise ConfigurationError(
            f"key must be (partition_key,) or (partition_key, sort_key), got {key!r}"
        )
    return KeySchema(key[0], key[1] if len(key) == 2 else None, {})
