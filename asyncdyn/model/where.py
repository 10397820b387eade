"""Ranges on key-template fields: ``Order.placed_at.between(t0, t1)`` as a sort-key condition.

A ``Where`` names one entity field and the values it may take. The repository turns it into
a key condition on whatever sort key the query reads, through that key's template: a range
of field values becomes a range of rendered keys, so no FilterExpression is ever needed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FieldRef", "Where"]


class Where:
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


class FieldRef:
    """An entity field seen from its class (``Order.placed_at``): builds ``Where`` ranges."""

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
