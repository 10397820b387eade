"""``design.check(described=None) -> DesignReport``: the design proved against its access
patterns, against itself and, when given, against the live table.

What is reported (``Finding.code``), and why each is worth a line:

* ``unservable`` (error): a pattern no key condition can serve; it would need a Scan or a
  FilterExpression. The suggestion names the nearest fix: a collection, an index key.
* ``needs-filter`` (error): a pattern whose key range also holds another type's keys, so the
  read would filter on the type attribute (the plans' last resort).
* ``key-collision`` (error on the table, where one type's put overwrites the other's item;
  warning on an index) and ``prefix-overlap`` (warning): two types whose templates can make
  the same key, or whose sort-key prefix range holds the other's keys.
* ``index-map`` and ``sparse-map`` (info): which types land in each index with which
  templates (the overloading map, like a facet view), and which never write its keys.
* ``projection-gap``: a KEYS_ONLY/INCLUDE index a pattern reads that lacks fields its entity
  needs (error for a required field: the read fails; warning for one with a default: it
  would read back as the default).
* ``live-*`` (errors): against DescribeTable: missing indexes, other key attribute names,
  types or order.
* ``hot-key-constant``, ``hot-key-enum``, ``hot-key-bucket``: a partition template every
  write of a type (or of one value) goes to; warnings, errors when a pattern's stated rate
  is above DynamoDB's per-partition limits (1,000 WCU/s, 3,000 RCU/s). Each comes with a
  ``WriteSharding(..., shards=n)`` suggestion and the cost of reading it back (n queries).

A pattern's ``allow={"code": "reason"}`` accepts findings of that code on what it reads;
they move to ``DesignReport.allowed`` with the reason and no longer block.
"""

from __future__ import annotations

import enum
import json
import math
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from .collection import Collection
from .entity import EntityInfo, FieldInfo, info_of
from .fields import MISSING
from .keys import EntityKey, NaturalKey
from .patterns import Access, Pattern, key_problem
from .templates import Template, could_overlap, could_reach

if TYPE_CHECKING:
    from .design import Design

__all__ = ["DesignReport", "Finding", "check_design"]

Severity = Literal["error", "warning", "info"]
_ORDER = {"error": 0, "warning": 1, "info": 2}
# DynamoDB's throughput limits of one partition (per second).
WRITE_LIMIT = 1000
READ_LIMIT = 3000
# Field names that usually hold a handful of values (a status, a type...).
_LOW_CARDINALITY = re.compile(
    r"(^|_)(status|state|type|kind|category|stage|phase|level|priority|flag|tier|gender)$"
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing the check found, with the names involved (``index=None``: the table)."""

    severity: Severity
    code: str
    message: str
    pattern: str | None = None
    entities: tuple[str, ...] = ()
    index: str | None = None
    template: str | None = None
    suggestion: str | None = None
    allowed: str | None = None  # the reason, when a pattern's allow= accepted it

    @property
    def entity(self) -> str | None:
        """The first entity type involved."""
        return self.entities[0] if self.entities else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "pattern": self.pattern,
            "entities": list(self.entities),
            "index": self.index,
            "template": self.template,
            "suggestion": self.suggestion,
        }
        if self.allowed is not None:
            out["allowed"] = self.allowed
        return out

    def line(self) -> str:
        where = []
        if self.pattern:
            where.append(f"pattern {self.pattern!r}")
        if self.entities:
            where.append(", ".join(self.entities))
        where.append(self.index or "table")
        text = f"{self.severity:7} {self.code}: {self.message} [{'; '.join(where)}]"
        if self.suggestion:
            text += f"\n        fix: {self.suggestion}"
        if self.allowed:
            text += f"\n        allowed: {self.allowed}"
        return text


@dataclass(slots=True)
class DesignReport:
    """The findings of ``design.check()``; only ``errors`` block (``ok`` is their absence)."""

    design: str
    findings: list[Finding]
    allowed: list[Finding]
    # index name ("table" for the table) -> one row per entity type keyed there.
    maps: dict[str, list[dict[str, Any]]]
    live: bool = False

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def infos(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "info"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def codes(self, severity: Severity | None = None) -> list[str]:
        """The codes found (of one severity), for tests and scripts."""
        return [f.code for f in self.findings if severity is None or f.severity == severity]

    def summary(self) -> str:
        def count(n: int, what: str) -> str:
            return f"{n} {what}" + ("" if n == 1 else "s")

        return (
            f"design {self.design}: {count(len(self.errors), 'error')}, "
            f"{count(len(self.warnings), 'warning')}, {len(self.infos)} info, "
            f"{len(self.allowed)} allowed"
            + (" (checked against the live table)" if self.live else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "design": self.design,
            "ok": self.ok,
            "live": self.live,
            "counts": {
                "error": len(self.errors),
                "warning": len(self.warnings),
                "info": len(self.infos),
                "allowed": len(self.allowed),
            },
            "findings": [f.to_dict() for f in self.findings],
            "allowed": [f.to_dict() for f in self.allowed],
            "indexes": self.maps,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_text(self) -> str:
        lines = [self.summary()]
        lines += [f.line() for f in self.findings]
        lines += [f.line() for f in self.allowed]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        def cell(text: str | None) -> str:
            return (text or "").replace("|", "\\|").replace("\n", " ")

        out = [f"# Design check: {self.design}", "", f"**{self.summary()}**", ""]
        if self.findings or self.allowed:
            out += [
                "| severity | code | pattern | entities | index | message | fix |",
                "|---|---|---|---|---|---|---|",
            ]
            for f in [*self.findings, *self.allowed]:
                severity = f"{f.severity} (allowed: {f.allowed})" if f.allowed else f.severity
                out.append(
                    f"| {cell(severity)} | {f.code} | {cell(f.pattern)} | "
                    f"{cell(', '.join(f.entities))} | {f.index or 'table'} | {cell(f.message)} | "
                    f"{cell(f.suggestion)} |"
                )
            out.append("")
        for index, rows in self.maps.items():
            out += [f"## {index}", "", "| type | partition key | sort key | sparse |"]
            out.append("|---|---|---|---|")
            for row in rows:
                out.append(
                    f"| {row['entity']} | `{cell(row['pk'])}` | `{cell(row['sk'])}` | "
                    f"{cell(row['sparse'])} |"
                )
            out.append("")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.to_text()


def check_design(design: Design, described: Mapping[str, Any] | None = None) -> DesignReport:
    """Every check of the module docstring, in a stable order (errors first)."""
    found: list[Finding] = []
    live = _LiveTable(described) if described is not None else None
    if live is not None:
        found += _check_live(design, live)
    for pattern in design.patterns.values():
        found += _check_pattern(design, pattern, live)
    found += _check_templates(design)
    maps, mapped = _index_maps(design)
    found += mapped
    found += _check_hot_keys(design)
    findings: list[Finding] = []
    allowed: list[Finding] = []
    for f in found:
        reason = _allowed(design, f)
        if reason is None:
            findings.append(f)
        else:
            allowed.append(replace(f, allowed=reason))
    findings.sort(key=lambda f: _ORDER[f.severity])
    return DesignReport(design.name, findings, allowed, maps, live is not None)


# -- what a pattern reads ---------------------------------------------------------------


def _where(access: Access) -> tuple[str | None, list[EntityInfo]]:
    """(index, entity types) of an access."""
    if isinstance(access, Collection):
        return access.index, list(access.entities)
    if isinstance(access, EntityKey | NaturalKey):
        return access.index, [info_of(access.entity)]
    return None, [info_of(access)]


def _key_of(access: Access) -> EntityKey | NaturalKey | None:
    if isinstance(access, EntityKey | NaturalKey):
        return access
    if isinstance(access, type):
        return info_of(access).key
    return None


def _keys_on(design: Design, index: str | None) -> list[tuple[EntityInfo, EntityKey]]:
    out = []
    for info in design.entities:
        key = info.key if index is None else info.indexes.get(index)
        if key is not None:
            out.append((info, key))
    return out


def _allowed(design: Design, finding: Finding) -> str | None:
    for pattern in design.patterns.values():
        reason = pattern.allow.get(finding.code)
        if reason is None:
            continue
        if finding.pattern is not None:
            if finding.pattern == pattern.name:
                return reason
            continue
        access = pattern.resolve()
        if access is None:
            continue
        index, types = _where(access)
        names = {t.type_name for t in types}
        if index == finding.index and names & set(finding.entities):
            return reason
    return None


def _check_pattern(design: Design, pattern: Pattern, live: _LiveTable | None) -> list[Finding]:
    names = tuple(t.type_name for t in pattern.types)
    access = pattern.resolve()
    problem = None if access is None else key_problem(pattern, access)
    if access is None or problem is not None:
        if access is None:
            given = ", ".join(pattern.inputs) or "nothing"
            if len(pattern.types) > 1:
                why = f"no collection of {', '.join(names)} is read by {given}"
            else:
                why = f"no key or index of {names[0]} is keyed by {given}"
        else:
            why = f"{_describe(access)}: {problem}"
        return [
            Finding(
                "error",
                "unservable",
                f"no key condition serves it ({why}); it would need a Scan or a FilterExpression",
                pattern.name,
                names,
                None if access is None else _where(access)[0],
                suggestion=_suggest(design, pattern),
            )
        ]
    out: list[Finding] = []
    index, types = _where(access)
    shared = _filter_needed(design, pattern, access)
    if shared:
        out.append(
            Finding(
                "error",
                "needs-filter",
                f"{_describe(access)} also holds {', '.join(shared)} keys in the range it "
                "reads: the read would filter on the type attribute",
                pattern.name,
                (*names, *shared),
                index,
                _template_of(access),
                suggestion=(
                    f"give {names[0]}'s sort key a literal prefix that no key of "
                    f"{', '.join(shared)} starts with"
                ),
            )
        )
    if index is not None:
        projection = design.projections.get(index, "ALL")
        if live is not None and index in live.indexes:
            projection = live.indexes[index]["projection"]
        if projection != "ALL":
            for info in types:
                out += _projection_gap(design, pattern, info, index, projection)
    return out


def _describe(access: Access) -> str:
    if isinstance(access, Collection):
        return f"collection {access.name!r}"
    if isinstance(access, type):
        return f"{access.__name__}'s table key"
    return repr(access).strip("<>")


def _template_of(access: Access) -> str | None:
    key = _key_of(access)
    if isinstance(key, EntityKey):
        return key.pk.text + ("" if key.sk is None else f" / {key.sk.text}")
    if isinstance(access, Collection):
        return access.keys[0].pk.text
    return None


def _suggest(design: Design, pattern: Pattern) -> str:
    """The nearest fix for an unservable pattern."""
    inputs = set(pattern.inputs)
    types = pattern.types
    if len(types) > 1:
        # Key spaces where every type has one partition template over the inputs: a
        # collection is all that is missing.
        spaces: list[str | None] = [None, *design.indexes]
        for index in spaces:
            keys = [t.key if index is None else t.indexes.get(index) for t in types]
            if all(k is not None for k in keys):
                texts = {k.pk.text for k in keys if k is not None}
                if len(texts) == 1 and set(keys[0].pk.fields) <= inputs:  # type: ignore[union-attr]
                    members = ", ".join(t.cls.__name__ for t in types)
                    on = "" if index is None else f", index={index!r}"
                    return f'declare design.collection("{pattern.name}", {members}{on})'
        # Where some of the types already have a partition over the inputs: write the
        # others there too (the playbook's fix for "an order with its items").
        for index in spaces:
            keyed = [
                (t, t.key if index is None else t.indexes.get(index))
                for t in types
                if (t.key if index is None else t.indexes.get(index)) is not None
            ]
            for _, key in keyed:
                assert key is not None
                if set(key.pk.fields) <= inputs and index is not None:
                    lacking = [t for t in types if t.indexes.get(index) is None]
                    if not lacking:
                        continue
                    adds = "; ".join(
                        f"on {t.cls.__name__}: design.index({index!r}, "
                        f"pk={key.pk.text!r}, sk={_sort_for(t, key)!r})"
                        for t in lacking
                    )
                    members = ", ".join(t.cls.__name__ for t in types)
                    return (
                        f"write {', '.join(t.type_name for t in lacking)} into {index} under "
                        f"{key.pk.text!r} ({adds}) and declare "
                        f'design.collection("{pattern.name}", {members}, index={index!r})'
                    )
        return (
            "give every type one partition template over "
            f"{', '.join(sorted(inputs))} (on the table or one index) and declare a collection"
        )
    info = types[0]
    free = [i for i in design.indexes if i not in info.indexes]
    fields = [n for n in pattern.inputs if n in info.fields]
    pk = "#".join(f"{n.upper()}#{{{n}}}" for n in fields) if fields else f"{info.type_name.upper()}"
    sk = _sort_for(info, None)
    if pattern.range and pattern.range not in fields:
        sk = f"{{{pattern.range}}}#{sk}"
    where = free[0] if free else "a new index GSIn"
    return (
        f"key {info.cls.__name__} by {', '.join(fields) or 'the pattern inputs'} on {where}: "
        f"design.index({where!r}, pk={pk!r}, sk={sk!r})"
    )


def _sort_for(info: EntityInfo, like: EntityKey | None) -> str:
    """A sort template that keeps ``info``'s items apart: its type and its table key fields."""
    fields = [n for n in info.key.fields if like is None or n not in like.pk.fields]
    tail = "#".join(f"{{{n}}}" for n in fields)
    return f"{info.type_name.upper()}#{tail}" if tail else info.type_name.upper()


def _filter_needed(design: Design, pattern: Pattern, access: Access) -> list[str]:
    """The other types whose keys fall in the key range the pattern reads (each would be
    filtered out by a type filter: what the read plans do as the last resort)."""
    index, types = _where(access)
    if isinstance(access, NaturalKey):
        return [
            o.type_name for o in design.entities if o is not types[0] and access.index in o.natural
        ]
    members = {id(t) for t in types}
    first = _key_of(access) if not isinstance(access, Collection) else access.keys[0]
    assert isinstance(first, EntityKey)
    others = [
        (o, k)
        for o, k in _keys_on(design, index)
        if id(o) not in members and could_overlap(k.pk, first.pk)
    ]
    if not others:
        return []
    shared: list[str] = []
    if isinstance(access, Collection):
        for key in access.keys:
            for o, k in others:
                if (
                    key.sk is None
                    or k.sk is None
                    or not key.sk.prefix
                    or could_reach(k.sk, key.sk, key.sk.fields[0] if key.sk.fields else None)
                ):
                    shared.append(o.type_name)
        return sorted(set(shared))
    sk = first.sk
    if sk is None:
        return sorted({o.type_name for o, _ in others})
    inputs = set(pattern.inputs)
    upto = next((n for n in sk.fields if n not in inputs), None)
    for o, k in others:
        if k.sk is None:
            shared.append(o.type_name)
        elif upto is None:
            if could_overlap(k.sk, sk):
                shared.append(o.type_name)
        elif could_reach(k.sk, sk, upto):
            shared.append(o.type_name)
    return sorted(set(shared))


def _present(design: Design, index: str, projection: Any) -> set[str]:
    """The attributes an index item holds under ``projection``."""
    attrs = set(design.key_attributes)
    if index in design.indexes:
        attrs.update(a for a in design.indexes[index] if a is not None)
    else:
        pk, sk = design.natural_indexes[index]
        attrs.update((*pk, *sk))
    if projection == "KEYS_ONLY":
        return attrs
    return attrs | set(projection)


def _projection_gap(
    design: Design, pattern: Pattern, info: EntityInfo, index: str, projection: Any
) -> list[Finding]:
    present = _present(design, index, projection)
    # Fields parsed back from the key attributes the index item holds.
    derivable: set[str] = set()
    for declared in (info.key, info.indexes.get(index)):
        if declared is None:
            continue
        pairs = ((declared.pk, declared.pk_attribute), (declared.sk, declared.sk_attribute))
        for template, attr in pairs:
            if template is not None and attr in present:
                derivable.update(template.fields)
    required: list[str] = []
    optional: list[str] = []
    for f in info.fields.values():
        if f.stored in present or f.name in derivable:
            continue
        (required if f.default() is MISSING else optional).append(f.name)
    shown = "KEYS_ONLY" if projection == "KEYS_ONLY" else f"INCLUDE {list(projection)}"
    include = sorted({info.fields[n].stored for n in required + optional})
    fix = f"project them: projections={{{index!r}: {include!r}}}, or 'ALL'"
    out = []
    if required:
        out.append(
            Finding(
                "error",
                "projection-gap",
                f"{index} projects {shown}, which lacks {info.type_name}'s required "
                f"{', '.join(required)}: reading it there fails",
                pattern.name,
                (info.type_name,),
                index,
                suggestion=fix,
            )
        )
    if optional:
        out.append(
            Finding(
                "warning",
                "projection-gap",
                f"{index} projects {shown}, which lacks {info.type_name}'s "
                f"{', '.join(optional)}: they would read back as their defaults",
                pattern.name,
                (info.type_name,),
                index,
                suggestion=fix,
            )
        )
    if design.type_attribute and design.type_attribute not in present:
        others = [o for o, _ in _keys_on(design, index) if o is not info]
        if others:
            out.append(
                Finding(
                    "warning",
                    "projection-gap",
                    f"{index} does not project the type attribute {design.type_attribute!r}: "
                    "items are told apart by their key templates alone",
                    pattern.name,
                    (info.type_name,),
                    index,
                    suggestion=f"include {design.type_attribute!r} in the projection",
                )
            )
    return out


# -- templates against each other ------------------------------------------------------


def _check_templates(design: Design) -> list[Finding]:
    out: list[Finding] = []
    for index in [None, *design.indexes]:
        keys = _keys_on(design, index)
        for i, (a, ka) in enumerate(keys):
            for b, kb in keys[i + 1 :]:
                if not could_overlap(ka.pk, kb.pk):
                    continue
                names = (a.type_name, b.type_name)
                texts = f"{_text(ka)} and {_text(kb)}"
                if ka.sk is None or kb.sk is None or could_overlap(ka.sk, kb.sk):
                    out.append(
                        Finding(
                            "error" if index is None else "warning",
                            "key-collision",
                            f"{texts} can make the same key"
                            + (
                                ": one type's put would overwrite the other's item"
                                if index is None
                                else ": only the type attribute tells the items apart"
                            ),
                            None,
                            names,
                            index,
                            f"{ka.pk.text} / {kb.pk.text}",
                            suggestion="start each type's sort key with its own literal "
                            f"({a.type_name.upper()}#..., {b.type_name.upper()}#...)",
                        )
                    )
                    continue
                for (x, kx), (y, ky) in (((a, ka), (b, kb)), ((b, kb), (a, ka))):
                    assert kx.sk is not None and ky.sk is not None
                    first = kx.sk.fields[0] if kx.sk.fields else None
                    if first is not None and could_reach(ky.sk, kx.sk, first):
                        out.append(
                            Finding(
                                "warning",
                                "prefix-overlap",
                                f"{y.type_name}'s sort keys {ky.sk.text!r} start with "
                                f"{x.type_name}'s prefix {kx.sk.prefix!r} under "
                                f"{kx.pk.text!r}: a read of {x.type_name}'s range meets "
                                f"{y.type_name}'s items and must filter them",
                                None,
                                (x.type_name, y.type_name),
                                index,
                                kx.sk.text,
                                suggestion=f"give {y.type_name}'s sort key a literal prefix "
                                f"that does not start with {kx.sk.prefix!r}",
                            )
                        )
    return out


def _text(key: EntityKey) -> str:
    return f"{key.pk.text!r}" + ("" if key.sk is None else f" / {key.sk.text!r}")


def _index_maps(design: Design) -> tuple[dict[str, list[dict[str, Any]]], list[Finding]]:
    maps: dict[str, list[dict[str, Any]]] = {}
    out: list[Finding] = []
    for index in [None, *design.indexes, *design.natural_indexes]:
        name = index or "table"
        rows: list[dict[str, Any]] = []
        never: list[str] = []
        optional: list[str] = []
        for info in design.entities:
            if index in design.natural_indexes:
                natural = info.natural.get(index or "")
                if natural is None:
                    never.append(info.type_name)
                    continue
                opt = [n for n in natural.fields if info.fields[n].optional]
                rows.append(
                    {
                        "entity": info.type_name,
                        "pk": ", ".join(natural.pk_attributes),
                        "sk": ", ".join(natural.sk_attributes),
                        "sparse": f"when {', '.join(opt)} is None" if opt else "",
                    }
                )
                if opt:
                    optional.append(f"{info.type_name} (when {', '.join(opt)} is None)")
                continue
            key = info.key if index is None else info.indexes.get(index)
            if key is None:
                never.append(info.type_name)
                continue
            opt = [n for n in key.fields if info.fields[n].optional]
            rows.append(
                {
                    "entity": info.type_name,
                    "pk": key.pk.text,
                    "sk": "" if key.sk is None else key.sk.text,
                    "sparse": f"when {', '.join(opt)} is None" if opt else "",
                }
            )
            if opt and index is not None:
                optional.append(f"{info.type_name} (when {', '.join(opt)} is None)")
        maps[name] = rows
        if index is None:
            continue
        if not rows:
            out.append(
                Finding(
                    "warning",
                    "index-unused",
                    f"no entity writes {index}'s keys: it costs storage and nothing reads it",
                    index=index,
                    suggestion=f"key an entity on it (design.index({index!r}, ...)) or drop it",
                )
            )
            continue
        held = "; ".join(
            f"{r['entity']} ({r['pk']}" + (f" / {r['sk']})" if r["sk"] else ")") for r in rows
        )
        kind = "overloaded with" if len(rows) > 1 else "holds"
        out.append(
            Finding(
                "info",
                "index-map",
                f"{index} {kind} {held}",
                entities=tuple(r["entity"] for r in rows),
                index=index,
            )
        )
        if never or optional:
            parts = []
            if never:
                verb = "writes" if len(never) == 1 else "write"
                parts.append(f"{', '.join(never)} never {verb} its keys")
            if optional:
                verb = "leaves" if len(optional) == 1 else "leave"
                parts.append(f"{', '.join(optional)} {verb} it")
            out.append(
                Finding(
                    "info",
                    "sparse-map",
                    f"{index} is sparse: {'; '.join(parts)}",
                    entities=tuple(never) + tuple(o.split(" ")[0] for o in optional),
                    index=index,
                )
            )
    return maps, out


# -- hot keys ----------------------------------------------------------------------------


def _enum_like(f: FieldInfo) -> bool:
    kind = f.kind
    if kind is bool or kind is typing.Literal:
        return True
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return True
    return bool(_LOW_CARDINALITY.search(f.name.lower()))


def _bucketed(template: Template, name: str) -> bool:
    return template.kinds.get(name) is datetime and bool(template.spec_of(name))


def _rates(design: Design, info: EntityInfo, index: str | None) -> tuple[float, float]:
    """The highest stated write and read rates of the patterns that read this key."""
    writes = reads = 0.0
    for pattern in design.patterns.values():
        access = pattern.resolve()
        if access is None:
            continue
        at, types = _where(access)
        if at == index and info in types:
            writes = max(writes, pattern.writes_per_second or 0.0)
            reads = max(reads, pattern.reads_per_second or 0.0)
    return writes, reads


def _check_hot_keys(design: Design) -> list[Finding]:
    out: list[Finding] = []
    for info in design.entities:
        for natural in info.natural.values():
            if all(_enum_like(info.fields[n]) for n in natural.pk_fields):
                writes, reads = _rates(design, info, natural.index)
                over = writes > WRITE_LIMIT or reads > READ_LIMIT
                out.append(
                    Finding(
                        "error" if over else "warning",
                        "hot-key-enum",
                        f"{natural.index} is partitioned by {', '.join(natural.pk_fields)} "
                        f"alone, which take a few values: every {info.type_name} of one "
                        "combination goes to one partition",
                        None,
                        (info.type_name,),
                        natural.index,
                        suggestion="add a high-cardinality attribute (or a shard number "
                        "computed with field(shard_of=...)) to the index's partition key; "
                        "reading it back then costs one Query per shard",
                    )
                )
        shard_names = {f.name for f in info.shards}
        for index, key in [(None, info.key), *info.indexes.items()]:
            fields = key.pk.fields
            writes, reads = _rates(design, info, index)
            if shard_names & set(fields):
                shards = next(f.spec.shards for f in info.shards if f.name in fields)
                if writes > shards * WRITE_LIMIT:
                    n = _shards_for(writes)
                    out.append(
                        Finding(
                            "error",
                            "hot-key-rate",
                            f"{writes:g} writes/s over {shards} shards of {key.pk.text!r} is "
                            f"more than {shards} x {WRITE_LIMIT} WCU/s",
                            None,
                            (info.type_name,),
                            index,
                            key.pk.text,
                            suggestion=f"shards={n}",
                        )
                    )
                continue
            buckets = [n for n in fields if _bucketed(key.pk, n)]
            rest = [n for n in fields if n not in buckets]
            if not fields:
                code = "hot-key-constant"
                why = f"{key.pk.text!r} is a constant: every {info.type_name} goes to one partition"
            elif not rest:
                code = "hot-key-bucket"
                why = (
                    f"{key.pk.text!r} is keyed by time bucket only: every {info.type_name} "
                    "written now goes to the current bucket (a finer bucket moves the hot "
                    "spot, it does not spread it)"
                )
            elif all(_enum_like(info.fields[n]) for n in rest):
                code = "hot-key-enum"
                why = (
                    f"{key.pk.text!r} is keyed by {', '.join(rest)} alone, which takes a few "
                    f"values: every {info.type_name} of one value goes to one partition"
                )
            else:
                continue
            over = writes > WRITE_LIMIT or reads > READ_LIMIT
            rate = []
            if writes:
                rate.append(f"{writes:g} writes/s stated (limit {WRITE_LIMIT} WCU/s a partition)")
            if reads:
                rate.append(f"{reads:g} reads/s stated (limit {READ_LIMIT} RCU/s a partition)")
            # Without a stated rate: 10 shards, room for ~8,000 writes/s.
            n = _shards_for(writes) if writes else 10
            source = next(
                (
                    f
                    for f in reversed(info.key.fields)
                    if f not in fields and not _enum_like(info.fields[f])
                ),
                None,
            )
            sharded = key.pk.text + "#SHARD#{shard}"
            fix = (
                f'WriteSharding("{sharded}", shards={n}): '
                + (
                    f'in the entity, shard: int = field(shard_of="{source}", shards={n}) and '
                    f"pk={sharded!r}; "
                    if source
                    else ""
                )
                + f"reading it back costs {n} Query requests per read (query_partitions runs "
                f"them concurrently and merges by sort key; each at least 0.5 RCU)"
                + (f", i.e. {reads * n:g} requests/s at {reads:g} reads/s" if reads else "")
            )
            out.append(
                Finding(
                    "error" if over else "warning",
                    code,
                    why + ("; " + ", ".join(rate) if rate else ""),
                    None,
                    (info.type_name,),
                    index,
                    key.pk.text,
                    suggestion=fix,
                )
            )
    return out


def _shards_for(writes: float) -> int:
    """Shards that carry ``writes``/s with a fifth of each partition's limit to spare."""
    return max(2, math.ceil(writes / (WRITE_LIMIT * 0.8)))


# -- the live table ----------------------------------------------------------------------


class _LiveTable:
    """What DescribeTable says about keys and indexes."""

    def __init__(self, described: Mapping[str, Any]) -> None:
        self.name = str(described.get("TableName", "?"))
        self.types = {
            d["AttributeName"]: d["AttributeType"]
            for d in described.get("AttributeDefinitions", ())
        }
        self.key = _key_schema(described.get("KeySchema", ()))
        self.indexes: dict[str, dict[str, Any]] = {}
        for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            for index in described.get(kind, ()) or ():
                projection = index.get("Projection", {})
                shown: Any = projection.get("ProjectionType", "ALL")
                if shown == "INCLUDE":
                    shown = tuple(projection.get("NonKeyAttributes", ()))
                self.indexes[index["IndexName"]] = {
                    "key": _key_schema(index.get("KeySchema", ())),
                    "projection": shown,
                }


def _key_schema(schema: Sequence[Mapping[str, str]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    hashes = tuple(k["AttributeName"] for k in schema if k["KeyType"] == "HASH")
    ranges = tuple(k["AttributeName"] for k in schema if k["KeyType"] == "RANGE")
    return hashes, ranges


def _check_live(design: Design, live: _LiveTable) -> list[Finding]:
    out: list[Finding] = []
    attrs = design.key_attributes
    want = ((attrs[0],), tuple(attrs[1:]))
    if live.key != want:
        out.append(
            Finding(
                "error",
                "live-key",
                f"table {live.name!r} is keyed {_show(live.key)}, the design {_show(want)}",
                suggestion="bind the design to the table it describes, or fix Design(key=...)",
            )
        )
    expected: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
        name: ((pk,), () if sk is None else (sk,)) for name, (pk, sk) in design.indexes.items()
    }
    expected.update(design.natural_indexes)
    types: dict[str, str] = dict.fromkeys(attrs, "S")
    for pk, sk in design.indexes.values():
        types[pk] = "S"
        if sk is not None:
            types[sk] = "S"
    for name, (pks, sks) in design.natural_indexes.items():
        for a in (*pks, *sks):
            types[a] = _natural_type(design, name, a)
    for name, key in expected.items():
        got = live.indexes.get(name)
        if got is None:
            out.append(
                Finding(
                    "error",
                    "live-missing-index",
                    f"table {live.name!r} has no index {name!r} (it has "
                    f"{', '.join(live.indexes) or 'none'})",
                    index=name,
                    suggestion=f"create it (UpdateTable, GlobalSecondaryIndexUpdates Create) "
                    f"keyed {_show(key)}",
                )
            )
            continue
        if got["key"] != key:
            same = set(got["key"][0]) == set(key[0]) and set(got["key"][1]) == set(key[1])
            out.append(
                Finding(
                    "error",
                    "live-key-order" if same else "live-key",
                    f"index {name!r} is keyed {_show(got['key'])}, the design {_show(key)}"
                    + (": a multi-attribute key is compared in order" if same else ""),
                    index=name,
                    suggestion=f"recreate {name} keyed {_show(key)}",
                )
            )
    for attr, kind in types.items():
        live_kind = live.types.get(attr)
        if live_kind is not None and live_kind != kind:
            out.append(
                Finding(
                    "error",
                    "live-key-type",
                    f"key attribute {attr!r} is {live_kind} in table {live.name!r}, the design "
                    f"writes {kind}",
                    suggestion=f"define {attr} as {kind}",
                )
            )
    return out


def _natural_type(design: Design, index: str, attribute: str) -> str:
    for info in design.entities:
        natural = info.natural.get(index)
        if natural is not None:
            f = info.by_stored[attribute]
            if f.kind in (int, float) or f.kind.__name__ == "Decimal" or f.spec.epoch:
                return "N"
            return "B" if f.kind is bytes else "S"
    return "S"


def _show(key: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
    pk, sk = key
    return f"({', '.join(pk)})" + (f" / ({', '.join(sk)})" if sk else "")
