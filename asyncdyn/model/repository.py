"""``Repository``: a design bound to a client; typed reads and writes over ``Table``.

Every write path computes the item the same way (``_item``): fields encoded, table key and
index keys rendered from the templates (an index whose inputs include ``None`` is left out,
which makes the item leave a sparse index), the type attribute, timestamps, version. Reads
plan their query (``plan.py``), decode with the design, and never drop an item silently:
items no entity claims follow ``unknown=``; only expired items (a TTL field in the past) are
hidden, as DynamoDB would have deleted them.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from ..errors import (
    AsyncDynError,
    ConditionalCheckFailed,
    ConfigurationError,
    InvalidExpression,
    InvalidItem,
    UndeclaredAccess,
    UniqueConflict,
)
from ..expressions import Attr, Condition, Update
from ..large import LargeAttributes
from ..paging import ItemIterator
from ..schema import GlobalIndex, KeySchema, StreamView
from ..transactions import TxAction
from .actions import EntityAction
from .collection import Collection
from .conditions import ConditionArg, write_condition
from .entity import KEYED_MISS, EntityInfo, Ref
from .keys import EntityKey, NaturalKey
from .patterns import Pattern, declared_pattern
from .plan import Plan, plan_natural, plan_read
from .raw import Unknown, check_unknown
from .templates import could_overlap
from .unique import delete_unique, put_unique
from .where import RANGE_OPS, Where
from .writer import EntityWriter

if TYPE_CHECKING:
    from ..client import Client, Table
    from .design import Design

__all__ = ["EntityPage", "Repository"]

E = TypeVar("E")
T = TypeVar("T")
_NO_ITEM: Any = object()


@dataclass(slots=True)
class EntityPage(Generic[T]):
    """One page of entities and the signed ``cursor`` of the next (``None`` at the end)."""

    items: list[T]
    cursor: str | None


class Repository:
    """Typed reads and writes of a design's entities (``design.bind(db)``)."""

    __slots__ = ("db", "design", "table")

    def __init__(self, design: Design, db: Client, *, table: str | None = None) -> None:
        self.design = design
        self.db = db
        attrs = design.key_attributes
        # The key schema with the indexes: fan-outs on an index need no DescribeTable.
        schema = KeySchema(attrs[0], attrs[1] if len(attrs) == 2 else None, design.indexes)
        # The entities' offloaded and compressed fields, as one policy of the table.
        large: LargeAttributes | None = None
        for info in design.entities:
            if info.large is not None:
                large = info.large if large is None else large.merged(info.large)
        self.table: Table = db.table(
            design.name if table is None else table, key=schema, large=large
        )

    def __repr__(self) -> str:
        return f"Repository({self.design.name!r})"

    # -- control plane -------------------------------------------------------------------

    async def create_table(
        self, *, stream: StreamView | None = None, wait: bool = True, exist_ok: bool = False
    ) -> None:
        """Create the table and its global indexes from the design (on-demand capacity);
        ``stream`` turns on a DynamoDB stream of that view (``"NEW_AND_OLD_IMAGES"``...),
        whose records ``design.parse_record`` reads as entities. ``exist_ok=True`` takes an
        existing table whose key and indexes are the design's (``Client.create_table``)."""
        attrs = self.design.key_attributes
        projections = self.design.projections
        indexes = [
            GlobalIndex(name, pk, sk, projection=projections.get(name, "ALL"))
            for name, (pk, sk) in self.design.indexes.items()
        ]
        for name, (pk_attrs, sk_attrs) in self.design.natural_indexes.items():
            indexes.append(
                GlobalIndex(
                    name,
                    tuple(self._attribute_spec(name, a) for a in pk_attrs),
                    tuple(self._attribute_spec(name, a) for a in sk_attrs) or None,
                    projection=projections.get(name, "ALL"),
                )
            )
        await self.db.create_table(
            self.table.name,
            partition_key=attrs[0],
            sort_key=attrs[1] if len(attrs) == 2 else None,
            indexes=indexes,
            stream=stream,
            wait=wait,
            exist_ok=exist_ok,
        )

    async def describe(self) -> dict[str, Any]:
        """DescribeTable's ``Table`` object of the bound table, for
        ``design.check(described=...)``."""
        return await self.table.describe()

    def _attribute_spec(self, index: str, attribute: str) -> tuple[str, Literal["S", "N", "B"]]:
        """A multi-attribute index key's type, from the field stored there (the first
        entity declaring the index decides; another stored type there would be refused by
        DynamoDB on write)."""
        for info in self.design.entities:
            if index in info.natural:
                f = info.by_stored[attribute]
                if f.kind in (int, float, Decimal) or f.spec.epoch:
                    return attribute, "N"
                return attribute, "B" if f.kind is bytes else "S"
        return attribute, "S"

    # -- building items ------------------------------------------------------------------

    def _info(self, entity: Any) -> EntityInfo:
        return self.design.info(entity)

    def _key(self, info: EntityInfo, fields: Mapping[str, Any]) -> dict[str, str]:
        if info.shards:
            fields = info.with_shards(fields)
        names = info.key.fields
        if fields.keys() == info.key.field_set:
            return info.key.render(fields)
        missing = [n for n in names if n not in fields]
        extra = [n for n in fields if n not in names]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"lacks {', '.join(missing)}")
            if extra:
                parts.append(f"has {', '.join(extra)}, which are not key fields")
            raise InvalidItem(
                f"a key of {info.type_name} is {', '.join(names)}: this one {' and '.join(parts)}",
                f"{info.type_name}.{(missing or extra)[0]}",
            )
        return info.key.render(fields)

    def _stamped(self, info: EntityInfo, entity: Any, now: datetime) -> dict[str, Any]:
        """The entity's field values as they will be written: timestamps and version set."""
        values = {name: getattr(entity, name) for name in info.fields}
        if info.shards:
            values = info.with_shards(values)  # derived: recomputed on every write
        if info.created is not None and values[info.created.name] is None:
            values[info.created.name] = now
        if info.updated is not None:
            values[info.updated.name] = now
        if info.version is not None:
            current = values[info.version.name]
            if isinstance(current, bool) or not isinstance(current, int) or current < 0:
                raise InvalidItem(
                    f"a version is an int >= 0, not {current!r}",
                    f"{info.type_name}.{info.version.name}",
                )
            values[info.version.name] = current + 1
        return values

    def _item(self, info: EntityInfo, values: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        """(the entity written, its item): fields, table key, index keys, type."""
        entity = info.cls(**values)
        item = info.encode(entity)
        item.update(info.key.render(values))
        for declared in info.indexes.values():
            if all(values.get(n) is not None for n in declared.fields):
                item.update(declared.render(values))
        if self.design.type_attribute:
            item[self.design.type_attribute] = info.type_name
        return entity, item

    def _version_condition(self, info: EntityInfo, values: Mapping[str, Any]) -> Condition | None:
        if info.version is None:
            return None
        expected = values[info.version.name] - 1
        if expected == 0:
            return Attr(self.design.key_attributes[0]).not_exists()
        return Attr(info.version.stored).eq(expected)

    # -- writes --------------------------------------------------------------------------

    async def put(self, entity: E, *, condition: ConditionArg = None) -> E:
        """Write ``entity`` whole and return it as written (timestamps, version).

        ``condition``: predicates on the entity's fields (``Order.status.eq("PENDING")``,
        joined with ``&``, ``|``, ``~``) or a ``Condition`` on stored attribute names. With a
        version field the write is also conditional on the stored version being the
        entity's (a new entity, version 0: on no item existing). A false condition or a lost
        race raises ``ConditionalCheckFailed`` naming table and key, whose ``.item`` is the
        stored item and ``.current`` that item as an entity. A lost answer is recognised
        (the stored item is exactly this write) rather than reported as a race.
        """
        info = self._info(type(entity))
        condition = write_condition(info, condition)
        values = self._stamped(info, entity, datetime.now(UTC))
        written, item = self._item(info, values)
        locked = self._version_condition(info, values)
        if locked is not None:
            condition = locked if condition is None else locked & condition
        if info.unique:
            await put_unique(self, info, item, condition)
            return written  # type: ignore[no-any-return]
        if condition is None:
            await self.table.put(item)
            return written  # type: ignore[no-any-return]
        try:
            await self.table.put(item, condition=condition, returns_on_failure="ALL_OLD")
        except ConditionalCheckFailed as exc:
            key = {a: item[a] for a in self.design.key_attributes}
            await self._name_failure(exc, info, key)
            raise
        return written  # type: ignore[no-any-return]

    async def _name_failure(
        self, exc: ConditionalCheckFailed, info: EntityInfo, key: Mapping[str, Any]
    ) -> None:
        """Name the table, key and stored entity of ``info``'s failed conditional write.
        ``exc.item`` is read (consistently) when the server did not return it (a server
        without ReturnValuesOnConditionCheckFailure)."""
        if exc.item is None:
            exc.item = await self.table.get(key, consistent=True)
        exc.table, exc.key = self.table.name, dict(key)
        exc.current = None
        if exc.item is not None:
            try:
                exc.current = self.design.decode(info, exc.item)
            except (AsyncDynError, KeyError, TypeError, ValueError):
                # Naming is a courtesy: an item that is not this entity must not hide the
                # failed condition behind a decode error; .item still holds it raw.
                pass
        found = "no item" if exc.item is None else f"the stored {info.type_name} in .current"
        exc.args = (
            f"table {self.table.name!r}, key {exc.key!r}: the condition of this "
            f"{info.type_name} write failed ({found}) - {exc.code} ({exc.operation}): "
            f"{exc.message}",
        )

    def tx_put(self, entity: E, *, condition: ConditionArg = None) -> EntityAction[E]:
        """A put of ``entity`` for ``db.transact_write``, derived attributes and version
        condition included (``condition`` as ``put`` takes it, ANDed with the version's).

        The entity is stamped once, here: ``action.entity`` is the entity as the action
        writes it (timestamps, version), which is what is stored once the transaction
        commits."""
        info = self._info(type(entity))
        self._no_unique(info, "tx_put")
        condition = write_condition(info, condition)
        values = self._stamped(info, entity, datetime.now(UTC))
        written, item = self._item(info, values)
        locked = self._version_condition(info, values)
        if locked is not None:
            condition = locked if condition is None else locked & condition
        action = self.table.tx_put(item, condition=condition)
        return EntityAction(
            action.kind, action.table, action.body, action.key, written, stage=action.stage
        )

    def tx_delete(self, ref: Any, *, condition: ConditionArg = None) -> TxAction:
        """A delete for ``db.transact_write`` (a ``Ref``, or an entity: then conditional on
        its version when it has one), ANDed with ``condition`` as ``put`` takes it."""
        info, key, condition = self._delete_args(ref, condition)
        self._no_unique(info, "tx_delete")
        return self.table.tx_delete(key, condition=condition)

    @staticmethod
    def _no_unique(info: EntityInfo, path: str) -> None:
        if info.unique:
            raise ConfigurationError(
                f"{info.type_name} has unique fields: its writes are transactions of their own "
                f"(guard items), which {path} cannot join; use repo.put / repo.delete"
            )

    def _batch_item(
        self, entity: Any, now: datetime, path: str, where: str = ""
    ) -> tuple[Any, dict[str, Any]]:
        """The entity as written and its item, for a write that cannot be conditional
        (``path``: batch_write or the writer): entities with unique or version fields are
        refused, ``where`` (``puts[3]``) naming the entity."""
        info = self._info(type(entity))
        self._no_unique(info, path)
        if info.version is not None:
            at = f"{where}: " if where else ""
            raise ConfigurationError(
                f"{at}{info.type_name} has a version field; a batch write cannot check it "
                "(use repo.put or repo.tx_put)"
            )
        return self._item(info, self._stamped(info, entity, now))

    def _delete_args(
        self, target: Any, user: ConditionArg = None
    ) -> tuple[EntityInfo, dict[str, str], Condition | None]:
        """(entity, key, condition) of a delete: the version's condition (an entity with a
        version field) ANDed with the caller's."""
        if isinstance(target, Ref):
            info = self._info(target.entity)
            return info, self._key(info, target.fields), write_condition(info, user)
        info = self._info(type(target))
        key = self._key(info, {n: getattr(target, n) for n in info.key.fields})
        condition = write_condition(info, user)
        if info.version is not None:
            version = getattr(target, info.version.name)
            locked = (
                Attr(info.version.stored).eq(version)
                if version
                else Attr(self.design.key_attributes[0]).not_exists()
            )
            condition = locked if condition is None else locked & condition
        return info, key, condition

    async def delete(self, target: Any, *, condition: ConditionArg = None) -> None:
        """Delete an item: ``Order.ref(...)``, or an entity (then, with a version field,
        only if the stored version is the entity's), on ``condition`` (as ``put`` takes
        it) when given: ``ConditionalCheckFailed`` naming table and key otherwise."""
        info, key, combined = self._delete_args(target, condition)
        if info.unique:
            await delete_unique(self, info, key, combined)
            return
        if combined is None:
            await self.table.delete(key)
            return
        try:
            await self.table.delete(key, condition=combined, returns_on_failure="ALL_OLD")
        except ConditionalCheckFailed as exc:
            await self._name_failure(exc, info, key)
            raise

    async def batch_write(self, *, puts: Iterable[Any] = (), deletes: Iterable[Ref] = ()) -> None:
        """Write entities and delete refs in batches, derived attributes included. Batches
        cannot be conditional, so versioned entities are refused (use put or tx_put)."""
        now = datetime.now(UTC)
        items = [
            self._batch_item(entity, now, "batch_write", f"puts[{i}]")[1]
            for i, entity in enumerate(puts)
        ]
        keys = []
        for ref in deletes:
            info = self._info(ref.entity)
            self._no_unique(info, "batch_write")
            keys.append(self._key(info, ref.fields))
        await self.table.batch_write(puts=items, deletes=keys)

    def writer(self, **options: Any) -> EntityWriter:
        """The table's buffered writer (``Table.writer(**options)``) taking entities and refs:
        ``async with repo.writer() as w: await w.put(entity)``."""
        return EntityWriter(self, self.table.writer(**options))

    async def update(
        self,
        ref: Ref,
        *,
        derive: Literal["require", "fetch"] = "require",
        attempts: int = 10,
        condition: ConditionArg = None,
        **changes: Any,
    ) -> Any:
        """Change some fields of a stored item; return the entity as it is after, or
        ``None`` when there is no such item (nothing is written then).

        ``condition`` (as ``put`` takes it: ``Order.status.eq("PENDING")``) must hold for
        the stored item, ANDed with every condition the update makes of its own (item
        exists, inputs read, version); when it does not, ``ConditionalCheckFailed`` names
        table and key, with the stored entity in ``.current``, and nothing is written.

        Derived attributes follow: an index key built from a changed field is rewritten
        (or removed, when an input is ``None``). It needs every input of that key: give
        them, or ``derive="fetch"`` to read the item first and write on condition that the
        inputs read are still stored (a race re-reads, up to ``attempts`` times). An entity
        with a version field is always read, changed and put back under its version.
        """
        if not isinstance(ref, Ref):
            raise ConfigurationError("update() takes Entity.ref(...) and the changes as keywords")
        info = self._info(ref.entity)
        key = self._key(info, ref.fields)
        for name in changes:
            f = info.fields.get(name)
            if f is None:
                raise InvalidItem(
                    f"{info.type_name} has no field {name!r}", f"{info.type_name}.{name}"
                )
            if name in info.key.fields:
                raise InvalidItem(
                    "a field of the table key cannot change (put a new item)",
                    f"{info.type_name}.{name}",
                )
            if f.spec.created or f.spec.updated or f.spec.version or f.spec.shard_of:
                raise InvalidItem(
                    "this field is kept by the repository", f"{info.type_name}.{name}"
                )
        if not changes:
            raise ConfigurationError("update() needs at least one field to change")
        if derive not in ("require", "fetch"):
            raise ConfigurationError(f"derive is 'require' or 'fetch', not {derive!r}")
        user = write_condition(info, condition)
        if (
            info.version is not None
            or any(f.name in changes for f in info.unique)
            or any(f.spec.shard_of in changes for f in info.shards)
            or any(info.fields[n].spec.offload is not None for n in changes)
        ):
            # Read, change, put back: under the version, moving unique guards, or moving
            # the item to the shard its new source value hashes to (a put recomputes it).
            return await self._update_by_put(info, key, changes, attempts, user)
        known = info.with_shards({**ref.fields, **changes})
        needed: dict[str, list[str]] = {}
        for declared in info.indexes.values():
            if any(n in changes for n in declared.fields):
                lacking = [n for n in declared.fields if n not in known]
                if lacking:
                    needed[f"{declared.name or declared.index}"] = lacking
        if needed and derive == "require":
            what = "; ".join(f"{idx} needs {', '.join(names)}" for idx, names in needed.items())
            raise InvalidItem(
                f"the update changes inputs of derived keys but lacks others ({what}): "
                "pass them, or derive='fetch' to read the item first",
                f"{info.type_name}.{next(iter(needed.values()))[0]}",
            )
        for attempt in range(max(attempts, 1)):
            current: dict[str, Any] = {}
            guard: Condition = Attr(self.design.key_attributes[0]).exists()
            if user is not None:
                guard &= user
            stored: dict[str, Any] | None = None
            if needed:
                stored = await self.table.get(key, consistent=True)
                if stored is None:
                    return None
                entity = self.design.decode(info, stored)
                for names in needed.values():
                    for n in names:
                        current[n] = getattr(entity, n)
                        f = info.fields[n]
                        stored_value = stored.get(f.stored)
                        guard &= (
                            Attr(f.stored).not_exists()
                            if stored_value is None
                            else Attr(f.stored).eq(stored_value)
                        )
            update = self._update_expression(info, {**known, **current}, changes)
            try:
                got = await self.table.update(
                    key,
                    update,
                    condition=guard,
                    returns="ALL_NEW",
                    returns_on_failure="NONE" if user is None else "ALL_OLD",
                )
            except ConditionalCheckFailed as exc:
                if user is not None:
                    # Which part failed: no item (None, as without a condition), an input
                    # read that moved (read again), or else the caller's condition.
                    await self._name_failure(exc, info, key)
                    if exc.item is None:
                        return None
                    if (
                        stored is not None
                        and attempt < attempts - 1
                        and any(
                            stored.get(info.fields[n].stored) != exc.item.get(info.fields[n].stored)
                            for names in needed.values()
                            for n in names
                        )
                    ):
                        continue
                    raise
                if not needed or attempt == attempts - 1:
                    if not needed:
                        return None
                    raise
                continue
            return None if got is None else self.design.decode(info, got)
        raise AssertionError("unreachable")  # pragma: no cover

    def _update_expression(
        self, info: EntityInfo, known: Mapping[str, Any], changes: Mapping[str, Any]
    ) -> Update:
        parts: list[Update] = []
        encoded = info.encode_fields(changes)
        for name, value in changes.items():
            stored = info.fields[name].stored
            if value is None:
                parts.append(Attr(stored).remove())
            else:
                parts.append(Attr(stored).set(encoded[stored]))
        for declared in info.indexes.values():
            if not any(n in changes for n in declared.fields):
                continue
            if all(known.get(n) is not None for n in declared.fields):
                parts.extend(Attr(a).set(text) for a, text in declared.render(known).items())
            else:
                parts.extend(Attr(a).remove() for a in declared.attributes)
        if info.updated is not None:
            now = info.encode_fields({info.updated.name: datetime.now(UTC)})
            parts.append(Attr(info.updated.stored).set(now[info.updated.stored]))
        if self.design.type_attribute:
            parts.append(Attr(self.design.type_attribute).set(info.type_name))
        update = parts[0]
        for part in parts[1:]:
            update = update & part
        return update

    async def _update_by_put(
        self,
        info: EntityInfo,
        key: dict[str, str],
        changes: Mapping[str, Any],
        attempts: int,
        user: Condition | None,
    ) -> Any:
        stored = await self.table.get(key, consistent=True)
        version = None if info.version is None else info.version.stored
        for attempt in range(max(attempts, 1)):
            if stored is None:
                return None
            entity = self.design.decode(info, stored)
            for name, value in changes.items():
                setattr(entity, name, value)
            try:
                return await self.put(entity, condition=user)
            except UniqueConflict:
                raise  # the value is taken: another attempt would not change that
            except ConditionalCheckFailed as exc:
                if attempt == attempts - 1:
                    raise
                if user is not None and (
                    version is None
                    or (exc.item is not None and exc.item.get(version) == stored.get(version))
                ):
                    raise  # the version held: the caller's condition is what failed
                stored = (
                    exc.item if exc.item is not None else await self.table.get(key, consistent=True)
                )
        raise AssertionError("unreachable")  # pragma: no cover

    # -- reads ---------------------------------------------------------------------------

    def _entity(
        self,
        info: EntityInfo,
        item: Mapping[str, Any],
        now: float,
        key: dict[str, Any] | None = None,
    ) -> Any:
        """The entity of an item known to be ``info``'s, or ``_NO_ITEM`` when it expired."""
        ttl = info.ttl
        if ttl is not None:
            value = item.get(ttl.stored)
            if value is not None and not isinstance(value, bool) and value <= now:
                return _NO_ITEM
        return self.design.decode(info, item, key)

    async def get(self, entity: type[E], /, *, consistent: bool = False, **fields: Any) -> E | None:
        """The stored entity with these key fields, or ``None`` (also when its TTL passed).
        The item at a key the entity's template made is that entity: no discrimination."""
        info = self._info(entity)
        item = await self.table.get(self._key(info, fields), consistent=consistent)
        if item is None:
            return None
        if info.ttl is None:
            try:  # the generated decode; the design's decode names what is missing
                return info.decode(item, fields)  # type: ignore[no-any-return]
            except KeyError:
                pass
        got = self._entity(info, item, time.time(), fields)
        return None if got is _NO_ITEM else got

    async def batch_get(self, refs: Sequence[Ref], *, consistent: bool = False) -> list[Any]:
        """The entities of ``refs`` (of any types), aligned with them; ``None``: missing."""
        refs = list(refs)
        info_of_class = self._info
        infos = [info_of_class(r.entity) for r in refs]
        key_of = self._key
        keys = [key_of(info, r.fields) for info, r in zip(infos, refs, strict=True)]
        items = await self.table.batch_get(keys, consistent=consistent)
        out: list[Any] = []
        now = time.time()
        for info, ref, item in zip(infos, refs, items, strict=True):
            # The item is at the key the ref's template made: it is that entity.
            if item is None:
                out.append(None)
                continue
            if info.ttl is None:
                try:
                    out.append(info.decode(item, ref.fields))
                    continue
                except KeyError:
                    pass
            got = self._entity(info, item, now, ref.fields)
            out.append(None if got is _NO_ITEM else got)
        return out

    def _plan(
        self,
        target: Any,
        fields: Mapping[str, Any],
        where: Where | None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Plan:
        if where is not None and not isinstance(where, Where):
            raise InvalidExpression(
                "where= is one range on a key-template field; predicates joined with &, | "
                "or ~ are a write's condition="
            )
        if where is not None and where.op not in RANGE_OPS:
            raise InvalidExpression(
                f"where= {where.op} on {where.entity.__name__}.{where.field}: a key range is "
                f"{', '.join(sorted(RANGE_OPS))}; {where.op} is a write's condition= only"
            )
        if where is not None:
            spec = self._info(where.entity).fields[where.field].spec
            if spec.compress or spec.offload is not None:
                raise InvalidExpression(
                    f"where= on {where.entity.__name__}.{where.field}: it is compressed or "
                    "offloaded, so DynamoDB cannot compare it (and it is in no key)"
                )
        if isinstance(target, Pattern):
            if target.design is not self.design:
                raise ConfigurationError(f"pattern {target.name!r} is another design's")
            target, fields, where = target.bind(fields, where)
        elif self.design.strict:
            self._declared(target, fields, where)
        if isinstance(target, Collection):
            if target.design is not self.design:
                raise ConfigurationError(f"collection {target.name!r} is another design's")
            return plan_read(
                self.design,
                target.index,
                target.keys,
                fields,
                where,
                since=since,
                until=until,
                collection=target.name,
            )[1]
        if isinstance(target, NaturalKey):
            self._info(target.entity)
            if where is not None and where.entity is not target.entity:
                raise ConfigurationError(
                    f"where= is on {where.entity.__name__}, not {target.entity.__name__}"
                )
            if since is not None or until is not None:
                raise ConfigurationError("since=/until= bound time buckets: not on this index")
            return plan_natural(self.design, target, fields, where)
        if isinstance(target, EntityKey):
            self._info(target.entity)
            if where is not None and where.entity is not target.entity:
                raise ConfigurationError(
                    f"where= is on {where.entity.__name__}, not {target.entity.__name__}"
                )
            return plan_read(
                self.design, target.index, [target], fields, where, since=since, until=until
            )[1]
        info = self._info(target)
        if where is not None and where.entity is not target:
            raise ConfigurationError(f"where= is on {where.entity.__name__}, not {target.__name__}")
        return plan_read(self.design, None, [info.key], fields, where, since=since, until=until)[1]

    def _declared(self, target: Any, fields: Mapping[str, Any], where: Where | None) -> None:
        """Refuse (strict designs) a query that is none of the declared patterns."""
        if declared_pattern(self.design, target, fields, where) is not None:
            return
        if isinstance(target, EntityKey | NaturalKey):
            shown = f"{target.entity.__name__}.{target.name}"
        elif isinstance(target, Collection):
            shown = f"collection {target.name!r}"
        else:
            shown = getattr(target, "__name__", repr(target))
        given = ", ".join(fields) or "nothing"
        ranged = "" if where is None else f" ranging {where.field}"
        raise UndeclaredAccess(
            f"design {self.design.name!r} is strict, and a query of {shown} by {given}{ranged} "
            "is none of its patterns: declare it with design.pattern(...) (and run "
            "design.check()), or read through the pattern with repo.run(pattern, ...)",
            self.design.name,
        )

    def run(
        self,
        pattern: Pattern,
        /,
        *,
        where: Where | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        descending: bool = False,
        consistent: bool = False,
        unknown: Unknown | None = None,
        **values: Any,
    ) -> AsyncIterator[Any]:
        """The entities of a declared access pattern: ``repo.run(orders_of_customer,
        customer_id="123")``; ``where=`` narrows the pattern's ``range`` field. The values
        are the pattern's ``by`` fields (its fixed fields are added)."""
        if not isinstance(pattern, Pattern):
            raise ConfigurationError("run() takes a pattern of design.pattern(...)")
        return self.query(
            pattern,
            where=where,
            since=since,
            until=until,
            limit=limit,
            descending=descending,
            consistent=consistent,
            unknown=unknown,
            **values,
        )

    def _accept(self, plan: Plan, item: dict[str, Any], unknown: str, now: float) -> Any:
        design = self.design
        entities = plan.entities
        parsed: dict[str, Any] | None = None
        found: EntityInfo | None = None
        attrs = design.key_attributes
        if plan.known is not None:
            # Fast path of a table query: the key condition fixed the partition key (and
            # the plan proved which types live under it), so the sort key alone tells which
            # asked-for type an item is; its parse and the query's fields are the key's
            # fields. Two types matching one key go the long way (the type attribute).
            sort = item.get(attrs[1]) if len(attrs) == 2 else None
            for info in entities:
                sk = info.key.sk
                fields = {} if sk is None else sk.parse(sort)
                if fields is not None:
                    if found is not None:
                        found = None
                        break
                    found, parsed = info, fields
            if found is not None and parsed is not None:
                parsed.update(plan.known)
        elif len(entities) == 1:
            info = entities[0]
            key = info.key
            if key.pk.matches(item.get(attrs[0])) and (
                key.sk is None or key.sk.matches(item.get(attrs[1]))
            ):
                found = info
        if found is None:
            found = design.classify(item)
            parsed = None
        if found is None or found not in entities:
            got = design.unknown_item(item, unknown)
            return _NO_ITEM if got is None else got
        entity = self._entity(found, item, now, parsed)
        if (
            entity is not _NO_ITEM
            and plan.exclude is not None
            and (plan.exclude_from is None or found is plan.exclude_from)
        ):
            name, value = plan.exclude
            if getattr(entity, name) == value:
                return _NO_ITEM
        return entity

    def _single(self, plan: Plan) -> tuple[Any, dict[str, Any]]:
        """The key condition and the other arguments of a one-request plan."""
        if plan.raw is None:
            return plan.conditions[0], self._query_args(plan)
        expression, names, values = plan.raw
        args: dict[str, Any] = {"index": plan.index, "names": dict(names), "values": dict(values)}
        if plan.type_names is not None:
            args["names"]["#type"] = self.design.type_attribute
            slots = []
            for i, name in enumerate(plan.type_names):
                args["values"][f":type{i}"] = name
                slots.append(f":type{i}")
            args["filter"] = f"#type IN ({', '.join(slots)})"
        return expression, args

    def _query_args(self, plan: Plan) -> dict[str, Any]:
        args: dict[str, Any] = {"index": plan.index}
        if plan.type_names is not None:
            if not self.design.type_attribute:
                names = ", ".join(e.type_name for e in plan.entities)
                raise ConfigurationError(
                    f"reading {names} here needs a filter on the type attribute (other types "
                    "share the key range), and the design has no type_attribute"
                )
            args["filter"] = Attr(self.design.type_attribute).is_in(list(plan.type_names))
        return args

    @overload
    def query(
        self,
        target: type[E],
        /,
        *,
        where: Where | None = ...,
        since: datetime | None = ...,
        until: datetime | None = ...,
        limit: int | None = ...,
        descending: bool = ...,
        consistent: bool = ...,
        unknown: Unknown | None = ...,
        **fields: Any,
    ) -> AsyncIterator[E]: ...

    @overload
    def query(
        self,
        target: EntityKey | NaturalKey | Collection | Pattern,
        /,
        *,
        where: Where | None = ...,
        since: datetime | None = ...,
        until: datetime | None = ...,
        limit: int | None = ...,
        descending: bool = ...,
        consistent: bool = ...,
        unknown: Unknown | None = ...,
        **fields: Any,
    ) -> AsyncIterator[Any]: ...

    def query(
        self,
        target: Any,
        /,
        *,
        where: Where | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        descending: bool = False,
        consistent: bool = False,
        unknown: Unknown | None = None,
        **fields: Any,
    ) -> AsyncIterator[Any]:
        """Entities under one partition, in sort-key order: ``query(Order, customer_id=...)``
        (the type's sort-key prefix is added), ``query(Order.by_status, status=..., where=
        Order.placed_at.between(t0, t1))`` (an index), or ``query(collection, ...)`` (every
        member type, one query when the design allows; ``where=`` on one member narrows
        that member's range, the others come whole). Over time-bucketed partitions
        (``"SENSOR#{sensor_id}#{at:%Y-%m}"``) ``since=``/``until=`` bound the buckets read
        where the range leaves them open (``where=Reading.at.gte(t0), until=now``). Bad
        arguments raise here."""
        unknown = self.design.unknown if unknown is None else unknown
        check_unknown(unknown)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ConfigurationError("limit is a positive int or None")
        plan = self._plan(target, fields, where, since, until)
        if plan.raw is not None or (plan.partitions is None and len(plan.conditions) == 1):
            return self._pages(plan, limit, descending, consistent, unknown)
        return self._run(plan, limit, descending, consistent, unknown)

    def _pages(
        self, plan: Plan, limit: int | None, descending: bool, consistent: bool, unknown: str
    ) -> AsyncIterator[Any]:
        """A one-request plan read page by page (signed cursors between pages), each page
        turned into entities at once, through the same prefetching iterator as
        ``Table.query``: no per-item generator layer on top of it."""
        condition, args = self._single(plan)
        convert = self._converter(plan, unknown, time.time())
        table = self.table

        async def fetch(cursor: Any, remaining: int | None) -> tuple[list[Any], Any]:
            page = await table.query_page(
                condition,
                limit=remaining,
                cursor=cursor,
                descending=descending,
                consistent=consistent,
                **args,
            )
            return convert(page.items), page.cursor

        return ItemIterator(fetch, limit=limit)

    async def _run(
        self, plan: Plan, limit: int | None, descending: bool, consistent: bool, unknown: str
    ) -> AsyncIterator[Any]:
        args = self._query_args(plan)
        accept = self._acceptor(plan, unknown, time.time())
        count = 0
        source: AsyncIterator[dict[str, Any]]
        if plan.partitions is not None:
            source = self.table.query_partitions(
                plan.partitions,
                plan.sort_condition,
                descending=descending,
                consistent=consistent,
                ordered=plan.ordered,
                **args,
            )
        elif len(plan.conditions) == 1:
            source = self.table.query(
                plan.conditions[0], descending=descending, consistent=consistent, **args
            )
        else:
            source = self._merged(plan, args, descending, consistent)
        try:
            async for item in source:
                got = accept(item)
                if got is _NO_ITEM:
                    continue
                yield got
                count += 1
                if limit is not None and count >= limit:
                    return
        finally:
            # Stopping early (limit, or the caller's break) cancels the legs still reading.
            close = getattr(source, "aclose", None)
            if close is not None:
                await close()

    def _acceptor(self, plan: Plan, unknown: str, now: float) -> Callable[[dict[str, Any]], Any]:
        """``_accept`` for one plan; for the common plans (a table query of types without
        TTL, no edge to exclude), a closure that calls the entity's generated ``keyed``
        decode per item (the sort key parsed inline, the partition's fields from the query),
        and takes ``_accept``'s long way for anything else."""
        entities = plan.entities
        attrs = self.design.key_attributes
        known = plan.known
        slow = self._accept
        if (
            known is None
            or plan.exclude is not None
            or len(attrs) != 2
            or any(info.key.sk is None or info.ttl is not None for info in entities)
        ):
            return lambda item: slow(plan, item, unknown, now)
        keyed = [info.keyed for info in entities if info.keyed is not None]
        if len(keyed) == len(entities) == 1:
            (decode_one,) = keyed

            def accept_one(item: dict[str, Any]) -> Any:
                got = decode_one(item, known)
                if got is KEYED_MISS:
                    return slow(plan, item, unknown, now)
                return got

            return accept_one
        if len(keyed) == len(entities) and self._sorts_apart(entities):
            # No key parses as two members: the first member whose decode takes it is it.
            def accept_first(item: dict[str, Any]) -> Any:
                for decode in keyed:
                    got = decode(item, known)
                    if got is not KEYED_MISS:
                        return got
                return slow(plan, item, unknown, now)

            return accept_first
        sort_attribute = attrs[1]
        members = [(info.key.sk.parser, info.decode) for info in entities if info.key.sk]

        def accept_any(item: dict[str, Any]) -> Any:
            sort = item.get(sort_attribute)
            hit = None
            for parse, decode in members:
                parsed = parse(sort)
                if parsed is not None:
                    if hit is not None:  # two types fit the key: the type attribute decides
                        return slow(plan, item, unknown, now)
                    hit = (parsed, decode)
            if hit is not None:
                parsed, decode = hit
                parsed.update(known)
                try:
                    return decode(item, parsed)
                except KeyError:
                    pass
            return slow(plan, item, unknown, now)

        return accept_any

    def _converter(
        self, plan: Plan, unknown: str, now: float
    ) -> Callable[[list[dict[str, Any]]], list[Any]]:
        """A page of items -> its entities, for the one-request and fan-out plans: with
        generated ``keyed`` decodes, one call per item (an item the decode does not take
        goes to ``_accept``), and the pass that drops skipped items only when one was
        skipped; a collection's members take turns (``_convert_members``)."""
        entities = plan.entities
        keyed = [info.keyed for info in entities if info.keyed is not None]
        plain = (
            plan.known is not None
            and plan.exclude is None
            and len(self.design.key_attributes) == 2
            and len(keyed) == len(entities)
            and all(info.key.sk is not None and info.ttl is None for info in entities)
            and (len(entities) == 1 or self._sorts_apart(entities))
        )
        if not plain:
            accept = self._acceptor(plan, unknown, now)

            def convert_each(items: list[dict[str, Any]]) -> list[Any]:
                got = [accept(item) for item in items]
                return [e for e in got if e is not _NO_ITEM]

            return convert_each
        if len(keyed) > 1:
            return self._convert_members(plan, keyed, unknown, now)
        known = plan.known
        slow = self._accept
        skipped = [False]

        def last(item: dict[str, Any]) -> Any:
            got = slow(plan, item, unknown, now)
            if got is _NO_ITEM:
                skipped[0] = True
            return got

        first = keyed[0]

        def convert(items: list[dict[str, Any]]) -> list[Any]:
            out = [first(item, known, last) for item in items]
            if skipped[0]:
                skipped[0] = False
                return [e for e in out if e is not _NO_ITEM]
            return out

        return convert

    def _convert_members(
        self, plan: Plan, keyed: list[Callable[..., Any]], unknown: str, now: float
    ) -> Callable[[list[dict[str, Any]]], list[Any]]:
        """A page of a collection whose members' sort keys are proven apart: each item goes
        to the member that took the previous one first. Items come in sort-key order, so
        one type's items come in runs, and a run costs one decode per item."""
        known = plan.known
        slow = self._accept

        def convert(items: list[dict[str, Any]]) -> list[Any]:
            out: list[Any] = []
            append = out.append
            decode = keyed[0]
            for item in items:
                got = decode(item, known)
                if got is KEYED_MISS:
                    for other in keyed:
                        got = other(item, known)
                        if got is not KEYED_MISS:
                            decode = other
                            break
                    else:
                        got = slow(plan, item, unknown, now)
                        if got is _NO_ITEM:
                            continue
                append(got)
            return out

        return convert

    def _sorts_apart(self, entities: Sequence[EntityInfo]) -> bool:
        """Whether no sort key can be made by two of these entities' templates (cached)."""
        cache_key = ("apart", *(id(e) for e in entities))
        proofs = self.design.proofs
        known = proofs.get(cache_key)
        if known is None:
            templates = [e.key.sk for e in entities]
            known = not any(
                a is not None and b is not None and could_overlap(a, b)
                for i, a in enumerate(templates)
                for b in templates[i + 1 :]
            )
            proofs[cache_key] = known
        return bool(known)

    async def _merged(
        self, plan: Plan, args: Mapping[str, Any], descending: bool, consistent: bool
    ) -> AsyncIterator[dict[str, Any]]:
        """The ranges of ``plan`` read side by side and merged by sort key (string order by
        code point is DynamoDB's UTF-8 byte order)."""
        attr = plan.sort_attribute
        assert attr is not None
        iterators = [
            aiter(self.table.query(c, descending=descending, consistent=consistent, **args))
            for c in plan.conditions
        ]
        heap: list[tuple[Any, int, dict[str, Any]]] = []

        async def pull(i: int) -> None:
            try:
                item = await anext(iterators[i])
            except StopAsyncIteration:
                return
            sort = item.get(attr)
            heapq.heappush(heap, (_Reverse(sort) if descending else sort, i, item))

        try:
            for i in range(len(iterators)):
                await pull(i)
            while heap:
                _, i, item = heapq.heappop(heap)
                yield item
                await pull(i)
        finally:
            for it in iterators:
                close = getattr(it, "aclose", None)
                if close is not None:
                    await close()

    async def page(
        self,
        target: Any,
        /,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        where: Where | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        descending: bool = False,
        consistent: bool = False,
        unknown: Unknown | None = None,
        **fields: Any,
    ) -> EntityPage[Any]:
        """One page of ``query(...)`` and the signed cursor of the next (``None`` at the
        end), for HTTP APIs. A plan of several ranges has no single cursor: it is refused.
        Give the same ``where``/``since``/``until`` with each cursor."""
        unknown = self.design.unknown if unknown is None else unknown
        check_unknown(unknown)
        plan = self._plan(target, fields, where, since, until)
        if plan.partitions is not None:
            if limit is None:
                raise ConfigurationError("a page over time buckets needs a limit")
            fanned = await self.table.query_partitions_page(
                plan.partitions,
                plan.sort_condition,
                limit=limit,
                cursor=cursor,
                descending=descending,
                consistent=consistent,
                ordered=plan.ordered,
                **self._query_args(plan),
            )
            convert = self._converter(plan, unknown, time.time())
            return EntityPage(convert(fanned.items), fanned.cursor)
        if plan.raw is None and len(plan.conditions) != 1:
            raise ConfigurationError(
                "this collection is read as several sort-key ranges, which one cursor cannot "
                "follow: iterate query(...) instead"
            )
        condition, args = self._single(plan)
        page = await self.table.query_page(
            condition,
            limit=limit,
            cursor=cursor,
            descending=descending,
            consistent=consistent,
            **args,
        )
        convert = self._converter(plan, unknown, time.time())
        return EntityPage(convert(page.items), page.cursor)

    async def scan(self, entity: type[E], /, *, segments: int | None = None) -> AsyncIterator[E]:
        """Every stored ``entity`` (a Scan with a filter on the type attribute: it reads
        the whole table; a query is the way when there is one)."""
        info = self._info(entity)
        if self.design.strict:
            raise UndeclaredAccess(
                f"design {self.design.name!r} is strict: a scan of {info.type_name} reads the "
                "whole table and is no access pattern (scan the raw table, repo.table.scan, "
                "where a full read is meant, e.g. an export)",
                self.design.name,
            )
        if not self.design.type_attribute:
            raise ConfigurationError("scan of one type needs the design's type_attribute")
        condition = Attr(self.design.type_attribute).is_in(list(info.names))
        source: Any = (
            self.table.scan(filter=condition)
            if segments is None
            else self.table.scan(filter=condition, segments=segments)
        )
        now = time.time()
        async for item in source:
            got = self._entity(info, item, now)
            if got is not _NO_ITEM:
                yield got


class _Reverse:
    """Orders sort keys backwards in the merge heap, for descending reads."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Reverse) -> bool:
        return bool(self.value > other.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reverse) and self.value == other.value
