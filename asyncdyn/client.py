"""``Client``: the typed façade over one connection pool, in-flight limit and retry policy.

It builds requests; the dispatcher does the I/O. ``Client.table(name)`` gives a ``Table``
(``asyncdyn.table``), whose operations live in one module per concept."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Literal

from .batch import (
    BatchEngine,
    aligned,
    fetch_all,
    key_names_of,
    read_entries,
    read_lane,
)
from .cache import ItemCache, WriteGuard, wire_identity
from .coalesce import GetCoalescer
from .credentials import (
    Credentials,
    CredentialsProvider,
    credentials_provider,
    resolve_endpoint,
    resolve_region,
)
from .errors import (
    ConfigurationError,
    ResourceInUse,
    TableNotFound,
    TransactionCanceled,
    UnprocessedKeysError,
)
from .hotkeys import HotKeys
from .large import LargeAttributes
from .lean import LeanTransport
from .marshal import NumberMode, decoder
from .offload import S3Store
from .paging import (
    CursorCodec,
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
    schema_differences,
)
from .signing import SigV4Signer
from .stats import StatsSnapshot
from .streams import (
    CheckpointStore,
    StartPosition,
    Stream,
    streams_endpoint_for,
)
from .table import Table
from .table.control import _poll
from .table.core import Attributes, Item, _check_choice
from .telemetry import Telemetry, telemetry_from
from .transactions import TxAction, TxGet, check_actions, transact_get, transact_write
from .transport import (
    STREAMS_TARGET,
    AiohttpTransport,
    Dispatcher,
    Transport,
    endpoint_host,
)

__all__ = ["Client", "Table"]

ConsumedCapacityMode = Literal["NONE", "TOTAL", "INDEXES"]

_NUMBER_MODES = ("auto", "decimal", "float")
# The operations ``Client.call`` may change items with, for the item cache.
_WRITE_OPERATIONS = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "ExecuteStatement",
        "BatchExecuteStatement",
        "ExecuteTransaction",
    }
)


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
            profiles, SSO, web identity, container and instance metadata), refreshed before expiry;
            on a loopback endpoint with no credentials configured, fixed local ones
            (``asyncdyn.credentials.local_credentials_apply`` says when).
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
        cache: an ``ItemCache`` serving eventually consistent full-item ``get`` and
            ``batch_get`` calls of every table (``Client.table(name, cache=...)`` sets one
            per table); every write through this client invalidates what it writes.
        hot_keys: count consumed capacity per partition key value and list the heaviest in
            ``stats().hot_keys`` (``True``, or a ``HotKeys`` to size it; see docs/hot-keys.md).
        telemetry: OpenTelemetry spans and metrics for every request (the ``otel`` extra):
            ``True`` for the global tracer and meter providers, or a ``Telemetry`` naming
            its own; off by default, and then it costs nothing (docs/observability.md).
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
        cache: ItemCache | None = None,
        hot_keys: bool | HotKeys = False,
        telemetry: Telemetry | bool = False,
    ) -> None:
        if max_concurrency < 1:
            raise ConfigurationError("max_concurrency must be at least 1")
        if timeout is not None and timeout <= 0:
            raise ConfigurationError("timeout must be positive or None")
        _check_choice("numbers", numbers, _NUMBER_MODES)
        _check_choice("consumed_capacity", consumed_capacity, ("NONE", "TOTAL", "INDEXES"))
        self.region = resolve_region(region, profile=profile, endpoint_url=endpoint_url)
        self.endpoint_url = resolve_endpoint(endpoint_url, self.region, profile=profile)
        host = endpoint_host(self.endpoint_url)
        _check_choice("http", http, ("lean", "aiohttp"))
        traced = telemetry_from(telemetry)
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
            credentials=credentials_provider(
                credentials, profile=profile, endpoint_url=self.endpoint_url
            ),
            host=host,
            decoder=self._decoder,
            retry=retry if retry is not None else RetryPolicy(),
            limiter=asyncio.Semaphore(max_concurrency),
            timeout=timeout,
            record_capacity=consumed_capacity != "NONE",
            telemetry=None
            if traced is None
            else traced.recorder(service="DynamoDB", region=self.region, host=host),
        )
        self._consumed_capacity = None if consumed_capacity == "NONE" else consumed_capacity
        if hot_keys is not False:
            sketch = HotKeys() if hot_keys is True else hot_keys
            if not isinstance(sketch, HotKeys):
                raise ConfigurationError(f"hot_keys must be a bool or a HotKeys, not {hot_keys!r}")
            # A key declared with table(name, key=...) names the partition key to count by.
            sketch.bind_schemas(lambda name: getattr(self._tables.get(name), "_key_schema", None))
            self._dispatcher.stats.hot_keys = sketch
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
        if cache is not None and not isinstance(cache, ItemCache):
            raise ConfigurationError(f"cache must be an ItemCache or None, not {cache!r}")
        self._cache = cache
        self._count_cache(cache)
        self._tables: dict[str, Table] = {}
        self._closed = False
        # The Streams dispatcher is made on first use: most clients never read a stream.
        self._profile = profile
        self._http = http
        self._streams: Dispatcher | None = None
        self._streams_transport: Transport | None = None
        self._s3: S3Store | None = None

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
        s3, self._s3 = self._s3, None
        if s3 is not None:
            await s3.close()
        await self._dispatcher.transport.close()

    def table(
        self,
        name: str,
        *,
        key: KeySchema | tuple[str] | tuple[str, str] | None = None,
        cache: ItemCache | Literal[False] | None = None,
        large: LargeAttributes | None = None,
    ) -> Table:
        """The ``Table`` named ``name`` (no request is made).

        ``key`` — ``("PK", "SK")``, ``("PK",)`` or a ``KeySchema`` — states the table's key so
        that batch writes, transactions and fan-outs need no ``DescribeTable`` (a role allowed
        only the data-plane actions has no ``dynamodb:DescribeTable``). Index queries in a
        fan-out still describe the table, unless ``key`` is a ``KeySchema`` with its indexes.

        ``cache`` gives this table an ``ItemCache`` of its own (``False``: none, even when
        the client has one); ``None`` leaves it as it is (at first, the client's). It stays
        with the table: an entity repository bound afterwards reads through it too.
        ``large`` — a ``LargeAttributes`` — names the attributes stored compressed or offloaded
        to S3 (``asyncdyn.large``; added to what the table already had).
        """
        table = self._tables.get(name)
        if table is None:
            table = self._tables[name] = Table(self, name)
        if cache is not None:
            if cache is not False and not isinstance(cache, ItemCache):
                raise ConfigurationError(
                    f"cache must be an ItemCache, False or None, not {cache!r}"
                )
            table._cache = None if cache is False else cache
            self._count_cache(table._cache)
        if key is not None:
            schema = key if isinstance(key, KeySchema) else _key_schema_of(key)
            if table._key_schema is not None and table._key_schema.names != schema.names:
                raise ConfigurationError(
                    f"table {name!r} has the key {table._key_schema.names}, not {schema.names}"
                )
            if table._key_schema is None or isinstance(key, KeySchema):
                table._key_schema = schema
        if large is not None:
            table._use_large(large)
        return table

    def _count_cache(self, cache: ItemCache | None) -> None:
        """Show ``cache``'s counters in ``stats()`` (once, however many tables use it)."""
        caches = self._dispatcher.stats.caches
        if cache is not None and not any(c is cache.counters for c in caches):
            caches.append(cache.counters)

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

    def _offload_store(self) -> S3Store:
        """The S3 client of offloaded attributes, made on first use (asyncdyn.offload)."""
        if self._s3 is None:
            self._s3 = S3Store(
                region=self.region,
                endpoint_url=self.endpoint_url,
                credentials=self._dispatcher._credentials,
                max_concurrency=self.max_concurrency,
            )
        return self._s3

    def stats(self) -> StatsSnapshot:
        """A snapshot of this client's counters."""
        return self._dispatcher.stats.snapshot()

    async def call(self, operation: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Send any DynamoDB operation with a raw wire payload; returns the raw answer.

        The escape hatch for operations the typed API does not cover; it still goes through
        the limiter, signing, checksums, error mapping and retries. A write sent this way
        drops every cached item of the tables it names (a PartiQL write: of every table),
        before and after: its keys are not worth parsing out of a raw payload.
        """
        if operation not in _WRITE_OPERATIONS or not self._dispatcher.stats.caches:
            return await self._dispatcher.call(operation, payload)
        self._drop_cached(operation, payload)
        try:
            return await self._dispatcher.call(operation, payload)
        finally:
            self._drop_cached(operation, payload)

    def _drop_cached(self, operation: str, payload: Mapping[str, Any]) -> None:
        """Drop the cached items of every table a raw write ``payload`` may change."""
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            names = [payload.get("TableName")]
        elif operation == "BatchWriteItem":
            names = list(payload.get("RequestItems") or ())
        elif operation == "TransactWriteItems":
            names = [
                body.get("TableName")
                for action in payload.get("TransactItems") or ()
                for body in action.values()
            ]
        else:  # PartiQL: the table is inside the statement
            statements = [payload] if operation == "ExecuteStatement" else []
            statements += payload.get("Statements") or payload.get("TransactStatements") or []
            if all(
                str(s.get("Statement", "")).lstrip().upper().startswith("SELECT")
                for s in statements
            ):
                return
            names = list(self._tables)
            if self._cache is not None:
                self._cache.clear()
        for name in names:
            if isinstance(name, str):
                cache = self.table(name)._cache
                if cache is not None:
                    cache.invalidate_table(name)

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
        # Puts with offloaded attributes, made final now that their keys are known.
        listed = [
            action.stage(key_names[action.table])
            if isinstance(action, TxAction) and action.stage is not None
            else action
            for action in listed
        ]
        check_actions(listed, key_names)
        extra = (
            {}
            if self._consumed_capacity is None
            else {"ReturnConsumedCapacity": self._consumed_capacity}
        )
        # Cached entries of every item written are dropped before the commit and again
        # after it, whatever its outcome (a lost answer may have been applied).
        cached = []
        for action in listed:
            cache = self.table(action.table)._cache
            if cache is not None and action.kind != "ConditionCheck":
                names = key_names[action.table] if action.kind == "Put" else tuple(action.key)
                cached.append((cache, action.table, wire_identity(action.key, names)))
        with WriteGuard(cached):
            try:
                await transact_write(
                    self._dispatcher,
                    listed,
                    token=token,
                    retry_conflicts=retry_conflicts,
                    extra=extra,
                    key_names=key_names,
                )
            except TransactionCanceled as exc:
                await self._expand_reasons(exc, listed)
                raise

    async def _expand_reasons(self, error: TransactionCanceled, actions: list[TxAction]) -> None:
        """The items of a cancellation's reasons as a ``get`` returns them (``_as_read``)."""
        for reason, action in zip(error.reasons, actions, strict=False):
            if reason.item is not None:
                reason.item = await self.table(action.table)._as_read(reason.item)

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
        out = [
            self.table(get.table)._live(item, get.strip)
            for get, item in zip(listed, items, strict=True)
        ]
        for name in {get.table for get in listed}:  # large attributes (asyncdyn.large)
            table = self.table(name)
            if table._large is not None:
                at = [i for i, get in enumerate(listed) if get.table == name]
                for i, item in zip(at, await table._read_large([out[i] for i in at]), strict=True):
                    out[i] = item
        return out

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
        fills: list[tuple[ItemCache, str, list[Any], int]] = []
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
            cache = self.table(name)._cache if projection is None else None
            if cache is not None:  # only whole items are cached; only misses are sent
                unique, token = cache.serve(name, unique, consistent=consistent)
                fills.append((cache, name, unique, token))
            distinct.extend(unique)
        outcome = await fetch_all(self._batch, distinct, window=self._window)
        for cache, name, fetched, token in fills:
            cache.fill_entries(name, fetched, token, outcome.leftovers)
        decode = self._decoder.item
        result = {
            name: await self.table(name)._read_large(
                [self.table(name)._live(item, strips[name]) for item in aligned(at, decode)]
            )
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
        exist_ok: bool = False,
    ) -> Table:
        """Create a table (and its indexes); with ``wait``, return once it is ACTIVE.

        ``exist_ok=True``: a table of that name that already exists is taken as it is when
        its key and the indexes asked for agree with the request (other settings are not
        compared); otherwise ``ConfigurationError`` names the differences.

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
        table = self.table(name)
        try:
            await self._dispatcher.call("CreateTable", request)
        except ResourceInUse:
            if not exist_ok:
                raise
            await table.wait_until_active()  # it may still be being created elsewhere
            differences = schema_differences(request, await table.describe())
            if differences:
                raise ConfigurationError(
                    f"table {name!r} exists, but not as asked: " + "; ".join(differences)
                ) from None
            return table
        if wait:
            await table.wait_until_active()
        return table

    async def delete_table(self, name: str, *, wait: bool = True, timeout: float = 120.0) -> None:
        """Delete a table; with ``wait``, return once DynamoDB no longer knows it."""
        await self._dispatcher.call("DeleteTable", {"TableName": name})
        table = self._tables.pop(name, None)
        cache = self._cache if table is None else table._cache
        if cache is not None:
            cache.invalidate_table(name)
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
