"""A table's side of the batch engine: ``batch_get``, ``batch_get_iter``, ``batch_write``
and the buffered ``writer``."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncGenerator, Iterable, Mapping
from typing import Any

from ..batch import (
    MAX_WRITE_REQUESTS,
    BatchWriter,
    Identity,
    Lane,
    Outcome,
    Prepare,
    Prerequisite,
    aligned,
    delete_entry,
    fetch_all,
    key_names_of,
    put_entry,
    read_entries,
    read_lane,
    stream_entries,
    write_lane,
)
from ..errors import (
    UnprocessedKeysError,
)
from ..large import LargeAttributes
from .core import (
    Attributes,
    Item,
    TableCore,
)

__all__ = ["Batches"]


class Batches(TableCore):
    __slots__ = ()

    async def batch_get(
        self,
        keys: Iterable[Mapping[str, Any]],
        *,
        consistent: bool = False,
        attributes: Attributes = None,
        rate: float | None = None,
        names: Mapping[str, str] | None = None,
    ) -> list[Item | None]:
        """The items of any number of keys, aligned with ``keys`` (``None``: no such item).

        Duplicate keys are fetched once (each position gets its own copy); chunks of 100 go
        out concurrently; keys DynamoDB leaves unprocessed are retried with backoff. If some
        are still unanswered when the retry budget runs out, ``UnprocessedKeysError`` carries
        ``partial`` (aligned, what was fetched) and ``unprocessed`` (those keys). With
        ``attributes``, the key attributes needed to match answers are fetched and dropped
        again unless asked for. ``rate`` caps this call at that many keys per second.
        """
        keys = list(keys)
        if not keys:
            return []
        projection, strip = self._projected(attributes, names)
        lane = read_lane(
            self._client._batch,
            self.name,
            key_names_of(keys),
            consistent=consistent,
            attributes=projection,
            rate=rate,
        )
        distinct, positions = read_entries(lane, keys)
        cache = self._cache if projection is None else None  # only whole items are cached
        if cache is not None:  # hits are answered here: only the misses go to DynamoDB
            distinct, token = cache.serve(self.name, distinct, consistent=consistent)
        outcome = await fetch_all(self._client._batch, distinct, window=self._client._window)
        if cache is not None:
            cache.fill_entries(self.name, distinct, token, outcome.leftovers)
        # As the engine decoded the first of each key: large attributes are expanded below, once.
        result = aligned(positions, self._client._decoder.item)
        if self._expiry is not None:
            result = [self._live(item, strip) for item in result]
        result = await self._read_large(result)  # compressed / offloaded attributes
        if outcome.leftovers:
            unprocessed = [dict(entry.source) for entry in outcome.leftovers]
            raise UnprocessedKeysError(result, unprocessed) from outcome.error
        return result

    async def batch_get_iter(
        self,
        keys: Iterable[Mapping[str, Any]],
        *,
        consistent: bool = False,
        attributes: Attributes = None,
        rate: float | None = None,
        window: int | None = None,
        names: Mapping[str, str] | None = None,
    ) -> AsyncGenerator[tuple[Mapping[str, Any], Item | None], None]:
        """Stream ``(key, item)`` pairs for a key set too large to hold, as chunks complete.

        ``keys`` is read lazily; at most ``window`` chunks of 100 (default: twice the
        client's ``max_concurrency``) are in flight or waiting for you, so memory stays
        bounded. Pairs come in completion order; a key given twice is paired twice.
        Duplicates are merged only within a chunk. Keys never answered raise
        ``UnprocessedKeysError`` (``unprocessed`` set, ``partial`` empty) after every other
        pair has been yielded. Leaving the loop early cancels the chunks still running.
        """
        iterator = iter(keys)
        first = next(iterator, None)
        if first is None:
            return
        projection, strip = self._projected(attributes, names)
        lane = read_lane(
            self._client._batch,
            self.name,
            key_names_of([first]),
            consistent=consistent,
            attributes=projection,
            rate=rate,
        )
        engine = self._client._batch
        outcome: Outcome[Any] = Outcome()
        entries = stream_entries(lane, itertools.chain((first,), iterator))
        # As the engine decoded ``entry.item``: large attributes are expanded below, once.
        decode = self._client._decoder.item
        chunks = engine.gets(entries, outcome, window=window or self._client._window)
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                pairs: list[tuple[Mapping[str, Any], Item | None]] = []
                for entry in chunk:
                    item = entry.item
                    pairs.append((entry.source, item))
                    pairs.extend(
                        (again, None if item is None else entry.copy(decode))
                        for again in entry.again or ()
                    )
                if self._large is not None:  # decompressed, offloaded attributes from S3
                    items = await self._read_large([item for _, item in pairs])
                    pairs = [(key, item) for (key, _), item in zip(pairs, items, strict=True)]
                for key, item in pairs:
                    yield key, self._live(item, strip)
        if outcome.leftovers:
            unprocessed = [
                dict(k) for entry in outcome.leftovers for k in (entry.source, *(entry.again or ()))
            ]
            raise UnprocessedKeysError([], unprocessed) from outcome.error

    async def batch_write(
        self,
        *,
        puts: Iterable[Mapping[str, Any]] = (),
        deletes: Iterable[Mapping[str, Any]] = (),
        rate: float | None = None,
    ) -> None:
        """Write any number of items and delete any number of keys, in concurrent batches.

        Every input is checked first: a bad one raises ``InvalidItem`` naming it
        (``puts[17].price``) and nothing is sent. Two requests for the same key: the last
        one wins, as if the puts ran in order and then the deletes. Chunks of 25 (and at most
        16 MB) go out concurrently; what DynamoDB leaves unprocessed is retried with backoff.
        If some requests still cannot be written, ``UnprocessedItemsError`` lists exactly
        those; all the others are written. ``rate`` caps this call at that many items per
        second. Needs the table's key schema (one DescribeTable per client).

        With large attributes (``asyncdyn.large``) every put is compressed, and offloaded
        values go to S3 before their request is sent: a put whose upload fails is listed
        in ``UnprocessedItemsError`` (``failures`` gives its ``OffloadError``). Objects that
        a put or delete supersedes are not deleted (no old image): ``remove_superseded``.
        """
        schema = await self.key_schema()
        lane = self._write_lane(schema.names, rate)
        entries = [put_entry(lane, item, f"puts[{i}]") for i, item in enumerate(puts)]
        entries += [delete_entry(lane, key, f"deletes[{i}]") for i, key in enumerate(deletes)]
        writer = BatchWriter(
            self._client._batch, lane, max_in_flight=self._client.max_concurrency, buffer=None
        )
        for entry in entries:
            writer._add(entry)
        await writer.close()

    def writer(
        self,
        *,
        rate: float | None = None,
        max_in_flight: int | None = None,
        buffer: int | None = None,
        skip_invalid: bool = False,
    ) -> BatchWriter:
        """A buffered writer for this table, to use as ``async with table.writer() as w``.

        ``max_in_flight`` bounds the chunks being written at once (default: the client's
        ``max_concurrency``); ``buffer`` the requests queued or in flight before ``put``
        waits (default: two chunks per slot); ``rate`` caps it at that many items per
        second; ``skip_invalid`` records bad items in ``w.rejected`` instead of raising.
        Offloaded values are uploaded in the background, at most ``max_in_flight`` at once
        (``put`` waits beyond that), each request sent once its uploads are done, as in
        ``batch_write``. See ``BatchWriter``.
        """
        in_flight = self._client.max_concurrency if max_in_flight is None else max_in_flight

        async def lane() -> Lane:
            schema = await self.key_schema()
            return self._write_lane(schema.names, rate)

        return BatchWriter(
            self._client._batch,
            lane,
            max_in_flight=in_flight,
            buffer=2 * MAX_WRITE_REQUESTS * in_flight if buffer is None else buffer,
            skip_invalid=skip_invalid,
        )

    def _write_lane(self, key_names: tuple[str, ...], rate: float | None) -> Lane:
        """The lane of this table's batch writes; with an item cache, it drops the entry of
        every key it writes (``BatchWriter`` calls it before and after each request); with
        large attributes, it compresses each put and offloads what its size calls for."""
        lane = write_lane(self._client._batch, self.name, key_names, rate=rate)
        large = self._large
        if large is not None:
            large.check_key(key_names, self.name)
            lane.prepare = self._batch_prepare(large, key_names)
        cache = self._cache
        if cache is not None:
            # Lane identities follow the schema's key order; the cache's, sorted names.
            order = sorted(range(len(key_names)), key=key_names.__getitem__)
            name = self.name

            def invalidate(identity: Identity) -> None:
                cache.invalidate_identity(name, tuple([identity[i] for i in order]))

            lane.invalidate = invalidate
        return lane

    def _batch_prepare(self, large: LargeAttributes, key_names: tuple[str, ...]) -> Prepare:
        """How a batch put of this table is written: compressed, and its offloaded
        attributes, when the item is over their threshold, replaced by references to
        objects the writer uploads before the request joins a BatchWriteItem. BatchWriteItem
        returns no old image: objects a put supersedes (and those of a delete) are left for
        ``remove_superseded`` or a bucket sweep (docs/large-items.md)."""
        if not large.offload:
            return lambda item: (large.prepare(item), None)
        store = self._client._offload_store
        name = self.name

        def prepare(item: Mapping[str, Any]) -> tuple[Mapping[str, Any], Prerequisite | None]:
            return large.plan(store(), name, key_names, large.prepare(item))

        return prepare
