"""Transactions: TransactWriteItems and TransactGetItems, checked before anything is sent.

A write transaction is a list of ``TxAction`` built by ``Table.tx_put`` / ``tx_update`` /
``tx_delete`` / ``tx_check`` (each encoded and validated as it is built). Before sending, the
whole is checked the way DynamoDB would refuse it: 1-100 actions, at most 4 MB of items, no
two actions on one item. Every call carries a ``ClientRequestToken``; the dispatcher resends
the very same bytes on a retry, so a commit whose answer was lost is applied once.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .batch import key_identity
from .errors import InvalidTransaction, TransactionCanceled
from .marshal import Decoder, WireItem, decoder, wire_item_size
from .offload import Uploads, together
from .transport import Dispatcher

__all__ = [
    "MAX_ACTIONS",
    "MAX_TRANSACTION_BYTES",
    "TxAction",
    "TxGet",
    "transact_get",
    "transact_write",
]

MAX_ACTIONS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
# Cancellation codes that say "try again later", never "this cannot succeed".
_TRANSIENT_REASONS = frozenset(
    {"TransactionConflict", "ProvisionedThroughputExceeded", "ThrottlingError"}
)


@dataclass(frozen=True, slots=True)
class TxAction:
    """One action of ``Client.transact_write``; build it with ``Table.tx_put`` and friends.

    ``kind`` is ``Put``, ``Update``, ``Delete`` or ``ConditionCheck``; ``body`` the action's
    wire fields; ``key`` the wire key (for a put, the whole item: its key attributes are
    picked out with the table's schema).

    A put of a table with offloaded attributes (``asyncdyn.large``) is ``stage``d by
    ``Client.transact_write`` once the table's key names are known (its object keys name
    the item): that gives the action sent, whose ``uploads`` are done before the
    transaction is, and whose orphans are deleted when it is cancelled.
    """

    kind: str
    table: str
    body: Mapping[str, Any]
    key: WireItem
    stage: Callable[[Sequence[str]], TxAction] | None = field(
        default=None, kw_only=True, compare=False, repr=False
    )
    uploads: Uploads | None = field(default=None, kw_only=True, compare=False, repr=False)

    @property
    def size(self) -> int:
        return wire_item_size(self.key)


@dataclass(frozen=True, slots=True)
class TxGet:
    """One read of ``Client.transact_get``; build it with ``Table.tx_get``."""

    table: str
    body: Mapping[str, Any]
    strip: tuple[str, ...] = ()  # attributes fetched only for ``hide_expired``, removed again


def check_actions(actions: Sequence[TxAction], key_names: Mapping[str, Sequence[str]]) -> None:
    """Refuse what DynamoDB would refuse, naming the offending action.

    ``key_names`` gives the key attributes of the tables whose schema is known (those with a
    put); other tables' keys are compared by the attributes the keys themselves hold.
    """
    if not 1 <= len(actions) <= MAX_ACTIONS:
        raise InvalidTransaction(
            f"a transaction has 1 to {MAX_ACTIONS} actions, got {len(actions)}"
        )
    total = 0
    seen: dict[tuple[str, tuple[str, ...]], int] = {}
    for position, action in enumerate(actions):
        if not isinstance(action, TxAction):
            raise InvalidTransaction(
                f"actions[{position}] is a {type(action).__name__}, not a TxAction from "
                "Table.tx_put/tx_update/tx_delete/tx_check"
            )
        total += action.size
        names = key_names.get(action.table) or sorted(action.key)
        try:
            identity = (action.table, key_identity(action.key, names))
        except (KeyError, ValueError) as exc:
            raise InvalidTransaction(
                f"actions[{position}] ({action.kind} on {action.table!r}) has no valid key: {exc}"
            ) from None
        first = seen.setdefault(identity, position)
        if first != position:
            key = {name: action.key[name] for name in names}
            raise InvalidTransaction(
                f"actions[{first}] and actions[{position}] both act on {action.table!r} item "
                f"{key}: DynamoDB allows one action per item in a transaction"
            )
    if total > MAX_TRANSACTION_BYTES:
        raise InvalidTransaction(
            f"the transaction's items add up to {total} bytes; DynamoDB's limit is "
            f"{MAX_TRANSACTION_BYTES} (4 MB)"
        )


def name_cancelled(
    error: TransactionCanceled,
    actions: Sequence[TxAction],
    key_names: Mapping[str, Sequence[str]] = {},
) -> None:
    """Put the failed actions -- position, kind, table and key -- at the front of the
    message of ``error``: DynamoDB's names neither tables nor keys, only a list of codes.
    Key values are the caller's identifiers, never secrets; other attributes stay out."""
    failed = []
    for position, reason in enumerate(error.reasons):
        if reason.code is None or position >= len(actions):
            continue
        action = actions[position]
        names = key_names.get(action.table) or (() if action.kind == "Put" else tuple(action.key))
        try:
            key = decoder().item({name: action.key[name] for name in names})
        except (KeyError, ValueError):
            key = None
        where = f"{action.kind} on {action.table!r}" + (f", key {key!r}" if key else "")
        failed.append(f"actions[{position}] ({where}): {reason.code}")
    if failed:
        error.args = (f"transaction cancelled by {'; '.join(failed)} - {error.args[0]}",)


def _transient(error: TransactionCanceled) -> bool:
    codes = {reason.code for reason in error.reasons if reason.code is not None}
    return bool(codes) and codes <= _TRANSIENT_REASONS


async def transact_write(
    dispatcher: Dispatcher,
    actions: Sequence[TxAction],
    *,
    token: str | None,
    retry_conflicts: bool,
    extra: Mapping[str, Any],
    key_names: Mapping[str, Sequence[str]] = {},
) -> None:
    """Send the transaction. Transport errors, 5xx and ``TransactionInProgress`` are retried
    with the same token. With ``retry_conflicts``, a cancellation whose reasons are all
    transient (a conflicting transaction, throttling) is retried with backoff under a new
    token: nothing of a cancelled transaction was applied."""
    if token is not None and not 1 <= len(token) <= 36:
        raise InvalidTransaction("a ClientRequestToken is 1 to 36 characters")
    items = [{action.kind: action.body} for action in actions]
    # Offloaded attributes go to S3 first (content-addressed: nothing live is overwritten);
    # an upload S3 refuses raises OffloadError and nothing is sent.
    uploads = [action.uploads for action in actions if action.uploads is not None]
    if uploads:
        await together([staged.run() for staged in uploads])
    budget = dispatcher.retry.start()
    while True:
        payload = {
            "TransactItems": items,
            "ClientRequestToken": token or str(uuid.uuid4()),
            **extra,
        }
        try:
            await dispatcher.call("TransactWriteItems", payload, budget=budget)
            return
        except TransactionCanceled as exc:
            if not (retry_conflicts and _transient(exc)):
                name_cancelled(exc, actions, key_names)
                if uploads:
                    await _discard_uploads(exc, actions)
                raise
            await dispatcher.backoff(exc, budget)
            token = None


async def _discard_uploads(error: TransactionCanceled, actions: Sequence[TxAction]) -> None:
    """A cancelled transaction applied nothing: each put's uploads that its item, as it
    stands, does not refer to are orphans. The item is the one the cancellation returned
    (``returns_on_failure="ALL_OLD"`` on a failed condition), else read now; an object the
    item refers to is live (the same bytes written before) and stays."""
    calls: list[Awaitable[int]] = []
    for position, action in enumerate(actions):
        if action.uploads is None:
            continue
        reason = error.reasons[position] if position < len(error.reasons) else None
        item = None if reason is None else reason.item
        calls.append(action.uploads.discard(item, seen=item is not None))
    await together(calls)


async def transact_get(
    dispatcher: Dispatcher, gets: Sequence[TxGet], decoder: Decoder, extra: Mapping[str, Any]
) -> list[dict[str, Any] | None]:
    """The items of ``gets`` (``None`` for a missing one), in order, read as one snapshot."""
    if not 1 <= len(gets) <= MAX_ACTIONS:
        raise InvalidTransaction(f"a transaction reads 1 to {MAX_ACTIONS} items, got {len(gets)}")
    for position, get in enumerate(gets):
        if not isinstance(get, TxGet):
            raise InvalidTransaction(
                f"gets[{position}] is a {type(get).__name__}, not a TxGet from Table.tx_get"
            )
    payload = {"TransactItems": [{"Get": get.body} for get in gets], **extra}
    data = await dispatcher.call("TransactGetItems", payload)
    answers = data.get("Responses") or []
    if len(answers) != len(gets):
        raise InvalidTransaction(
            f"TransactGetItems answered {len(answers)} items for {len(gets)} reads"
        )
    decode = decoder.item
    return [None if not answer.get("Item") else decode(answer["Item"]) for answer in answers]
