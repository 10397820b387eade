"""A write's ``condition=`` on entity fields, as a condition expression on stored attributes.

``Order.status.eq("PENDING") & Order.placed_at.lt(t)`` names fields; the item stores them
under their stored names (``field(name=...)``) and encoded (datetimes as ISO text or epoch
seconds, decimals as numbers). The translation uses the entity's own encoder, so a condition
compares exactly what a write of that value would have stored. A field the repository stores
as absent when ``None`` compares with ``None`` as absence. Compressed and offloaded fields are
refused: their stored bytes are not the value, so DynamoDB cannot compare them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..errors import ConfigurationError, InvalidExpression
from ..expressions import Attr, Condition
from .entity import EntityInfo
from .where import FieldCondition, Where

__all__ = ["ConditionArg", "write_condition"]

# What ``condition=`` of a repository write takes: entity-field predicates, or a plain
# ``Condition`` on stored attribute names, passed through as it is.
ConditionArg = Condition | Where | FieldCondition | None

_ORDERED = {"lt", "lte", "gt", "gte", "between"}


def write_condition(info: EntityInfo, condition: ConditionArg) -> Condition | None:
    """``condition`` as a ``Condition`` on ``info``'s stored attributes (checked here,
    before anything is sent)."""
    if condition is None or isinstance(condition, Condition):
        return condition
    if isinstance(condition, Where):
        return _predicate(info, condition)
    if isinstance(condition, FieldCondition):
        parts = [write_condition(info, p) for p in condition.parts]
        first = parts[0]
        assert first is not None  # parts are predicates, never None
        if condition.op == "not":
            return ~first
        for part in parts[1:]:
            assert part is not None
            first = first & part if condition.op == "and" else first | part
        return first
    raise ConfigurationError(
        f"condition= takes Entity.field predicates (Order.status.eq(...)) or a Condition, "
        f"not {type(condition).__name__}"
    )


def _predicate(info: EntityInfo, where: Where) -> Condition:
    owner = getattr(where.entity, "__name__", "?")
    at = f"{owner}.{where.field}"
    if where.entity is not info.cls:
        raise ConfigurationError(f"the condition on {at} cannot guard a write of {info.type_name}")
    f = info.fields[where.field]
    spec = f.spec
    if spec.compress or spec.offload is not None:
        raise InvalidExpression(
            f"condition on {at}: it is compressed or offloaded, so DynamoDB cannot compare it"
        )
    attr = Attr(f.stored)
    op, values = where.op, where.values
    if op == "exists":
        return attr.exists()
    if op == "not_exists":
        return attr.not_exists()
    if op in ("eq", "ne") and values[0] is None:
        # None is stored as no attribute at all.
        return attr.not_exists() if op == "eq" else attr.exists()
    if any(v is None for v in values):
        raise InvalidExpression(f"condition on {at}: {op} compares no value with None")
    if op == "begins_with":
        prefix = values[0]
        if not isinstance(prefix, str) or f.kind in (int, float, Decimal) or spec.epoch:
            raise InvalidExpression(
                f"condition on {at}: begins_with takes a str prefix of a field stored as text"
            )
        return attr.begins_with(prefix)
    if op == "is_in" and not values:
        raise InvalidExpression(f"condition on {at}: is_in needs at least one value")
    encoded = [_encoded(info, f.name, f.stored, v, at) for v in values]
    if op == "is_in":
        return attr.is_in(encoded)
    if op == "between":
        return attr.between(encoded[0], encoded[1])
    if op in _ORDERED or op in ("eq", "ne"):
        method: Any = getattr(attr, op)
        return method(encoded[0])  # type: ignore[no-any-return]
    raise InvalidExpression(f"condition on {at}: unknown operation {op!r}")  # pragma: no cover


def _encoded(info: EntityInfo, name: str, stored: str, value: Any, at: str) -> Any:
    """``value`` as a write of the field would store it (the entity's own encoder)."""
    try:
        return info.encode_fields({name: value})[stored]
    except (TypeError, ValueError, KeyError) as exc:
        raise InvalidExpression(f"condition on {at}: {value!r} is no value of it ({exc})") from exc
