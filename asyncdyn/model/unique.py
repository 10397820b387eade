"""Unique fields: a guard item per value, claimed and released in the write's transaction.

``field(unique=True)`` on ``Customer.email`` makes every write of a customer that sets or
changes the email also put ``UNIQUE#Customer#email#<value>`` (on condition that it does not
exist) and delete the guard of the old value (on condition that this customer owns it), in
one TransactWriteItems with the item itself, so the value and its guard never disagree. The
old values are read first (consistently) and the item's write is conditional on them still
being stored, so a concurrent change makes the transaction fail rather than leak a guard.
Transactions carry a ClientRequestToken (``Client.transact_write``): a resend after a lost
answer is applied once. DynamoDB transactions only: dynalite has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import ConditionalCheckFailed, TransactionCanceled, UniqueConflict
from ..expressions import Attr, Condition
from ..transactions import TxAction
from .entity import EntityInfo, FieldInfo

if TYPE_CHECKING:
    from .repository import Repository

__all__ = ["GUARD_TYPE", "delete_unique", "guard_key", "put_unique"]

# The type attribute of guard items: no entity can be named so (it has a dot).
GUARD_TYPE = "asyncdyn.UniqueGuard"
_GUARD_SORT = "UNIQUE"


def guard_key(repo: Repository, info: EntityInfo, f: FieldInfo, value: Any) -> dict[str, str]:
    """The key of the guard of ``value`` (as stored) of field ``f``."""
    attrs = repo.design.key_attributes
    text = value.hex() if isinstance(value, bytes) else str(value)
    key = {attrs[0]: f"UNIQUE#{info.type_name}#{f.stored}#{text}"}
    if len(attrs) == 2:
        key[attrs[1]] = _GUARD_SORT
    return key


def _owner(repo: Repository, key: Mapping[str, Any]) -> dict[str, Any]:
    return {f"owner_{a}": key[a] for a in repo.design.key_attributes}


def _owned_by(repo: Repository, key: Mapping[str, Any]) -> Condition:
    """The guard is this item's, or is missing (a value written before the field was
    declared unique has none: releasing it must not block the write)."""
    condition: Condition | None = None
    for name, value in _owner(repo, key).items():
        part = Attr(name).eq(value)
        condition = part if condition is None else condition & part
    assert condition is not None
    return Attr(repo.design.key_attributes[0]).not_exists() | condition


def _stored_values(info: EntityInfo, stored: Mapping[str, Any] | None) -> Condition | None:
    """A condition that the unique fields still hold what was read."""
    condition: Condition | None = None
    for f in info.unique:
        value = None if stored is None else stored.get(f.stored)
        part = Attr(f.stored).not_exists() if value is None else Attr(f.stored).eq(value)
        condition = part if condition is None else condition & part
    return condition


async def _commit(
    repo: Repository,
    info: EntityInfo,
    key: Mapping[str, Any],
    actions: list[TxAction],
    claims: dict[int, tuple[FieldInfo, Any]],
    operation: str,
) -> None:
    try:
        await repo.db.transact_write(actions)
    except TransactionCanceled as exc:
        for i, reason in enumerate(exc.reasons):
            if reason.code != "ConditionalCheckFailed":
                continue
            if i in claims:
                f, value = claims[i]
                raise UniqueConflict(info.type_name, f.name, value, operation=operation) from exc
            failed = ConditionalCheckFailed(
                "ConditionalCheckFailedException",
                reason.message or "The conditional request failed",
                status=exc.status,
                body=exc.body,
                operation=operation,
            )
            failed.item = await repo.table.get(dict(key), consistent=True)
            raise failed from exc
        raise


async def put_unique(
    repo: Repository, info: EntityInfo, item: dict[str, Any], condition: Condition | None
) -> None:
    """Write ``item`` with its guards claimed and the replaced values' guards released."""
    key = {a: item[a] for a in repo.design.key_attributes}
    stored = await repo.table.get(key, consistent=True)
    still = _stored_values(info, stored)
    if still is not None:
        condition = still if condition is None else condition & still
    actions = [repo.table.tx_put(item, condition=condition)]
    claims: dict[int, tuple[FieldInfo, Any]] = {}
    for f in info.unique:
        new = item.get(f.stored)
        old = None if stored is None else stored.get(f.stored)
        if new == old:
            continue
        if new is not None:
            claims[len(actions)] = (f, new)
            guard = {**guard_key(repo, info, f, new), **_owner(repo, key)}
            if repo.design.type_attribute:
                guard[repo.design.type_attribute] = GUARD_TYPE
            actions.append(
                repo.table.tx_put(guard, condition=Attr(repo.design.key_attributes[0]).not_exists())
            )
        if old is not None:
            actions.append(
                repo.table.tx_delete(guard_key(repo, info, f, old), condition=_owned_by(repo, key))
            )
    if len(actions) == 1:  # no guard moves: a plain conditional put (no transaction needed)
        try:
            await repo.table.put(item, condition=condition, returns_on_failure="ALL_OLD")
        except ConditionalCheckFailed as exc:
            if exc.item is None:
                exc.item = await repo.table.get(key, consistent=True)
            raise
        return
    await _commit(repo, info, key, actions, claims, "PutItem")


async def delete_unique(
    repo: Repository, info: EntityInfo, key: dict[str, str], condition: Condition | None
) -> None:
    """Delete the item at ``key`` and release its guards, in one transaction."""
    stored = await repo.table.get(key, consistent=True)
    if stored is None:
        if condition is not None:  # a versioned entity's delete: its version is gone
            raise ConditionalCheckFailed(
                "ConditionalCheckFailedException", "no such item", operation="DeleteItem"
            )
        return
    still = _stored_values(info, stored)
    if still is not None:
        condition = still if condition is None else condition & still
    actions = [repo.table.tx_delete(key, condition=condition)]
    for f in info.unique:
        old = stored.get(f.stored)
        if old is not None:
            actions.append(
                repo.table.tx_delete(guard_key(repo, info, f, old), condition=_owned_by(repo, key))
            )
    await _commit(repo, info, key, actions, {}, "DeleteItem")
