"""Single items: get, put, update, delete — and recognising a write of one's own when
its answer was lost (see ``asyncdyn.resend``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ..batch import (
    Lane,
    read_lane,
)
from ..errors import (
    ConditionalCheckFailed,
    ConfigurationError,
    TransactionCanceled,
)
from ..expressions import (
    Update,
)
from ..marshal import WireItem
from ..transport import (
    Recognise,
)
from .actions import Actions
from .core import (
    _UPDATE_RETURNS,
    _WRITE_RETURNS,
    Attributes,
    ConditionArg,
    Item,
    Projection,
    ReturnOnFailure,
    ReturnValues,
    _check_choice,
    _expressions,
)

__all__ = ["Items"]


class Items(Actions):
    __slots__ = ()

    async def get(
        self,
        key: Mapping[str, Any],
        *,
        consistent: bool = False,
        attributes: Attributes = None,
        names: Mapping[str, str] | None = None,
    ) -> Item | None:
        """The item with this primary key, or ``None``.

        ``attributes`` limits the answer to those attributes: names, ``Attr`` paths, or one
        raw ProjectionExpression string (its ``#tokens`` defined in ``names``).
        """
        projection, strip = self._projected(attributes, names)
        # Checked before anything is sent (or joins a coalesced request): a bad key fails
        # its own caller at once and nobody else.
        wire = self._key(key)
        if projection is None and self._cache is not None:  # only whole items are cached
            # The cache holds items as batch reads fill it, large attributes as stored
            # (compressed, referenced): each read expands a copy of its own.
            item = await self._read_through(
                wire, consistent, lambda: self._fetch(key, wire, consistent, None)
            )
        else:
            item = await self._fetch(key, wire, consistent, projection)
        if item is not None and self._large is not None:
            (item,) = await self._read_large([item], tuple(key))
        return self._live(item, strip)

    async def _fetch(
        self, key: Mapping[str, Any], wire: WireItem, consistent: bool, projection: Projection
    ) -> Item | None:
        """The item of one key from DynamoDB (joining a coalesced batch when the client
        gathers gets), decoded, its large attributes as stored, before ``_live``."""
        coalescer = self._client._coalescer
        if coalescer is not None:

            def lane(key_names: tuple[str, ...]) -> Lane:
                return read_lane(
                    self._client._batch,
                    self.name,
                    key_names,
                    consistent=consistent,
                    attributes=projection,
                    rate=None,
                )

            return await coalescer.get(
                lane, self.name, key, wire, consistent=consistent, projection=projection
            )
        request = self._request(Key=wire)
        if consistent:
            request["ConsistentRead"] = True
        if projection is not None:
            _expressions(request, attributes=projection)
        data = await self._call("GetItem", request)
        item = data.get("Item")
        return None if item is None else self._client._decoder.item(item)

    async def put(
        self,
        item: Mapping[str, Any],
        *,
        condition: ConditionArg = None,
        returns: Literal["NONE", "ALL_OLD"] = "NONE",
        returns_on_failure: ReturnOnFailure = "NONE",
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> Item | None:
        """Write an item whole, replacing any item with the same key.

        Returns the replaced item when ``returns="ALL_OLD"`` (``None`` if there was none).
        A false ``condition`` raises ``ConditionalCheckFailed``; with
        ``returns_on_failure="ALL_OLD"`` its ``.item`` is the item that failed it.
        """
        if self._large is not None and self._large.offload:
            return await self._put_offloaded(
                item, condition, returns, returns_on_failure, names, values
            )
        wire = self._item(item)
        request = self._request(Item=wire)
        return await self._write(
            "PutItem",
            request,
            condition,
            returns,
            _WRITE_RETURNS,
            returns_on_failure,
            names,
            values,
            recognise=self._recogniser(wire),
        )

    async def update(
        self,
        key: Mapping[str, Any],
        update: Update | str,
        *,
        condition: ConditionArg = None,
        returns: ReturnValues = "NONE",
        returns_on_failure: ReturnOnFailure = "NONE",
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
        idempotent: bool = False,
    ) -> Item | None:
        """Change some attributes of an item (creating it if needed).

        ``update`` combines actions with ``&``: ``Attr("status").set("SHIPPED") &
        Attr("views").add(1)``, or is a raw UpdateExpression with ``names``/``values``.
        ``returns`` is one of NONE, ALL_OLD, UPDATED_OLD, ALL_NEW, UPDATED_NEW.

        An update that is not idempotent (``ADD`` to a number, ``a + :n``, ``list_append``)
        whose answer is lost raises ``OutcomeUnknown`` rather than being sent twice.
        ``idempotent=True`` makes it exactly-once instead: it is sent as a one-action
        TransactWriteItems whose ``ClientRequestToken`` every resend repeats (twice the
        write capacity; ``returns`` must be ``"NONE"``). A false condition still raises
        ``ConditionalCheckFailed``.
        """
        if idempotent:
            await self._update_once(
                key,
                update,
                condition=condition,
                returns=returns,
                returns_on_failure=returns_on_failure,
                names=names,
                values=values,
            )
            return None
        request = self._request(Key=self._key(key))
        self._check_update(update)
        self._check_large("update", update, names)
        _expressions(request, update=update, condition=condition, names=names, values=values)
        got = await self._write(
            "UpdateItem", request, None, returns, _UPDATE_RETURNS, returns_on_failure, None, None
        )
        if got is not None and self._large is not None:
            await self._large.load([got])  # returned offloaded attributes, as a get has them
        return got

    async def delete(
        self,
        key: Mapping[str, Any],
        *,
        condition: ConditionArg = None,
        returns: Literal["NONE", "ALL_OLD"] = "NONE",
        returns_on_failure: ReturnOnFailure = "NONE",
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> Item | None:
        """Delete the item with this key (no error if there is none)."""
        request = self._request(Key=self._key(key))
        if self._large is not None and self._large.offload:
            # Its offloaded objects go after the delete succeeded: ask for the old image.
            old = await self._write(
                "DeleteItem",
                request,
                condition,
                "ALL_OLD",
                _WRITE_RETURNS,
                returns_on_failure,
                names,
                values,
            )
            await self._supersede(old, set(), returns)
            return old if returns == "ALL_OLD" else None
        return await self._write(
            "DeleteItem",
            request,
            condition,
            returns,
            _WRITE_RETURNS,
            returns_on_failure,
            names,
            values,
        )

    async def _write(
        self,
        operation: str,
        request: dict[str, Any],
        condition: ConditionArg,
        returns: str,
        allowed: tuple[str, ...],
        returns_on_failure: str,
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
        *,
        recognise: Recognise | None = None,
        read_failed: bool = True,
    ) -> Item | None:
        """Send a write; a failed condition's ``.item`` is read as a get returns it, unless
        ``read_failed`` is off (the caller reads it after looking at its references)."""
        _check_choice("returns", returns, allowed)
        _check_choice("returns_on_failure", returns_on_failure, _WRITE_RETURNS)
        self._check_large("condition", condition, names)
        if condition is not None or names or values:
            _expressions(request, condition=condition, names=names, values=values)
        if returns != "NONE":
            request["ReturnValues"] = returns
        if returns_on_failure != "NONE":
            request["ReturnValuesOnConditionCheckFailure"] = returns_on_failure
        # What to do when an answer is lost (resend, recognise, or OutcomeUnknown) is the
        # dispatcher's one rule (asyncdyn.resend); a put brings its own way to recognise
        # its applied write.
        # A put's key, for an OutcomeUnknown, is its key attributes when the schema is known.
        # With an item cache, the key's entry is dropped before sending and again after,
        # whatever the outcome: a write that failed or was cancelled may have been applied.
        put = operation == "PutItem"
        guard = await self._write_guard(request["Item" if put else "Key"], whole_item=put)
        schema = self._key_schema
        with guard:
            try:
                data = await self._client._dispatcher.call(
                    operation,
                    request,
                    recognise=recognise,
                    key_names=() if schema is None else schema.names,
                )
            except ConditionalCheckFailed as exc:
                if read_failed:
                    await self._read_failed(exc)
                raise
        attributes = data.get("Attributes")
        return None if attributes is None else self._decode(attributes)

    async def _read_failed(self, exc: ConditionalCheckFailed) -> None:
        """``exc.item`` with its large attributes as a get returns them (``_as_read``)."""
        if exc.item is not None:
            exc.item = await self._as_read(exc.item)

    async def _put_offloaded(
        self,
        item: Mapping[str, Any],
        condition: ConditionArg,
        returns: str,
        returns_on_failure: ReturnOnFailure,
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
    ) -> Item | None:
        """``put`` of a table with offloaded attributes (asyncdyn.large): the objects are
        uploaded first (content-addressed: nothing live is overwritten), then the item is
        written asking for its old image, whose objects no longer referred to go last."""
        large = self._large
        assert large is not None
        _check_choice("returns", returns, _WRITE_RETURNS)
        self._check_large("condition", condition, names)
        key_names = (await self.key_schema()).names
        large.check_key(key_names, self.name)
        prepared, referenced, _ = await large.offload_item(
            self._client._offload_store(), self.name, key_names, large.prepare(item)
        )
        wire = self._item(prepared, prepared=True)
        _check_choice("returns_on_failure", returns_on_failure, _WRITE_RETURNS)
        try:
            old = await self._write(
                "PutItem",
                self._request(Item=wire),
                condition,
                "ALL_OLD",
                _WRITE_RETURNS,
                "ALL_OLD" if condition is not None else returns_on_failure,
                names,
                values,
                recognise=self._recogniser(wire),
                read_failed=False,
            )
        except ConditionalCheckFailed as exc:
            # Our uploads that the item as it stands does not refer to are orphans. Only
            # an item seen says so: without one (no item, or a server that does not return
            # it) they stay, for remove_superseded or a bucket sweep.
            if exc.item is not None:
                orphans = referenced - large.references(exc.item)
                if orphans:
                    await self._client._offload_store().delete(sorted(orphans))
            if returns_on_failure == "NONE":
                exc.item = None
            await self._read_failed(exc)
            raise
        await self._supersede(old, referenced, returns)
        return old if returns == "ALL_OLD" else None

    async def _supersede(
        self, old: Item | None, referenced: set[tuple[str, str]], returns: str
    ) -> None:
        """Delete the objects of the old image that the new item does not refer to, after
        the write succeeded (never before: a failed write keeps its item's objects)."""
        large = self._large
        assert large is not None
        stale = large.references(old) - referenced
        if not stale:
            return
        if returns == "ALL_OLD":
            await large.load([old])  # the caller gets the old values, read before they go
        await self._client._offload_store().delete(sorted(stale))

    def _recogniser(self, wire: WireItem) -> Recognise:
        """Whether the item a resent conditional put found is exactly the one it wrote:
        then its first attempt was applied and the condition failed on it."""

        async def recognise(found: Item | None) -> bool:
            if found is None:
                # A server that does not return the item on a condition failure (dynalite
                # ignores ReturnValuesOnConditionCheckFailure), or there is none: read it.
                names = (await self.key_schema()).names
                data = await self._call(
                    "GetItem",
                    {
                        "TableName": self.name,
                        "Key": {name: wire[name] for name in names},
                        "ConsistentRead": True,
                    },
                )
                raw = data.get("Item")
                if raw is None:
                    return False
                found = self._decode(raw)
            # Both sides decoded alike: numbers compare as the server normalises them.
            return bool(found == self._decode(wire))

        return recognise

    async def _update_once(
        self,
        key: Mapping[str, Any],
        update: Update | str,
        *,
        condition: ConditionArg,
        returns: str,
        returns_on_failure: ReturnOnFailure,
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
    ) -> None:
        """``update(..., idempotent=True)``: one Update action of a TransactWriteItems, whose
        ClientRequestToken each resend repeats, so DynamoDB applies it once (for 10 minutes)."""
        if returns != "NONE":
            raise ConfigurationError(
                "update(..., idempotent=True) is sent as a transaction, which returns no "
                f"attributes: returns must be 'NONE', not {returns!r} (read the item after)"
            )
        action = self.tx_update(
            key,
            update,
            condition=condition,
            returns_on_failure=returns_on_failure,
            names=names,
            values=values,
        )
        try:
            # A cancellation applied nothing: a conflict with another transaction is retried.
            await self._client.transact_write([action], retry_conflicts=True)
        except TransactionCanceled as exc:
            reason = exc.reasons[0] if exc.reasons else None
            if reason is None or reason.code != "ConditionalCheckFailed":
                raise
            failed = ConditionalCheckFailed(
                "ConditionalCheckFailedException",
                reason.message or "The conditional request failed",
                status=exc.status,
                body=exc.body,
                operation="UpdateItem",
            )
            failed.item = reason.item
            await self._read_failed(failed)
            raise failed from exc
