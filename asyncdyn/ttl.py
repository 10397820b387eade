"""Time to live: expiry values in epoch seconds, and items DynamoDB has yet to delete.

DynamoDB deletes an item some time after the number in its TTL attribute (epoch seconds)
has passed — within a few days, not at once — and until then every read returns it. So a
reader that must not see expired items checks the attribute itself: ``is_expired``, or
``Table.hide_expired(attribute)`` for every read of a table.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from .errors import ConfigurationError

__all__ = ["expires_at", "is_expired"]


def expires_at(when: datetime | timedelta, *, now: float | None = None) -> int:
    """The TTL value (whole epoch seconds) for ``when``: an aware ``datetime``, or a
    ``timedelta`` from ``now`` (default: the current time)::

        await table.put({"PK": "SESSION#1", "expires": expires_at(timedelta(hours=2))})
    """
    if isinstance(when, timedelta):
        start = time.time() if now is None else now
        return int(start + when.total_seconds())
    if isinstance(when, datetime):
        if when.tzinfo is None or when.tzinfo.utcoffset(when) is None:
            raise ConfigurationError(
                "expires_at needs an aware datetime (e.g. datetime(..., tzinfo=timezone.utc)); "
                "a naive one has no defined epoch time"
            )
        return int(when.timestamp())
    raise ConfigurationError(
        f"expires_at takes a datetime or a timedelta, not {type(when).__name__}"
    )


def is_expired(item: Mapping[str, Any], attribute: str, *, now: float | None = None) -> bool:
    """Whether ``item``'s TTL ``attribute`` holds a time that has passed. An item without
    the attribute, or with a value that is not a number, never expires (as in DynamoDB)."""
    value = item.get(attribute)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return False
    return value <= (time.time() if now is None else now)
