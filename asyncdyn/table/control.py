"""The control plane of one table: waiting until it is active, streams and TTL settings,
and DynamoDB's own export to S3 and import from S3 (``asyncdyn.native``)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from ..errors import (
    AccessDenied,
    ConfigurationError,
    NativeTransferError,
    ServiceError,
    TableNotFound,
)
from ..native import (
    Compression,
    ExportFormat,
    ImportFormat,
    IncrementalPeriod,
    NativeExport,
    NativeImport,
    S3Files,
    S3Location,
    compression_of,
    export_request,
    import_request,
    parse_s3_url,
    poll,
)
from ..schema import (
    BillingMode,
    GlobalIndex,
    KeySpec,
    StreamView,
    create_table_request,
)
from .core import (
    TableCore,
)

__all__ = ["Control"]


# An export or an import, as DescribeExport / DescribeImport describe it.
_Job = TypeVar("_Job", NativeExport, NativeImport)


async def _poll(check: Any, timeout: float, message: str) -> None:
    """Call ``check()`` with growing pauses until it is true, or raise ``TimeoutError``."""
    deadline = time.monotonic() + timeout
    pause = 0.02
    while not await check():
        if time.monotonic() + pause > deadline:
            raise TimeoutError(message)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 1.0)


class Control(TableCore):
    __slots__ = ()

    async def wait_until_active(self, timeout: float = 120.0) -> None:
        """Return once the table and all its global indexes are ACTIVE."""

        async def active() -> bool:
            try:
                table = await self.describe()
            except TableNotFound:
                return False
            indexes = table.get("GlobalSecondaryIndexes") or ()
            return table.get("TableStatus") == "ACTIVE" and all(
                index.get("IndexStatus", "ACTIVE") == "ACTIVE" for index in indexes
            )

        await _poll(active, timeout, f"table {self.name!r} not ACTIVE after {timeout}s")

    async def enable_stream(
        self, view: StreamView = "NEW_AND_OLD_IMAGES", *, wait: bool = True
    ) -> str:
        """Turn on the table's stream (UpdateTable) and return its ARN; with ``wait``, return
        once the table is ACTIVE again."""
        if view not in ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
            raise ConfigurationError(f"unknown stream view type {view!r}")
        data = await self._call(
            "UpdateTable",
            {
                "TableName": self.name,
                "StreamSpecification": {"StreamEnabled": True, "StreamViewType": view},
            },
        )
        if wait:
            await self.wait_until_active()
        arn = (data.get("TableDescription") or {}).get("LatestStreamArn")
        if not arn:
            arn = (await self.describe()).get("LatestStreamArn")
        return str(arn)

    async def enable_ttl(self, attribute: str) -> None:
        """Have DynamoDB delete items once the epoch seconds in ``attribute`` have passed."""
        await self._call(
            "UpdateTimeToLive",
            {
                "TableName": self.name,
                "TimeToLiveSpecification": {"Enabled": True, "AttributeName": attribute},
            },
        )

    async def describe_ttl(self) -> dict[str, Any]:
        """The table's ``TimeToLiveDescription`` (status and attribute name)."""
        data = await self._call("DescribeTimeToLive", {"TableName": self.name})
        description: dict[str, Any] = data.get("TimeToLiveDescription", {})
        return description

    # -- DynamoDB's own export and import (asyncdyn.native) -------------------------------

    def s3(self, *, concurrency: int = 8) -> S3Files:
        """An S3 client on this client's endpoint, region and credentials (``async with``)."""
        client = self._client
        return S3Files(
            region=client.region,
            endpoint_url=client.endpoint_url,
            # The dispatcher's provider: S3 is signed with the very credentials DynamoDB is.
            credentials=client._dispatcher._credentials,
            concurrency=concurrency,
            numbers=client._numbers,
        )

    async def point_in_time_recovery(self) -> bool:
        """Whether point-in-time recovery (which an export to S3 needs) is on."""
        data = await self._call("DescribeContinuousBackups", {"TableName": self.name})
        description = data.get("ContinuousBackupsDescription") or {}
        recovery = description.get("PointInTimeRecoveryDescription") or {}
        return recovery.get("PointInTimeRecoveryStatus") == "ENABLED"

    async def enable_point_in_time_recovery(self) -> None:
        """Turn on point-in-time recovery (it is billed by table size)."""
        await self._call(
            "UpdateContinuousBackups",
            {
                "TableName": self.name,
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            },
        )

    async def export_to_s3(
        self,
        url: str | S3Location,
        *,
        format: ExportFormat = "DYNAMODB_JSON",
        incremental: IncrementalPeriod | None = None,
        enable_recovery: bool = False,
        bucket_owner: str | None = None,
        token: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
        on_progress: Callable[[NativeExport], None] | None = None,
    ) -> NativeExport:
        """Export the table to S3 with ExportTableToPointInTime (no read capacity used).

        ``url`` is ``s3://bucket/prefix``. The table needs point-in-time recovery: when it is
        off, ``enable_recovery=True`` turns it on, else ``NativeTransferError``
        (``code="PointInTimeRecoveryOff"``) says so before anything starts. ``incremental``
        exports only the changes of a period. ``token`` (default: a fresh one) makes a resent
        request start one export. With ``wait`` (the default), DescribeExport is
        polled (pauses growing to 30 s; ``on_progress`` sees each state) until the export
        ends; a failed one raises ``NativeTransferError``. Read the items back with
        ``async with table.s3() as s3: async for batch in s3.export_items(export)``.
        """
        location = parse_s3_url(url) if isinstance(url, str) else url
        description = await self.describe()
        request = export_request(
            str(description["TableArn"]),
            location,
            format=format,
            incremental=incremental,
            bucket_owner=bucket_owner,
            # Always a token: the dispatcher resends a control-plane call whose answer was
            # lost, and DynamoDB starts one export per token, not one per request.
            token=token or uuid.uuid4().hex,
        )
        try:
            recovery = await self.point_in_time_recovery()
        except AccessDenied:
            # A role may export without dynamodb:DescribeContinuousBackups: the export
            # itself then says whether recovery is on.
            recovery = True
        if not recovery:
            if not enable_recovery:
                raise NativeTransferError(
                    f"table {self.name!r}: point-in-time recovery is off, and an export to S3 "
                    "needs it: turn it on (enable_recovery=True, `asyncdyn export --native "
                    "... --enable-pitr`, or `aws dynamodb update-continuous-backups`)",
                    code="PointInTimeRecoveryOff",
                    table=self.name,
                )
            await self.enable_point_in_time_recovery()
        try:
            data = await self._call("ExportTableToPointInTime", request)
        except ServiceError as exc:
            if exc.code.startswith("PointInTimeRecoveryUnavailable"):
                raise NativeTransferError(
                    f"table {self.name!r}: point-in-time recovery is not available yet "
                    f"({exc.message}); try again in a few minutes",
                    code="PointInTimeRecoveryOff",
                    table=self.name,
                ) from exc
            raise
        export = NativeExport.from_description(data["ExportDescription"])
        if not wait:
            return export
        return await self._finished(
            export,
            self.describe_export,
            lambda state: state.status != "COMPLETED",
            f"export of table {self.name!r} to {location}",
            on_progress,
            timeout,
        )

    async def _finished(
        self,
        job: _Job,
        describe: Callable[[str], Awaitable[_Job]],
        failed: Callable[[_Job], bool],
        what: str,
        on_progress: Callable[[_Job], None] | None,
        timeout: float | None,
    ) -> _Job:
        """An export or import job polled until it ends; ``NativeTransferError`` when it
        ended ``failed``."""
        job = await poll(
            lambda: describe(job.arn),
            lambda state: state.done,
            on_progress=on_progress,
            timeout=timeout,
            what=f"{what} ({job.arn})",
        )
        if failed(job):
            raise NativeTransferError(
                f"{what} is {job.status}: {job.failure or 'no reason given'}",
                code="Failed",
                table=self.name,
                arn=job.arn,
            )
        return job

    async def describe_export(self, arn: str) -> NativeExport:
        """DescribeExport of an export of this table (or any other: ``arn`` decides)."""
        data = await self._call("DescribeExport", {"ExportArn": arn})
        return NativeExport.from_description(data["ExportDescription"])

    async def import_from_s3(
        self,
        url: str | S3Location,
        *,
        partition_key: KeySpec,
        sort_key: KeySpec | None = None,
        indexes: Iterable[GlobalIndex] = (),
        format: ImportFormat = "DYNAMODB_JSON",
        compression: Compression | None = None,
        csv_delimiter: str | None = None,
        csv_header: list[str] | None = None,
        billing: BillingMode = "PAY_PER_REQUEST",
        read_capacity: int | None = None,
        write_capacity: int | None = None,
        token: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
        on_progress: Callable[[NativeImport], None] | None = None,
    ) -> NativeImport:
        """Create this table from the objects under ``url`` with ImportTable.

        ImportTable only creates: an existing table raises ``NativeTransferError``
        (``code="TableExists"``) before anything is sent. ``compression`` defaults to what
        the object names say (all ``.gz``: GZIP, all ``.zst``: ZSTD, else NONE); no object
        under the prefix raises ``code="NoData"``. With ``wait``, DescribeImport is polled
        until the import ends; one that FAILED or was CANCELLED raises. Rows DynamoDB could
        not import are counted in ``errors`` (and logged by AWS to CloudWatch).
        """
        location = parse_s3_url(url) if isinstance(url, str) else url
        table = create_table_request(
            self.name,
            partition_key=partition_key,
            sort_key=sort_key,
            indexes=list(indexes),
            billing=billing,
            read_capacity=read_capacity,
            write_capacity=write_capacity,
        )
        try:
            await self.describe()
        except TableNotFound:
            pass
        else:
            raise NativeTransferError(
                f"table {self.name!r} exists: ImportTable only creates a new table (import "
                "under another name, or load into it with `asyncdyn load FILE`)",
                code="TableExists",
                table=self.name,
            )
        if compression is None:
            async with self.s3() as s3:
                keys = await s3.keys(location)
            if not keys:
                raise NativeTransferError(
                    f"nothing to import: no object under {location}",
                    code="NoData",
                    table=self.name,
                )
            compression = compression_of(keys)
        request = import_request(
            location,
            table,
            format=format,
            compression=compression,
            csv_delimiter=csv_delimiter,
            csv_header=csv_header,
            token=token or uuid.uuid4().hex,  # one import per token, however often resent
        )
        data = await self._call("ImportTable", request)
        job = NativeImport.from_description(data["ImportTableDescription"], self.name)
        if not wait:
            return job
        return await self._finished(
            job,
            self.describe_import,
            # A FAILED import that imported rows is reported by its error count instead.
            lambda state: (
                state.status != "COMPLETED" and not (state.status == "FAILED" and state.imported)
            ),
            f"import of {location} into table {self.name!r}",
            on_progress,
            timeout,
        )

    async def describe_import(self, arn: str) -> NativeImport:
        """DescribeImport of an import into this table."""
        data = await self._call("DescribeImport", {"ImportArn": arn})
        return NativeImport.from_description(data["ImportTableDescription"], self.name)
