"""What every family of ``Table`` operations stands on: the table's name and key schema,
its encoders and checks, the expressions of a request, and the client it sends through.

``Table`` is assembled from one class per family (``actions``, ``items``, ``locking``,
``batches``, ``listing``, ``parallel``, ``control``), each a ``TableCore`` subclass in the
module named for it, so each method is written (and documented) once, where its concept lives.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol, Self

from ..batch import (
    BatchEngine,
    Identity,
    key_identity,
)
from ..cache import ItemCache, WriteGuard, wire_identity
from ..coalesce import GetCoalescer
from ..errors import (
    AsyncDynError,
    ConfigurationError,
    InvalidExpression,
    InvalidItem,
)
from ..expressions import (
    Attr,
    Condition,
    KeyCondition,
    Path,
    Placeholders,
    Update,
    projection_with,
)
from ..large import LargeAttributes
from ..marshal import Decoder, NumberMode, WireItem, as_floats, decoder, encode_item, encode_key
from ..offload import S3Store
from ..paging import (
    CursorCodec,
)
from ..schema import (
    KeySchema,
)
from ..transactions import TxAction
from ..transport import (
    Dispatcher,
)
from ..ttl import is_expired

__all__ = ["TableCore", "TableHost"]

Item = dict[str, Any]
ConditionArg = Condition | str | None
Attributes = str | Iterable[str | Attr | tuple[str | int, ...]] | None
Projection = list[str | Attr | Path] | None
ReturnValues = Literal["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"]
ReturnOnFailure = Literal["NONE", "ALL_OLD"]

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


def _check_limit(limit: int | None) -> None:
    # bool is an int subclass: limit=True would silently mean 1.
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigurationError(f"limit must be a positive int or None, not {limit!r}")


class TableHost(Protocol):
    """What a table needs of its client (``Client`` is one): the dispatcher and engines it
    sends through, and how the client was configured. A protocol, so that this package never
    imports the client module above it."""

    @property
    def max_concurrency(self) -> int: ...
    @property
    def region(self) -> str: ...
    @property
    def endpoint_url(self) -> str: ...
    @property
    def _dispatcher(self) -> Dispatcher: ...
    @property
    def _decoder(self) -> Decoder: ...
    @property
    def _numbers(self) -> NumberMode: ...
    @property
    def _batch(self) -> BatchEngine: ...
    @property
    def _window(self) -> int: ...
    @property
    def _coalescer(self) -> GetCoalescer | None: ...
    @property
    def _cursors(self) -> CursorCodec: ...
    @property
    def _consumed_capacity(self) -> str | None: ...
    @property
    def _cache(self) -> ItemCache | None: ...

    def _offload_store(self) -> S3Store: ...

    async def transact_write(
        self,
        actions: Iterable[TxAction],
        *,
        token: str | None = None,
        retry_conflicts: bool = False,
    ) -> None: ...


class TableCore:
    """A table's state and the helpers every family of operations shares."""

    __slots__ = (
        "_cache",
        "_call",
        "_client",
        "_decode",
        "_decode_items",
        "_expiry",
        "_key_schema",
        "_large",
        "name",
    )

    def __init__(self, client: TableHost, name: str) -> None:
        self._client = client
        self.name = name
        self._call = client._dispatcher.call
        self._decode: Callable[[WireItem], Item] = client._decoder.item
        self._decode_items: Callable[[list[WireItem]], list[Item]] = client._decoder.items
        self._key_schema: KeySchema | None = None
        self._expiry: str | None = None
        # The item cache of this table's full-item reads: the client's unless
        # ``Client.table(name, cache=...)`` gave it one of its own (or none).
        self._cache: ItemCache | None = client._cache
        self._large: LargeAttributes | None = None

    def _use_large(self, large: LargeAttributes) -> None:
        """Store ``large``'s attributes compressed / offloaded (asyncdyn.large): every read
        decodes them, every write path compresses, ``put`` offloads."""
        if self._key_schema is not None:
            large.check_key(self._key_schema.names, self.name)
        if self._large is not None:
            large = self._large.merged(large)
        self._large = large
        if not large.names:
            return  # only an entity's own compressed fields: its codec decodes them
        decode = large.decoder(
            self._client._decoder.item,
            self._client._offload_store,
            self._known_key_names,
            self.name,
        )
        self._decode = decode
        self._decode_items = lambda items: [decode(item) for item in items]

    def _known_key_names(self) -> tuple[str, ...]:
        schema = self._key_schema
        return () if schema is None else schema.names

    async def _read_large(
        self, items: list[Item | None], key_names: Sequence[str] | None = None
    ) -> list[Item | None]:
        """Items decoded as stored (by an engine, a get, a failure's image) with their large
        attributes as every read returns them: decompressed, and offloaded ones read from
        S3. ``key_names`` name an item in errors (default: the table's key, when known)."""
        large = self._large
        if large is None:
            return items
        store = self._client._offload_store
        names = self._known_key_names() if key_names is None else key_names
        out = [
            None if item is None else large.expand(item, store, names, self.name) for item in items
        ]
        await large.load(out)
        return out

    async def _as_read(self, item: Item) -> Item:
        """A failure's item as stored (a condition's or a transaction's ALL_OLD image), with
        its large attributes as a get returns them: a caller merging it and writing it back
        (``modify`` after a lost race) must not take compressed bytes for the value. If that
        read fails, the item stays as stored: the failure it came with is the error to
        report."""
        if self._large is None:
            return item
        try:
            expanded = (await self._read_large([dict(item)]))[0]
        except AsyncDynError:
            return item
        return item if expanded is None else expanded

    def _check_large(
        self, what: str, expression: Any, names: Mapping[str, str] | None = None
    ) -> None:
        """Refuse an expression on a compressed or offloaded attribute, before sending."""
        if self._large is not None:
            self._large.check_expression(what, expression, names, self.name)

    def hide_expired(self, attribute: str | None) -> Self:
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

    def _item(self, item: Mapping[str, Any], *, prepared: bool = False) -> WireItem:
        """``item`` encoded, with its key attributes checked when the key schema is known
        (its large attributes compressed first, unless ``prepared`` did it already)."""
        schema = self._key_schema
        if self._large is not None and not prepared:
            if schema is not None:  # the schema may have been learnt after the policy
                self._large.check_key(schema.names, self.name)
            item = self._large.prepare(item)
        wire = encode_item(item)
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

    def _cache_identity(self, wire: WireItem, names: Iterable[str]) -> Identity:
        """The identity of a key in the item cache; a key attribute that is not a
        non-empty S, N or B value raises ``InvalidItem`` before anything is sent."""
        try:
            return wire_identity(wire, tuple(names))
        except ValueError as exc:
            raise InvalidItem(f"{exc} (a key of table {self.name!r})") from None

    async def _write_guard(self, wire: WireItem, *, whole_item: bool) -> WriteGuard:
        """Invalidates the cached entry of the key a write of ``wire`` (a key, or with
        ``whole_item`` an item: its key attributes are the schema's) touches, now and when
        the guard is left. A no-op without a cache."""
        cache = self._cache
        if cache is None:
            return WriteGuard([])
        names = (await self.key_schema()).names if whole_item else tuple(wire)
        return WriteGuard([(cache, self.name, self._cache_identity(wire, names))])

    async def _read_through(
        self,
        wire: WireItem,
        consistent: bool,
        fetch: Callable[[], Awaitable[Item | None]],
    ) -> Item | None:
        """A full-item read of the key ``wire`` through the table's cache (``ItemCache.read``)."""
        cache = self._cache
        assert cache is not None
        identity = self._cache_identity(wire, wire)
        return await cache.read(self.name, identity, fetch, consistent=consistent)

    def _request(self, **fields: Any) -> dict[str, Any]:
        request: dict[str, Any] = {"TableName": self.name, **fields}
        if self._client._consumed_capacity is not None:
            request["ReturnConsumedCapacity"] = self._client._consumed_capacity
        return request

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
