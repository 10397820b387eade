"""Entity classes: the decorator's compilation of an annotated class into a slotted record
with a keyword constructor, equality, repr, and generated encode/decode functions.

Everything that depends on the class's shape (its fields, their stored names, which need a
conversion, their defaults) is decided once here and written into generated functions, so
encoding an entity or decoding an item costs attribute reads and dict stores, no reflection.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

from ..compression import compress_value, decompress_value
from ..errors import ConfigurationError, InvalidItem
from ..fanout import stable_shard
from ..large import LargeAttributes
from ..offload import Offloaded
from .fields import MISSING, FieldSpec, field
from .keys import EntityKey, NaturalKey
from .templates import render_datetime
from .where import FieldRef

__all__ = [
    "KEYED_MISS",
    "Entity",
    "EntityInfo",
    "FieldInfo",
    "Ref",
    "compile_entity",
    "info_of",
]

KEYED_MISS: Any = object()

E = TypeVar("E")
_INFO = "__asyncdyn_entity__"


class EntityMeta(type):
    """Makes ``Order.placed_at`` (on the class) a ``FieldRef`` while instances keep plain,
    fast slot access: instance attribute reads never go through a metaclass."""

    def __getattribute__(cls, name: str) -> Any:
        value = type.__getattribute__(cls, name)
        if type(value) is types.MemberDescriptorType:
            refs = type.__getattribute__(cls, "__asyncdyn_refs__")
            ref = refs.get(name)
            if ref is not None:
                return ref
        return value


@typing.dataclass_transform(kw_only_default=True, eq_default=True, field_specifiers=(field,))
class Entity(metaclass=EntityMeta):
    """Optional base class of entities, for type checkers: it declares what the decorator
    adds (keyword constructor, ``ref``, ``field_ref``); mypy reads ``dataclass_transform``
    on a base class, not on a decorator method. ``@design.entity("X") class X(Entity): ...``.
    """

    __slots__ = ()
    __asyncdyn_refs__: ClassVar[dict[str, FieldRef]] = {}

    @classmethod
    def ref(cls, **fields: Any) -> Ref:
        """A reference to the stored item with these key fields (for get, update, delete)."""
        return Ref(cls, fields)

    @classmethod
    def field_ref(cls, name: str) -> FieldRef:
        """``Order.field_ref("placed_at")`` is ``Order.placed_at`` as a type checker sees it."""
        ref = cls.__asyncdyn_refs__.get(name)
        if ref is None:
            raise ConfigurationError(f"{cls.__name__} has no field {name!r}")
        return ref


class Ref:
    """The key fields of one item of ``entity``: ``Order.ref(customer_id="1", order_id="9")``."""

    __slots__ = ("entity", "fields")

    def __init__(self, entity: Any, fields: Mapping[str, Any]) -> None:
        info_of(entity)
        self.entity = entity
        self.fields = dict(fields)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.fields.items())
        return f"{self.entity.__name__}.ref({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ref) and (self.entity, self.fields) == (other.entity, other.fields)

    __hash__ = None  # type: ignore[assignment]


class FieldInfo:
    """One field: attribute name, stored name, value type (without ``| None``), spec."""

    __slots__ = ("kind", "name", "optional", "spec", "stored")

    def __init__(self, name: str, kind: Any, optional: bool, spec: FieldSpec) -> None:
        self.name = name
        self.kind = kind
        self.optional = optional
        self.spec = spec
        self.stored = spec.name or name

    def default(self) -> Any:
        spec = self.spec
        if spec.default_factory is not None:
            return spec.default_factory()
        if spec.default is not MISSING:
            return spec.default
        if spec.version:
            return 0
        if spec.created or spec.updated:
            return None
        return MISSING


class EntityInfo:
    """The compiled form of an entity class, as the design and repository use it."""

    __slots__ = (
        "aliases",
        "by_stored",
        "cls",
        "created",
        "decode",
        "derived",
        "design",
        "encode",
        "fields",
        "indexes",
        "key",
        "large",
        "keyed",
        "natural",
        "names",
        "shards",
        "ttl",
        "type_name",
        "unique",
        "updated",
        "version",
    )

    def __init__(self, cls: type, design: Any, type_name: str, aliases: tuple[str, ...]) -> None:
        self.cls = cls
        self.design = design
        self.type_name = type_name
        self.aliases = aliases
        self.names = (type_name, *aliases)
        self.fields: dict[str, FieldInfo] = {}
        self.by_stored: dict[str, FieldInfo] = {}
        self.key: EntityKey = None  # type: ignore[assignment]
        self.indexes: dict[str, EntityKey] = {}
        self.natural: dict[str, NaturalKey] = {}
        self.created: FieldInfo | None = None
        self.updated: FieldInfo | None = None
        self.version: FieldInfo | None = None
        self.ttl: FieldInfo | None = None
        self.unique: tuple[FieldInfo, ...] = ()
        # Shard fields (field(shard_of=...)): each computed from its source on every write.
        self.shards: tuple[FieldInfo, ...] = ()
        # Attributes the repository writes and reads never hand back as fields.
        self.derived: frozenset[str] = frozenset()
        # Stored names of compressed / offloaded fields (asyncdyn.large): the table offloads
        # and refuses them in conditions; the generated codecs compress them.
        self.large: LargeAttributes | None = None
        self.encode: Callable[[Any], dict[str, Any]] = _unset
        # decode(item, key_fields=None): key_fields, when the caller parsed the key already.
        self.decode: Callable[..., Any] = _unset
        # keyed(item, partition_fields, miss=None): a table query's decode, the sort key
        # parsed inline and the partition's fields given. When the item is not plainly this
        # entity (no key of its template, a field missing) it returns miss(item), or
        # KEYED_MISS without one, for the long way to decide. None when the sort template's
        # shape has no generated parse.
        self.keyed: Callable[..., Any] | None = None

    def with_shards(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` with every shard field computed from its source when the source is
        there (the same stable hash as ``WriteSharding.shard_of``)."""
        out = dict(values)
        for f in self.shards:
            source = out.get(f.spec.shard_of or "")
            if source is not None:
                if not isinstance(source, str | int | bytes) or isinstance(source, bool):
                    raise InvalidItem(
                        f"a shard is computed from a str, int or bytes, not "
                        f"{type(source).__name__}",
                        f"{self.type_name}.{f.spec.shard_of}",
                    )
                out[f.name] = stable_shard(source, f.spec.shards)
        return out

    def encode_fields(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Stored attributes of some field values, encoded as a whole entity would be (a
        stand-in entity holding just them: the generated encoder skips the ``None`` rest)."""
        stand_in: Any = object.__new__(self.cls)
        for name in self.fields:
            setattr(stand_in, name, values.get(name))
        return self.encode(stand_in)


def _unset(_: Any) -> Any:  # pragma: no cover - replaced at compile time
    raise AssertionError("entity not compiled")


def info_of(entity: Any) -> EntityInfo:
    """The compiled entity of a class (``ConfigurationError`` for any other class)."""
    info = getattr(entity, _INFO, None)
    if not isinstance(info, EntityInfo) or info.cls is not entity:
        name = getattr(entity, "__name__", repr(entity))
        raise ConfigurationError(f"{name} is not an entity: declare it with @design.entity(...)")
    return info


def _unwrap(hint: Any) -> tuple[Any, bool]:
    """``(type, optional)`` of an annotation: ``datetime | None`` -> ``(datetime, True)``."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) != len(typing.get_args(hint))
        return (args[0] if len(args) == 1 else Any), optional
    if origin is not None:
        return origin, False
    return hint, False


def _encode_datetime(where: str) -> Callable[[Any], str]:
    def encode(value: Any) -> str:
        if not isinstance(value, datetime):
            raise InvalidItem(f"a datetime, not {type(value).__name__}", where)
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidItem("a naive datetime is ambiguous: give it a timezone", where)
        return render_datetime(value)

    return encode


def _encode_epoch(where: str, whole: bool) -> Callable[[Any], int | Decimal]:
    def encode(value: Any) -> int | Decimal:
        if not isinstance(value, datetime):
            raise InvalidItem(f"a datetime, not {type(value).__name__}", where)
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidItem("a naive datetime is ambiguous: give it a timezone", where)
        stamp = value.timestamp()
        if whole or value.microsecond == 0:
            return int(stamp)  # DynamoDB's TTL reads whole epoch seconds
        return Decimal(repr(stamp))

    return encode


def _compressor(where: str) -> Callable[[Any], Any]:
    def encode(value: Any) -> Any:
        if value.__class__ is Offloaded:  # read lazily, written back: its reference stays
            return value
        return compress_value(value, where=where)

    return encode


def _decompressor(where: str) -> Callable[[Any], Any]:
    def decode(value: Any) -> Any:
        return decompress_value(value, where=where)

    return decode


def _decode_epoch(value: Any) -> datetime:
    return datetime.fromtimestamp(float(value), UTC)


def _decode_float(value: Any) -> float:
    return float(value)


def _decode_date(value: Any) -> date:
    return date.fromisoformat(value)


def _init_source(fields: list[FieldInfo]) -> tuple[str, dict[str, Any]]:
    env: dict[str, Any] = {"MISSING": MISSING}
    params: list[str] = []
    body: list[str] = []
    for f in fields:
        default = f.default()
        if f.spec.default_factory is not None:
            env[f"factory_{f.name}"] = f.spec.default_factory
            params.append(f"{f.name}=MISSING")
            body.append(
                f"    self.{f.name} = factory_{f.name}() if {f.name} is MISSING else {f.name}"
            )
        elif default is MISSING:
            params.append(f.name)
            body.append(f"    self.{f.name} = {f.name}")
        else:
            env[f"default_{f.name}"] = default
            params.append(f"{f.name}=default_{f.name}")
            body.append(f"    self.{f.name} = {f.name}")
    head = (
        "def __init__(self, *, " + ", ".join(params) + "):" if params else ("def __init__(self):")
    )
    return head + "\n" + ("\n".join(body) or "    pass") + "\n", env


def compile_entity(
    cls: type[E],
    design: Any,
    type_name: str,
    aliases: tuple[str, ...],
    scope: Mapping[str, Any] | None = None,
) -> type[E]:
    """The slotted entity class made from ``cls`` (a new class, as ``dataclass(slots=True)``
    makes one), with its ``EntityInfo`` attached."""
    if not isinstance(type_name, str) or not type_name:
        raise ConfigurationError("an entity's stored type name is a non-empty str")
    if "__slots__" in cls.__dict__ and cls.__dict__["__slots__"]:
        raise ConfigurationError(
            f"{cls.__name__}: the decorator makes the slots; do not declare them"
        )
    try:
        hints = typing.get_type_hints(cls, localns=dict(scope) if scope else None)
    except NameError as exc:
        raise ConfigurationError(f"{cls.__name__}: cannot resolve an annotation: {exc}") from None
    own = cls.__dict__.get("__annotations__", {})
    fields: list[FieldInfo] = []
    for name in own:
        hint = hints[name]
        if typing.get_origin(hint) is ClassVar or hint is ClassVar:
            continue
        kind, optional = _unwrap(hint)
        raw = cls.__dict__.get(name, MISSING)
        spec = raw if isinstance(raw, FieldSpec) else FieldSpec(default=raw)
        info_field = FieldInfo(name, kind, optional, spec)
        if (spec.created or spec.updated or spec.ttl or spec.epoch) and kind is not datetime:
            raise ConfigurationError(f"{cls.__name__}.{name}: a timestamp field is a datetime")
        if spec.version and kind is not int:
            raise ConfigurationError(f"{cls.__name__}.{name}: a version field is an int")
        if (spec.compress or spec.offload is not None) and kind not in (str, bytes):
            raise ConfigurationError(
                f"{cls.__name__}.{name}: a compressed or offloaded field is a str or bytes"
            )
        if (spec.compress or spec.offload is not None) and spec.unique:
            raise ConfigurationError(
                f"{cls.__name__}.{name}: a compressed or offloaded field cannot be unique"
            )
        fields.append(info_field)

    info = EntityInfo(cls, design, type_name, aliases)
    for f in fields:
        if f.stored in info.by_stored:
            raise ConfigurationError(f"{cls.__name__}: two fields are stored as {f.stored!r}")
        info.fields[f.name] = f
        info.by_stored[f.stored] = f
        for kind in ("created", "updated", "version", "ttl"):
            if getattr(f.spec, kind):
                if getattr(info, kind) is not None:
                    raise ConfigurationError(f"{cls.__name__}: two {kind} fields")
                setattr(info, kind, f)
    info.unique = tuple(f for f in fields if f.spec.unique)
    info.shards = tuple(f for f in fields if f.spec.shard_of is not None)
    for f in info.shards:
        if f.kind is not int:
            raise ConfigurationError(f"{cls.__name__}.{f.name}: a shard field is an int")
        if f.spec.shard_of not in info.fields or f.spec.shard_of == f.name:
            raise ConfigurationError(
                f"{cls.__name__}.{f.name}: shard_of names another field, not {f.spec.shard_of!r}"
            )

    namespace = dict(cls.__dict__)
    for key in ("__dict__", "__weakref__"):
        namespace.pop(key, None)
    for f in fields:
        namespace.pop(f.name, None)
    for attr, value in list(namespace.items()):
        if isinstance(value, NaturalKey):
            if value.entity is not None:
                raise ConfigurationError(
                    f"{cls.__name__}.{attr}: a key declared for another entity"
                )
            if value.index in info.natural:
                raise ConfigurationError(f"{cls.__name__}: two keys on index {value.index}")
            value.pk_fields = _fields_stored_as(info, value.pk_attributes, value.index)
            value.sk_fields = _fields_stored_as(info, value.sk_attributes, value.index)
            value.fields = value.pk_fields + value.sk_fields
            info.natural[value.index] = value
        elif isinstance(value, EntityKey):
            if value.entity is not None:
                raise ConfigurationError(
                    f"{cls.__name__}.{attr}: a key declared for another entity"
                )
            if value.index is None:
                if info.key is not None:
                    raise ConfigurationError(f"{cls.__name__}: two table keys")
                info.key = value
            else:
                if value.index in info.indexes:
                    raise ConfigurationError(f"{cls.__name__}: two keys on index {value.index}")
                info.indexes[value.index] = value
    if info.key is None:
        raise ConfigurationError(f"{cls.__name__}: no table key (key = design.key(pk=...))")

    types_of = {f.name: f.kind for f in fields}
    for declared in (info.key, *info.indexes.values()):
        for template in (declared.pk, declared.sk):
            if template is not None:
                template.compile(type_name, types_of)
        declared.compile()
    templated: list[tuple[str, ...]] = [info.key.fields]
    templated += [d.fields for d in info.indexes.values()]
    templated += [n.fields for n in info.natural.values()]
    for names in templated:
        for name in names:
            spec = info.fields[name].spec
            if spec.compress or spec.offload is not None:
                raise ConfigurationError(
                    f"{cls.__name__}.{name}: a compressed or offloaded field cannot be part of "
                    f"a key template (its stored form is bytes or an S3 reference)"
                )
    large = [f for f in fields if f.spec.compress or f.spec.offload is not None]
    if large:
        info.large = LargeAttributes(
            offload={f.stored: f.spec.offload for f in large if f.spec.offload is not None},
            opaque=[f.stored for f in large if f.spec.compress],
        )
    for name in info.key.fields:
        if info.fields[name].optional:
            raise ConfigurationError(
                f"{cls.__name__}.{name}: a field of the table key cannot be optional"
            )

    derived = set(design.key_attributes)
    for declared in info.indexes.values():
        derived.update(declared.attributes)
    if design.type_attribute:
        derived.add(design.type_attribute)
    clash = derived & set(info.by_stored)
    if clash:
        raise ConfigurationError(
            f"{cls.__name__}: fields stored as {', '.join(sorted(clash))} would be overwritten "
            "by the key, index or type attributes"
        )
    info.derived = frozenset(derived)

    namespace["__slots__"] = tuple(f.name for f in fields)
    namespace[_INFO] = info
    init_src, init_env = _init_source(fields)
    exec(init_src, init_env)
    namespace["__init__"] = init_env["__init__"]
    namespace["__eq__"], namespace["__repr__"] = _eq_repr([f.name for f in fields])
    namespace["__hash__"] = None
    if "ref" not in namespace:
        namespace["ref"] = classmethod(Entity.ref.__func__)  # type: ignore[attr-defined]
    if "field_ref" not in namespace:
        namespace["field_ref"] = classmethod(Entity.field_ref.__func__)  # type: ignore[attr-defined]

    meta = type(cls) if isinstance(cls, EntityMeta) else EntityMeta
    if type(cls) is not type and not isinstance(cls, EntityMeta):
        raise ConfigurationError(f"{cls.__name__}: an entity class cannot have a metaclass")
    new = meta(cls.__name__, cls.__bases__, namespace)
    new.__qualname__ = cls.__qualname__
    info.cls = new
    new.__asyncdyn_refs__ = {f.name: FieldRef(new, f.name) for f in fields}  # type: ignore[attr-defined]
    for declared in (info.key, *info.indexes.values()):
        declared.entity = new
        declared.info = info
    for natural in info.natural.values():
        natural.entity = new
    info.encode, info.decode, info.keyed = _codecs(new, info, fields)
    return typing.cast(type[E], new)


def _fields_stored_as(info: EntityInfo, attributes: tuple[str, ...], index: str) -> tuple[str, ...]:
    missing = [a for a in attributes if a not in info.by_stored]
    if missing:
        raise ConfigurationError(
            f"{info.cls.__name__}: index {index!r} is keyed by {', '.join(attributes)}, and no "
            f"field is stored as {', '.join(missing)}"
        )
    return tuple(info.by_stored[a].name for a in attributes)


def _eq_repr(names: list[str]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    values = "(" + "".join(f"self.{n}, " for n in names) + ")"
    other = "(" + "".join(f"other.{n}, " for n in names) + ")"
    shown = ", ".join(f"{n}={{self.{n}!r}}" for n in names)
    src = (
        "def __eq__(self, other):\n"
        "    if other.__class__ is not self.__class__:\n"
        "        return NotImplemented\n"
        f"    return {values} == {other}\n"
        "def __repr__(self):\n"
        f"    return f'{{self.__class__.__qualname__}}({shown})'\n"
    )
    env: dict[str, Any] = {}
    exec(src, env)
    return env["__eq__"], env["__repr__"]


def _codecs(
    cls: type, info: EntityInfo, fields: list[FieldInfo]
) -> tuple[Callable[[Any], dict[str, Any]], Callable[..., Any], Any]:
    """Generated ``encode(entity) -> attributes``, ``decode(attributes) -> entity`` and
    ``keyed(attributes, partition_fields) -> entity | KEYED_MISS`` (or ``None``)."""
    key = info.key
    attrs = info.design.key_attributes
    templates = [(t, a) for t, a in ((key.pk, attrs[0]), (key.sk, attrs[-1])) if t is not None]

    def key_fields(item: Mapping[str, Any]) -> dict[str, Any]:
        """Fields held by the item's table key (a design may store them only there)."""
        out: dict[str, Any] = {}
        for template, attr in templates:
            out.update(template.parse(item.get(attr)) or {})
        return out

    in_key = set(key.fields)
    env: dict[str, Any] = {
        "new": object.__new__,
        "cls": cls,
        "MISSING": MISSING,
        "key_fields": key_fields,
        "Decimal": Decimal,
        "MISS": KEYED_MISS,
    }
    enc = ["def encode(o):", "    d = {}"]
    dec = ["def decode(d, k=None):", "    o = new(cls)"]
    # keyed: the sort key read inline (no dict of parsed fields), the partition's fields
    # from the query; key-only fields come from those, never from a lookup in the item.
    sort = key.sk
    fail = "return MISS if miss is None else miss(d)"
    parsed = None if sort is None else sort.parse_code("s", fail, "k", exact=True)
    keyed: list[str] | None = None
    from_key: dict[str, str] = {}
    if parsed is not None and sort is not None:
        lines, parse_env, from_key = parsed
        env.update(parse_env)
        from_key.update({name: f"known[{name!r}]" for name in key.pk.fields})
        keyed = [
            "def keyed(d, known, miss=None):",
            f"    s = d.get({attrs[-1]!r})",
            *lines,
            "    try:",
            "        o = new(cls)",
        ]
    where_prefix = info.type_name
    for f in fields:
        n, s = f.name, f.stored
        encoder: Callable[[Any], Any] | None = None
        decoder: Callable[[Any], Any] | None = None
        if f.kind is datetime:
            if f.spec.epoch:
                encoder = _encode_epoch(f"{where_prefix}.{n}", f.spec.ttl)
                decoder = _decode_epoch
            else:
                encoder = _encode_datetime(f"{where_prefix}.{n}")
                decoder = datetime.fromisoformat
        elif f.kind is date:
            encoder = date.isoformat
            decoder = _decode_date
        elif f.kind is float:
            decoder = _decode_float
        if f.spec.compress:
            encoder = _compressor(f"{where_prefix}.{n}")
            decoder = _decompressor(f"{where_prefix}.{n}")
        enc.append(f"    v = o.{n}")
        if encoder is None:
            enc.append(f"    if v is not None: d[{s!r}] = v")
        else:
            env[f"enc_{n}"] = encoder
            enc.append(f"    if v is not None: d[{s!r}] = enc_{n}(v)")
        default = f.default()
        conv = f"dec_{n}(v)" if decoder is not None else "v"
        if decoder is not None:
            env[f"dec_{n}"] = decoder
        elif f.kind is Decimal:  # numbers="auto" reads integral N as int
            conv = "v if v.__class__ is Decimal else Decimal(v)"
        elif f.kind is int:
            conv = "v if v.__class__ is int else int(v)"
        if keyed is not None:
            keyed += ["    " + line for line in _keyed_field(n, s, conv, default, from_key)]
        if default is MISSING and n in in_key:
            # Parsed from the key when the item does not store it: already typed.
            dec.append(f"    v = d.get({s!r})")
            dec.append("    if v is None:")
            dec.append("        if k is None:")
            dec.append("            k = key_fields(d)")
            dec.append(f"        o.{n} = k[{n!r}]")
            dec.append("    else:")
            dec.append(f"        o.{n} = {conv}")
        elif default is MISSING:
            # A required field missing is a KeyError: decode_item() then fills it from the
            # key (items written without the field, KEYS_ONLY indexes) or names it.
            dec.append(f"    v = d[{s!r}]")
            dec.append(f"    o.{n} = None if v is None else {conv}")
        else:
            if f.spec.default_factory is not None:
                env[f"factory_{n}"] = f.spec.default_factory
                fallback = f"factory_{n}()"
            else:
                env[f"default_{n}"] = default
                fallback = f"default_{n}"
            dec.append(f"    v = d.get({s!r})")
            dec.append(f"    o.{n} = {fallback} if v is None else {conv}")
            if keyed is not None and n not in from_key:
                keyed.append(f"        v = d.get({s!r})")
                keyed.append(f"        o.{n} = {fallback} if v is None else {conv}")
    enc.append("    return d")
    dec.append("    return o")
    source = "\n".join(enc) + "\n" + "\n".join(dec) + "\n"
    if keyed is not None:
        keyed += [
            "        return o",
            # A field missing, or a key text its parser refuses: the long way decides.
            "    except (KeyError, ValueError, ArithmeticError):",
            f"        {fail}",
        ]
        source += "\n".join(keyed) + "\n"
    exec(source, env)
    return env["encode"], env["decode"], env.get("keyed")


def _keyed_field(
    name: str, stored: str, conv: str, default: Any, from_key: Mapping[str, str]
) -> list[str]:
    """``keyed``'s lines for one field (indented once, inside its ``try``): a stored value
    first, else the key's; plain values stored as they are."""
    if name in from_key:
        return [
            f"    v = d.get({stored!r})",
            f"    o.{name} = {from_key[name]} if v is None else {conv}",
        ]
    if default is MISSING:
        if conv == "v":
            return [f"    o.{name} = d[{stored!r}]"]
        return [f"    v = d[{stored!r}]", f"    o.{name} = None if v is None else {conv}"]
    return []  # filled by the caller: defaults share decode's lines
