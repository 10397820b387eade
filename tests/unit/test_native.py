"""asyncdyn.native and the --part split, with no socket: S3 locations, export and import
requests, the order of control-plane calls (scripted), key hashing into parts."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import asyncdyn
from asyncdyn import Client, ConfigurationError, NativeTransferError
from asyncdyn.batch import key_identity
from asyncdyn.cli import main
from asyncdyn.loading import InputError, Part, parse_part, part_of_key
from asyncdyn.marshal import decoder, encode_key
from asyncdyn.native import (
    Gunzip,
    IncrementalPeriod,
    NativeExport,
    S3Location,
    _decode_line,
    compression_of,
    export_request,
    import_request,
    parse_s3_url,
    s3_endpoint_for,
)
from asyncdyn.schema import create_table_request
from asyncdyn.testing import ScriptedTransport, answer, error

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/T"
EXPORT_ARN = ARN + "/export/01700000000000-abcdef12"
T0 = datetime(2026, 12, 1, tzinfo=UTC)


# ------------------------------------------------------------------------------ locations


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://my-bucket/exports/2026", "my-bucket", "exports/2026"),
        ("s3://my-bucket/exports/", "my-bucket", "exports"),
        ("s3://my.bucket", "my.bucket", ""),
        ("s3://abc/", "abc", ""),
    ],
)
def test_s3_urls(url: str, bucket: str, prefix: str) -> None:
    location = parse_s3_url(url)
    assert location == S3Location(bucket, prefix)
    assert location.join("AWSDynamoDB", "x") == "/".join(p for p in (prefix, "AWSDynamoDB/x") if p)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://bucket/x", "expected s3://"),
        ("s3:///x", "is not a bucket name"),
        ("s3://ab/x", "is not a bucket name"),
        ("s3://Upper/x", "is not a bucket name"),
        ("s3://a..b/x", "is not a bucket name"),
        ("s3://bucket/a//b", "empty part"),
        ("s3://bucket/x?y=1", "no '?'"),
    ],
)
def test_bad_s3_urls_name_the_problem(url: str, why: str) -> None:
    with pytest.raises(ConfigurationError, match="S3 location") as raised:
        parse_s3_url(url)
    assert why in str(raised.value)


def test_s3_goes_where_dynamodb_goes_unless_it_is_aws() -> None:
    assert s3_endpoint_for("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert s3_endpoint_for("http://localstack:4566") == "http://localstack:4566"
    assert s3_endpoint_for("https://dynamodb.eu-west-1.amazonaws.com") is None


# ------------------------------------------------------------------------------ requests


def test_incremental_period_is_checked_before_sending() -> None:
    period = IncrementalPeriod(T0, T0 + timedelta(hours=2), "NEW_IMAGE")
    assert period.request() == {
        "ExportFromTime": T0.timestamp(),
        "ExportToTime": T0.timestamp() + 7200,
        "ExportViewType": "NEW_IMAGE",
    }
    with pytest.raises(ConfigurationError, match="15 minutes to 24 hours"):
        IncrementalPeriod(T0, T0 + timedelta(minutes=5))
    with pytest.raises(ConfigurationError, match="15 minutes to 24 hours"):
        IncrementalPeriod(T0 + timedelta(hours=1), T0)
    with pytest.raises(ConfigurationError, match="no time zone"):
        IncrementalPeriod(datetime(2026, 12, 1), datetime(2026, 12, 1, 2))


def test_export_and_import_requests() -> None:
    location = S3Location("bkt", "p/q")
    full = export_request(ARN, location)
    assert full == {
        "TableArn": ARN,
        "S3Bucket": "bkt",
        "S3Prefix": "p/q",
        "ExportFormat": "DYNAMODB_JSON",
        "ExportType": "FULL_EXPORT",
    }
    period = IncrementalPeriod(T0, T0 + timedelta(hours=1))
    incremental = export_request(ARN, S3Location("bkt"), format="ION", incremental=period)
    assert "S3Prefix" not in incremental
    assert incremental["ExportType"] == "INCREMENTAL_EXPORT"
    assert incremental["IncrementalExportSpecification"] == period.request()
    with pytest.raises(ConfigurationError, match="DYNAMODB_JSON or ION"):
        export_request(ARN, location, format="CSV")  # type: ignore[arg-type]

    table = create_table_request("New", partition_key="PK", sort_key=("SK", "N"))
    request = import_request(location, table, format="CSV", compression="GZIP", csv_delimiter=";")
    assert request["S3BucketSource"] == {"S3Bucket": "bkt", "S3KeyPrefix": "p/q"}
    assert request["TableCreationParameters"] == table
    assert request["InputFormatOptions"] == {"Csv": {"Delimiter": ";"}}
    with pytest.raises(ConfigurationError, match="CSV format only"):
        import_request(location, table, csv_delimiter=";")
    streamed = create_table_request("New", partition_key="PK", stream="NEW_IMAGE")
    with pytest.raises(ConfigurationError, match="no stream"):
        import_request(location, streamed)


def test_compression_from_object_names() -> None:
    assert compression_of(["a/1.json.gz", "a/2.gz"]) == "GZIP"
    assert compression_of(["a/1.zst"]) == "ZSTD"
    assert compression_of(["a/1.json.gz", "a/manifest.json"]) == "NONE"
    assert compression_of([]) == "NONE"


def test_exported_lines_decode_items_and_changes() -> None:
    item = b'{"Item": {"PK": {"S": "a"}, "n": {"N": "1.50"}, "b": {"B": "AAE="}}}'
    assert _decode_line(item, False, "f", decoder("decimal")) == {
        "PK": "a",
        "n": Decimal("1.50"),
        "b": b"\x00\x01",
    }
    change = b'{"Metadata": {}, "Keys": {"PK": {"S": "a"}}, "OldImage": {"PK": {"S": "a"}}}'
    assert _decode_line(change, True, "f", decoder()) == {
        "Keys": {"PK": "a"},
        "OldImage": {"PK": "a"},
    }
    with pytest.raises(NativeTransferError, match="s3://b/k: not an exported item"):
        _decode_line(b'{"PK": {"S": "a"}}', False, "s3://b/k", decoder())


def test_export_description() -> None:
    export = NativeExport.from_description(
        {
            "ExportArn": EXPORT_ARN,
            "ExportStatus": "FAILED",
            "S3Bucket": "bkt",
            "FailureCode": "S3AccessDenied",
            "FailureMessage": "no",
        }
    )
    assert export.export_id == "01700000000000-abcdef12"
    assert export.location == S3Location("bkt", "")
    assert export.done and export.failure == "S3AccessDenied: no"


# ------------------------------------------------------------------------------ the calls


def described(**extra: object) -> dict[str, object]:
    return {
        "Table": {
            "TableName": "T",
            "TableArn": ARN,
            "TableStatus": "ACTIVE",
            "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "PK", "AttributeType": "S"}],
            **extra,
        }
    }


def recovery(status: str) -> dict[str, object]:
    return {
        "ContinuousBackupsDescription": {
            "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": status}
        }
    }


def export_state(status: str, count: int = 0) -> dict[str, object]:
    return {
        "ExportDescription": {
            "ExportArn": EXPORT_ARN,
            "ExportStatus": status,
            "S3Bucket": "bkt",
            "S3Prefix": "p",
            "ItemCount": count,
        }
    }


async def test_export_refuses_without_recovery_before_starting(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [answer(described()), answer(recovery("DISABLED"))]
    with pytest.raises(NativeTransferError, match="point-in-time recovery is off") as raised:
        await client.table("T").export_to_s3("s3://bkt/p")
    assert raised.value.code == "PointInTimeRecoveryOff" and raised.value.table == "T"
    assert transport.operations == ["DescribeTable", "DescribeContinuousBackups"]


async def test_export_turns_recovery_on_and_waits(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [
        answer(described()),
        answer(recovery("DISABLED")),
        answer({}),
        answer(export_state("IN_PROGRESS")),
        answer(export_state("IN_PROGRESS", 10)),
        answer(export_state("COMPLETED", 42)),
    ]
    seen: list[str] = []
    period = IncrementalPeriod(T0, T0 + timedelta(hours=1))
    export = await client.table("T").export_to_s3(
        "s3://bkt/p",
        incremental=period,
        enable_recovery=True,
        token="t-1",
        on_progress=lambda e: seen.append(e.status),
    )
    assert transport.operations == [
        "DescribeTable",
        "DescribeContinuousBackups",
        "UpdateContinuousBackups",
        "ExportTableToPointInTime",
        "DescribeExport",
        "DescribeExport",
    ]
    assert transport.payloads[2]["PointInTimeRecoverySpecification"] == {
        "PointInTimeRecoveryEnabled": True
    }
    sent = transport.payloads[3]
    assert sent["ExportType"] == "INCREMENTAL_EXPORT" and sent["ClientToken"] == "t-1"
    assert sent["IncrementalExportSpecification"]["ExportToTime"] == T0.timestamp() + 3600
    assert (export.status, export.item_count) == ("COMPLETED", 42)
    assert seen == ["IN_PROGRESS", "COMPLETED"]


async def test_a_failed_export_raises(client: Client, transport: ScriptedTransport) -> None:
    failed = export_state("FAILED")
    failed["ExportDescription"]["FailureMessage"] = "bucket gone"  # type: ignore[index]
    transport.steps = [
        answer(described()),
        answer(recovery("ENABLED")),
        answer(export_state("IN_PROGRESS")),
        answer(failed),
    ]
    with pytest.raises(NativeTransferError, match="is FAILED: None: bucket gone") as raised:
        await client.table("T").export_to_s3("s3://bkt/p")
    assert raised.value.arn == EXPORT_ARN


async def test_import_refuses_an_existing_table(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [answer(described())]
    with pytest.raises(NativeTransferError, match="'New' exists") as raised:
        await client.table("New").import_from_s3("s3://bkt/in", partition_key="PK")
    assert raised.value.code == "TableExists"
    assert transport.operations == ["DescribeTable"]  # no ImportTable


async def test_import_sends_the_table_and_waits(
    client: Client, transport: ScriptedTransport
) -> None:
    def state(status: str, imported: int) -> dict[str, object]:
        return {
            "ImportTableDescription": {
                "ImportArn": ARN + "/import/1",
                "ImportStatus": status,
                "ImportedItemCount": imported,
                "ProcessedItemCount": imported,
                "ErrorCount": 0,
            }
        }

    transport.steps = [
        error("ResourceNotFoundException", "no table"),
        answer(state("IN_PROGRESS", 0)),
        answer(state("COMPLETED", 7)),
    ]
    job = await client.table("New").import_from_s3(
        "s3://bkt/in", partition_key="PK", sort_key=("SK", "N"), compression="GZIP"
    )
    assert transport.operations == ["DescribeTable", "ImportTable", "DescribeImport"]
    sent = transport.payloads[1]
    assert sent["InputCompressionType"] == "GZIP" and sent["InputFormat"] == "DYNAMODB_JSON"
    assert sent["TableCreationParameters"]["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    assert (job.status, job.imported, job.errors) == ("COMPLETED", 7, 0)


# ------------------------------------------------------------------------------ --part


def identity(pk: str, sk: int) -> tuple[str, ...]:
    return key_identity(encode_key({"PK": pk, "SK": sk}), ["PK", "SK"])


def test_parts_split_keys_evenly_and_each_key_once() -> None:
    keys = [identity(f"user#{i}", i % 7) for i in range(6000)]
    shares = Counter(part_of_key(k, 3) for k in keys)
    assert set(shares) == {0, 1, 2}
    assert all(1800 < n < 2200 for n in shares.values()), shares
    parts = [Part(i, 3) for i in range(3)]
    assert all(sum(p.holds(k) for p in parts) == 1 for k in keys)
    # 1 and 1.0 are one key (the writer's identity), so one part.
    assert part_of_key(identity("a", 1), 5) == part_of_key(
        key_identity(encode_key({"PK": "a", "SK": Decimal("1.0")}), ["PK", "SK"]), 5
    )


def test_parts_agree_across_processes() -> None:
    """The hash is not Python's: another process with another hash seed agrees."""
    keys = [f"k{i}" for i in range(50)]
    here = [part_of_key((k,), 4) for k in keys]
    code = (
        f"from asyncdyn.loading import part_of_key; print([part_of_key((k,), 4) for k in {keys!r}])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    env["PYTHONPATH"] = str(Path(asyncdyn.__file__).parent.parent)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert out.strip() == str(here)


def test_part_names_and_segments() -> None:
    part = parse_part("1/3")
    assert (part.index, part.count, part.label) == (1, 3, "part-1-of-3")
    assert part.path(Path("/d/items.jsonl")) == Path("/d/items.part-1-of-3.jsonl")
    assert part.path(Path("items"), ".checkpoint.json") == Path("items.part-1-of-3.checkpoint.json")
    assert list(part.segments(4)) == [4, 5, 6, 7]
    for bad in ("3/3", "1", "a/3", "-1/3", "1/0"):
        with pytest.raises(InputError, match="--part|part"):
            parse_part(bad)


async def test_scan_of_a_part_sends_its_segments(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({"Items": [], "Count": 0})
    table = client.table("T", key=("PK",))
    got = [item async for item in table.scan(segments=2, part=(2, 3))]
    assert got == []
    sent = sorted((p["Segment"], p["TotalSegments"]) for p in transport.payloads)
    assert sent == [(4, 6), (5, 6)]
    with pytest.raises(ConfigurationError, match="needs segments"):
        table.scan(part=(0, 2))  # type: ignore[call-overload]


async def test_export_without_permission_to_read_recovery_lets_the_export_say(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps = [
        answer(described()),
        error("AccessDeniedException", "not allowed: dynamodb:DescribeContinuousBackups"),
        error("PointInTimeRecoveryUnavailableException", "PITR is not enabled for table T"),
    ]
    with pytest.raises(NativeTransferError, match="point-in-time recovery is not available"):
        await client.table("T").export_to_s3("s3://bkt/p")
    assert transport.operations == [
        "DescribeTable",
        "DescribeContinuousBackups",
        "ExportTableToPointInTime",
    ]


# ------------------------------------------------------------------------------ the command


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["load", "f.jsonl", "--native", "s3://bkt/x"], "give FILE or --native, not both"),
        (["load", "--native", "s3://bkt/x"], "give its key with --create-table"),
        (
            ["load", "--native", "s3://bkt/x", "--create-table", "PK", "--format", "jsonl"],
            "ImportTable reads ddb-json, csv or ion",
        ),
        (["load", "f.jsonl", "--format", "ion"], "--format ion is for --native"),
        (["load"], "load needs FILE"),
        (["load", "f.jsonl", "--parts", "3"], "--parts goes with --check"),
        (["load", "f.jsonl", "--check", "--part", "0/3"], "give --parts N, not --part"),
        (["load", "f.jsonl", "--check"], "--check needs --parts N"),
        (["export", "--native", "s3://bkt/x", "--incremental"], "--incremental needs --from"),
        (
            [
                "export",
                "--native",
                "s3://bkt/x",
                "--incremental",
                "--from",
                "2026-12-01T00:00",
                "--to",
                "2026-12-01T01:00Z",
            ],
            "has no time zone",
        ),
        (
            [
                "export",
                "--native",
                "s3://bkt/x",
                "--incremental",
                "--from",
                "2026-12-01T00:00Z",
                "--to",
                "2026-12-03T00:00Z",
            ],
            "15 minutes to 24 hours",
        ),
        (["export", "--native", "s3://bkt/x", "--from", "2026-12-01T00:00Z"], "go with"),
        (
            ["export", "--native", "s3://bkt/x", "--format", "ION", "--download", "o.jsonl"],
            "DYNAMODB_JSON exports only",
        ),
        (["export", "--native", "s3://bkt/x", "--part", "0/2"], "a --native one is DynamoDB's"),
        (["export", "--part", "0/2"], "--part needs --out"),
        (["export", "--format", "ION"], "a format of --native exports"),
        (["export", "--check", "--parts", "2"], "--check needs --out"),
    ],
)
def test_the_command_refuses_bad_combinations_before_any_request(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--table", "Tbl", "--endpoint-url", "http://127.0.0.1:9"]) == 2
    assert message in capsys.readouterr().err


async def test_a_resent_export_or_import_carries_one_token(
    client: Client, transport: ScriptedTransport
) -> None:
    """The dispatcher resends a control-plane call whose answer was lost: the token makes
    DynamoDB start one job for both requests."""
    lost = error("InternalServerError", "answer lost", status=500)
    transport.steps = [
        answer(described()),
        answer(recovery("ENABLED")),
        lost,
        answer(export_state("COMPLETED", 1)),
    ]
    await client.table("T").export_to_s3("s3://bkt/p", wait=False)
    first, second = (p["ClientToken"] for p in transport.payloads[2:4])
    assert first == second and len(first) == 32
    transport.requests.clear()
    transport.steps = [
        error("ResourceNotFoundException", "no table"),
        lost,
        answer({"ImportTableDescription": {"ImportArn": "a", "ImportStatus": "IN_PROGRESS"}}),
    ]
    await client.table("New").import_from_s3(
        "s3://bkt/in", partition_key="PK", compression="NONE", wait=False
    )
    assert transport.operations == ["DescribeTable", "ImportTable", "ImportTable"]
    first, second = (p["ClientToken"] for p in transport.payloads[1:3])
    assert first == second


def test_gunzip_reads_every_member_in_any_chunking() -> None:
    data = gzip.compress(b"one\ntwo\n") + gzip.compress(b"three\n")
    for size in (1, 7, len(data)):
        inflate = Gunzip()
        out = b"".join(inflate.feed(data[i : i + size]) for i in range(0, len(data), size))
        assert out == b"one\ntwo\nthree\n" and inflate.complete
    cut = Gunzip()
    assert cut.feed(data[:-4]).startswith(b"one\ntwo\n") and not cut.complete
