"""``Design``: one table's entities, key templates, indexes and collections, declared once.

The design is what reads and writes consult: it renders keys, tells which entity an item is
(by key structure first, the type attribute second, aliases included), and proves which
types can share a partition so that collections read without filters (``collection.py``).
It knows nothing of I/O: ``bind(db)`` gives the ``Repository`` that does it.
"""

from __future__ import annotations

import importlib
import sys
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, dataclass_transform, overload

from ..errors import ConfigurationError, InvalidItem
from ..schema import Projection
from .check import DesignReport, check_design
from .collection import Collection
from .entity import EntityInfo, compile_entity, info_of
from .fields import field
from .keys import EntityKey, NaturalKey
from .patterns import Pattern
from .raw import Raw, Unknown, check_unknown
from .repository import Repository
from .templates import Template

if TYPE_CHECKING:
    from ..client import Client
    from ..streams import Record

__all__ = ["Design", "load_design"]

E = TypeVar("E")


class Design:
    """Entities sharing one table: ``Design("Shop", key=("PK", "SK"), indexes={"GSI1":
    ("GSI1PK", "GSI1SK")}, type_attribute="Type")``.

    ``unknown`` says what reads do with an item no entity claims: ``"raise"`` (default,
    ``InvalidItem``), ``"skip"``, or ``"raw"`` (yield ``Raw(item)``). ``separator`` is the
    character key values may not contain.
    """

    def __init__(
        self,
        name: str,
        *,
        key: tuple[str] | tuple[str, str] = ("PK", "SK"),
        indexes: Mapping[str, tuple[str] | tuple[str, str] | tuple[tuple[str, ...], ...]]
        | None = None,
        type_attribute: str = "Type",
        unknown: Unknown = "raise",
        separator: str = "#",
        projections: Mapping[str, Projection] | None = None,
        strict: bool = False,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError("a design is named after its table: a non-empty str")
        if not key or len(key) > 2 or not all(isinstance(k, str) and k for k in key):
            raise ConfigurationError(f"key is (partition,) or (partition, sort), not {key!r}")
        check_unknown(unknown)
        if not isinstance(separator, str) or len(separator) != 1:
            raise ConfigurationError("separator is one character")
        self.name = name
        self.key_attributes: tuple[str, ...] = tuple(key)
        self.indexes: dict[str, tuple[str, str | None]] = {}
        # Multi-attribute indexes: (partition attributes, sort attributes), 1-4 each.
        self.natural_indexes: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        for index, attrs in (indexes or {}).items():
            if attrs and 1 <= len(attrs) <= 2 and all(isinstance(a, tuple) for a in attrs):
                groups = [tuple(a) for a in attrs]
                if not all(
                    1 <= len(g) <= 4 and all(isinstance(n, str) and n for n in g) for g in groups
                ):
                    raise ConfigurationError(
                        f"index {index!r}: a multi-attribute key is 1 to 4 attribute names "
                        f"per part, not {attrs!r}"
                    )
                self.natural_indexes[index] = (groups[0], groups[1] if len(groups) == 2 else ())
                continue
            if not attrs or len(attrs) > 2 or not all(isinstance(a, str) and a for a in attrs):
                raise ConfigurationError(
                    f"index {index!r} is (partition,) or (partition, sort), not {attrs!r}"
                )
            names = typing.cast(tuple[str, ...], attrs)
            self.indexes[index] = (names[0], names[1] if len(names) == 2 else None)
        self.type_attribute = type_attribute
        self.unknown: Unknown = unknown
        self.separator = separator
        self.entities: list[EntityInfo] = []
        self._by_type: dict[str, EntityInfo] = {}
        # Entity class -> its compiled form: a dict lookup on every read and write, where
        # ``info_of`` would read a class attribute through the entity metaclass.
        self._by_class: dict[type, EntityInfo] = {}
        self.collections: dict[str, Collection] = {}
        # Proofs about which templates can share a key range, per key declaration; made
        # on first use and dropped when an entity is added (it may change them).
        self.proofs: dict[Any, Any] = {}
        self.patterns: dict[str, Pattern] = {}
        # (design state, patterns by what they read): see patterns.declared_pattern.
        self.pattern_lookup: tuple[tuple[int, int, int], dict[int, list[Pattern]]] | None = None
        # strict: the repository refuses scans and queries that are no declared pattern.
        self.strict = bool(strict)
        self.projections: dict[str, Projection] = {}
        for index, projection in (projections or {}).items():
            if index not in self.indexes and index not in self.natural_indexes:
                raise ConfigurationError(f"projections: design {name!r} has no index {index!r}")
            if isinstance(projection, str) and projection not in ("ALL", "KEYS_ONLY"):
                raise ConfigurationError(
                    f"projection of {index!r} is 'ALL', 'KEYS_ONLY' or the attribute names "
                    f"it includes, not {projection!r}"
                )
            self.projections[index] = (
                projection if isinstance(projection, str) else tuple(projection)
            )

    def __repr__(self) -> str:
        return f"Design({self.name!r}, entities={[e.type_name for e in self.entities]})"

    # -- declaring -----------------------------------------------------------------------

    def key(self, *, pk: str, sk: str | None = None) -> EntityKey:
        """An entity's table key, as templates: ``key = shop.key(pk="CUSTOMER#{customer_id}",
        sk="METADATA")``."""
        sk_attr = self.key_attributes[1] if len(self.key_attributes) == 2 else None
        if (sk is None) != (sk_attr is None):
            raise ConfigurationError(
                f"table {self.name!r} has the key {self.key_attributes}: "
                + ("give sk=" if sk is None else "it has no sort key")
            )
        return EntityKey(
            None,
            Template(pk, self.separator),
            None if sk is None else Template(sk, self.separator),
            self.key_attributes[0],
            sk_attr,
        )

    @overload
    def index(self, name: str, *, pk: str, sk: str | None = None) -> EntityKey: ...

    @overload
    def index(self, name: str) -> NaturalKey: ...

    def index(
        self, name: str, *, pk: str | None = None, sk: str | None = None
    ) -> EntityKey | NaturalKey:
        """An entity's key on global index ``name`` (one of ``Design(indexes=...)``): key
        templates for a templated index, none for a multi-attribute one (its attributes are
        the entity's fields of those stored names)."""
        natural = self.natural_indexes.get(name)
        if natural is not None:
            if pk is not None or sk is not None:
                raise ConfigurationError(
                    f"index {name!r} has multi-attribute keys {natural}: its attributes are "
                    "the entity's own fields, so it takes no templates"
                )
            return NaturalKey(name, *natural)
        if pk is None:
            raise ConfigurationError(f"index {name!r} needs pk= (a key template)")
        attrs = self.indexes.get(name)
        if attrs is None:
            raise ConfigurationError(
                f"design {self.name!r} has no index {name!r} (indexes: "
                f"{', '.join([*self.indexes, *self.natural_indexes])})"
            )
        if (sk is None) != (attrs[1] is None):
            raise ConfigurationError(f"index {name!r} has the key {attrs}: pk and sk must match it")
        return EntityKey(
            name,
            Template(pk, self.separator),
            None if sk is None else Template(sk, self.separator),
            attrs[0],
            attrs[1],
        )

    @dataclass_transform(kw_only_default=True, eq_default=True, field_specifiers=(field,))
    def entity(
        self, type_name: str, *, aliases: tuple[str, ...] = ()
    ) -> Callable[[type[E]], type[E]]:
        """Class decorator: ``@shop.entity("Order")`` makes the class an entity whose items
        carry ``Type = "Order"`` (never the class name); ``aliases`` are older stored names
        that still read as this entity."""

        def decorate(cls: type[E]) -> type[E]:
            names = (type_name, *aliases)
            for n in names:
                if n in self._by_type:
                    raise ConfigurationError(
                        f"type name {n!r} is already {self._by_type[n].cls.__name__}'s"
                    )
            # The scope the class is defined in resolves its string annotations when it is
            # a function's (``from __future__ import annotations`` in a local class).
            scope = sys._getframe(1).f_locals
            new = compile_entity(cls, self, type_name, tuple(aliases), scope)
            info = info_of(new)
            self.entities.append(info)
            self._by_class[new] = info
            for n in names:
                self._by_type[n] = info
            self.proofs.clear()
            return new

        return decorate

    def collection(self, name: str, *entities: type, index: str | None = None) -> Collection:
        """Entity types read together by one query of a shared partition (``index``: on that
        global index): ``shop.collection("customer_page", Customer, Order)``."""
        if name in self.collections:
            raise ConfigurationError(f"design {self.name!r} already has a collection {name!r}")
        made = Collection(self, name, [info_of(e) for e in entities], index)
        self.collections[name] = made
        return made

    def pattern(
        self,
        name: str,
        target: Any,
        *,
        by: Iterable[str] | None = None,
        range: object = None,
        writes_per_second: float | None = None,
        reads_per_second: float | None = None,
        allow: Mapping[str, str] | None = None,
        **fixed_fields: Any,
    ) -> Pattern:
        """Declare an access pattern: ``shop.pattern("orders of a customer", Order)``.

        ``target``: an entity (its table key), an index accessor (``Order.by_status``), a
        collection, or a tuple of entities read together. ``by``: the fields the read is
        given (default: the target's partition fields); with ``by=`` on an entity or a tuple,
        the design finds the key, index or collection that serves it. ``range``: the
        sort-key field a ``where=`` narrows (``range=Order.placed_at``, or its name; typed
        ``object`` because a type checker sees ``Order.placed_at`` as a datetime). ``fixed_fields``:
        constants of the pattern (``status="PENDING"``). ``writes_per_second`` /
        ``reads_per_second``: the expected rates, for the hot-key check. ``allow``: finding
        codes accepted for this pattern, each with the reason (``{"hot-key-enum": "..."}``).
        """
        if name in self.patterns:
            raise ConfigurationError(f"design {self.name!r} already has a pattern {name!r}")
        made = Pattern(
            self,
            name,
            target,
            by=by,
            range=range,
            writes_per_second=writes_per_second,
            reads_per_second=reads_per_second,
            allow=allow,
            fixed=fixed_fields,
        )
        self.patterns[name] = made
        return made

    def check(self, described: Mapping[str, Any] | None = None) -> DesignReport:
        """The design's findings (errors, warnings, info): every pattern served by a key
        condition, no key collisions or prefix overlaps, index overloading and sparse maps,
        projection gaps, hot-key risks; with ``described`` (DescribeTable's ``Table``, e.g.
        ``await repo.describe()``), also the live table's indexes and key attributes."""
        return check_design(self, described)

    def bind(self, db: Client, *, table: str | None = None) -> Repository:
        """The repository of this design over ``db.table(design.name)`` (or the table named
        ``table``: one design, several tables, e.g. per stage)."""
        return Repository(self, db, table=table)

    # -- reading items -------------------------------------------------------------------

    def classify(self, item: Mapping[str, Any]) -> EntityInfo | None:
        """The entity an item is: the one whose table key templates match its key; among
        several (or when the key is absent), the one its type attribute names."""
        attrs = self.key_attributes
        pk = item.get(attrs[0])
        sk = item.get(attrs[1]) if len(attrs) == 2 else None
        matched: list[EntityInfo] = []
        if pk is not None:
            for info in self.entities:
                key = info.key
                if key.pk.matches(pk) and (key.sk is None or key.sk.matches(sk)):
                    matched.append(info)
        if len(matched) == 1:
            return matched[0]
        stored_type = item.get(self.type_attribute) if self.type_attribute else None
        named = self._by_type.get(stored_type) if isinstance(stored_type, str) else None
        if named is None:
            return None
        if matched and named not in matched:
            return None  # the key says one thing and the type another: not ours to guess
        return named

    def decode(
        self, info: EntityInfo, item: Mapping[str, Any], key: dict[str, Any] | None = None
    ) -> Any:
        """The entity ``info`` made from ``item``; fields missing from the item are read
        from its keys (their templates parse), else ``InvalidItem`` names them."""
        try:
            return info.decode(item, key)
        except KeyError:
            pass
        filled = dict(item)
        for declared in (info.key, *info.indexes.values()):
            for template, attr in (
                (declared.pk, declared.pk_attribute),
                (declared.sk, declared.sk_attribute),
            ):
                if template is None or attr is None or attr not in item:
                    continue
                parsed = template.parse(item[attr])
                for name, value in (parsed or {}).items():
                    filled.setdefault(info.fields[name].stored, value)
        try:
            return info.decode(filled)
        except KeyError as exc:
            lacking = info.by_stored.get(exc.args[0]) or info.fields[exc.args[0]]
            raise InvalidItem(
                f"the stored item has no attribute {lacking.stored!r} and its keys do not hold "
                f"it (key { {a: item.get(a) for a in self.key_attributes} })",
                f"{info.type_name}.{lacking.name}",
            ) from None

    def parse(self, item: Mapping[str, Any], *, unknown: Unknown | None = None) -> Any:
        """The entity an item (a raw dict, e.g. a stream record's ``new``) is, decoded; an
        item that is no entity of the design: ``InvalidItem``, ``None`` (``unknown="skip"``)
        or ``Raw(item)`` (``unknown="raw"``)."""
        info = self.classify(item)
        if info is None:
            return self.unknown_item(item, self.unknown if unknown is None else unknown)
        return self.decode(info, item)

    def parse_record(self, record: Record, *, unknown: Unknown | None = None) -> tuple[Any, Any]:
        """A stream record's ``(old, new)`` images as entities (``None`` where the record
        carries no such image: an INSERT has no old, a REMOVE no new, a KEYS_ONLY stream
        neither); items that are no entity follow ``unknown`` as in ``parse``."""
        old = None if record.old is None else self.parse(record.old, unknown=unknown)
        new = None if record.new is None else self.parse(record.new, unknown=unknown)
        return old, new

    def unknown_item(self, item: Mapping[str, Any], unknown: str) -> Any:
        if unknown == "raw":
            return Raw(dict(item))
        if unknown == "skip":
            return None
        check_unknown(unknown)
        key = {a: item.get(a) for a in self.key_attributes}
        raise InvalidItem(
            f"item {key} of table {self.name!r} is no entity of the design (type "
            f"{item.get(self.type_attribute)!r}); read with unknown='skip' or 'raw' to pass it"
        )

    def info(self, entity: Any) -> EntityInfo:
        found = self._by_class.get(entity) if isinstance(entity, type) else None
        if found is not None:
            return found
        info = info_of(entity)
        if info.design is not self:
            raise ConfigurationError(f"{entity.__name__} belongs to design {info.design.name!r}")
        return info


def load_design(spec: str) -> Design:
    """The design named ``module:attribute`` (``myapp.db:shop``), imported with the current
    directory on the path as ``python -m`` would; ``ValueError`` says what is wrong."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{spec!r}: name the design as module:attribute (myapp.db:shop)")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        found: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from None
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ValueError(f"{module_name!r} has no {attribute!r}") from None
    if not isinstance(found, Design):
        raise ValueError(f"{spec!r} is a {type(found).__name__}, not a Design")
    return found
