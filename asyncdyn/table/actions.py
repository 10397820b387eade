"""Transaction actions: ``tx_put``, ``tx_update``, ``tx_delete``, ``tx_check``, ``tx_get`` build the
actions ``Client.transact_write`` / ``transact_get`` send, encoded and checked at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
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
        self._check_large("condition", condition, names)
        if update is not None:
            self._check_large("update", update, names)
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
        """A put for ``Client.transact_write`` (the item is encoded and checked now).

        On a table with offloaded attributes (``asyncdyn.large``), the attributes its size
        calls for go to S3 when ``transact_write`` runs, before TransactWriteItems is sent;
        if the transaction is cancelled, those the item as it stands does not refer to
        are deleted again."""
        large = self._large
        if large is not None and large.offload:
            prepared = large.prepare(item)
            candidates = large.offloadable(prepared)
            if candidates:
                return self._tx_put_offloaded(
                    prepared, candidates, condition, returns_on_failure, names, values
                )
        wire = self._item(item)
        return self._action(
            "Put", {"Item": wire}, wire, condition, None, returns_on_failure, names, values
        )

    def _tx_put_offloaded(
        self,
        prepared: Mapping[str, Any],
        candidates: set[str],
        condition: ConditionArg,
        returns_on_failure: ReturnOnFailure,
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
    ) -> TxAction:
        """``tx_put`` of an item with values that may go to S3: everything is checked now
        (the rest of the item encoded, the values sized); which values go, their object
        keys and the final item are decided by ``stage``, when ``transact_write`` knows the
        key names, and uploaded there."""
        large = self._large
        assert large is not None
        rest = self._item({n: v for n, v in prepared.items() if n not in candidates}, prepared=True)
        action = self._action(
            "Put", {"Item": rest}, rest, condition, None, returns_on_failure, names, values
        )
        store = self._client._offload_store
        decode = self._client._decoder.item
        call = self._call
        table = self.name
        projected = {f"#a{i}": name for i, name in enumerate(sorted(large.offload))}

        def stage(key_names: Sequence[str]) -> TxAction:
            large.check_key(key_names, table)
            key = {n: rest[n] for n in key_names if n in rest}

            async def current() -> Mapping[str, Any] | None:
                data = await call(
                    "GetItem",
                    {
                        "TableName": table,
                        "Key": key,
                        "ConsistentRead": True,
                        "ProjectionExpression": ", ".join(projected),
                        "ExpressionAttributeNames": projected,
                    },
                )
                raw = data.get("Item")
                return None if raw is None else decode(raw)

            out, uploads = large.plan(store(), table, key_names, prepared, current)
            wire = self._item(out, prepared=True)
            return TxAction("Put", table, {**action.body, "Item": wire}, wire, uploads=uploads)

        return replace(action, stage=stage)

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
