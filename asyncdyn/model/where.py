"""Predicates on entity fields: ``Order.placed_at.between(t0, t1)``, ``Order.status.eq("PAID")``.

A ``Where`` names one entity field and the values it may take. Given as a query's ``where=``
it is a range on a key-template field: the repository turns it into a key condition on
whatever sort key the query reads, through that key's template, so no FilterExpression is
ever needed. Given as a write's ``condition=`` (and combined with ``&``, ``|``, ``~`` into a
``FieldCondition``) it is a condition expression on the stored attribute
(``conditions.py`` translates names and values); ``ne``, ``is_in``, ``exists`` and
``not_exists`` only make sense there, and a query refuses them.
"""

from __future__ import annotations

from typing import Any, cast

from ..errors import ConfigurationError

__all__ = ["RANGE_OPS", "FieldCondition", "FieldRef", "Where"]

# The operations a sort-key range can express (a query's where=); the rest are conditions only.
RANGE_OPS = frozenset({"eq", "between", "begins_with", "lt", "lte", "gt", "gte"})


class _Joins:
    """``&``, ``|`` and ``~`` of predicates: what a write's ``condition=`` is built with."""

    __slots__ = ()

    def __and__(self, other: Where | FieldCondition) -> FieldCondition:
        return FieldCondition("and", (_predicate(self), other))

    def __or__(self, other: Where | FieldCondition) -> FieldCondition:
        return FieldCondition("or", (_predicate(self), other))

    def __invert__(self) -> FieldCondition:
        return FieldCondition("not", (_predicate(self),))


def _predicate(joined: _Joins) -> Where | FieldCondition:
    # Where and FieldCondition are the only subclasses of _Joins.
    return cast("Where | FieldCondition", joined)


class Where(_Joins):
    """``op`` over ``values`` for the field ``field`` of entity ``entity``."""

    __slots__ = ("entity", "field", "op", "values")

    def __init__(self, entity: Any, field: str, op: str, values: tuple[Any, ...]) -> None:
        self.entity = entity
        self.field = field
        self.op = op
        self.values = values

    def __repr__(self) -> str:
        owner = getattr(self.entity, "__name__", "?")
        return f"Where({owner}.{self.field} {self.op} {self.values!r})"


class FieldCondition(_Joins):
    """``Where`` predicates joined by ``op`` (``and``, ``or``, ``not``): a write's condition
    on entity fields, never a key range."""

    __slots__ = ("op", "parts")

    def __init__(self, op: str, parts: tuple[Where | FieldCondition, ...]) -> None:
        self.op = op
        self.parts = parts

    def __repr__(self) -> str:
        if self.op == "not":
            return f"~{self.parts[0]!r}"
        return "(" + f" {self.op} ".join(repr(p) for p in self.parts) + ")"


class FieldRef:
    """An entity field seen from its class (``Order.placed_at``): builds ``Where``
    predicates (key ranges for a query, conditions for a write)."""

    __slots__ = ("entity", "name")

    def __init__(self, entity: Any, name: str) -> None:
        self.entity = entity
        self.name = name

    def __repr__(self) -> str:
        return f"<field {getattr(self.entity, '__name__', '?')}.{self.name}>"

    def _where(self, op: str, *values: Any) -> Where:
        return Where(self.entity, self.name, op, values)

    def eq(self, value: Any) -> Where:
        return self._where("eq", value)

    def between(self, low: Any, high: Any) -> Where:
        """Values from ``low`` to ``high``, both included."""
        return self._where("between", low, high)

    def begins_with(self, prefix: Any) -> Where:
        return self._where("begins_with", prefix)

    def lt(self, value: Any) -> Where:
        return self._where("lt", value)

    def lte(self, value: Any) -> Where:
        return self._where("lte", value)

    def gt(self, value: Any) -> Where:
        return self._where("gt", value)

    def gte(self, value: Any) -> Where:
        return self._where("gte", value)

    def ne(self, value: Any) -> Where:
        """A condition only (a key range cannot exclude one value)."""
        return self._where("ne", value)

    def is_in(self, values: Any) -> Where:
        """A condition only: the stored value is one of ``values`` (an iterable of values;
        a str is refused, as ``is_in("PAID")`` would mean its letters)."""
        if isinstance(values, (str, bytes)):
            raise ConfigurationError(
                f"{getattr(self.entity, '__name__', '?')}.{self.name}.is_in takes a list of "
                f"values, not the {type(values).__name__} {values!r}"
            )
        return self._where("is_in", *values)

    def exists(self) -> Where:
        """A condition only: the attribute is stored (the field is not ``None``)."""
        return self._where("exists")

    def not_exists(self) -> Where:
        """A condition only: the attribute is absent (the field is ``None``)."""
        return self._where("not_exists")
