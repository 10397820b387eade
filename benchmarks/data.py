"""The items every benchmark reads and writes, in plain Python and in DynamoDB JSON.

One shape for all of them (10 top-level attributes, ~1 KB on the wire: strings, numbers,
a bool, a nested map and a list), so the canned server's answers and the seeded table hold
the same kind of item and one check fits both.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

__all__ = [
    "ATTRIBUTES",
    "CITY",
    "STATUS",
    "make_item",
    "to_wire",
    "wire_item",
]

STATUS = "SHIPPED"
CITY = "Springfield"
ATTRIBUTES = 10

# Long enough to bring the item to ~1 KB on the wire, like a typical order row.
_NOTE = (
    "Leave the parcel with the concierge if nobody answers; the side entrance is locked "
    "after six. Fragile: two glass jars inside, keep upright. Invoice goes to the billing "
    "address on file, not the delivery address. Customer asked for a call before delivery "
    "on weekdays and prefers recyclable packaging where it is available. Gift wrap the "
    "small box only and leave out the printed receipt. Returns within thirty days go to "
    "the depot on Industrial Way, with the order number written on the outside of the box."
)


def make_item(pk: str, sk: str, n: int = 0) -> dict[str, Any]:
    """An order-like item; ``n`` varies the numbers so items are not all identical."""
    return {
        "PK": pk,
        "SK": sk,
        "status": STATUS,
        # Decimal, not float: boto3's serializer refuses floats.
        "total": Decimal(f"{1000 + n % 997}.{n % 100:02d}"),
        "quantity": 1 + n % 9,
        "created": 1_764_266_400 + n,
        "gift": n % 2 == 0,
        "customer": {
            "name": "Jane Q. Example",
            "email": "jane.example@example.com",
            "address": {"street": "742 Evergreen Terrace", "city": CITY, "zip": "49007"},
        },
        "tags": ["priority", "fragile", "gift-wrap", f"batch-{n % 13}"],
        "note": _NOTE,
    }


def to_wire(value: Any) -> dict[str, Any]:
    """One Python value as a DynamoDB AttributeValue (only the types ``make_item`` uses)."""
    # bool before int: bool is an int subclass.
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | Decimal):
        return {"N": str(value)}
    if isinstance(value, dict):
        return {"M": {k: to_wire(v) for k, v in value.items()}}
    if isinstance(value, list):
        return {"L": [to_wire(v) for v in value]}
    raise TypeError(f"no wire form for {type(value).__name__}")


def wire_item(item: dict[str, Any]) -> dict[str, Any]:
    """An item in DynamoDB JSON."""
    return {name: to_wire(value) for name, value in item.items()}
