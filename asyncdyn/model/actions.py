"""``EntityAction``: a transaction action of the entity layer, carrying the entity it writes.

``repo.tx_put(order)`` stamps the entity once, when the action is built (timestamps set,
version counted): the item in the action and ``action.entity`` come from the same values, so
after ``db.transact_write([...])`` commits, ``action.entity`` is the entity as stored, as
``repo.put`` returns it. If the transaction is cancelled, nothing of it was written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from ..transactions import TxAction

__all__ = ["EntityAction"]

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class EntityAction(TxAction, Generic[E]):
    """A ``TxAction`` whose ``entity`` is what it writes (a put: the entity as written)."""

    entity: E
