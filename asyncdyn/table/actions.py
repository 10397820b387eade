"""Transaction actions: ``tx_put``, ``tx_update``, ``tx_delete``, ``tx_check``, ``tx_get`` build the
actions ``Client.transact_write`` / ``transact_get`` send, encoded and checked at once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..expressions import (
    Condition,
    Update,
)
from ..marshal import WireItem, encode_key
from ..transactions import TxAction, TxGet
from .core import (
    _WRITE_RETURNS,
    Attributes,
    ConditionArg,
    ReturnOnFailure,
    TableCore,
    _check_choice,
    _expressions,
)

__all__ = ["Actions"]


class Actions(TableCore):
    __slots__ = ()

    def _action(
        self,
        kind: str,
        body: dict[str, Any],
        key: WireItem,
        condition: ConditionArg,
        update: Update | str | None,
        returns_on_failure: ReturnOnFailure,
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
    ) -> TxAction:
        _check_choice("returns_on_failure", returns_on_failure, _WRITE_RETURNS)
        body["TableName"] = self.name
        if condition is not None or update is not None or names or values:
            _expressions(body, condition=condition, update=update, names=names, values=values)
        if returns_on_failure != "NONE":
            body["ReturnValuesOnConditionCheckFailure"] = returns_on_failure
        return TxAction(kind, self.name, body, key)

    def tx_put(
        self,
        item: Mapping[str, Any],
        *,
        condition: ConditionArg = None,
        returns_on_failure: ReturnOnFailure = "NONE",
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> TxAction:
        """A put for ``Client.transact_write`` (the item is encoded and checked now)."""
        wire = self._item(item)
        return self._action(
            "Put", {"Item": wire}, wire, condition, None, returns_on_failure, names, values
        )

    def tx_update(
        self,
        key: Mapping[str, Any],
        update: Update | str,
        *,
        condition: ConditionArg = None,
        returns_on_failure: ReturnOnFailure = "NONE",
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> TxAction:
        """An update for ``Client.transact_write``."""
        wire = self._key(key)
        self._check_update(update)
        return self._action(
            "Update", {"Key": wire}, wire, condition, update, returns_on_failure, names, values
        )

    def tx_delete(
        self,
        key: Mapping[str, Any],
        *,
        condition: ConditionArg = None,
        returns_on_failure: ReturnOnFailure = "NONE",
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> TxAction:
        """A delete for ``Client.transact_write``."""
        wire = self._key(key)
        return self._action(
            "Delete", {"Key": wire}, wire, condition, None, returns_on_failure, names, values
        )

    def tx_check(
        self,
        key: Mapping[str, Any],
        condition: Condition | str,
        *,
        returns_on_failure: ReturnOnFailure = "NONE",
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> TxAction:
        """A condition on another item that the transaction needs to hold (nothing written)."""
        wire = self._key(key)
        return self._action(
            "ConditionCheck",
            {"Key": wire},
            wire,
            condition,
            None,
            returns_on_failure,
            names,
            values,
        )

    def tx_get(
        self,
        key: Mapping[str, Any],
        *,
        attributes: Attributes = None,
        names: Mapping[str, str] | None = None,
    ) -> TxGet:
        """A read for ``Client.transact_get``."""
        body: dict[str, Any] = {"TableName": self.name, "Key": encode_key(key)}
        projection, strip = self._projected(attributes, names)
        if projection is not None:
            _expressions(body, attributes=projection)
        return TxGet(self.name, body, tuple(strip))
