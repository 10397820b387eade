"""Access patterns: ``design.pattern(name, target, **fixed_fields)``, declared once, checked by
``design.check()`` and run by the repository.

A pattern names one read the application makes and what it is given: an entity's table key
(``pattern("orders of a customer", Order)``), an index accessor (``Order.by_status``), a
collection, or a *requirement* the design has to meet (``pattern("customer by email",
Customer, by=("email",))``, ``pattern("order with its items", (Order, OrderItem),
by=("order_id",))``) for which the design finds the key, index or collection that serves it.
``range=`` names the sort-key field a ``where=`` narrows; fixed fields are constants of the
pattern (``status="PENDING"``). ``resolve`` is the one place that decides which declared key
serves a pattern, so the check, ``repo.run`` and strict mode agree on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, InvalidItem
from .collection import Collection
from .entity import EntityInfo, info_of
from .keys import EntityKey, NaturalKey
from .where import FieldRef, Where

if TYPE_CHECKING:
    from .design import Design

__all__ = ["Access", "Pattern", "declared_pattern"]

# A resolved pattern reads one of these.
Access = type | EntityKey | NaturalKey | Collection


class Pattern:
    """One declared access pattern (see the module docstring); ``repo.run(pattern, **values)``
    and ``repo.page(pattern, ...)`` read it."""

    __slots__ = (
        "_explicit",
        "_inputs",
        "_resolved",
        "allow",
        "by",
        "design",
        "fixed",
        "name",
        "range",
        "reads_per_second",
        "target",
        "types",
        "writes_per_second",
    )

    def __init__(
        self,
        design: Design,
        name: str,
        target: Any,
        *,
        by: Iterable[str] | None,
        range: object,
        writes_per_second: float | None,
        reads_per_second: float | None,
        allow: Mapping[str, str] | None,
        fixed: Mapping[str, Any],
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError("a pattern's name is a non-empty str")
        types: tuple[EntityInfo, ...]
        if isinstance(target, tuple):
            if not target:
                raise ConfigurationError(f"pattern {name!r}: no entity types")
            types = tuple(design.info(t) for t in target)
            if by is None:
                raise ConfigurationError(
                    f"pattern {name!r} reads several types: say what it is given (by=...)"
                )
        elif isinstance(target, Collection):
            if target.design is not design:
                raise ConfigurationError(f"pattern {name!r}: collection of another design")
            types = target.entities
        elif isinstance(target, EntityKey | NaturalKey):
            if target.entity is None:
                raise ConfigurationError(f"pattern {name!r}: {target!r} is no entity's yet")
            types = (design.info(target.entity),)
        elif isinstance(target, type):
            types = (design.info(target),)
        else:
            raise ConfigurationError(
                f"pattern {name!r}: the target is an entity, an index accessor, a collection "
                f"or a tuple of entities, not {target!r}"
            )
        known = set().union(*(set(t.fields) for t in types))
        for f in fixed:
            if f not in known:
                raise ConfigurationError(f"pattern {name!r}: no field {f!r} to fix")
        ranged: str | None
        if isinstance(range, FieldRef):
            if all(range.entity is not t.cls for t in types):
                raise ConfigurationError(
                    f"pattern {name!r}: range={range!r} is no field of what it reads"
                )
            ranged = range.name
        elif range is None or isinstance(range, str):
            ranged = range
        else:
            raise ConfigurationError(
                f"pattern {name!r}: range is a field (Order.placed_at) or its name, not {range!r}"
            )
        if ranged is not None and ranged not in known:
            raise ConfigurationError(f"pattern {name!r}: no field {ranged!r} to range")
        for rate, what in ((writes_per_second, "writes"), (reads_per_second, "reads")):
            if rate is not None and (
                isinstance(rate, bool)
                or not isinstance(rate, int | float)
                or not (rate > 0 and math.isfinite(rate))
            ):
                raise ConfigurationError(f"pattern {name!r}: {what}_per_second is > 0")
        allowed = dict(allow or {})
        for code, reason in allowed.items():
            if not isinstance(reason, str) or not reason.strip():
                raise ConfigurationError(
                    f"pattern {name!r}: allow={{{code!r}: ...}} needs the reason, as a str"
                )
        self.design = design
        self.name = name
        self.target = target
        self.types = types
        self.fixed = dict(fixed)
        self.range = ranged
        self.writes_per_second = writes_per_second
        self.reads_per_second = reads_per_second
        self.allow = allowed
        # (entities, collections) counted when resolved, and what it resolved to: a design
        # only grows, so the counts say whether the answer may have changed.
        self._resolved: tuple[tuple[int, int], Access | None] | None = None
        default = () if isinstance(target, tuple) else tuple(self._default_inputs(target))
        self.by: tuple[str, ...] = tuple(by) if by is not None else default
        self._inputs = frozenset(self.inputs)
        # An entity with other inputs than its table key's, or a tuple of entities, is a
        # requirement the design resolves; anything else names what it reads.
        self._explicit = not isinstance(target, tuple) and not (
            isinstance(target, type) and self.by != default
        )

    def _default_inputs(self, target: Any) -> list[str]:
        """The partition fields of an explicit target, less the fixed ones."""
        if isinstance(target, Collection):
            names: tuple[str, ...] = target.fields
        elif isinstance(target, EntityKey):
            names = target.pk.fields
        elif isinstance(target, NaturalKey):
            names = target.pk_fields
        else:
            names = info_of(target).key.pk.fields
        info = self.types[0]
        shard_fields = {f.name: f.spec.shard_of for f in info.shards}
        out = []
        for n in names:
            source = shard_fields.get(n)
            if source is not None:  # a shard is computed from its source, or read all
                n = source
            if n == self.range:
                continue  # a time-bucket field: the range picks the buckets
            if n not in self.fixed and n not in out:
                out.append(n)
        return out

    def __repr__(self) -> str:
        return f"<pattern {self.name!r}>"

    @property
    def inputs(self) -> tuple[str, ...]:
        """Every field the read is keyed by: the fixed ones and those given at run time."""
        return (*self.fixed, *[n for n in self.by if n not in self.fixed])

    @property
    def explicit(self) -> bool:
        """Whether the pattern names the key it reads (else the design finds one)."""
        return self._explicit

    def resolve(self) -> Access | None:
        """The declared key, index accessor or collection that serves the pattern by a key
        condition alone, or ``None`` when the design has none (``design.check()`` says why)."""
        if self.explicit:
            return self.target  # type: ignore[no-any-return]
        state = (len(self.design.entities), len(self.design.collections))
        if self._resolved is None or self._resolved[0] != state:
            self._resolved = (state, self._find())
        return self._resolved[1]

    def _find(self) -> Access | None:
        inputs = set(self.inputs)
        if isinstance(self.target, tuple):
            wanted = {id(t) for t in self.types}
            for collection in self.design.collections.values():
                if {id(e) for e in collection.entities} == wanted and inputs == set(
                    collection.fields
                ):
                    return collection
            return None
        info = self.types[0]
        candidates: list[Access] = [info.cls, *info.indexes.values(), *info.natural.values()]
        for access in candidates:
            if key_problem(self, access) is None:
                return access
        return None

    def bind(
        self, values: Mapping[str, Any], where: Where | None
    ) -> tuple[Access, dict[str, Any], Where | None]:
        """(what to query, its fields, its range) for one run of the pattern."""
        access = self.resolve()
        if access is None:
            raise ConfigurationError(
                f"pattern {self.name!r} has no key condition that serves it in design "
                f"{self.design.name!r}: run design.check() for the fix"
            )
        extra = [n for n in values if n not in self.by]
        if extra:
            raise InvalidItem(
                f"pattern {self.name!r} is given {', '.join(self.by) or 'nothing'}, "
                f"not {', '.join(extra)}",
                f"{self.types[0].type_name}.{extra[0]}",
            )
        missing = [n for n in self.by if n not in values]
        if missing:
            raise InvalidItem(
                f"pattern {self.name!r} is given {', '.join(self.by)}: "
                f"{', '.join(missing)} missing",
                f"{self.types[0].type_name}.{missing[0]}",
            )
        if where is not None and where.field != self.range:
            raise InvalidItem(
                f"pattern {self.name!r} ranges "
                + (f"{self.range}" if self.range else "no field")
                + f", not {where.field}",
                f"{self.types[0].type_name}.{where.field}",
            )
        return access, {**self.fixed, **values}, where

    def matches(self, target: Any, fields: Mapping[str, Any], where: Where | None) -> bool:
        """Whether a query of ``target`` with ``fields`` and ``where`` is this pattern
        (strict designs refuse queries that are no declared pattern)."""
        access = self.resolve()
        if access is None:
            return False
        if _table_key(access) is not _table_key(target):
            return False
        return self._fits(fields, where)

    def _fits(self, fields: Mapping[str, Any], where: Where | None) -> bool:
        if len(fields) != len(self._inputs) or not self._inputs.issuperset(fields):
            return False
        for name, value in self.fixed.items():
            if fields[name] != value:
                return False
        return where is None or where.field == self.range


def declared_pattern(
    design: Design, target: Any, fields: Mapping[str, Any], where: Where | None
) -> Pattern | None:
    """The declared pattern a query is, if any (what strict designs require). The patterns
    are indexed by what they read, once per state of the design (it only grows), so a strict
    query costs a dict lookup and a compare, not a walk over every pattern."""
    state = (len(design.entities), len(design.collections), len(design.patterns))
    cached = design.pattern_lookup
    if cached is None or cached[0] != state:
        lookup: dict[int, list[Pattern]] = {}
        for pattern in design.patterns.values():
            access = pattern.resolve()
            if access is not None:
                lookup.setdefault(id(_table_key(access)), []).append(pattern)
        cached = design.pattern_lookup = (state, lookup)
    for pattern in cached[1].get(id(_table_key(target)), ()):
        if pattern._fits(fields, where):
            return pattern
    return None


def _table_key(target: Any) -> Any:
    """An entity class stands for its table key (``Order`` and ``Order.key`` read alike)."""
    return info_of(target).key if isinstance(target, type) else target


def key_problem(pattern: Pattern, access: Access) -> str | None:
    """Why a key condition on ``access`` cannot serve ``pattern`` given its inputs and range,
    or ``None`` when it can (the same rules the read plans apply)."""
    inputs = list(pattern.inputs)
    ranged = pattern.range
    if isinstance(access, Collection):
        pk_fields = list(access.fields)
        missing = [n for n in pk_fields if n not in inputs]
        if missing:
            return f"its partition needs {', '.join(missing)}"
        extra = [n for n in inputs if n not in pk_fields]
        if extra:
            return f"a collection is read by its partition fields only, not {', '.join(extra)}"
        if ranged is not None:
            # A range narrows the member whose sort key starts (after the partition's
            # fields) with the ranged field; the others are read whole.
            firsts = {
                next((n for n in k.sk.fields if n not in pk_fields), None)
                for k in access.keys
                if k.sk is not None
            }
            if ranged not in firsts:
                return (
                    f"a range on {ranged} needs it to be the first sort-key field of a member "
                    "of the collection: it would be a FilterExpression"
                )
        return None
    if isinstance(access, NaturalKey):
        pk: tuple[str, ...] = access.pk_fields
        sk: tuple[str, ...] = access.sk_fields
        bucketed: set[str] = set()
        shard_sources: dict[str, str] = {}
    else:
        key = info_of(access).key if isinstance(access, type) else access
        info = info_of(key.entity)
        pk = key.pk.fields
        sk = () if key.sk is None else key.sk.fields
        bucketed = {n for n in pk if key.pk.spec_of(n) and key.pk.kinds.get(n) is datetime}
        shard_sources = {f.name: f.spec.shard_of or "" for f in info.shards}
    missing = []
    for n in pk:
        if n in inputs:
            continue
        if n in shard_sources:
            continue  # the source computes it, or every shard is read
        if n == ranged and n in bucketed:
            continue  # the range picks the time buckets
        missing.append(n)
    if missing:
        return f"its partition needs {', '.join(missing)}, which the pattern is not given"
    sources = set(shard_sources.values())
    rest = [n for n in inputs if n not in pk and n not in sources]
    stray = [n for n in rest if n not in sk]
    if stray:
        return f"{', '.join(stray)} are not in its key: they would be a FilterExpression"
    given = [n for n in sk if n in rest]
    if given != list(sk[: len(given)]):
        return f"its sort key {', '.join(sk)} is compared left to right: give a prefix of it"
    if ranged is not None and ranged not in pk:
        nxt = sk[len(given)] if len(given) < len(sk) else None
        if ranged != nxt:
            return (
                f"a range on {ranged} needs it to be the next sort-key field after the "
                f"given ones (here {nxt or 'none'}): it would be a FilterExpression"
            )
    return None
