"""DynamoDB's own export to S3 and import from S3: tables beyond one machine.

A table too big for one process is moved by DynamoDB itself: ``ExportTableToPointInTime``
writes it to S3 from a point-in-time-recovery snapshot (no read capacity used), and
``ImportTable`` creates a new table from S3 (no write capacity used). This module holds
what those jobs need besides the DynamoDB calls (which ``Table.export_to_s3`` and
``Table.import_from_s3`` make):

* :func:`parse_s3_url` and :class:`S3Location`: ``s3://bucket/prefix``, checked before
  anything is sent;
* :class:`IncrementalPeriod`: the window of an incremental export, checked against
  DynamoDB's rules (15 minutes to 24 hours);
* :class:`NativeExport` / :class:`NativeImport`: what DescribeExport / DescribeImport say;
* :class:`S3Files`: an aiobotocore S3 client on the DynamoDB client's endpoint, region and
  credentials, which finds an export's data files (from its manifests) and reads them back
  concurrently as items (:func:`S3Files.export_items`).

The layout of an export under its prefix is ``AWSDynamoDB/<export id>/manifest-summary.json``
(which names ``manifest-files.json``: one JSON line per data file, with its key and item
count) and ``data/<name>.json.gz``, one ``{"Item": {...}}`` per line (an incremental export:
``{"Keys": ..., "NewImage": ..., "OldImage": ...}``). moto (5.x) writes only the data file,
with no manifest: without one the data files are found by listing, which needs a prefix
that holds this one export.
"""

from __future__ import annotations

import asyncio
import re
import time
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import orjson

from .credentials import CredentialsProvider, is_loopback
from .errors import ConfigurationError, NativeTransferError
from .marshal import Decoder, NumberMode, decoder

__all__ = [
    "DataFile",
    "ExportFormat",
    "Gunzip",
    "ImportFormat",
    "IncrementalPeriod",
    "NativeExport",
    "NativeImport",
    "S3Files",
    "S3Location",
    "compression_of",
    "export_request",
    "import_request",
    "parse_s3_url",
    "poll",
    "s3_endpoint_for",
]

ExportFormat = Literal["DYNAMODB_JSON", "ION"]
ImportFormat = Literal["DYNAMODB_JSON", "CSV", "ION"]
Compression = Literal["NONE", "GZIP", "ZSTD"]
T = TypeVar("T")

# S3's bucket naming rules (the general-purpose ones): 3-63 characters, lowercase letters,
# digits, dots and hyphens, starting and ending with a letter or digit.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# DynamoDB's bounds on an incremental export's period.
_MIN_PERIOD = timedelta(minutes=15)
_MAX_PERIOD = timedelta(hours=24)
_READ_CHUNK = 1 << 20


# ------------------------------------------------------------------------------ locations


@dataclass(frozen=True, slots=True)
class S3Location:
    """A bucket and a key prefix (no leading or trailing ``/``; ``""`` is the bucket's root)."""

    bucket: str
    prefix: str = ""

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def join(self, *parts: str) -> str:
        """The key of ``parts`` under the prefix."""
        return "/".join(part for part in (self.prefix, *parts) if part)


def parse_s3_url(url: str) -> S3Location:
    """``s3://bucket/prefix`` -> :class:`S3Location`; ``ConfigurationError`` (a
    ``ValueError``) naming what is wrong otherwise."""
    if not isinstance(url, str):
        raise ConfigurationError(f"an S3 location is a str like s3://bucket/prefix, not {url!r}")
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ConfigurationError(f"S3 location {url!r}: expected s3://bucket/prefix")
    bucket = parts.netloc
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ConfigurationError(
            f"S3 location {url!r}: {bucket!r} is not a bucket name (3-63 characters: "
            "a-z, 0-9, '.', '-')"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"S3 location {url!r}: no '?' or '#' in a prefix")
    prefix = parts.path.strip("/")
    if "//" in prefix:
        raise ConfigurationError(f"S3 location {url!r}: the prefix has an empty part ('//')")
    return S3Location(bucket, prefix)


def s3_endpoint_for(dynamodb_endpoint: str) -> str | None:
    """The S3 endpoint that goes with a DynamoDB endpoint: the same one for a local server
    or any endpoint that is not AWS's (moto and LocalStack serve S3 on the DynamoDB port),
    ``None`` (botocore's own S3 endpoint for the region) for AWS."""
    host = (urlsplit(dynamodb_endpoint).hostname or "").lower()
    if is_loopback(dynamodb_endpoint):
        return dynamodb_endpoint
    if host.endswith((".amazonaws.com", ".amazonaws.com.cn", ".api.aws")):
        return None
    return dynamodb_endpoint


# ------------------------------------------------------------------------------ requests


def _utc(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise ConfigurationError(f"{what} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None:
        raise ConfigurationError(f"{what} {value.isoformat()} has no time zone (use UTC)")
    return value


@dataclass(frozen=True, slots=True)
class IncrementalPeriod:
    """The changes between ``start`` and ``end`` (aware datetimes), for an incremental
    export: 15 minutes to 24 hours, within the point-in-time recovery window. ``view`` is
    what each change record holds: ``"NEW_AND_OLD_IMAGES"`` or ``"NEW_IMAGE"``."""

    start: datetime
    end: datetime
    view: Literal["NEW_AND_OLD_IMAGES", "NEW_IMAGE"] = "NEW_AND_OLD_IMAGES"

    def __post_init__(self) -> None:
        start, end = _utc(self.start, "start"), _utc(self.end, "end")
        if self.view not in ("NEW_AND_OLD_IMAGES", "NEW_IMAGE"):
            raise ConfigurationError(
                f"view must be NEW_AND_OLD_IMAGES or NEW_IMAGE, not {self.view!r}"
            )
        length = end - start
        if not _MIN_PERIOD <= length <= _MAX_PERIOD:
            raise ConfigurationError(
                f"an incremental export covers 15 minutes to 24 hours; "
                f"{start.isoformat()} to {end.isoformat()} is {length}"
            )

    def request(self) -> dict[str, Any]:
        """The ``IncrementalExportSpecification`` (times as epoch seconds, as the JSON
        protocol sends timestamps)."""
        return {
            "ExportFromTime": self.start.timestamp(),
            "ExportToTime": self.end.timestamp(),
            "ExportViewType": self.view,
        }


def export_request(
    table_arn: str,
    location: S3Location,
    *,
    format: ExportFormat = "DYNAMODB_JSON",
    incremental: IncrementalPeriod | None = None,
    bucket_owner: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """The ExportTableToPointInTime payload, checked before anything is sent."""
    if format not in ("DYNAMODB_JSON", "ION"):
        raise ConfigurationError(f"export format must be DYNAMODB_JSON or ION, not {format!r}")
    request: dict[str, Any] = {
        "TableArn": table_arn,
        "S3Bucket": location.bucket,
        "ExportFormat": format,
        "ExportType": "FULL_EXPORT" if incremental is None else "INCREMENTAL_EXPORT",
    }
    if location.prefix:
        request["S3Prefix"] = location.prefix
    if incremental is not None:
        request["IncrementalExportSpecification"] = incremental.request()
    if bucket_owner:
        request["S3BucketOwner"] = bucket_owner
    if token:
        # The same token makes a retried request start one export, not two.
        request["ClientToken"] = token
    return request


def import_request(
    location: S3Location,
    table: Mapping[str, Any],
    *,
    format: ImportFormat = "DYNAMODB_JSON",
    compression: Compression = "NONE",
    csv_delimiter: str | None = None,
    csv_header: list[str] | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """The ImportTable payload; ``table`` is a CreateTable payload (``create_table_request``),
    of which ImportTable takes all but streams and local indexes."""
    if format not in ("DYNAMODB_JSON", "CSV", "ION"):
        raise ConfigurationError(f"import format must be DYNAMODB_JSON, CSV or ION, not {format!r}")
    if compression not in ("NONE", "GZIP", "ZSTD"):
        raise ConfigurationError(f"compression must be NONE, GZIP or ZSTD, not {compression!r}")
    if (csv_delimiter is not None or csv_header is not None) and format != "CSV":
        raise ConfigurationError("csv_delimiter and csv_header apply to the CSV format only")
    if "StreamSpecification" in table or "LocalSecondaryIndexes" in table:
        raise ConfigurationError(
            f"table {table.get('TableName')!r}: ImportTable creates no stream or local "
            "index; add a stream with enable_stream() once the import is done"
        )
    source: dict[str, Any] = {"S3Bucket": location.bucket}
    if location.prefix:
        source["S3KeyPrefix"] = location.prefix
    request: dict[str, Any] = {
        "S3BucketSource": source,
        "InputFormat": format,
        "InputCompressionType": compression,
        "TableCreationParameters": dict(table),
    }
    options: dict[str, Any] = {}
    if csv_delimiter is not None:
        options["Delimiter"] = csv_delimiter
    if csv_header is not None:
        options["HeaderList"] = list(csv_header)
    if options:
        request["InputFormatOptions"] = {"Csv": options}
    if token:
        request["ClientToken"] = token
    return request


def compression_of(keys: list[str]) -> Compression:
    """The compression of an import's objects, from their names: GZIP when every one ends in
    ``.gz``, ZSTD when every one ends in ``.zst``, else NONE (ImportTable takes one for all)."""
    if keys and all(key.endswith(".gz") for key in keys):
        return "GZIP"
    if keys and all(key.endswith((".zst", ".zstd")) for key in keys):
        return "ZSTD"
    return "NONE"


# ------------------------------------------------------------------------------ jobs


@dataclass(frozen=True, slots=True)
class NativeExport:
    """An export to S3 as DescribeExport describes it."""

    arn: str
    status: str
    location: S3Location
    type: str = "FULL_EXPORT"
    format: str = "DYNAMODB_JSON"
    item_count: int | None = None
    billed_bytes: int | None = None
    manifest: str | None = None
    failure: str | None = None

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> NativeExport:
        code, message = description.get("FailureCode"), description.get("FailureMessage")
        count = description.get("ItemCount")
        size = description.get("BilledSizeBytes")
        return cls(
            arn=str(description["ExportArn"]),
            status=str(description.get("ExportStatus", "IN_PROGRESS")),
            location=S3Location(
                str(description.get("S3Bucket", "")), str(description.get("S3Prefix") or "")
            ),
            type=str(description.get("ExportType") or "FULL_EXPORT"),
            format=str(description.get("ExportFormat") or "DYNAMODB_JSON"),
            item_count=None if count is None else int(count),
            billed_bytes=None if size is None else int(size),
            manifest=description.get("ExportManifest") or None,
            failure=f"{code}: {message}" if code or message else None,
        )

    @property
    def export_id(self) -> str:
        """The last part of the ARN: the folder of this export under ``AWSDynamoDB/``."""
        return self.arn.rstrip("/").rpartition("/")[2]

    @property
    def done(self) -> bool:
        return self.status != "IN_PROGRESS"


@dataclass(frozen=True, slots=True)
class NativeImport:
    """An import from S3 as DescribeImport describes it."""

    arn: str
    status: str
    table: str
    imported: int = 0
    processed: int = 0
    errors: int = 0
    processed_bytes: int = 0
    failure: str | None = None

    @classmethod
    def from_description(cls, description: Mapping[str, Any], table: str) -> NativeImport:
        code, message = description.get("FailureCode"), description.get("FailureMessage")
        return cls(
            arn=str(description["ImportArn"]),
            status=str(description.get("ImportStatus", "IN_PROGRESS")),
            table=table,
            imported=int(description.get("ImportedItemCount") or 0),
            processed=int(description.get("ProcessedItemCount") or 0),
            errors=int(description.get("ErrorCount") or 0),
            processed_bytes=int(description.get("ProcessedSizeBytes") or 0),
            failure=f"{code}: {message}" if code or message else None,
        )

    @property
    def done(self) -> bool:
        return self.status not in ("IN_PROGRESS", "CANCELLING")


async def poll(
    describe: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    on_progress: Callable[[T], None] | None = None,
    timeout: float | None = None,
    first: float = 0.25,
    cap: float = 30.0,
    what: str = "the job",
) -> T:
    """``describe()`` with pauses doubling from ``first`` to ``cap`` seconds until
    ``done(state)``; ``on_progress`` sees every state. An export takes minutes to hours on
    AWS, so the pause grows: a long job costs a describe call every ``cap`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = first
    while True:
        state = await describe()
        if on_progress is not None:
            on_progress(state)
        if done(state):
            return state
        if deadline is not None and time.monotonic() + pause > deadline:
            raise TimeoutError(f"{what} not finished after {timeout} s")
        await asyncio.sleep(pause)
        pause = min(pause * 2, cap)


# ------------------------------------------------------------------------------ S3


@dataclass(frozen=True, slots=True)
class DataFile:
    """One data file of an export: its key and, when a manifest says, its item count."""

    key: str
    items: int | None = None


def _decode_line(line: bytes, incremental: bool, where: str, decode: Decoder) -> dict[str, Any]:
    try:
        record = orjson.loads(line)
        if incremental:
            out: dict[str, Any] = {}
            for part in ("Keys", "NewImage", "OldImage"):
                if part in record:
                    out[part] = decode.item(record[part])
            return out
        return decode.item(record["Item"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise NativeTransferError(
            f"{where}: not an exported item ({exc})", code="BadData"
        ) from None


class Gunzip:
    """Incremental gzip decompression of a stream of chunks, across members: a gzip file may
    be several members one after the other (``cat a.gz b.gz``), and each must be read."""

    __slots__ = ("_inflate",)

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(wbits=31)

    def feed(self, chunk: bytes) -> bytes:
        """The bytes ``chunk`` decompresses to (``zlib.error`` when it is not gzip)."""
        out = []
        while chunk:
            out.append(self._inflate.decompress(chunk))
            if not self._inflate.eof:
                break
            chunk = self._inflate.unused_data  # the start of the next member, if any
            if chunk:
                self._inflate = zlib.decompressobj(wbits=31)
        return b"".join(out)

    @property
    def complete(self) -> bool:
        """Whether the stream ended at the end of a member (not cut short)."""
        return self._inflate.eof


class S3Files:
    """An S3 client (aiobotocore) on the DynamoDB client's endpoint, region and credentials.

    The credentials are read once, when the client opens (``async with``): for a download
    that outlives temporary credentials, open a new one. ``numbers`` is how exported
    numbers decode, as ``Client(numbers=...)``.
    """

    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str,
        credentials: CredentialsProvider,
        concurrency: int = 8,
        numbers: NumberMode = "auto",
    ) -> None:
        self._decode = decoder(numbers)
        self._region = region
        self._endpoint = s3_endpoint_for(endpoint_url)
        self._credentials = credentials
        self.concurrency = concurrency
        self._context: Any = None
        self._s3: Any = None

    async def __aenter__(self) -> S3Files:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        credentials = await self._credentials.get()
        # Path-style addressing: a local server has no DNS for bucket.host names.
        style = "path" if self._endpoint is not None else "auto"
        self._context = get_session().create_client(
            "s3",
            region_name=self._region,
            endpoint_url=self._endpoint,
            aws_access_key_id=credentials.access_key,
            aws_secret_access_key=credentials.secret_key,
            aws_session_token=credentials.token,
            config=AioConfig(
                s3={"addressing_style": style}, max_pool_connections=max(self.concurrency, 10)
            ),
        )
        self._s3 = await self._context.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        context, self._context, self._s3 = self._context, None, None
        if context is not None:
            await context.__aexit__(None, None, None)

    @property
    def client(self) -> Any:
        """The aiobotocore S3 client (open inside ``async with``)."""
        if self._s3 is None:
            raise ConfigurationError("S3Files is used inside 'async with'")
        return self._s3

    async def keys(self, location: S3Location) -> list[str]:
        """Every object key under the location's prefix (all pages)."""
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        prefix = location.prefix + "/" if location.prefix else ""
        try:
            async for page in paginator.paginate(Bucket=location.bucket, Prefix=prefix):
                keys.extend(entry["Key"] for entry in page.get("Contents", ()))
        except Exception as exc:
            raise self._failure(exc, location.bucket, prefix) from exc
        return keys

    async def get(self, bucket: str, key: str) -> bytes:
        """An object's bytes."""
        try:
            answer = await self.client.get_object(Bucket=bucket, Key=key)
            body = answer["Body"]
            async with body:
                data: bytes = await body.read()
        except Exception as exc:
            raise self._failure(exc, bucket, key) from exc
        return data

    async def put(self, bucket: str, key: str, data: bytes) -> None:
        """Write an object (a file for ImportTable to read, say)."""
        try:
            await self.client.put_object(Bucket=bucket, Key=key, Body=data)
        except Exception as exc:
            raise self._failure(exc, bucket, key) from exc

    @staticmethod
    def _failure(exc: Exception, bucket: str, key: str) -> NativeTransferError:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
        return NativeTransferError(f"S3 s3://{bucket}/{key}: {code}: {exc}", code=str(code))

    async def data_files(self, export: NativeExport) -> list[DataFile]:
        """The export's data files: from its manifests when DynamoDB wrote them (AWS), else
        by listing ``AWSDynamoDB/`` under the prefix (moto writes no manifest), which must
        then hold this export only."""
        location = export.location
        summary_key = export.manifest or location.join(
            "AWSDynamoDB", export.export_id, "manifest-summary.json"
        )
        try:
            summary = orjson.loads(await self.get(location.bucket, summary_key))
        except NativeTransferError as exc:
            if exc.code not in ("NoSuchKey", "404"):
                raise
        else:
            files_key = summary.get("manifestFilesS3Key") or summary_key.replace(
                "manifest-summary.json", "manifest-files.json"
            )
            lines = (await self.get(location.bucket, files_key)).splitlines()
            files = [orjson.loads(line) for line in lines if line.strip()]
            return [DataFile(f["dataFileS3Key"], f.get("itemCount")) for f in files]
        root = S3Location(location.bucket, location.join("AWSDynamoDB"))
        data = [key for key in await self.keys(root) if "/data/" in key]
        folders = {key[len(root.prefix) + 1 :].partition("/")[0] for key in data}
        if len(folders) > 1:
            raise NativeTransferError(
                f"{root} holds {len(folders)} exports and no manifest says which files are "
                f"{export.arn}: export to a prefix of its own",
                code="AmbiguousExport",
                arn=export.arn,
            )
        return [DataFile(key) for key in sorted(data)]

    async def file_items(
        self, bucket: str, file: DataFile, *, incremental: bool = False
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The items of one data file, a decompressed chunk's worth at a time (memory stays
        at about a megabyte of compressed input per file, however big it is)."""
        where = f"s3://{bucket}/{file.key}"
        try:
            answer = await self.client.get_object(Bucket=bucket, Key=file.key)
        except Exception as exc:
            raise self._failure(exc, bucket, file.key) from exc
        gzipped = file.key.endswith(".gz")
        inflate = Gunzip() if gzipped else None
        rest = b""
        count = 0
        body = answer["Body"]
        async with body:  # (entering returns the raw aiohttp response: keep ``body``)
            while True:
                chunk = await body.read(_READ_CHUNK)
                if not chunk:
                    break
                try:
                    text = inflate.feed(chunk) if inflate is not None else chunk
                except zlib.error as exc:
                    raise NativeTransferError(f"{where}: {exc}", code="BadData") from None
                lines = (rest + text).split(b"\n")
                rest = lines.pop()
                items = [
                    _decode_line(line, incremental, where, self._decode)
                    for line in lines
                    if line.strip()
                ]
                count += len(items)
                if items:
                    yield items
        if inflate is not None and not inflate.complete:
            raise NativeTransferError(f"{where}: the gzip stream is cut short", code="BadData")
        if rest.strip():
            count += 1
            yield [_decode_line(rest, incremental, where, self._decode)]
        if file.items is not None and count != file.items:
            raise NativeTransferError(
                f"{where}: {count} items read, the manifest says {file.items}",
                code="ItemCountMismatch",
            )

    async def export_items(
        self, export: NativeExport, *, check_count: bool = True
    ) -> AsyncGenerator[list[dict[str, Any]], None]:
        """Every item of a completed export, in batches as the data files are read
        (``concurrency`` files at once, in no particular order). With ``check_count``, the
        total is compared with DescribeExport's ``ItemCount`` at the end: a mismatch raises
        ``NativeTransferError`` rather than leave a silently short copy."""
        if export.status != "COMPLETED":
            raise NativeTransferError(
                f"export {export.arn} is {export.status}, not COMPLETED",
                code="NotCompleted",
                arn=export.arn,
            )
        if export.format != "DYNAMODB_JSON":
            raise NativeTransferError(
                f"export {export.arn} is {export.format}: only DYNAMODB_JSON is read back",
                code="Format",
                arn=export.arn,
            )
        files = await self.data_files(export)
        incremental = export.type == "INCREMENTAL_EXPORT"
        # Unbounded, so that the end marker always fits; ``room`` bounds what waits in it.
        queue: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue()
        room = asyncio.Semaphore(self.concurrency * 2)
        pending = list(reversed(files))
        total = 0

        async def reader() -> None:
            while pending:
                file = pending.pop()
                async for batch in self.file_items(
                    export.location.bucket, file, incremental=incremental
                ):
                    await room.acquire()
                    queue.put_nowait(batch)

        async def readers() -> None:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self.concurrency, len(files))):
                    group.create_task(reader())

        task = asyncio.create_task(readers())
        task.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while (batch := await queue.get()) is not None:
                room.release()
                total += len(batch)
                yield batch
            try:
                await task
            except ExceptionGroup as failed:  # a reader's error, as itself
                raise failed.exceptions[0] from None
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        expected = export.item_count
        if check_count and expected is not None and not incremental and total != expected:
            raise NativeTransferError(
                f"export {export.arn}: {total} items read from S3, DynamoDB exported {expected}",
                code="ItemCountMismatch",
                arn=export.arn,
            )
