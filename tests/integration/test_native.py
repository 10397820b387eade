"""DynamoDB's own export to S3 and import from S3 (``--native``), and ``--part i/n`` splits
of load and export with their ``--check``: against moto, which serves DynamoDB and S3 on one
loopback port (dynalite has neither exports nor S3)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import asyncdyn
from asyncdyn import Client, NativeTransferError
from asyncdyn.batch import key_identity
from asyncdyn.cli import EXIT_DYNAMODB, EXIT_MISMATCH, EXIT_OK, EXIT_USAGE, main
from asyncdyn.loading import Part, ddb_json_line
from asyncdyn.local import LocalServer
from asyncdyn.marshal import encode_key

ROWS = 300


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def client(server: LocalServer) -> Client:
    return Client(region="us-east-1", endpoint_url=server.endpoint_url, credentials=("a", "b"))


def make_items(count: int) -> list[dict[str, Any]]:
    return [
        {
            "PK": f"user#{i:05d}",
            "SK": i % 5,
            "name": f"name {i}",
            "price": Decimal(f"{i}.25"),
            "wide": 12345678901234567890123 * (i + 1),
            "blob": bytes([i % 256, 0, 255]),
            "tags": {"a", f"t{i % 3}"},
            "doc": {"ok": i % 2 == 0, "none": None, "list": [1, "two"]},
        }
        for i in range(count)
    ]


def as_json(item: dict[str, Any]) -> dict[str, Any]:
    """``item`` as a JSON line of `asyncdyn export` reads back (binary base64, sets sorted)."""
    import base64

    out = dict(item)
    out["blob"] = base64.b64encode(item["blob"]).decode()
    out["tags"] = sorted(item["tags"])
    return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line, parse_float=Decimal) for line in path.read_text().splitlines()]


async def fill(server: LocalServer, table: str, items: list[dict[str, Any]], bucket: str) -> None:
    async with client(server) as db:
        t = await db.create_table(table, partition_key="PK", sort_key=("SK", "N"))
        await t.batch_write(puts=items)
        async with t.s3() as s3:
            await s3.client.create_bucket(Bucket=bucket)


@pytest.fixture
def local_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)


# ------------------------------------------------------------------------------ native


def test_native_export_downloads_the_table(
    moto_server: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], local_env: None
) -> None:
    table, bucket = unique("nat"), unique("bkt")
    items = make_items(ROWS)
    asyncio.run(fill(moto_server, table, items, bucket))
    common = ["--table", table, "--endpoint-url", moto_server.endpoint_url, "--no-progress"]
    url = f"s3://{bucket}/exports/full"

    # Point-in-time recovery is off: a clear error, and nothing is exported.
    assert main(["export", "--native", url, *common]) == EXIT_DYNAMODB
    err = capsys.readouterr().err
    assert "point-in-time recovery is off" in err and "--enable-pitr" in err

    out = tmp_path / "native.jsonl"
    argv = ["export", "--native", url, "--enable-pitr", "--download", str(out), *common]
    assert main(argv) == EXIT_OK
    err = capsys.readouterr().err
    assert f"{ROWS:,} items exported to {url}" in err
    assert f"{ROWS:,} items downloaded" in err
    assert not out.with_name(out.name + ".part").exists()

    # The files are in S3 under the prefix, and the download is the table, exactly.
    async def files() -> list[str]:
        async with client(moto_server) as db, db.table(table).s3() as s3:
            return await s3.keys(asyncdyn.native.parse_s3_url(url))

    keys = asyncio.run(files())
    assert keys and all(k.startswith("exports/full/AWSDynamoDB/") for k in keys)
    downloaded = {row["PK"]: row for row in read_jsonl(out)}
    assert len(downloaded) == ROWS
    assert downloaded == {item["PK"]: as_json(item) for item in items}

    # The same through `asyncdyn export` (a scan): the same lines.
    scanned = tmp_path / "scan.jsonl"
    assert main(["export", "--out", str(scanned), *common]) == EXIT_OK
    assert {row["PK"]: row for row in read_jsonl(scanned)} == downloaded

    # DynamoDB JSON download (another prefix: one export per prefix without manifests),
    # loaded back by `asyncdyn load --format ddb-json` into a copy: the same items.
    ddb = tmp_path / "native.ddb.jsonl"
    again = ["export", "--native", url + "-2", "--format", "ddb-json", "--download", str(ddb)]
    assert main([*again, *common]) == EXIT_OK
    assert all(set(json.loads(line)) == {"Item"} for line in ddb.read_text().splitlines())
    copy = unique("copy")
    copy_args = ["--table", copy, "--endpoint-url", moto_server.endpoint_url, "--no-progress"]
    load = ["load", str(ddb), "--format", "ddb-json", "--create-table", "PK:S,SK:N"]
    assert main([*load, *copy_args]) == EXIT_OK

    async def copied() -> list[dict[str, Any]]:
        async with client(moto_server) as db:
            return [item async for item in db.table(copy).scan()]

    assert sorted(asyncio.run(copied()), key=lambda i: i["PK"]) == items


def test_native_import_creates_a_new_table(
    moto_server: LocalServer, capsys: pytest.CaptureFixture[str], local_env: None
) -> None:
    items = make_items(120)
    bucket, table = unique("bkt"), unique("imp")

    async def upload() -> None:
        async with client(moto_server) as db, db.table("any").s3() as s3:
            await s3.client.create_bucket(Bucket=bucket)
            for n in range(3):  # three gzipped DynamoDB-JSON files
                lines = b"".join(ddb_json_line(item) for item in items[n::3])
                await s3.put(bucket, f"in/part-{n}.json.gz", gzip.compress(lines))

    asyncio.run(upload())
    common = ["--table", table, "--endpoint-url", moto_server.endpoint_url, "--no-progress"]
    url = f"s3://{bucket}/in"
    assert main(["load", "--native", url, "--create-table", "PK:S,SK:N", *common]) == EXIT_OK
    err = capsys.readouterr().err
    assert "120 items imported, 120 processed, 0 errors" in err

    async def read() -> list[dict[str, Any]]:
        async with client(moto_server) as db:
            return [item async for item in db.table(table).scan()]

    assert sorted(asyncio.run(read()), key=lambda i: i["PK"]) == items

    # ImportTable only creates: the table now exists, so the same import is refused.
    assert main(["load", "--native", url, "--create-table", "PK:S,SK:N", *common]) == EXIT_USAGE
    assert f"table {table!r} exists" in capsys.readouterr().err
    # No key: ImportTable needs one to create the table.
    assert main(["load", "--native", url, *common[:2], *common[2:]]) == EXIT_USAGE
    assert "--create-table" in capsys.readouterr().err
    # Nothing under the prefix.
    empty = ["load", "--native", f"s3://{bucket}/nothing", "--create-table", "PK:S"]
    assert main([*empty, "--table", unique("imp"), *common[2:]]) == EXIT_DYNAMODB
    assert "no object under" in capsys.readouterr().err


def test_bad_s3_url_is_a_usage_error(
    moto_server: LocalServer, capsys: pytest.CaptureFixture[str], local_env: None
) -> None:
    for url in ("http://bucket/x", "s3://Bad_Bucket/x", "s3:///x", "s3://b/x"):
        with pytest.raises(SystemExit) as exit:
            main(["export", "--native", url, "--table", "T"])
        assert exit.value.code == EXIT_USAGE
        assert "S3 location" in capsys.readouterr().err


async def test_library_round_trip_export_then_import(moto_server: LocalServer) -> None:
    table, copy, bucket = unique("src"), unique("dst"), unique("bkt")
    items = make_items(80)
    async with client(moto_server) as db:
        source = await db.create_table(table, partition_key="PK", sort_key=("SK", "N"))
        await source.batch_write(puts=items)
        async with source.s3() as s3:
            await s3.client.create_bucket(Bucket=bucket)
        seen: list[str] = []
        export = await source.export_to_s3(
            f"s3://{bucket}/x", enable_recovery=True, on_progress=lambda e: seen.append(e.status)
        )
        assert export.status == "COMPLETED" and export.item_count == 80 and seen[-1] == "COMPLETED"
        async with source.s3() as s3:
            files = await s3.data_files(export)
            got = [item async for batch in s3.export_items(export) for item in batch]
        assert sorted(got, key=lambda i: i["PK"]) == items
        # Import the export's data folder: every item in a new table.
        data = files[0].key.rpartition("/")[0]
        job = await db.table(copy).import_from_s3(
            f"s3://{bucket}/{data}", partition_key="PK", sort_key=("SK", "N")
        )
        assert (job.status, job.imported, job.errors) == ("COMPLETED", 80, 0)
        assert sorted([i async for i in db.table(copy).scan()], key=lambda i: i["PK"]) == items
        with pytest.raises(NativeTransferError) as failed:
            await db.table(copy).import_from_s3(f"s3://{bucket}/{data}", partition_key="PK")
        assert failed.value.code == "TableExists" and failed.value.table == copy


# ------------------------------------------------------------------------------ --part


def run_parts(*argv: str, parts: int) -> list[subprocess.CompletedProcess[str]]:
    """``asyncdyn ARGV --part i/parts`` for every i, all at once, as separate processes."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(Path(asyncdyn.__file__).parent.parent)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "asyncdyn.cli", *argv, "--part", f"{i}/{parts}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(parts)
    ]
    done = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    return done


def written(text: str) -> int:
    match = re.search(r"([\d,]+) items (?:written|exported)", text)
    assert match, text
    return int(match.group(1).replace(",", ""))


def test_load_in_three_parts_then_check(
    moto_server: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], local_env: None
) -> None:
    data = tmp_path / "items.jsonl"
    rows = [{"PK": f"k{i % 250:04d}", "SK": 1, "n": i} for i in range(300)]  # 50 repeats
    lines = [json.dumps(row) for row in rows]
    lines.insert(100, "{not json")  # a bad row: reported once, by part 0
    data.write_text("\n".join(lines) + "\n")
    table = unique("parts")
    common = ["--table", table, "--endpoint-url", moto_server.endpoint_url, "--no-progress"]
    asyncio.run(fill(moto_server, table, [], unique("bkt")))

    results = run_parts("load", str(data), *common, parts=3)
    assert [r.returncode for r in results] == [4, 0, 0], [r.stderr for r in results]
    counts = [written(r.stderr) for r in results]
    assert all(counts) and sum(counts) == 300  # every row once, no row twice
    for part in (Part(i, 3) for i in range(3)):
        assert part.path(data, ".checkpoint.json").exists()
    rejects = tmp_path / "items.part-0-of-3.jsonl.rejects.jsonl"
    assert [json.loads(r)["line"] for r in rejects.read_text().splitlines()] == [101]
    assert not (tmp_path / "items.part-1-of-3.jsonl.rejects.jsonl").read_text()

    async def stored() -> dict[str, int]:
        async with client(moto_server) as db:
            return {item["PK"]: item["n"] async for item in db.table(table).scan()}

    last = {row["PK"]: row["n"] for row in rows}  # the last row of each key wins
    assert asyncio.run(stored()) == last

    check = ["load", str(data), "--check", "--parts", "3", *common]
    assert main(check) == EXIT_OK
    err = capsys.readouterr().err
    assert "301 rows (1 without a valid key), 250 distinct keys written" in err
    assert "table" in err and "250 items" in err

    # Items lost after the load (deleted here) are found, and their part named.
    async def delete_some() -> list[str]:
        async with client(moto_server) as db:
            keys = [{"PK": f"k{i:04d}", "SK": 1} for i in range(250)]
            ours = [k for k in keys if Part(2, 3).holds(key_identity(encode_key(k), ["PK", "SK"]))]
            await db.table(table).batch_write(deletes=ours[:3])
            return [k["PK"] for k in ours[:3]]

    gone = asyncio.run(delete_some())
    assert main(check) == EXIT_MISMATCH
    err = capsys.readouterr().err
    assert "table" in err and "247 items" in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, errors
    assert errors[0].startswith("error: part 2/3: 3 of its")
    assert f"(first: {{'PK': '{gone[0]}', 'SK': 1}})" in errors[0]
    # Rerunning the part writes them again; the check passes.
    assert main(["load", str(data), *common, "--part", "2/3"]) == EXIT_OK
    capsys.readouterr()
    assert main(check) == EXIT_OK
    capsys.readouterr()

    # A part resumes from its own checkpoint (nothing left to write), never another's.
    assert main(["load", str(data), *common, "--part", "2/3", "--resume"]) == EXIT_OK
    assert written(capsys.readouterr().err) == 0
    other = str(Part(1, 3).path(data, ".checkpoint.json"))
    resume = ["load", str(data), *common, "--part", "2/3", "--resume", "--checkpoint", other]
    assert main(resume) == EXIT_USAGE
    assert "the checkpoint is for part-1-of-3, not part-2-of-3" in capsys.readouterr().err

    # A part that never ran (its checkpoint is missing) is named.
    Part(1, 3).path(data, ".checkpoint.json").unlink()
    assert main(check) == EXIT_MISMATCH
    assert "part 1/3: no checkpoint" in capsys.readouterr().err
    # Checked with the wrong number of parts: every part is missing.
    assert main(["load", str(data), "--check", "--parts", "2", *common]) == EXIT_MISMATCH
    assert "part 0/2: no checkpoint" in capsys.readouterr().err


def test_export_in_three_parts_then_check(
    moto_server: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], local_env: None
) -> None:
    table = unique("xparts")
    items = make_items(240)
    asyncio.run(fill(moto_server, table, items, unique("bkt")))
    out = tmp_path / "items.jsonl"
    common = ["--table", table, "--endpoint-url", moto_server.endpoint_url, "--no-progress"]

    results = run_parts("export", "--out", str(out), "--segments", "2", *common, parts=3)
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    union: list[dict[str, Any]] = []
    for part in (Part(i, 3) for i in range(3)):
        assert part.path(out, ".checkpoint.json").exists()
        union += read_jsonl(part.path(out))
    assert sum(written(r.stderr) for r in results) == 240
    assert len({row["PK"] for row in union}) == len(union) == 240  # no item twice
    assert {row["PK"]: row for row in union} == {item["PK"]: as_json(item) for item in items}

    check = ["export", "--out", str(out), "--check", "--parts", "3", *common]
    assert main(check) == EXIT_OK
    assert "240 items in 3 parts; the table holds 240" in capsys.readouterr().err

    Part(2, 3).path(out, ".checkpoint.json").unlink()
    assert main(check) == EXIT_MISMATCH
    assert "part 2/3: no" in capsys.readouterr().err


# ------------------------------------------------------------------------------ the docs


PAGE = Path(__file__).resolve().parents[2] / "docs" / "native-export.md"


async def test_docs_library_example_runs(moto_server: LocalServer) -> None:
    match = re.search(
        r"<!-- example: native-library -->\n```python\n(.*?)```", PAGE.read_text(), re.S
    )
    assert match is not None
    table, copy, bucket = unique("orders"), unique("copy"), unique("bkt")
    code = match.group(1).replace('"OrdersCopy"', repr(copy)).replace('"Orders"', repr(table))
    async with client(moto_server) as db:
        orders = await db.create_table(table, partition_key="PK", sort_key="SK")
        rows = [{"PK": "C#1", "SK": f"O#{i}", "total": Decimal(i) / 4} for i in range(3)]
        await orders.batch_write(puts=rows)
        async with orders.s3() as s3:
            await s3.client.create_bucket(Bucket=bucket)
        namespace: dict[str, Any] = {}
        source = f"async def run(db, bucket):\n{textwrap.indent(code, '    ')}\n    return locals()"
        exec(compile(source, "docs/native-export.md", "exec", dont_inherit=True), namespace)
        done = await namespace["run"](db, bucket)
        assert sorted(done["items"], key=lambda i: i["SK"]) == rows
        assert (done["copy"].status, done["copy"].imported, done["copy"].errors) == (
            "COMPLETED",
            3,
            0,
        )
        assert sorted([i async for i in db.table(copy).scan()], key=lambda i: i["SK"]) == rows


# ------------------------------------------------------------------------------ AWS's layout


async def test_reads_an_export_by_its_manifests_as_aws_writes_it(moto_server: LocalServer) -> None:
    """AWS writes manifests (moto does not): the data files and their counts come from them,
    and a count that does not match fails the read instead of leaving a short copy."""
    bucket = unique("bkt")
    items = make_items(50)
    root = "exp/AWSDynamoDB/01700000000000-abcdef12"
    async with client(moto_server) as db, db.table("any").s3() as s3:
        await s3.client.create_bucket(Bucket=bucket)
        files = []
        for n, chunk in enumerate((items[:20], items[20:])):
            key = f"{root}/data/file{n}.json.gz"
            await s3.put(bucket, key, gzip.compress(b"".join(ddb_json_line(i) for i in chunk)))
            files.append({"itemCount": len(chunk), "dataFileS3Key": key})
        # A stray file under data/ that no manifest names is not read.
        await s3.put(bucket, f"{root}/data/stray.json.gz", gzip.compress(b""))
        manifest = b"".join(json.dumps(f).encode() + b"\n" for f in files)
        await s3.put(bucket, f"{root}/manifest-files.json", manifest)
        summary = {"manifestFilesS3Key": f"{root}/manifest-files.json", "itemCount": 50}
        await s3.put(bucket, f"{root}/manifest-summary.json", json.dumps(summary).encode())

        def export(count: int) -> asyncdyn.native.NativeExport:
            return asyncdyn.native.NativeExport.from_description(
                {
                    "ExportArn": "arn:aws:dynamodb:us-east-1:1:table/T/export/" + root[-23:],
                    "ExportStatus": "COMPLETED",
                    "S3Bucket": bucket,
                    "S3Prefix": "exp",
                    "ItemCount": count,
                    "ExportManifest": f"{root}/manifest-summary.json",
                }
            )

        assert [f.key for f in await s3.data_files(export(50))] == [
            f["dataFileS3Key"] for f in files
        ]
        got = [item async for batch in s3.export_items(export(50)) for item in batch]
        assert sorted(got, key=lambda i: i["PK"]) == items
        with pytest.raises(
            NativeTransferError, match="50 items read from S3, DynamoDB exported 51"
        ):
            async for _ in s3.export_items(export(51)):
                pass

        # A data file shorter than its manifest says.
        files[1]["itemCount"] = 31
        manifest = b"".join(json.dumps(f).encode() + b"\n" for f in files)
        await s3.put(bucket, f"{root}/manifest-files.json", manifest)
        with pytest.raises(NativeTransferError, match="30 items read, the manifest says 31"):
            async for _ in s3.export_items(export(50)):
                pass


async def test_two_exports_under_one_prefix_without_manifests_are_refused(
    moto_server: LocalServer,
) -> None:
    bucket = unique("bkt")
    async with client(moto_server) as db, db.table("any").s3() as s3:
        await s3.client.create_bucket(Bucket=bucket)
        for folder in ("a", "b"):
            await s3.put(bucket, f"p/AWSDynamoDB/{folder}/data/x.gz", gzip.compress(b""))
        export = asyncdyn.native.NativeExport.from_description(
            {
                "ExportArn": "arn:x/export/c",
                "ExportStatus": "COMPLETED",
                "S3Bucket": bucket,
                "S3Prefix": "p",
            }
        )
        with pytest.raises(NativeTransferError, match="holds 2 exports") as refused:
            await s3.data_files(export)
        assert refused.value.code == "AmbiguousExport"


async def test_scan_parts_cover_the_table_once(table: asyncdyn.Table) -> None:
    """On moto and dynalite: the parts of a split scan, between them, yield every item once."""
    await table.batch_write(puts=[{"PK": f"p{i}", "SK": f"s{i % 4}"} for i in range(400)])
    seen: list[str] = []
    for i in range(3):
        async with contextlib.aclosing(table.scan(segments=2, part=(i, 3))) as items:
            seen += [item["PK"] + item["SK"] async for item in items]
    assert len(seen) == len(set(seen)) == 400
