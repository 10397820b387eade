"""Key declarations: an entity's table key and its index keys, as pairs of templates.

``design.key(pk=..., sk=...)`` and ``design.index(name, pk=..., sk=...)`` make these in the
class body; the entity decorator binds each to its entity. On a class, an index declaration
is the accessor that ``repo.query(Order.by_status, status=...)`` takes.
"""

from __future__ import annotations

from typing import Any

from .templates import Template

__all__ = ["EntityKey", "NaturalKey"]


class EntityKey:
    """The templates of one key (table or index ``index``) of one entity, and the
    attributes they are stored in (``pk_attribute``, ``sk_attribute``)."""

    __slots__ = (
        "attributes",
        "entity",
        "field_set",
        "fields",
        "index",
        "info",
        "name",
        "pk",
        "pk_attribute",
        "sk",
        "sk_attribute",
    )

    def __init__(
        self,
        index: str | None,
        pk: Template,
        sk: Template | None,
        pk_attribute: str,
        sk_attribute: str | None,
    ) -> None:
        self.index = index
        self.pk = pk
        self.sk = sk
        self.pk_attribute = pk_attribute
        self.sk_attribute = sk_attribute
        self.entity: Any = None  # the entity class, once compiled
        self.info: Any = None  # its EntityInfo, then (no class attribute read per query)
        self.name = ""  # the class attribute it was declared as
        # Every entity field the key is built from (partition first), once each.
        names = list(pk.fields)
        if sk is not None:
            names += [n for n in sk.fields if n not in names]
        self.fields: tuple[str, ...] = tuple(names)
        # To compare with a mapping's keys() in one step: are these exactly the key fields?
        self.field_set = frozenset(names)
        self.attributes: tuple[str, ...] = (
            (pk_attribute,) if sk_attribute is None else (pk_attribute, sk_attribute)
        )

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        owner = getattr(self.entity, "__name__", "?")
        where = "table" if self.index is None else self.index
        sk = "" if self.sk is None else f", sk={self.sk.text!r}"
        return f"<{owner}.{self.name or 'key'} on {where}: pk={self.pk.text!r}{sk}>"

    def render(self, values: Any) -> dict[str, str]:
        """The key attributes for ``values`` (a mapping of field values)."""
        out = {self.pk_attribute: self.pk.render(values)}
        if self.sk is not None and self.sk_attribute is not None:
            out[self.sk_attribute] = self.sk.render(values)
        return out


class NaturalKey:
    """An entity's key on a multi-attribute index: the index's key attributes are entity
    fields stored as themselves (typed, no template, nothing derived to keep in sync).
    ``pk_fields``/``sk_fields`` are the fields stored in ``pk_attributes``/``sk_attributes``."""

    __slots__ = (
        "entity",
        "fields",
        "index",
        "name",
        "pk_attributes",
        "pk_fields",
        "sk_attributes",
        "sk_fields",
    )

    def __init__(
        self, index: str, pk_attributes: tuple[str, ...], sk_attributes: tuple[str, ...]
    ) -> None:
        self.index = index
        self.pk_attributes = pk_attributes
        self.sk_attributes = sk_attributes
        self.entity: Any = None
        self.name = ""
        self.pk_fields: tuple[str, ...] = ()
        self.sk_fields: tuple[str, ...] = ()
        self.fields: tuple[str, ...] = ()

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        owner = getattr(self.entity, "__name__", "?")
        return (
            f"<{owner}.{self.name or 'index'} on {self.index}: "
            f"pk={self.pk_attributes}, sk={self.sk_attributes}>"
        )
