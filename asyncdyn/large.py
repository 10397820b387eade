"""Large attributes: which attributes of a table's items are compressed inside the item
(``asyncdyn.compression``) and which are offloaded to S3 with a reference in it
(``asyncdyn.offload``), and what that means on each path: every write compresses and
offloads (uploads before the write; ``put`` and ``delete`` also delete superseded objects
after it, from the old image that batch writes and transactions do not get), every read
decompresses and reads offloaded values back, and no condition or filter may use them.

Two tools from the DynamoDB playbook for items that grow: compress big text (a smaller
item costs fewer capacity units and stays under 400 KB longer), and keep what is still too
big in S3. ``LargeAttributes`` is the policy of one table; an entity design builds one from
its ``field(compress=True)`` / ``field(offload=S3Offload(...))`` fields.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from .compression import Codec, check_codec, compress_value, decompress_value
from .errors import (
    ConfigurationError,
    CorruptAttribute,
    InvalidExpression,
    InvalidItem,
    OffloadError,
)
from .expressions import Condition, Placeholders, Update
from .marshal import item_size
from .offload import Offloaded, S3Offload, S3Store, Uploads, is_reference, object_key

__all__ = ["LargeAttributes"]


class LargeAttributes:
    """Which attributes of a table's items are compressed and which are offloaded to S3:
    ``db.table("Docs", large=LargeAttributes(compress={"body"}, offload={"blob":
    S3Offload("docs-bucket", "offload/")}))``. An attribute may be both (compressed, then
    offloaded when still too big). ``codec``: ``"auto"`` (zstd when installed), ``"zlib"``
    or ``"zstd"``; reads understand both whatever it is."""

    __slots__ = ("codec", "compress", "guarded", "names", "offload", "opaque")

    def __init__(
        self,
        *,
        compress: Iterable[str] = (),
        offload: Mapping[str, S3Offload] | None = None,
        codec: Codec = "auto",
        opaque: Iterable[str] = (),
    ) -> None:
        if isinstance(compress, str) or isinstance(opaque, str):
            raise ConfigurationError("compress= is a set of attribute names, not one str")
        check_codec(codec)
        self.compress = frozenset(compress)
        self.offload = dict(offload or {})
        for name, spec in self.offload.items():
            if not isinstance(spec, S3Offload):
                raise ConfigurationError(f"offload[{name!r}] is an S3Offload, not {spec!r}")
        for name in (*self.compress, *self.offload):
            if not isinstance(name, str) or not name:
                raise ConfigurationError(f"a large attribute is named by a non-empty str: {name!r}")
        self.codec: Codec = codec
        self.names = self.compress | frozenset(self.offload)
        # Compressed by someone else (an entity's generated encoder): only refused in
        # conditions and filters here, where the server would compare the stored bytes.
        self.opaque = frozenset(opaque)
        self.guarded = self.names | self.opaque

    def __repr__(self) -> str:
        return (
            f"LargeAttributes(compress={sorted(self.compress)}, offload={self.offload}, "
            f"codec={self.codec!r})"
        )

    def merged(self, other: LargeAttributes) -> LargeAttributes:
        """Both policies (an entity design's offloaded fields beside a table's own)."""
        for name, spec in other.offload.items():
            if self.offload.get(name, spec) != spec:
                raise ConfigurationError(
                    f"attribute {name!r} is offloaded in two ways: {self.offload[name]} and {spec}"
                )
        return LargeAttributes(
            compress=self.compress | other.compress,
            offload={**self.offload, **other.offload},
            codec=self.codec if self.codec != "auto" else other.codec,
            opaque=self.opaque | other.opaque,
        )

    # ---- checks, before anything is sent

    def check_key(self, key_names: Iterable[str], table: str) -> None:
        """Refuse a key attribute declared large: a key must stay comparable as it is."""
        clash = self.guarded.intersection(key_names)
        if clash:
            raise ConfigurationError(
                f"table {table!r}: key attribute {', '.join(sorted(clash))} cannot be "
                "compressed or offloaded"
            )

    def check_expression(
        self,
        what: str,
        expression: Condition | Update | str | None,
        names: Mapping[str, str] | None,
        table: str,
    ) -> None:
        """Refuse a condition, filter or update that reads or sets a large attribute: the
        server sees the compressed bytes or the reference map, never the value."""
        # An entity's compressed field may be set by an update (its encoder compressed the
        # value); no condition can compare it.
        guarded = self.names if isinstance(expression, Update) else self.guarded
        if expression is None or not guarded:
            return
        used: set[str] = set()
        if isinstance(expression, str):
            used.update(w for w in _words(expression) if w in guarded)
            used.update(n for n in (names or {}).values() if n in guarded)
        else:
            ph = Placeholders(names, None)
            if isinstance(expression, Update):
                ph.update(expression)
            else:
                ph.condition(expression)
            used.update(n for n in ph.names.values() if n in guarded)
        if used:
            kind = "compressed or offloaded"
            raise InvalidExpression(
                f"{what} on table {table!r} uses {', '.join(sorted(used))}, which is {kind}: "
                "DynamoDB holds its bytes or an S3 reference, not the value (write the whole "
                "item with put, and filter after reading)"
            )

    # ---- encoding, synchronous (every write path)

    def prepare(self, item: Mapping[str, Any]) -> Mapping[str, Any]:
        """``item`` with its compressed attributes compressed and ``Offloaded`` handles
        back to their reference maps (a copy when anything changes)."""
        out: dict[str, Any] | None = None
        for name in self.names:
            if name not in item:
                continue
            value = item[name]
            new = value
            if isinstance(value, Offloaded):
                new = value.reference()
            elif name in self.compress and value is not None and not is_reference(value):
                new = compress_value(value, codec=self.codec, where=name)
            if new is not value:
                if out is None:
                    out = dict(item)
                out[name] = new
        return item if out is None else out

    def decoder(
        self,
        decode: Callable[[Any], dict[str, Any]],
        store: Callable[[], S3Store],
        key_names: Callable[[], Sequence[str]],
        table: str = "",
    ) -> Callable[[Any], dict[str, Any]]:
        """``decode`` (wire item -> item) followed by ``expand`` (``table`` names it in
        errors)."""
        expand = self.expand

        def decode_large(wire: Any) -> dict[str, Any]:
            return expand(decode(wire), store, key_names(), table)

        return decode_large

    def expand(
        self,
        item: dict[str, Any],
        store: Callable[[], S3Store],
        key_names: Sequence[str] = (),
        table: str = "",
    ) -> dict[str, Any]:
        """``item`` (decoded) with its compressed attributes decompressed and an
        ``Offloaded`` handle in place of each reference map (in place; returned). The
        handle, and a ``CorruptAttribute``, name the item by its key (``key_names``) and
        ``table``."""
        for name in self.offload:
            value = item.get(name)
            if value.__class__ is dict and is_reference(value):
                key = {n: item[n] for n in key_names if n in item} or None
                item[name] = Offloaded(value, store(), attribute=name, item_key=key)
        for name in self.compress:
            value = item.get(name)
            if value.__class__ is bytes:
                try:
                    item[name] = decompress_value(value)
                except CorruptAttribute as exc:  # rare: the item is named only then
                    key = {n: item[n] for n in key_names if n in item}
                    where = f"table {table!r}, item {key}" if table else f"item {key}"
                    raise CorruptAttribute(f"{where}: {exc.args[0]}", name) from exc
        return item

    # ---- offload, around a write

    async def offload_item(
        self,
        store: S3Store,
        table: str,
        key_names: Sequence[str],
        item: Mapping[str, Any],
    ) -> tuple[Mapping[str, Any], set[tuple[str, str]], Uploads | None]:
        """``plan``, then its uploads: if one fails, ``OffloadError`` is raised and nothing
        is written to DynamoDB. Returns the item to write, the objects it refers to, and
        the uploads done (to discard after a failed write)."""
        out, uploads = self.plan(store, table, key_names, item)
        if uploads is not None:
            await uploads.run()
        return out, self.references(out), uploads

    def offloadable(self, item: Mapping[str, Any]) -> set[str]:
        """The attributes of ``item`` (prepared) that may go to S3 (offloaded, a str or
        bytes), each checked as encoding would (``InvalidItem`` for a lone surrogate)."""
        found = set()
        for name in self.offload:
            value = item.get(name)
            if isinstance(value, str | bytes | bytearray):
                _value_size(name, value)
                found.add(name)
        return found

    def plan(
        self,
        store: S3Store,
        table: str,
        key_names: Sequence[str],
        item: Mapping[str, Any],
        current: Callable[[], Awaitable[Mapping[str, Any] | None]] | None = None,
    ) -> tuple[Mapping[str, Any], Uploads | None]:
        """``item`` (prepared) with each offloaded attribute that its size calls for
        replaced by its reference, largest first until the item is under the threshold;
        and the uploads that must be done before it is written (``None``: nothing to
        upload). Synchronous, so that every write path decides the same way at once: the
        batch engine and transactions upload later, before sending. An item without all
        its key attributes is left as it is (encoding it reports that)."""
        if not self.offload or any(n not in item for n in key_names):
            return item, None
        key = {n: item[n] for n in key_names}
        # A candidate's size is its name and its bytes (as DynamoDB counts S and B): the
        # rest of the item is sized once, without encoding megabytes for nothing.
        sized = [
            (_value_size(name, item[name]), name)
            for name in self.offload
            if isinstance(item.get(name), str | bytes | bytearray)
        ]
        if not sized:
            return item, None
        candidates = {name for _, name in sized}
        size = item_size({n: v for n, v in item.items() if n not in candidates})
        size += sum(attribute_size for attribute_size, _ in sized)
        out = dict(item)
        objects: list[tuple[str, str, bytes, str]] = []
        for attribute_size, name in sorted(sized, reverse=True):
            spec = self.offload[name]
            if size <= spec.threshold:
                continue
            value = out[name]
            body = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            digest = hashlib.sha256(body).hexdigest()
            path = object_key(spec.prefix, table, [item[n] for n in key_names], name, digest)
            reference = {
                "bucket": spec.bucket,
                "key": path,
                "sha256": digest,
                "size": len(body),
                "codec": "S" if isinstance(value, str) else "B",
            }
            out[name] = reference
            size -= attribute_size - item_size({name: reference})
            objects.append((spec.bucket, path, body, name))
        if not objects:
            return item, None
        return out, Uploads(store, key, objects, current)

    def references(self, item: Mapping[str, Any] | None) -> set[tuple[str, str]]:
        """The S3 objects ``item`` (decoded, or prepared for writing) refers to."""
        found: set[tuple[str, str]] = set()
        if not item:
            return found
        for name in self.offload:
            value = item.get(name)
            if isinstance(value, Offloaded):
                found.add((value.bucket, value.key))
            elif value is not None and is_reference(value):
                found.add((value["bucket"], value["key"]))
        return found

    async def load(self, items: Iterable[dict[str, Any] | None]) -> None:
        """Replace the eagerly fetched attributes' handles in ``items`` by their values,
        every object read concurrently (the store's limiter bounds them).

        Every read runs to its end: when some fail, the others' values are in place, each
        failed attribute keeps its ``Offloaded`` handle (which names the object and can be
        loaded again), and the first failure is raised with ``partial``, the items so."""
        listed = list(items)
        pending: list[tuple[dict[str, Any], str, Offloaded]] = []
        for item in listed:
            if item is None:
                continue
            for name, spec in self.offload.items():
                value = item.get(name)
                if isinstance(value, Offloaded) and spec.fetch == "eager":
                    pending.append((item, name, value))
        if not pending:
            return
        if len(pending) == 1:
            item, name, handle = pending[0]
            try:
                item[name] = self._unpacked(name, await handle.load())
            except (OffloadError, CorruptAttribute) as exc:
                exc.partial = listed
                raise
            return
        loaded = await asyncio.gather(
            *(handle.load() for _, _, handle in pending), return_exceptions=True
        )
        failed: OffloadError | CorruptAttribute | None = None
        for (item, name, _), value in zip(pending, loaded, strict=True):
            if isinstance(value, BaseException):
                if not isinstance(value, OffloadError | CorruptAttribute):
                    raise value  # not an object's failure: no partial answer to give
                failed = failed or value
                continue
            try:
                item[name] = self._unpacked(name, value)
            except CorruptAttribute as exc:
                failed = failed or exc
        if failed is not None:
            failed.partial = listed
            raise failed

    def _unpacked(self, name: str, value: Any) -> Any:
        # Compressed, then offloaded: the object holds the compressed bytes.
        return decompress_value(value, where=name) if name in self.compress else value


def _value_size(name: str, value: str | bytes | bytearray) -> int:
    try:
        data = value.encode("utf-8") if isinstance(value, str) else value
    except UnicodeEncodeError:
        raise InvalidItem("a str that is not valid Unicode (a lone surrogate)", name) from None
    return len(name.encode("utf-8")) + len(data)


def _words(expression: str) -> set[str]:
    """The bare attribute names of a raw expression (``#n`` and ``:v`` tokens excluded)."""
    words: set[str] = set()
    token: list[str] = []
    skip = False
    for ch in expression + " ":
        if ch.isalnum() or ch == "_":
            if not token and skip:
                continue
            token.append(ch)
            continue
        if token and not skip:
            words.add("".join(token))
        token = []
        skip = ch in "#:"
    return words
