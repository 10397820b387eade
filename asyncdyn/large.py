"""Large attributes: compressed inside the item, or offloaded to S3 with a reference in it.

Two tools from the DynamoDB playbook for items that grow: compress big text (a smaller
item costs fewer capacity units and stays under 400 KB longer), and keep what is still too
big in S3, with a small reference map in the item.

**Compression** stores a ``str`` or ``bytes`` value as binary ``B`` that starts with a
one-byte codec header, only when that is smaller than the value as it is::

    0x01  zlib, the value was a str (utf-8)       0x11  zlib, the value was bytes
    0x02  zstd, the value was a str (utf-8)       0x12  zstd, the value was bytes
    0x10  bytes stored as they are (compressing them did not pay)

A str that does not shrink stays a plain ``S``, so a reader tells the two apart by type; a
bytes value always carries its header (else a bare ``B`` starting with 0x01 would be
ambiguous). Never base64 inside a string: that would add a third.

**Offload** uploads the value to S3 under a content-addressed key,
``<prefix>/<table>/<pk>/<sk>/<attribute>/<sha256>``, *before* the DynamoDB write, and the
item stores ``{"bucket", "key", "sha256", "size", "codec"}`` instead (``codec`` is ``"S"``
or ``"B"``: the type the value reads back as). Because the key is the content's hash, an
upload never overwrites an object a live item refers to, whatever happens to the write
that follows: a write that fails leaves the live object alone. Objects a write superseded
are deleted only after the write succeeded (from its old image), and
``remove_superseded`` does the same from Streams records for writes made elsewhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import zlib
from base64 import urlsafe_b64encode
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import ModuleType
from typing import Any, Literal, Protocol
from urllib.parse import quote, urlsplit

from .credentials import BotocoreCredentials, CredentialsProvider
from .errors import (
    ConfigurationError,
    CorruptAttribute,
    DanglingReference,
    InvalidExpression,
    InvalidItem,
    OffloadError,
)
from .expressions import Condition, Placeholders, Update
from .marshal import MAX_ITEM_BYTES, decoder, encode_key, item_size

_EXACT = decoder("auto")

__all__ = [
    "DEFAULT_THRESHOLD",
    "LargeAttributes",
    "Offloaded",
    "OffloadHost",
    "S3Offload",
    "S3Store",
    "compress_value",
    "decompress_value",
    "load_all",
    "object_key",
    "remove_superseded",
]

_log = logging.getLogger(__name__)

Codec = Literal["auto", "zlib", "zstd"]
Fetch = Literal["eager", "lazy"]

ZLIB = 0x01
ZSTD = 0x02
_BINARY = 0x10  # the flag of a value that was bytes (not utf-8 text)
_HEADERS = frozenset({ZLIB, ZSTD, _BINARY, _BINARY | ZLIB, _BINARY | ZSTD})
# The item keeps this much under DynamoDB's 400 KB when nothing else is said: room for the
# reference maps that replace offloaded values and for later small updates of the item.
DEFAULT_THRESHOLD = MAX_ITEM_BYTES - 32 * 1024
_REFERENCE = frozenset({"bucket", "key", "sha256", "size", "codec"})


def _zstd() -> ModuleType | None:
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard


def _check_codec(codec: str) -> None:
    if codec not in ("auto", "zlib", "zstd"):
        raise ConfigurationError(f"codec is 'auto', 'zlib' or 'zstd', not {codec!r}")
    if codec == "zstd" and _zstd() is None:
        raise ConfigurationError(
            "codec='zstd' needs the zstandard package: pip install 'asyncdyn[zstd]'"
        )


# --------------------------------------------------------------------------- compression


def compress_value(value: Any, *, codec: Codec = "auto", where: str = "") -> Any:
    """What a compressed attribute stores for ``value``: ``bytes`` with the codec header
    when that is smaller, else the str unchanged (bytes get the 0x10 header). ``codec="auto"``
    is zstd when ``zstandard`` is installed, zlib otherwise. Other values (``None``, an
    ``Offloaded`` handle, a reference map) are returned as they are."""
    if isinstance(value, str):
        raw = value.encode("utf-8")
        flag = 0
    elif isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        flag = _BINARY
    elif value is None or isinstance(value, Offloaded) or _is_reference(value):
        return value
    else:
        raise InvalidItem(
            f"a compressed attribute is a str or bytes, not {type(value).__name__}", where
        )
    zstd = _zstd() if codec != "zlib" else None
    if zstd is not None:
        packed = zstd.ZstdCompressor(level=3).compress(raw)
        header = ZSTD
    else:
        # Level 6 (zlib's default): most of level 9's ratio at a fraction of its CPU.
        packed = zlib.compress(raw, 6)
        header = ZLIB
    if len(packed) + 1 < len(raw) + (1 if flag else 0):
        return bytes((header | flag,)) + packed
    return value if not flag else bytes((_BINARY,)) + raw


def decompress_value(stored: Any, *, where: str = "") -> Any:
    """The value a compressed attribute holds: a str as it is, a header-tagged bytes value
    unpacked (to str or bytes, as it was written); anything else unchanged."""
    if not isinstance(stored, bytes | bytearray):
        return stored
    if not stored or stored[0] not in _HEADERS:
        shown = f"0x{stored[0]:02x}" if stored else "none"
        raise CorruptAttribute(
            f"a compressed attribute starts with a codec header (0x01, 0x02, 0x10-0x12), "
            f"not {shown}: it was not written compressed",
            where,
        )
    header = stored[0]
    body = memoryview(stored)[1:]
    codec = header & 0x0F
    if codec == ZLIB:
        raw = zlib.decompress(body)
    elif codec == ZSTD:
        zstd = _zstd()
        if zstd is None:
            raise CorruptAttribute(
                "compressed with zstd, and the zstandard package is not installed: "
                "pip install 'asyncdyn[zstd]'",
                where,
            )
        raw = zstd.ZstdDecompressor().decompress(bytes(body))
    else:
        raw = bytes(body)
    if header & _BINARY:
        return raw
    return raw.decode("utf-8")


# --------------------------------------------------------------------------- offload


@dataclass(frozen=True, slots=True)
class S3Offload:
    """Where an attribute goes when its item is too big: ``bucket``, under ``prefix``.

    ``threshold``: the item size in bytes (DynamoDB's way of counting, see
    ``asyncdyn.marshal.item_size``) above which the attribute is offloaded; default
    ``DEFAULT_THRESHOLD``, 32 KB under the 400 KB limit. ``fetch``: ``"eager"`` reads bring
    the value back from S3 (concurrently, bounded like every other request of the client);
    ``"lazy"`` reads leave an ``Offloaded`` handle in its place, ``await handle.load()``.
    """

    bucket: str
    prefix: str = ""
    threshold: int = DEFAULT_THRESHOLD
    fetch: Fetch = "eager"

    def __post_init__(self) -> None:
        if not isinstance(self.bucket, str) or not self.bucket:
            raise ConfigurationError("S3Offload(bucket=...) is a non-empty str")
        if not isinstance(self.prefix, str):
            raise ConfigurationError("S3Offload(prefix=...) is a str")
        if (
            isinstance(self.threshold, bool)
            or not isinstance(self.threshold, int)
            or not 0 <= self.threshold <= MAX_ITEM_BYTES
        ):
            raise ConfigurationError(
                f"S3Offload(threshold=...) is an item size from 0 to {MAX_ITEM_BYTES} bytes, "
                f"not {self.threshold!r}"
            )
        if self.fetch not in ("eager", "lazy"):
            raise ConfigurationError(
                f"S3Offload(fetch=...) is 'eager' or 'lazy', not {self.fetch!r}"
            )


def _segment(value: Any) -> str:
    """One path segment of an S3 key: percent-escaped so that a ``/`` (or ``..``) in a key
    value never makes another path; binary as unpadded URL-safe base64."""
    if isinstance(value, bytes | bytearray):
        text = "b64:" + urlsafe_b64encode(value).decode("ascii").rstrip("=")
    elif isinstance(value, int | Decimal) and not isinstance(value, bool):
        text = str(value)
    else:
        text = str(value)
    return quote(text, safe="").replace(".", "%2E")


def object_key(prefix: str, table: str, key: Sequence[Any], attribute: str, sha256: str) -> str:
    """``<prefix>/<table>/<pk>/<sk>/<attribute>/<sha256>`` (no ``<sk>`` for a table without a
    sort key), every segment escaped by ``_segment``."""
    parts = [_segment(table), *map(_segment, key), _segment(attribute), sha256]
    base = prefix.strip("/")
    return "/".join([base, *parts] if base else parts)


def _is_reference(value: Any) -> bool:
    return value.__class__ is dict and value.keys() == _REFERENCE


class Offloaded:
    """An offloaded attribute's value, not read yet (``S3Offload(fetch="lazy")``).

    ``await handle.load()`` reads it from S3 once (then remembers it); ``bucket``, ``key``,
    ``sha256`` and ``size`` describe the object. Written back unchanged (``put`` of an item
    or entity that holds the handle), it stays the same reference: nothing is uploaded."""

    __slots__ = (
        "_store",
        "_value",
        "attribute",
        "bucket",
        "codec",
        "item_key",
        "key",
        "sha256",
        "size",
    )

    def __init__(
        self,
        reference: Mapping[str, Any],
        store: S3Store,
        *,
        attribute: str = "",
        item_key: Mapping[str, Any] | None = None,
    ) -> None:
        self.bucket: str = reference["bucket"]
        self.key: str = reference["key"]
        self.sha256: str = reference["sha256"]
        self.size = int(reference["size"])
        self.codec: str = reference["codec"]
        self.attribute = attribute
        self.item_key = item_key
        self._store = store
        self._value: Any = _NOT_LOADED

    @property
    def loaded(self) -> bool:
        """Whether ``load()`` has read the value already."""
        return self._value is not _NOT_LOADED

    def reference(self) -> dict[str, Any]:
        """The map the item stores."""
        return {
            "bucket": self.bucket,
            "key": self.key,
            "sha256": self.sha256,
            "size": self.size,
            "codec": self.codec,
        }

    async def load(self) -> Any:
        """The value (str or bytes), read from S3 and checked against its SHA-256."""
        if self._value is _NOT_LOADED:
            body = await self._store.get(
                self.bucket, self.key, item_key=self.item_key, attribute=self.attribute
            )
            if len(body) != self.size or hashlib.sha256(body).hexdigest() != self.sha256:
                raise CorruptAttribute(
                    f"the S3 object s3://{self.bucket}/{self.key} is not the one the item "
                    f"refers to (size or SHA-256 differ)",
                    self.attribute,
                )
            self._value = body.decode("utf-8") if self.codec == "S" else body
        return self._value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Offloaded):
            return NotImplemented
        return (self.bucket, self.key, self.sha256) == (other.bucket, other.key, other.sha256)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Offloaded(s3://{self.bucket}/{self.key}, size={self.size})"


_NOT_LOADED: Any = object()


class S3Store:
    """The S3 client of one ``Client``: made on first use with the DynamoDB client's region,
    credentials and (on a local or custom endpoint) endpoint; each request holds one slot of
    its own limiter (``max_concurrency`` slots, like DynamoDB requests)."""

    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str | None,
        credentials: CredentialsProvider,
        max_concurrency: int,
    ) -> None:
        self.region = region
        # Only a custom endpoint (moto, LocalStack, a proxy) serves S3 too; AWS's DynamoDB
        # endpoint does not, and S3's own is then resolved by botocore.
        host = urlsplit(endpoint_url).hostname or "" if endpoint_url else ""
        self.endpoint_url = None if host.endswith(".amazonaws.com") else endpoint_url
        self._credentials = credentials
        self._limiter = asyncio.Semaphore(max_concurrency)
        self._client: Any = None
        self._context: Any = None
        self._opening: asyncio.Lock | None = None
        self.uploads = 0
        self.downloads = 0
        self.deletes = 0

    async def _s3(self) -> Any:
        if self._client is not None:
            return self._client
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._client is None:
                from aiobotocore.config import AioConfig
                from aiobotocore.session import AioSession

                creds = await self._credentials.get()
                session = getattr(self._credentials, "session", None)
                if isinstance(self._credentials, BotocoreCredentials) and session is not None:
                    # The standard chain's own session: S3 refreshes (SSO, roles) with it.
                    keys: dict[str, Any] = {}
                else:
                    # Given keys, or a provider of the caller's: taken once, here.
                    session = AioSession()
                    keys = {
                        "aws_access_key_id": creds.access_key,
                        "aws_secret_access_key": creds.secret_key,
                        "aws_session_token": creds.token,
                    }
                context = session.create_client(
                    "s3",
                    region_name=self.region,
                    endpoint_url=self.endpoint_url,
                    **keys,
                    config=AioConfig(
                        # Path-style: a loopback endpoint has no per-bucket host names.
                        s3={"addressing_style": "path"},
                        max_pool_connections=self._limiter._value,
                    ),
                )
                self._client = await context.__aenter__()
                self._context = context
        return self._client

    async def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        *,
        item_key: Mapping[str, Any] | None = None,
        attribute: str = "",
    ) -> None:
        """Upload ``body`` (``OffloadError`` when S3 refuses it)."""
        s3 = await self._s3()
        try:
            async with self._limiter:
                await s3.put_object(Bucket=bucket, Key=key, Body=body)
        except Exception as exc:
            raise OffloadError(
                f"S3 refused the upload ({_describe(exc)}); DynamoDB was not written",
                bucket=bucket,
                object_key=key,
                item_key=item_key,
                attribute=attribute,
            ) from exc
        self.uploads += 1

    async def get(
        self,
        bucket: str,
        key: str,
        *,
        item_key: Mapping[str, Any] | None = None,
        attribute: str = "",
    ) -> bytes:
        """The object's bytes (``DanglingReference`` when it is not there)."""
        s3 = await self._s3()
        try:
            async with self._limiter:
                answer = await s3.get_object(Bucket=bucket, Key=key)
                async with answer["Body"] as stream:
                    body: bytes = await stream.read()
        except Exception as exc:
            code = _code(exc)
            cls = (
                DanglingReference if code in ("NoSuchKey", "NoSuchBucket", "404") else OffloadError
            )
            raise cls(
                "the item refers to an S3 object that does not exist"
                if cls is DanglingReference
                else f"S3 refused the download ({_describe(exc)})",
                bucket=bucket,
                object_key=key,
                item_key=item_key,
                attribute=attribute,
            ) from exc
        self.downloads += 1
        return body

    async def delete(self, objects: Iterable[tuple[str, str]]) -> int:
        """Delete superseded objects; a failure is logged, not raised: the write they
        belonged to has succeeded, and an orphan costs storage, never correctness."""
        by_bucket: dict[str, list[str]] = {}
        for bucket, key in objects:
            by_bucket.setdefault(bucket, []).append(key)
        if not by_bucket:
            return 0
        s3 = await self._s3()
        deleted = 0
        for bucket, keys in by_bucket.items():
            for start in range(0, len(keys), 1000):  # DeleteObjects takes 1,000 keys
                chunk = keys[start : start + 1000]
                try:
                    async with self._limiter:
                        answer = await s3.delete_objects(
                            Bucket=bucket,
                            Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True},
                        )
                except Exception as exc:
                    _log.warning("asyncdyn: superseded S3 objects left in %s: %s", bucket, exc)
                    continue
                failed = answer.get("Errors") or []
                for error in failed:
                    _log.warning("asyncdyn: superseded S3 object left: %s", error)
                deleted += len(chunk) - len(failed)
        self.deletes += deleted
        return deleted

    async def close(self) -> None:
        context, self._context, self._client = self._context, None, None
        if context is not None:
            await context.__aexit__(None, None, None)


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _describe(exc: BaseException) -> str:
    return _code(exc) or type(exc).__name__


class OffloadHost(Protocol):
    """What ``remove_superseded`` needs of a client (``Client`` is one)."""

    def _offload_store(self) -> S3Store: ...

    async def call(self, operation: str, payload: Mapping[str, Any]) -> dict[str, Any]: ...


# --------------------------------------------------------------------------- the policy


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
        _check_codec(codec)
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
            elif name in self.compress:
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
    ) -> Callable[[Any], dict[str, Any]]:
        """``decode`` (wire item -> item) followed by ``expand``."""
        expand = self.expand

        def decode_large(wire: Any) -> dict[str, Any]:
            return expand(decode(wire), store, key_names())

        return decode_large

    def expand(
        self,
        item: dict[str, Any],
        store: Callable[[], S3Store],
        key_names: Sequence[str] = (),
    ) -> dict[str, Any]:
        """``item`` (decoded) with its compressed attributes decompressed and an
        ``Offloaded`` handle in place of each reference map (in place; returned). The
        handle knows the item's key (``key_names``) to name it in errors."""
        for name in self.offload:
            value = item.get(name)
            if value.__class__ is dict and _is_reference(value):
                key = {n: item[n] for n in key_names if n in item} or None
                item[name] = Offloaded(value, store(), attribute=name, item_key=key)
        for name in self.compress:
            value = item.get(name)
            if value.__class__ is bytes:
                item[name] = decompress_value(value, where=name)
        return item

    # ---- offload, around a write

    async def offload_item(
        self,
        store: S3Store,
        table: str,
        key_names: Sequence[str],
        item: Mapping[str, Any],
    ) -> tuple[Mapping[str, Any], set[tuple[str, str]]]:
        """``item`` (prepared) with each offloaded attribute that its size calls for uploaded
        and replaced by its reference, largest first until the item is under the threshold;
        and the objects the new item refers to. Uploads run concurrently; if one fails,
        ``OffloadError`` is raised and nothing is written to DynamoDB."""
        if not self.offload:
            return item, set()
        key = {n: item[n] for n in key_names if n in item}
        # A candidate's size is its name and its bytes (as DynamoDB counts S and B): the
        # rest of the item is sized once, without encoding megabytes for nothing.
        sized = [
            (_value_size(name, item[name]), name)
            for name in self.offload
            if isinstance(item.get(name), str | bytes | bytearray)
        ]
        candidates = {name for _, name in sized}
        size = item_size({n: v for n, v in item.items() if n not in candidates})
        size += sum(attribute_size for attribute_size, _ in sized)
        out = dict(item)
        uploads: list[tuple[str, str, bytes, str]] = []
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
            uploads.append((spec.bucket, path, body, name))
        if uploads:
            await _together(
                [
                    store.put(bucket, path, body, item_key=key, attribute=name)
                    for bucket, path, body, name in uploads
                ]
            )
        return out, self.references(out)

    def references(self, item: Mapping[str, Any] | None) -> set[tuple[str, str]]:
        """The S3 objects ``item`` (decoded, or prepared for writing) refers to."""
        found: set[tuple[str, str]] = set()
        if not item:
            return found
        for name in self.offload:
            value = item.get(name)
            if isinstance(value, Offloaded):
                found.add((value.bucket, value.key))
            elif value is not None and _is_reference(value):
                found.add((value["bucket"], value["key"]))
        return found

    async def load(self, items: Iterable[dict[str, Any] | None]) -> None:
        """Replace the eagerly fetched attributes' handles in ``items`` by their values,
        every object read concurrently (the store's limiter bounds them)."""
        pending: list[tuple[dict[str, Any], str, Offloaded]] = []
        for item in items:
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
            item[name] = self._unpacked(name, await handle.load())
            return
        loaded = await _together([handle.load() for _, _, handle in pending])
        for (item, name, _), value in zip(pending, loaded, strict=True):
            item[name] = self._unpacked(name, value)

    def _unpacked(self, name: str, value: Any) -> Any:
        # Compressed, then offloaded: the object holds the compressed bytes.
        return decompress_value(value, where=name) if name in self.compress else value


def _value_size(name: str, value: str | bytes | bytearray) -> int:
    try:
        data = value.encode("utf-8") if isinstance(value, str) else value
    except UnicodeEncodeError:
        raise InvalidItem("a str that is not valid Unicode (a lone surrogate)", name) from None
    return len(name.encode("utf-8")) + len(data)


async def _together(calls: list[Awaitable[Any]]) -> list[Any]:
    """Every call's result, run concurrently in a task group (a failure cancels the rest);
    the first failure is raised as itself, not wrapped in an ``ExceptionGroup``."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_awaited(call)) for call in calls]
    except BaseExceptionGroup as group_error:
        first = group_error.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from first.__cause__
    return [task.result() for task in tasks]


async def _awaited(call: Awaitable[Any]) -> Any:
    return await call


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


async def load_all(items: Iterable[Mapping[str, Any] | None]) -> None:
    """Load every ``Offloaded`` handle in ``items`` (a page of a query, say), concurrently;
    each handle then answers ``load()`` at once."""
    handles = [
        value
        for item in items
        if item is not None
        for value in item.values()
        if isinstance(value, Offloaded) and not value.loaded
    ]
    if handles:
        await _together([handle.load() for handle in handles])


def _objects_of(image: Mapping[str, Any] | None) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for value in (image or {}).values():
        if isinstance(value, Offloaded):
            found.add((value.bucket, value.key))
        elif _is_reference(value):
            found.add((value["bucket"], value["key"]))
    return found


async def remove_superseded(db: OffloadHost, table: str, records: Iterable[Any]) -> int:
    """Delete the S3 objects that Streams ``records`` of ``table`` (``asyncdyn.streams.Record``:
    ``.keys``, ``.old``, ``.new``) show were referred to by an old image and not by the new
    one: the cleanup for writes made by other programs (or whose own cleanup was lost).
    Needs a stream with old and new images (``NEW_AND_OLD_IMAGES``). Returns how many
    objects went.

    An object is deleted only if the item, read consistently now, does not refer to it: a
    later write may have stored the same bytes again (the key is their hash).

    ``async for batch in db.stream("Docs").batches(): await remove_superseded(db, "Docs",
    batch.records)``
    """
    by_item: dict[bytes, tuple[Mapping[str, Any], set[tuple[str, str]], set[str]]] = {}
    for record in records:
        stale = _objects_of(record.old) - _objects_of(record.new)
        if not stale:
            continue
        names = {n for n, v in (record.old or {}).items() if _objects_of({n: v})}
        identity = repr(sorted(record.keys.items())).encode()
        _, known, attributes = by_item.setdefault(identity, (record.keys, set(), set()))
        known |= stale
        attributes |= names
    doomed: list[tuple[str, str]] = []
    for keys, stale, attributes in by_item.values():
        placeholders = {f"#a{i}": name for i, name in enumerate(sorted(attributes))}
        answer = await db.call(
            "GetItem",
            {
                "TableName": table,
                "Key": encode_key(keys),
                "ConsistentRead": True,
                "ProjectionExpression": ", ".join(placeholders),
                "ExpressionAttributeNames": placeholders,
            },
        )
        current = _objects_of(_EXACT.item(answer["Item"])) if answer.get("Item") else set()
        doomed.extend(stale - current)
    if not doomed:
        return 0
    return await db._offload_store().delete(sorted(doomed))


Loader = Callable[[Iterable[dict[str, Any] | None]], Awaitable[None]]
