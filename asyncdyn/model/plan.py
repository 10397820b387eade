"""Read plans: how a query of entity types under one partition is sent.

For the types asked for, the plan picks the least that reads only them:

1. the whole partition, no condition and no filter, when the design proves that no other
   type's partition template can produce that partition key;
2. otherwise each type's sort-key range (``begins_with`` its static prefix, or the range a
   ``where=`` gives), when no other type's sort template can produce a key in it; several
   ranges are read concurrently and merged in sort-key order;
3. a filter on the type attribute, the last resort, when the ranges cannot exclude others.

Proofs are cached per design and key declaration; they only depend on the templates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..errors import ConfigurationError, InvalidItem
from ..expressions import Key, KeyCondition
from .entity import EntityInfo
from .keys import EntityKey, NaturalKey
from .templates import TOP, could_overlap, could_start_with
from .where import Where

__all__ = ["Plan", "plan_read"]


@dataclass(slots=True)
class Plan:
    """One key condition per range (merged by ``sort_attribute`` when several), an
    optional type filter, and values excluded at a range's edge (``lt``/``gt``)."""

    index: str | None
    conditions: list[KeyCondition]
    type_names: tuple[str, ...] | None
    sort_attribute: str | None
    entities: tuple[EntityInfo, ...]
    exclude: tuple[str, Any] | None = None
    # A table query: the partition fields the query fixed (see Repository._accept).
    known: dict[str, Any] | None = None
    # Time buckets: the partition keys a where= range spans, read through the table's
    # fan-out (ordered), each with ``sort_condition``; ``conditions`` is empty then.
    partitions: list[str] | None = None
    sort_condition: KeyCondition | None = None
    # A multi-attribute index: the key condition as a raw expression with its names and
    # values (a KeyCondition has one partition and one sort part); ``conditions`` is empty.
    raw: tuple[str, dict[str, str], dict[str, Any]] | None = None
    # Partitions that hold consecutive sort-key ranges in order (time buckets), read one
    # after the other; shards are read together and merged.
    ordered: bool = True
    # The type ``exclude`` is about, in a collection where one member is ranged (the
    # others do not have the field).
    exclude_from: EntityInfo | None = None


def _others(design: Any, index: str | None, keys: Sequence[EntityKey]) -> list[EntityKey]:
    """Keys of other types on the same index whose partition template can produce the
    partition keys of ``keys`` (cached)."""
    cache_key = ("others", index, *map(id, keys))
    found: list[EntityKey] | None = design.proofs.get(cache_key)
    if found is None:
        members = {id(k.entity) for k in keys}
        found = []
        for info in design.entities:
            if id(info.cls) in members:
                continue
            other = info.key if index is None else info.indexes.get(index)
            if other is not None and could_overlap(other.pk, keys[0].pk):
                found.append(other)
        design.proofs[cache_key] = found
    # The cached list itself (callers only read it): its identity keys _exclusive's proofs.
    return found


def _exclusive(
    design: Any, others: list[EntityKey], prefix: str, exact: bool, key: EntityKey
) -> bool:
    """Whether no key of ``others`` can fall in the range: sort keys starting with
    ``prefix`` (or, ``exact``, the keys of ``key``'s own sort template)."""
    cache_key = ("exclusive", id(key), prefix, exact, id(others))
    known = design.proofs.get(cache_key)
    if known is None:
        known = True
        for other in others:
            if other.sk is None or key.sk is None:
                known = False
            elif exact:
                known = not could_overlap(other.sk, key.sk)
            else:
                known = bool(prefix) and not could_start_with(other.sk, prefix)
            if not known:
                break
        # Bounded: prefixes with values in them are per query; keep the cache small.
        if len(design.proofs) < 4096:
            design.proofs[cache_key] = known
    return bool(known)


def _sort_condition(
    key: EntityKey, values: Mapping[str, Any], where: Where | None
) -> tuple[KeyCondition | None, str, bool, tuple[str, Any] | None]:
    """(sort-key condition, static prefix it stays under, exact key, edge exclusion)."""
    sk = key.sk
    attr = key.sk_attribute
    if sk is None or attr is None:
        if where is not None:
            raise ConfigurationError(f"{key!r} has no sort key for where=")
        return None, "", False, None
    given = [n for n in sk.fields if n in values]
    first_missing = next((n for n in sk.fields if n not in values), None)
    # Fields after the first missing one cannot narrow a range: refuse them, rather than
    # silently ignore them.
    if first_missing is not None:
        late = [n for n in given if sk.fields.index(n) > sk.fields.index(first_missing)]
        if late:
            raise InvalidItem(
                f"{', '.join(late)} come after {first_missing} in the sort key {sk.text!r}: "
                f"give {first_missing} too, or leave them out",
                f"{sk.entity}.{late[0]}",
            )
    static = sk.prefix
    if where is None:
        if first_missing is None:
            return Key(attr).eq(sk.render(values)), static, True, None
        head = sk.head(values, first_missing)
        return (Key(attr).begins_with(head) if head else None), head, False, None
    if where.field != first_missing:
        raise InvalidItem(
            f"where= ranges the first sort-key field not given ({first_missing}), "
            f"not {where.field} (sort key {sk.text!r})",
            f"{sk.entity}.{where.field}",
        )
    head = sk.head(values, where.field)
    nxt = sk.after(where.field)

    def at(value: Any) -> str:
        return head + sk.render_value(where.field, value)

    def upto(value: Any) -> str:  # the last key whose field is ``value``
        return at(value) + nxt + TOP if nxt else at(value)

    def lower(low: str) -> KeyCondition:
        return Key(attr).between(low, head + TOP)

    def upper(high: str) -> KeyCondition:
        return Key(attr).between(head, high) if head else Key(attr).lte(high)

    op, vals = where.op, where.values
    exclude = None
    if op == "eq":
        cond = Key(attr).begins_with(at(vals[0]) + nxt) if nxt else Key(attr).eq(at(vals[0]))
    elif op == "begins_with":
        prefix = vals[0]
        text = head + (sk.render_value(where.field, prefix) if prefix != "" else "")
        cond = Key(attr).begins_with(text) if text else None  # type: ignore[assignment]
    elif op == "between":
        cond = Key(attr).between(at(vals[0]), upto(vals[1]))
    elif op in ("gte", "gt"):
        cond = lower(at(vals[0]))
        if op == "gt":
            exclude = (where.field, vals[0])
    elif op in ("lte", "lt"):
        cond = upper(upto(vals[0]))
        if op == "lt":
            exclude = (where.field, vals[0])
    else:  # pragma: no cover - FieldRef makes only these
        raise ConfigurationError(f"unknown where operation {op!r}")
    return cond, head or static, False, exclude


def _aware(value: Any, name: str, where: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidItem(
            f"{name}= bounds time buckets: a timezone-aware datetime, not {value!r}", where
        )
    return value


def _bucketed(
    design: Any,
    index: str | None,
    key: EntityKey,
    values: Mapping[str, Any],
    where: Where | None,
    field: str,
    since: datetime | None,
    until: datetime | None,
) -> tuple[str, Plan]:
    """A read of the datetime field ``field`` that a partition template buckets by
    (``"SENSOR#{sensor}#{at:%Y-%m}"``): one partition per bucket the range spans, read in
    order by the table's fan-out, each with the range as its sort-key condition.

    The buckets need both ends. A closed range (``between``, ``eq``) has them; an open one
    takes the missing end from ``since=``/``until=``, which only bound the buckets read
    (the sort-key condition stays the range's own); ``since=``/``until=`` alone read whole
    buckets. Nothing else bounds them: an open range without the matching keyword is
    refused, saying which one to add."""
    where_at = f"{key.pk.entity}.{field}"
    if since is not None:
        since = _aware(since, "since", where_at)
    if until is not None:
        until = _aware(until, "until", where_at)
    low: datetime | None = since
    high: datetime | None = until
    op = None if where is None else where.op
    if where is not None:
        for value in where.values if op != "begins_with" else ():
            _aware(value, "where", where_at)
    if op == "eq" or op == "between":
        assert where is not None
        first, last = where.values[0], where.values[-1]
        low = first if since is None else max(first, since)
        high = last if until is None else min(last, until)
    elif op in ("gte", "gt"):
        assert where is not None
        low = where.values[0] if since is None else max(where.values[0], since)
    elif op in ("lte", "lt"):
        assert where is not None
        bound = where.values[0]
        if op == "lt":
            bound -= timedelta(microseconds=1)  # a bound on a bucket's start needs no read of it
        high = bound if until is None else min(bound, until)
    lacking = [n for n, v in (("since", low), ("until", high)) if v is None]
    if lacking:
        what = "a read" if where is None else f"where= {op}"
        raise ConfigurationError(
            f"{where_at} picks the partition of {key.pk.text!r}, and {what} leaves the time "
            f"buckets unbounded: add {' and '.join(f'{n}=<datetime>' for n in lacking)} "
            "(the buckets to read), or give a closed range (between)"
        )
    assert low is not None and high is not None
    if high < low:
        raise ConfigurationError(
            f"{where_at}: the buckets to read end ({high.isoformat()}) before they start "
            f"({low.isoformat()}); check since=/until= against where="
        )
    partitions = key.pk.buckets(values, field, low, high)
    cond, prefix, exact, exclude = _sort_condition(key, values, where)
    entities = (key.info,)
    others = _others(design, index, [key])
    alone = not others or _exclusive(design, others, prefix, exact, key)
    names = None if alone else entities[0].names
    known = None if index is not None else {n: values[n] for n in key.pk.fields if n in values}
    plan = Plan(index, [], names, key.sk_attribute, entities, exclude, known, partitions, cond)
    return partitions[0], plan


def _collection_ranges(
    design: Any,
    keys: Sequence[EntityKey],
    values: Mapping[str, Any],
    where: Where,
    others: list[EntityKey],
    collection: str,
) -> tuple[list[KeyCondition], bool, tuple[str, Any] | None, EntityInfo]:
    """A collection read with ``where=`` on one member: that member's range narrowed by it,
    every other member's whole (``begins_with`` its sort-key prefix), read side by side and
    merged. Returns (sort conditions, whether a type filter is needed, edge exclusion,
    the ranged member).

    Refused when the ranges cannot be kept apart (a member's keys inside another's
    range): the narrowed member would come back whole through the other range."""
    ranged = next((k for k in keys if k.entity is where.entity), None)
    shown = f"{getattr(where.entity, '__name__', '?')}.{where.field}"
    if ranged is None:
        members = ", ".join(k.info.type_name for k in keys)
        raise InvalidItem(
            f"where= is on {where.entity.__name__}, which is not a member of collection "
            f"{collection!r} ({members})",
            shown,
        )
    if ranged.sk is None or where.field not in ranged.sk.fields:
        sort = "no sort key" if ranged.sk is None else f"its sort key is {ranged.sk.text!r}"
        raise InvalidItem(
            f"collection {collection!r}: where= narrows a member's sort-key range, and "
            f"{where.field} is in no member's sort key ({sort}); filter the results, or query "
            "an index whose sort key holds it",
            shown,
        )
    cond, head, exact, exclude = _sort_condition(ranged, values, where)
    attr = ranged.sk_attribute
    assert attr is not None
    whole = [k for k in keys if k is not ranged]
    for k in whole:
        prefix = "" if k.sk is None else k.sk.prefix
        if (
            not prefix
            or could_start_with(ranged.sk, prefix)
            or not head
            or could_start_with(k.sk, head)  # type: ignore[arg-type]
        ):
            theirs = "none" if k.sk is None else repr(k.sk.text)
            raise ConfigurationError(
                f"collection {collection!r}: the sort keys of {k.entity.__name__} ({theirs}) "
                f"and of {ranged.entity.__name__} ({ranged.sk.text!r}) share a range, so "
                f"where= on {shown} cannot narrow one without the other: query "
                f"{ranged.entity.__name__} with where= and the others apart"
            )
    prefixes = sorted({k.sk.prefix for k in whole if k.sk is not None})
    kept = [p for p in prefixes if not any(p != q and p.startswith(q) for q in prefixes)]
    conditions = [Key(attr).begins_with(p) for p in kept]
    conditions.append(Key(attr).begins_with(head) if cond is None else cond)
    filtered = bool(others) and not (
        _exclusive(design, others, head, exact, ranged)
        and all(_exclusive(design, others, k.sk.prefix, False, k) for k in whole if k.sk)
    )
    return conditions, filtered, exclude, ranged.info


_RAW_OPS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">=", "eq": "="}


def plan_natural(
    design: Any, key: NaturalKey, values: Mapping[str, Any], where: Where | None
) -> Plan:
    """A query of a multi-attribute index: an equality on every partition attribute, then
    equalities on the sort attributes given, left to right, and at most one range (``where=``)
    on the next one, as DynamoDB requires."""
    info: EntityInfo = design.info(key.entity)
    owner = info.type_name
    missing = [f for f in key.pk_fields if f not in values]
    if missing:
        raise InvalidItem(
            f"index {key.index!r} is partitioned by {', '.join(key.pk_fields)}: "
            f"give {', '.join(missing)}",
            f"{owner}.{missing[0]}",
        )
    extra = [f for f in values if f not in key.fields]
    if extra:
        raise InvalidItem(
            f"{', '.join(extra)} are not key attributes of index {key.index!r}",
            f"{owner}.{extra[0]}",
        )
    parts: list[str] = []
    names: dict[str, str] = {}
    raw: dict[str, Any] = {}

    def encoded(name: str, value: Any) -> Any:
        f = info.fields[name]
        if value is None:
            raise InvalidItem("None is no key value", f"{owner}.{name}")
        return info.encode_fields({name: value})[f.stored]

    def term(name: str, op: str, *operands: Any) -> None:
        n = f"#k{len(names)}"
        names[n] = info.fields[name].stored
        slots = []
        for operand in operands:
            v = f":k{len(raw)}"
            raw[v] = encoded(name, operand)
            slots.append(v)
        if op == "between":
            parts.append(f"{n} BETWEEN {slots[0]} AND {slots[1]}")
        elif op == "begins_with":
            parts.append(f"begins_with({n}, {slots[0]})")
        else:
            parts.append(f"{n} {_RAW_OPS[op]} {slots[0]}")

    for name in key.pk_fields:
        term(name, "eq", values[name])
    ranged = False
    for name in key.sk_fields:
        if name in values and not ranged:
            term(name, "eq", values[name])
        elif where is not None and where.field == name and not ranged:
            term(name, where.op, *where.values)
            ranged = True
        elif name in values:
            raise InvalidItem(
                f"{name} follows a range in the sort key of {key.index!r}: an equality on it "
                "cannot be combined",
                f"{owner}.{name}",
            )
        else:
            break
    if where is not None and not ranged:
        raise InvalidItem(
            f"where= ranges the next sort attribute of {key.index!r} not given, not {where.field}",
            f"{owner}.{where.field}",
        )
    given_sk = [n for n in key.sk_fields if n in values]
    if given_sk != list(key.sk_fields[: len(given_sk)]):
        raise InvalidItem(
            f"the sort attributes of {key.index!r} are compared left to right "
            f"({', '.join(key.sk_fields)}): give a prefix of them",
            f"{owner}.{given_sk[0]}",
        )
    # Other entities declared on the same index share it: only a type filter tells them.
    shared = any(key.index in other.natural for other in design.entities if other is not info)
    return Plan(
        key.index,
        [],
        info.names if shared else None,
        None,
        (info,),
        raw=(" AND ".join(parts), names, raw),
    )


def plan_read(
    design: Any,
    index: str | None,
    keys: Sequence[EntityKey],
    values: Mapping[str, Any],
    where: Where | None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    collection: str = "",
) -> tuple[str, Plan]:
    """(partition key value, plan) for reading ``keys``' entities under ``values``
    (``collection`` names them when they are one, for errors); ``since``/``until`` bound
    the time buckets a bucketed partition is read over."""
    first = keys[0]
    owner: EntityInfo = first.info
    if len(keys) == 1 and not values.keys() <= first.field_set:
        # A field that is not part of this key would be a filter: refuse it rather than
        # ignore it (the caller meant to narrow the read).
        allowed = {*first.fields, *(f.spec.shard_of for f in owner.shards)}
        stray = [n for n in values if n not in allowed]
        if stray:
            raise InvalidItem(
                f"{', '.join(stray)} are not in the key {first!r}: a query reads by key "
                "fields only (query an index keyed by them, or filter the results)",
                f"{owner.type_name}.{stray[0]}",
            )
    if owner.shards:
        values = owner.with_shards(values)
    missing = first.pk.missing(values)
    if (
        len(keys) == 1
        and len(missing) == 1
        and (where.field == missing[0] if where is not None else (since or until) is not None)
    ):
        return _bucketed(design, index, first, values, where, missing[0], since, until)
    if since is not None or until is not None:
        raise ConfigurationError(
            f"since=/until= bound the time buckets of a partition template bucketed by a "
            f"datetime (and left out of the query); {first.pk.text!r} is not read that way here"
        )
    # A shard field not computable (its source not given): every shard is read.
    shards: list[str] | None = None
    shard_field = next((f for f in owner.shards if missing == [f.name]), None)
    if shard_field is not None:
        shards = [
            first.pk.render({**values, shard_field.name: n}) for n in range(shard_field.spec.shards)
        ]
        values = {**values, shard_field.name: 0}  # planned as shard 0; sent to every shard
        missing = []
    if missing:
        raise InvalidItem(
            f"the partition {first.pk.text!r} needs {', '.join(missing)}",
            f"{first.pk.entity}.{missing[0]}",
        )
    partition = first.pk.render(values)
    others = _others(design, index, keys)
    entities = (owner,) if len(keys) == 1 else tuple(k.info for k in keys)
    names = owner.names if len(keys) == 1 else tuple(n for e in entities for n in e.names)
    pk_cond = Key(first.pk_attribute).eq(partition)
    known = None
    if index is None:
        known = {n: values[n] for n in first.pk.fields}
        if shard_field is not None:
            del known[shard_field.name]  # each shard's own: read from the item

    def finish(
        sorts: list[KeyCondition | None],
        type_names: tuple[str, ...] | None,
        exclude: tuple[str, Any] | None = None,
        exclude_from: EntityInfo | None = None,
    ) -> tuple[str, Plan]:
        attr = first.sk_attribute
        if shards is not None:
            if len(sorts) > 1 and exclude_from is not None:
                raise ConfigurationError(
                    f"collection {collection!r} spans shards, each read with one sort-key "
                    f"condition: where= cannot narrow one member of it; query "
                    f"{exclude_from.type_name} with where= and the others apart"
                )
            if len(sorts) > 1:
                # One sort condition goes to every shard: several ranges become the type
                # filter over the whole partition.
                sorts, type_names = [None], names
            plan = Plan(index, [], type_names, attr, entities, exclude, known, shards, sorts[0])
            plan.ordered = False
            plan.exclude_from = exclude_from
            return partition, plan
        conditions = [pk_cond if s is None else pk_cond & s for s in sorts]
        plan = Plan(index, conditions, type_names, attr, entities, exclude, known)
        plan.exclude_from = exclude_from
        return partition, plan

    if len(keys) == 1:
        cond, prefix, exact, exclude = _sort_condition(first, values, where)
        alone = not others or _exclusive(design, others, prefix, exact, first)
        return finish([cond], None if alone else names, exclude)
    extra = [n for n in values if n not in first.pk.fields]
    if extra:
        raise InvalidItem(f"a collection is read by its partition fields only, not {extra}")
    if where is not None:
        sorts, filtered, exclude, ranged = _collection_ranges(
            design, keys, values, where, others, collection
        )
        # The edge exclusion (gt/lt) is the ranged member's only: the others lack the field.
        return finish(list(sorts), names if filtered else None, exclude, ranged)
    if not others:
        return finish([None], None)
    prefixes = sorted({k.sk.prefix if k.sk is not None else "" for k in keys})
    if all(prefixes) and all(
        _exclusive(design, others, k.sk.prefix, False, k) for k in keys if k.sk is not None
    ):
        # A prefix that starts with another one is already read by that one's range.
        kept = [p for p in prefixes if not any(p != q and p.startswith(q) for q in prefixes)]
        attr = first.sk_attribute
        assert attr is not None
        return finish([Key(attr).begins_with(p) for p in kept], None)
    return finish([None], names)
