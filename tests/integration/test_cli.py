"""The ``asyncdyn`` command against real servers: load with rejects and resume, export,
round trips, interrupted and failing loads, the console script and ``asyncdyn local``."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console

from asyncdyn import Client, RetryPolicy
from asyncdyn.cli import (
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_UNWRITTEN,
    _parser,
    main,
    prepare_load,
    run_load,
)
from asyncdyn.lean import LeanTransport
from asyncdyn.local import LocalServer
from asyncdyn.testing import FaultInjector, error
from asyncdyn.transport import HttpResponse, Transport

BAD = 37
# moto scans slowly (seconds per thousand items): its run of the scenario is smaller.
ROWS = {"dynalite": 3000, "moto": 600}

# One of each kind of bad row: the file cycles through them.
BAD_ROWS: list[bytes] = [
    b'{"PK": "truncated", "SK": 1',
    b"{'PK': 'single quotes', 'SK': 1}",
    b'{"PK": "trailing comma", "SK": 1,}',
    b'["an", "array"]',
    b'"a string"',
    b"42",
    b"null",
    b'{"SK": 1, "note": "no partition key"}',
    b'{"PK": "no sort key"}',
    b'{"PK": 17, "SK": 1}',
    b'{"PK": "sort key as text", "SK": "1"}',
    b'{"PK": "", "SK": 1}',
    b'{"PK": "' + b"k" * 2049 + b'", "SK": 1}',
    b'{"PK": "too precise", "SK": 1, "n": 1.2345678901234567890123456789012345678901}',
    b'{"PK": "out of range", "SK": 1, "n": 1e200}',
    b'{"PK": "nan", "SK": 1, "n": NaN}',
    b'{"PK": "too big", "SK": 1, "blob": "' + b"x" * 410_000 + b'"}',
    b'{"PK": "too deep", "SK": 1, "d": ' + b'{"a": ' * 40 + b"1" + b"}" * 40 + b"}",
    b'{"PK": "bad \xff utf-8", "SK": 1}',
    b'{"PK": "empty name", "SK": 1, "": 1}',
]


def write_dataset(
    path: Path, rows: int, bad: int = BAD
) -> tuple[dict[str, dict[str, Any]], list[int]]:
    """A JSONL file of ``rows`` lines, ``bad`` of them bad (spread out, every kind); returns
    the good items by partition key and the bad line numbers."""
    step = rows // bad if bad else rows + 1
    expected: dict[str, dict[str, Any]] = {}
    bad_lines: list[int] = []
    with path.open("wb") as out:
        for line in range(1, rows + 1):
            if bad and line % step == step // 2 and len(bad_lines) < bad:
                out.write(BAD_ROWS[len(bad_lines) % len(BAD_ROWS)] + b"\n")
                bad_lines.append(line)
                continue
            item = {
                "PK": f"user#{line:06d}",
                "SK": line % 7,
                "name": f"name {line}",
                "price": line + 0.25,
                "wide": 12345678901234567890123 * line,
                "tags": ["a", "b"][: line % 3],
                "doc": {"ok": line % 2 == 0, "none": None, "list": [1, "two"]},
            }
            out.write(json.dumps(item).encode() + b"\n")
            expected[item["PK"]] = {**item, "price": Decimal(f"{line}.25")}
    assert len(bad_lines) == bad
    return expected, bad_lines


def read_jsonl(path_or_text: Path | str) -> list[dict[str, Any]]:
    text = path_or_text.read_text() if isinstance(path_or_text, Path) else path_or_text
    return [json.loads(line, parse_float=Decimal) for line in text.splitlines() if line]


def summary_number(text: str, label: str) -> int:
    match = re.search(r"([\d,]+) " + re.escape(label), text)
    assert match, f"no {label!r} in {text!r}"
    return int(match.group(1).replace(",", ""))


async def count_items(server: LocalServer, table: str) -> int:
    async with Client(
        region="us-east-1", endpoint_url=server.endpoint_url, credentials=("a", "b")
    ) as db:
        return await db.table(table).count()


def unique_table() -> str:
    return f"cli-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def local_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AWS configuration leaks in: the loopback defaults (region, dummy keys) apply."""
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)


# ------------------------------------------------------------------------------ the scenario


def test_load_rejects_resume_export(
    server: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], local_env: None
) -> None:
    data = tmp_path / "items.jsonl"
    rows = ROWS.get(server.kind, ROWS["moto"])  # an external server may be as slow as moto
    expected, bad_lines = write_dataset(data, rows)
    table = unique_table()
    common = ["--table", table, "--endpoint-url", server.endpoint_url, "--no-progress"]

    assert main(["load", str(data), "--create-table", "PK:S,SK:N", *common]) == EXIT_REJECTED
    err = capsys.readouterr().err
    assert summary_number(err, "items written") == rows - BAD
    assert summary_number(err, "rows rejected") == BAD
    rejects = read_jsonl(tmp_path / "items.jsonl.rejects.jsonl")
    assert [r["line"] for r in rejects] == bad_lines
    assert all(r["error"] and isinstance(r["input"], str) for r in rejects)
    reasons = " | ".join(r["error"] for r in rejects)
    for reason in (
        "malformed JSON",
        "expected a JSON object",
        "missing key attribute 'PK'",
        "must be a number (N), got string",
        "must be a string (S), got number",
        "is empty",
        "limit is 2048",
        "38",
        "not valid JSON",
        "400 KB",
        "not valid UTF-8",
        "attribute names",
    ):
        assert reason in reasons, reason
    assert asyncio.run(count_items(server, table)) == rows - BAD

    # The rerun finds the whole file settled: nothing is sent again.
    assert main(["load", str(data), "--resume", *common]) == EXIT_REJECTED
    err = capsys.readouterr().err
    assert summary_number(err, "items written") == 0
    assert summary_number(err, "BatchWriteItem requests") == 0
    assert len(read_jsonl(tmp_path / "items.jsonl.rejects.jsonl")) == BAD

    out = tmp_path / "export.jsonl"
    assert main(["export", "--out", str(out), "--segments", "3", *common]) == EXIT_OK
    exported = {item["PK"]: item for item in read_jsonl(out)}
    assert exported == expected
    assert not (tmp_path / "export.jsonl.part").exists()

    # DynamoDB JSON: export, load into another table, export again: the same items.
    ddb = tmp_path / "export.ddb.jsonl"
    assert main(["export", "--format", "ddb-json", "--out", str(ddb), *common]) == EXIT_OK
    copy = unique_table()
    copy_args = ["--table", copy, "--endpoint-url", server.endpoint_url, "--no-progress"]
    load_copy = ["load", str(ddb), "--format", "ddb-json", "--create-table", "PK:S,SK:N"]
    assert main([*load_copy, *copy_args]) == EXIT_OK
    again = tmp_path / "again.jsonl"
    assert main(["export", "--out", str(again), *copy_args]) == EXIT_OK
    assert {item["PK"]: item for item in read_jsonl(again)} == expected


def test_missing_table_and_key_mismatch(
    server: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], local_env: None
) -> None:
    data = tmp_path / "items.jsonl"
    data.write_text('{"PK": "a", "SK": 1}\n')
    table = unique_table()
    common = ["--table", table, "--endpoint-url", server.endpoint_url, "--no-progress"]
    assert main(["load", str(data), *common]) == 3
    assert main(["export", *common]) == 3
    err = capsys.readouterr().err
    assert err.count(f"table {table!r} does not exist") == 2 and "Traceback" not in err
    # Only load can create it: export points at the table's name, region and endpoint.
    assert err.count("--create-table creates it") == 1
    assert "check --table, --region and --endpoint-url" in err
    assert main(["load", str(data), "--create-table", "PK:S,SK:N", *common]) == EXIT_OK
    assert main(["load", str(data), "--create-table", "PK:S", *common]) == 2
    assert "exists with the key PK:S, SK:N, not PK:S" in capsys.readouterr().err


# ------------------------------------------------------------------------------ faults


Hook = Callable[[str, list[str]], HttpResponse | None]


class Spy:
    """Counts the items each write request carries (by partition key) as it reaches the
    server, and lets a test answer or act on a request instead."""

    def __init__(self, inner: Transport, hook: Hook | None = None) -> None:
        self.inner = inner
        self.hook = hook
        self.puts: Counter[str] = Counter()
        self.batches = 0

    async def send(self, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        operation = headers.get("X-Amz-Target", "").rpartition(".")[2]
        if operation in ("BatchWriteItem", "PutItem"):
            payload = orjson.loads(body)
            if operation == "PutItem":
                keys = [payload["Item"]["PK"]["S"]]
            else:
                self.batches += 1
                keys = [
                    request["PutRequest"]["Item"]["PK"]["S"]
                    for requests in payload["RequestItems"].values()
                    for request in requests
                ]
            answer = self.hook(operation, keys) if self.hook else None
            if answer is not None:
                return answer
            self.puts.update(keys)
        return await self.inner.send(headers, body)

    async def close(self) -> None:
        await self.inner.close()


def spy_client(server: LocalServer, spy: Spy, **options: Any) -> Client:
    return Client(
        region="us-east-1",
        endpoint_url=server.endpoint_url,
        credentials=("a", "b"),
        transport=spy,
        **options,
    )


def load_args(data: Path, table: str, *extra: str) -> Any:
    return _parser().parse_args(
        ["load", str(data), "--table", table, "--create-table", "PK:S,SK:N", "--no-progress"]
        + list(extra)
    )


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def checkpoint_line(data: Path) -> int:
    line: int = json.loads(Path(f"{data}.checkpoint.json").read_text())["line"]
    return line


async def test_interrupted_load_resumes_without_writing_twice(
    server: LocalServer, tmp_path: Path
) -> None:
    data = tmp_path / "items.jsonl"
    expected, _ = write_dataset(data, 2000, bad=0)
    table = unique_table()
    task: asyncio.Task[int] | None = None

    def interrupt(operation: str, keys: list[str]) -> None:
        if first.batches == 20 and task is not None:
            task.cancel()  # what Ctrl-C does to asyncio.run's main task
        return None

    # Random latency: chunks complete out of order, as they do against DynamoDB.
    injector = FaultInjector(LeanTransport(server.endpoint_url), seed=3, latency=(0, 0.03))
    first = Spy(injector, interrupt)
    console = quiet()
    # A small writer buffer: the cancel lands while rows are still being read.
    job = prepare_load(load_args(data, table, "--concurrency", "4"), console)
    async with spy_client(server, first, max_concurrency=4) as db:
        task = asyncio.create_task(run_load(job, console, client=db))
        with pytest.raises(asyncio.CancelledError):
            await task
    job.close()
    done = checkpoint_line(data)
    assert 0 < done < len(expected)
    assert "interrupted: checkpoint at line" in console.file.getvalue()  # type: ignore[attr-defined]

    second = Spy(LeanTransport(server.endpoint_url))
    job = prepare_load(load_args(data, table, "--resume"), console)
    async with spy_client(server, second) as db:
        assert await run_load(job, console, client=db) == EXIT_OK
    job.close()
    assert checkpoint_line(data) == len(expected)
    sent = first.puts + second.puts
    assert set(sent) == set(expected)
    assert max(sent.values()) == 1, "an item was written twice"
    assert await count_items(server, table) == len(expected)


async def test_refused_chunk_is_salvaged_row_by_row(server: LocalServer, tmp_path: Path) -> None:
    data = tmp_path / "items.jsonl"
    expected, _ = write_dataset(data, 300, bad=0)
    poison = "user#000100"

    def refuse(operation: str, keys: list[str]) -> HttpResponse | None:
        # DynamoDB refuses a whole batch for one item it will not take.
        return error("ValidationException", "refused (injected)") if poison in keys else None

    spy = Spy(LeanTransport(server.endpoint_url), refuse)
    table = unique_table()
    console = quiet()
    job = prepare_load(load_args(data, table), console)
    async with spy_client(server, spy) as db:
        assert await run_load(job, console, client=db) == EXIT_REJECTED
    job.close()
    (reject,) = read_jsonl(Path(f"{data}.rejects.jsonl"))
    assert reject["line"] == 100 and "refused by DynamoDB" in reject["error"]
    assert json.loads(reject["input"])["PK"] == poison
    assert checkpoint_line(data) == 300
    assert await count_items(server, table) == len(expected) - 1


async def test_salvage_never_writes_a_row_over_a_later_one(
    server: LocalServer, tmp_path: Path
) -> None:
    # Row 1 shares a refused chunk with the poison; row 302 rewrites row 1's key and is
    # written first. Putting row 1 on its own afterwards would bring the old version back.
    data = tmp_path / "items.jsonl"
    rows = [{"PK": "k", "SK": 1, "v": "old"}, {"PK": "poison", "SK": 1}]
    rows += [{"PK": f"filler#{n:03d}", "SK": 1} for n in range(299)]
    rows.append({"PK": "k", "SK": 1, "v": "new"})
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))

    def refuse(operation: str, keys: list[str]) -> HttpResponse | None:
        return error("ValidationException", "refused (injected)") if "poison" in keys else None

    spy = Spy(LeanTransport(server.endpoint_url), refuse)
    table = unique_table()
    console = quiet()
    job = prepare_load(load_args(data, table, "--concurrency", "1"), console)
    async with spy_client(server, spy) as db:
        assert await run_load(job, console, client=db) == EXIT_REJECTED
        assert await db.table(table).get({"PK": "k", "SK": 1}) == {"PK": "k", "SK": 1, "v": "new"}
    job.close()
    (reject,) = read_jsonl(Path(f"{data}.rejects.jsonl"))
    assert reject["line"] == 2
    assert checkpoint_line(data) == len(rows)
    assert await count_items(server, table) == 300  # k and the 299 fillers


async def test_unwritten_items_exit_5_and_resume_sends_only_the_rest(
    server: LocalServer, tmp_path: Path
) -> None:
    data = tmp_path / "items.jsonl"
    expected, _ = write_dataset(data, 1000, bad=0)
    table = unique_table()
    failing = Spy(LeanTransport(server.endpoint_url))

    def outage(operation: str, keys: list[str]) -> HttpResponse | None:
        if failing.batches > 12:
            return error("InternalServerError", "down (injected)", 500)
        return None

    failing.hook = outage
    console = quiet()
    job = prepare_load(load_args(data, table), console)
    policy = RetryPolicy(max_attempts=2, base=0.001)
    async with spy_client(server, failing, retry=policy, max_concurrency=4) as db:
        assert await run_load(job, console, client=db) == EXIT_UNWRITTEN
    job.close()
    done = checkpoint_line(data)
    assert 0 < done < 1000
    # Every row up to the checkpoint is in the table: it never covers an unwritten row.
    written_keys = set(failing.puts)
    assert {f"user#{line:06d}" for line in range(1, done + 1)} <= written_keys

    second = Spy(LeanTransport(server.endpoint_url))
    job = prepare_load(load_args(data, table, "--resume"), console)
    async with spy_client(server, second) as db:
        assert await run_load(job, console, client=db) == EXIT_OK
    job.close()
    assert set(second.puts) == {f"user#{line:06d}" for line in range(done + 1, 1001)}
    assert await count_items(server, table) == len(expected)


# ------------------------------------------------------------------------------ processes


def console_script() -> str:
    script = Path(sys.executable).with_name("asyncdyn")
    found = str(script) if script.exists() else shutil.which("asyncdyn")
    if found is None:
        pytest.skip("the asyncdyn console script is not installed (pip install -e .)")
    return found


def run_script(*argv: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [console_script(), *argv], capture_output=True, text=True, env=env, timeout=60, **kw
    )


def test_console_script_loads_csv_and_exports(server: LocalServer, tmp_path: Path) -> None:
    data = tmp_path / "rows.csv"
    data.write_text("PK,SK,price,active\n" + "".join(f"k{i},{i},{i}.5,true\n" for i in range(60)))
    table = unique_table()
    common = ["--table", table, "--endpoint-url", server.endpoint_url]
    loaded = run_script(
        "load",
        str(data),
        "--create-table",
        "PK:S,SK:N",
        "--csv-types",
        "price:N,active:BOOL",
        *common,
    )
    assert loaded.returncode == EXIT_OK, loaded.stderr
    assert "60 items written" in loaded.stderr
    exported = run_script("export", *common)
    assert exported.returncode == EXIT_OK, exported.stderr
    items = sorted(read_jsonl(exported.stdout), key=lambda item: item["SK"])
    assert items[7] == {"PK": "k7", "SK": 7, "price": Decimal("7.5"), "active": True}
    assert len(items) == 60
    assert "exit status" in run_script("--help").stdout


def test_local_serves_until_interrupted() -> None:
    command = [console_script(), "local", "--engine", "moto"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None and process.stderr is not None
            url = process.stdout.readline().strip()
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), url

            async def tables() -> list[str]:
                async with Client(
                    region="us-east-1", endpoint_url=url, credentials=("a", "b")
                ) as db:
                    return await db.list_tables()

            assert asyncio.run(tables()) == []
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=20) == EXIT_OK
            assert "stopped moto" in process.stderr.read()
        finally:
            if process.poll() is None:
                process.kill()
