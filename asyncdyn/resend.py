"""The one rule deciding whether a request may be sent again after its answer was lost.

A failed attempt whose error has ``maybe_applied`` set (a reset after sending, a timeout, a
damaged answer, a 5xx) may have been applied by the server. Sending it again is harmless for
an idempotent request and wrong for the others: ``ADD 1`` would count twice, a conditional
put would fail on its own first write. ``resend_rule(operation, payload)`` classifies every
request once, from its wire payload, into one of three classes, and the dispatcher's retry
loop (``Dispatcher.call_read``) is the only place that acts on it, for single writes,
transactions and raw ``Client.call`` requests alike:

``Resend.SAFE``
    applying it twice leaves what applying it once does: reads, unconditional put/delete,
    an update whose every action is idempotent, BatchWriteItem (puts and deletes only),
    TransactWriteItems with its ``ClientRequestToken`` (DynamoDB applies a token once for
    10 minutes). Resent as any retryable failure is.
``Resend.RECOGNISE``
    a conditional put, delete or idempotent update: resent with
    ``ReturnValuesOnConditionCheckFailure=ALL_OLD``, because the resend may fail its condition
    on the first attempt's own write. A condition failure then is the call's success when
    the item returned is exactly what the call wrote (a put); anything else after the lost
    answer cannot be told apart from a real condition failure and is ``OutcomeUnknown``.
``Resend.NEVER``
    a write whose second application differs (``ADD`` to a number, ``SET a = a + :n``,
    ``list_append``, a list index), a write that asked for the old item (the resend's old
    item would be the first attempt's write), a transaction without a token, a PartiQL
    write. It raises ``OutcomeUnknown`` instead of being resent.

``RetryPolicy(retry_unknown_outcome=True)`` opts out of all of this (at-least-once).

Below the retry loop nothing is ever sent twice: a transport moves a request to a new
connection only when it provably never left (a pooled connection seen closed before
writing), and says so with ``maybe_applied = False``.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["Resend", "resend_rule", "update_is_idempotent"]


class Resend(enum.Enum):
    """What the retry loop may do after an attempt that may have been applied."""

    SAFE = "safe"
    RECOGNISE = "recognise"
    NEVER = "never"


# Operations that change nothing: always safe to send again.
_WRITES = frozenset(
    {
        "PutItem",
        "DeleteItem",
        "UpdateItem",
        "TransactWriteItems",
        "ExecuteStatement",
        "ExecuteTransaction",
        "BatchExecuteStatement",
    }
)
# ReturnValues whose answer a resend would compute from the first attempt's own write.
_OLD_RETURNS = frozenset({"ALL_OLD", "UPDATED_OLD"})
_CLAUSE = re.compile(r"\b(SET|REMOVE|ADD|DELETE)\b", re.IGNORECASE)
_VALUE = re.compile(r"^:[A-Za-z0-9_]+$")
_PATH = re.compile(r"^[#A-Za-z0-9_.]+$")  # no list index: ``a[3]`` twice is two elements
_IF_NOT_EXISTS = re.compile(
    r"^if_not_exists\s*\(\s*([#A-Za-z0-9_.\[\]]+)\s*,\s*(:[A-Za-z0-9_]+)\s*\)$", re.IGNORECASE
)
_SETS = ("SS", "NS", "BS")


def resend_rule(operation: str, payload: Mapping[str, Any]) -> Resend:
    """The class of ``operation`` with this wire ``payload`` (see the module docstring)."""
    if operation not in _WRITES:
        return Resend.SAFE
    if operation == "TransactWriteItems" or operation == "ExecuteTransaction":
        return Resend.SAFE if payload.get("ClientRequestToken") else Resend.NEVER
    if operation in ("ExecuteStatement", "BatchExecuteStatement"):
        statements = (
            [payload.get("Statement")]
            if operation == "ExecuteStatement"
            else [entry.get("Statement") for entry in payload.get("Statements") or ()]
        )
        reads = all(
            isinstance(s, str) and s.lstrip().upper().startswith("SELECT") for s in statements
        )
        return Resend.SAFE if reads else Resend.NEVER
    if payload.get("ReturnValues", "NONE") in _OLD_RETURNS:
        return Resend.NEVER
    if operation == "UpdateItem":
        expression = payload.get("UpdateExpression")
        values = payload.get("ExpressionAttributeValues") or {}
        if not isinstance(expression, str) or not update_is_idempotent(expression, values):
            return Resend.NEVER
    return Resend.RECOGNISE if payload.get("ConditionExpression") else Resend.SAFE


def update_is_idempotent(expression: str, values: Mapping[str, Any]) -> bool:
    """Whether applying this UpdateExpression twice leaves what applying it once does.

    Conservative: anything not understood is not idempotent. Idempotent actions are
    ``SET path = :value``, ``SET path = if_not_exists(path, :value)``, ``SET path = other``
    when no action of the update writes ``other``, ``REMOVE path``, ``ADD path :set`` (a set
    union) and ``DELETE path :set`` (a set difference), none on a list index. ``ADD`` of a
    number, ``+``, ``-`` and ``list_append`` are not.
    """
    shape_ok, added = _shape(expression)
    if not shape_ok:
        return False
    for placeholder in added:  # ADD of a number counts again; of a set, it is a union
        value = values.get(placeholder)
        if not (isinstance(value, Mapping) and any(t in value for t in _SETS)):
            return False
    return True


@functools.lru_cache(maxsize=1024)
def _shape(expression: str) -> tuple[bool, tuple[str, ...]]:
    """Whether the expression's actions are idempotent whatever its values, and the value
    placeholders of its ``ADD`` actions (idempotent only for a set). Cached: the builders
    render one string per shape of update, so this parse runs once per shape."""
    if "list_append" in expression.lower():
        return False, ()
    parts = _CLAUSE.split(expression)
    if parts[0].strip():
        return False, ()
    targets: list[str] = []
    sources: list[str] = []
    added: list[str] = []
    for clause, body in zip(parts[1::2], parts[2::2], strict=True):
        clause = clause.upper()
        for action in _split_actions(body):
            if clause == "SET":
                target, eq, operand = action.partition("=")
                target, operand = target.strip(), operand.strip()
                if not eq or not _PATH.match(target):
                    return False, ()
                if _VALUE.match(operand):
                    pass
                elif match := _IF_NOT_EXISTS.match(operand):
                    if match.group(1) != target:
                        return False, ()
                elif _PATH.match(operand):
                    sources.append(operand)
                else:  # arithmetic, a function, a list index
                    return False, ()
            elif clause == "REMOVE":
                target = action
                if not _PATH.match(target):
                    return False, ()
            else:  # ADD / DELETE path :value
                pieces = action.split()
                if len(pieces) != 2 or not _PATH.match(pieces[0]) or not _VALUE.match(pieces[1]):
                    return False, ()
                target = pieces[0]
                if clause == "ADD":
                    added.append(pieces[1])
            targets.append(target)
    if not targets:
        return False, ()
    # ``SET a = b, b = :x`` copies the old b first and the new b on a resend.
    copies_written = any(
        source == target or source.startswith(target + ".")
        for source in sources
        for target in targets
    )
    return not copies_written, tuple(added)


def _split_actions(body: str) -> list[str]:
    """The comma-separated actions of one clause (commas inside parentheses kept)."""
    actions: list[str] = []
    depth = 0
    start = 0
    for i, char in enumerate(body):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            actions.append(body[start:i].strip())
            start = i + 1
    actions.append(body[start:].strip())
    return actions
