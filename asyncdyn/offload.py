"""Offloaded attributes: a value kept in S3, with a small reference map in the item.

The value is uploaded under a content-addressed key,
``<prefix>/<table>/<pk>/<sk>/<attribute>/<sha256>``, *before* the DynamoDB write, and the
item stores ``{"bucket", "key", "sha256", "size", "codec"}`` instead (``codec`` is ``"S"``
or ``"B"``: the type the value reads back as). Because the key is the content's hash, an
upload never overwrites an object a live item refers to, whatever happens to the write
that follows. Here: where an attribute goes (``S3Offload``), the object key, the handle a
read leaves (``Offloaded``), the S3 client (``S3Store``) and the Streams-driven cleanup
(``remove_superseded``). Which attributes of an item go, and when, is ``asyncdyn.large``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from base64 import urlsafe_b64encode
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol
from urllib.parse import quote, urlsplit

from .credentials import BotocoreCredentials, CredentialsProvider
from .errors import ConfigurationError, CorruptAttribute, DanglingReference, OffloadError
from .marshal import MAX_ITEM_BYTES, decoder, encode_key

__all__ = [
    "DEFAULT_THRESHOLD",
    "OffloadHost",
    "Offloaded",
    "S3Offload",
    "S3Store",
    "Uploads",
    "is_reference",
    "load_all",
    "object_key",
    "remove_superseded",
    "together",
]

_log = logging.getLogger(__name__)
_EXACT = decoder("auto")

Fetch = Literal["eager", "lazy"]

# The item keeps this much under DynamoDB's 400 KB when nothing else is said: room for the
# reference maps that replace offloaded values and for later small updates of the item.
DEFAULT_THRESHOLD = MAX_ITEM_BYTES - 32 * 1024
_REFERENCE = frozenset({"bucket", "key", "sha256", "size", "codec"})


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


def is_reference(value: Any) -> bool:
    """Whether ``value`` is the reference map an offloaded attribute stores."""
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


async def together(calls: list[Awaitable[Any]]) -> list[Any]:
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


class Uploads:
    """The objects one write will refer to, to upload before it is sent (``run``), and to
    delete again when the write failed and the item, as it stands, does not refer to them
    (``discard``): the batch engine, the writer and transactions hold one per offloading
    request until its uploads are done.

    ``objects``: ``(bucket, key, body, attribute)``; ``item_key`` names the item in errors;
    ``current`` reads the item as it stands now (consistently), for a failure that did not
    return it."""

    __slots__ = ("current", "item_key", "objects", "store")

    def __init__(
        self,
        store: S3Store,
        item_key: Mapping[str, Any],
        objects: list[tuple[str, str, bytes, str]],
        current: Callable[[], Awaitable[Mapping[str, Any] | None]] | None = None,
    ) -> None:
        self.store = store
        self.item_key = item_key
        self.objects = objects
        self.current = current

    @property
    def keys(self) -> set[tuple[str, str]]:
        """The ``(bucket, key)`` of each object."""
        return {(bucket, key) for bucket, key, _, _ in self.objects}

    async def run(self) -> None:
        """Upload every object, concurrently (each holds a slot of the store's limiter);
        the first failure raises ``OffloadError`` naming the object, item and attribute."""
        store, key = self.store, self.item_key
        calls: list[Awaitable[None]] = [
            store.put(bucket, path, body, item_key=key, attribute=name)
            for bucket, path, body, name in self.objects
        ]
        await (calls[0] if len(calls) == 1 else together(calls))

    def release(self) -> None:
        """Forget the bodies once uploaded (a writer may hold the request a while longer);
        their keys stay, for ``discard``."""
        self.objects = [(bucket, key, b"", name) for bucket, key, _, name in self.objects]

    async def discard(self, current: Mapping[str, Any] | None, *, seen: bool) -> int:
        """After a failed write: delete the objects that the item as it stands (``current``,
        when ``seen``; otherwise read now, if this knows how) does not refer to. An object
        it refers to is live (the same bytes were written before: the key is their hash),
        and without a sight of the item nothing is deleted: orphans cost storage, a deleted
        live object would cost data. Returns how many went."""
        if not seen:
            if self.current is None:
                return 0
            try:
                current = await self.current()
            except Exception as exc:  # the write's own error is what the caller needs
                _log.warning("asyncdyn: uploads of a failed write left in S3: %s", exc)
                return 0
        orphans = self.keys - _objects_of(current)
        if not orphans:
            return 0
        return await self.store.delete(sorted(orphans))


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
        await together([handle.load() for handle in handles])


def _objects_of(image: Mapping[str, Any] | None) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for value in (image or {}).values():
        if isinstance(value, Offloaded):
            found.add((value.bucket, value.key))
        elif is_reference(value):
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
