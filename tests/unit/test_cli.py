"""The CLI's parts that need no server: specs, row parsing, the watermark, checkpoints,
rejects, the JSON writers, the writer's acknowledgement hook, argument errors."""

from __future__ import annotations

import io
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from asyncdyn import Client
from asyncdyn.cli import EXIT_ERROR, EXIT_USAGE, main
from asyncdyn.loading import (
    Checkpoint,
    InputError,
    KeyAttribute,
    Rejects,
    Row,
    Watermark,
    check_key,
    ddb_json_line,
    from_ddb_json,
    json_line,
    parse_csv_types,
    parse_key_spec,
    read_rows,
)
from asyncdyn.testing import ScriptedTransport, answer, error

KEY = (KeyAttribute("PK", "S"), KeyAttribute("SK", "N"))


def rows_of(data: bytes, fmt: Any, key: Any = KEY, **kw: Any) -> list[Row]:
    return list(read_rows(io.BytesIO(data), fmt, key, **kw))


# ------------------------------------------------------------------------------ specs


def test_key_spec() -> None:
    assert parse_key_spec("PK:S,SK:N") == KEY
    assert parse_key_spec(" id ") == (KeyAttribute("id", "S"),)
    assert parse_key_spec("id:b") == (KeyAttribute("id", "B"),)
    assert str(KEY[1]) == "SK:N"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "expected NAME:TYPE"),
        ("PK:S,", "expected NAME:TYPE"),
        ("PK:X", "not one of S, N, B"),
        (":S", "no attribute name"),
        ("A,B,C", "at most a sort key"),
        ("A:S,A:N", "named twice"),
    ],
)
def test_bad_key_spec(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_key_spec(spec)


def test_csv_types() -> None:
    assert parse_csv_types(None) == {}
    assert parse_csv_types("price:N,active:bool") == {"price": "N", "active": "BOOL"}
    with pytest.raises(InputError, match="not one of S, N, BOOL"):
        parse_csv_types("x:B")


def test_check_key() -> None:
    assert check_key({"PK": "a", "SK": 1}, KEY) is None
    assert check_key({"PK": "a", "SK": Decimal("1.5")}, KEY) is None
    assert check_key({"SK": 1}, KEY) == "missing key attribute 'PK'"
    assert "must be a number (N), got string" in str(check_key({"PK": "a", "SK": "1"}, KEY))
    assert "got boolean" in str(check_key({"PK": "a", "SK": True}, KEY))
    assert check_key({"PK": "", "SK": 1}, KEY) == "key attribute 'PK' is empty"
    assert "2049 bytes" in str(check_key({"PK": "x" * 2049, "SK": 1}, KEY))
    sort_text = (KeyAttribute("PK", "S"), KeyAttribute("SK", "S"))
    assert "limit is 1024" in str(check_key({"PK": "a", "SK": "é" * 513}, sort_text))
    binary = (KeyAttribute("id", "B"),)
    assert check_key({"id": b"\x00"}, binary) is None
    assert "binary (base64 text) (B), got string" in str(check_key({"id": "AA=="}, binary))


# ------------------------------------------------------------------------------ JSON lines


def test_jsonl_rows_carry_line_offsets_and_reasons() -> None:
    lines = [
        b'\xef\xbb\xbf{"PK": "a", "SK": 1, "price": 0.10000000000000000001}\n',
        b"\n",
        b"{not json\n",
        b"[1, 2]\n",
        b'{"PK": "b"}\n',
        b'{"PK": "c", "SK": "7"}\n',
        b'{"PK": "d", "SK": NaN}\n',
        b'{"PK": "\xff", "SK": 1}\n',
        b'{"PK": "e", "SK": 123456789012345678901234567890, "n": 1e400}\r\n',
    ]
    rows = rows_of(b"".join(lines), "jsonl")
    assert [row.line for row in rows] == [1, 3, 4, 5, 6, 7, 8, 9]
    ends = [sum(map(len, lines[: i + 1])) for i in range(len(lines))]
    assert [row.end for row in rows] == [ends[i - 1] for i in [1, 3, 4, 5, 6, 7, 8, 9]]
    first, bad_json, array, missing, mistyped, nan, not_utf8, big = rows
    assert first.item == {"PK": "a", "SK": 1, "price": Decimal("0.10000000000000000001")}
    assert bad_json.item is None and str(bad_json.error).startswith("malformed JSON")
    assert bad_json.text == "{not json"
    assert array.error == "expected a JSON object, got list"
    assert missing.error == "missing key attribute 'SK'"
    assert mistyped.error == "key attribute 'SK' must be a number (N), got string"
    assert "NaN is not valid JSON" in str(nan.error)
    assert not_utf8.error == "the line is not valid UTF-8"
    # Exact: a wide int stays an int; an out-of-range number is left to the marshaller.
    assert big.item == {"PK": "e", "SK": 123456789012345678901234567890, "n": Decimal("1e400")}


def test_jsonl_resumes_at_an_offset() -> None:
    data = b'{"PK": "a", "SK": 1}\n{"PK": "b", "SK": 2}\n{"PK": "c", "SK": 3}\n'
    first = rows_of(data, "jsonl")[0]
    rest = rows_of(data, "jsonl", line=first.line, offset=first.end)
    assert [(row.line, row.item) for row in rest] == [
        (2, {"PK": "b", "SK": 2}),
        (3, {"PK": "c", "SK": 3}),
    ]


def test_jsonl_binary_key_is_base64() -> None:
    key = (KeyAttribute("id", "B"),)
    good, bad = rows_of(b'{"id": "AAE="}\n{"id": "A"}\n', "jsonl", key)
    assert good.item == {"id": b"\x00\x01"}
    assert "not valid base64" in str(bad.error)


# ------------------------------------------------------------------------------ DynamoDB JSON


def test_ddb_json_bare_and_export_shape() -> None:
    item = {
        "PK": {"S": "a"},
        "SK": {"N": "1.50"},
        "tags": {"SS": ["x", "y"]},
        "nums": {"NS": ["1", "2.5"]},
        "blob": {"B": "AAE="},
        "bins": {"BS": ["AA=="]},
        "ok": {"BOOL": True},
        "none": {"NULL": True},
        "doc": {"M": {"list": {"L": [{"N": "3"}, {"S": "s"}]}}},
    }
    data = orjson.dumps(item) + b"\n" + orjson.dumps({"Item": item}) + b"\n"
    bare, exported = rows_of(data, "ddb-json")
    expected = {
        "PK": "a",
        "SK": Decimal("1.50"),
        "tags": {"x", "y"},
        "nums": {1, Decimal("2.5")},
        "blob": b"\x00\x01",
        "bins": {b"\x00"},
        "ok": True,
        "none": None,
        "doc": {"list": [3, "s"]},
    }
    assert bare.item == expected and exported.item == expected


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        ({"a": {"S": 1}}, "a: expected a string, got number"),
        ({"a": {"N": 1}}, "N must hold the number as a string"),
        ({"a": {"N": "x"}}, "'x' is not a number"),
        ({"a": {"X": "1"}}, "unknown attribute type 'X'"),
        ({"a": {"S": "1", "N": "1"}}, 'expected an attribute value like {"S": ...}'),
        ({"a": {"SS": ["x", "x"]}}, "SS holds duplicate values"),
        ({"a": {"NULL": False}}, "NULL must hold true"),
        ({"a": {"M": {"b": {"L": [{"BOOL": 1}]}}}}, "a.b[0]: BOOL must hold true or false"),
        ({"a": {"B": "!"}}, "a is not valid base64"),
        ([1], "expected a map of attributes, got list"),
    ],
)
def test_ddb_json_refusals(wire: Any, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        from_ddb_json(wire)
    assert message in str(caught.value)


# ------------------------------------------------------------------------------ CSV


def test_csv_typing_multiline_and_errors() -> None:
    data = (
        b"PK,SK,price,active,note\n"
        b"a,1,9.99,true,plain\n"
        b'b,2,,false,"two\nlines"\n'
        b"c,x,1,true,n\n"
        b"d,3,1,maybe,n\n"
        b"e,4\n"
        b",5,1,true,n\n"
        b"\n"
        b"f,6.5,1e3,TRUE,\n"
    )
    rows = rows_of(data, "csv", csv_types={"price": "N", "active": "BOOL"})
    assert [row.line for row in rows] == [2, 3, 5, 6, 7, 8, 10]
    a, b, c, d, e, missing, f = rows
    assert a.item == {"PK": "a", "SK": 1, "price": Decimal("9.99"), "active": True, "note": "plain"}
    assert b.item == {"PK": "b", "SK": 2, "active": False, "note": "two\nlines"}
    assert b.text == 'b,2,,false,"two\nlines"' and b.end == data.index(b"c,x")
    assert c.error == "column 'SK': 'x' is not a number"
    assert d.error == "column 'active': 'maybe' is not true or false"
    assert e.error == "expected 5 fields, got 2"
    assert missing.error == "missing key attribute 'PK'"
    assert f.item == {"PK": "f", "SK": Decimal("6.5"), "price": 1000, "active": True}
    resumed = rows_of(data, "csv", line=b.line + 1, offset=b.end, csv_types={"price": "N"})
    assert resumed[0].line == 5 and resumed[0].error == c.error


@pytest.mark.parametrize(
    ("data", "types", "message"),
    [
        (b"", {}, "needs a header row"),
        (b"PK,,SK\n", {}, "non-empty and distinct"),
        (b"PK,SK,PK\n", {}, "non-empty and distinct"),
        (b"PK,other\n", {}, "no column for the key attribute SK"),
        (b"PK,SK\n", {"price": "N"}, "lacks: price"),
    ],
)
def test_csv_bad_header(data: bytes, types: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        rows_of(data, "csv", csv_types=types)


# ------------------------------------------------------------------------------ watermark


def test_watermark_is_the_settled_prefix() -> None:
    def row(line: int) -> Row:
        return Row(line, line * 10, f"row {line}", {"n": line})

    mark = Watermark(10, 100)
    assert mark.prefix == (10, 100)
    mark.sent(0, row(11), ("a",))
    mark.settled(row(12))  # rejected on reading
    mark.sent(1, row(13), ("b",))
    mark.sent(2, row(14), ("c",))
    assert mark.prefix == (10, 100)
    mark.acknowledged([2])  # a later chunk completes first: the prefix cannot move
    assert mark.prefix == (10, 100)
    assert [(position, r.line) for position, r in mark.outstanding()] == [(0, 11), (1, 13)]
    mark.acknowledged([0])
    assert mark.prefix == (12, 120)
    mark.acknowledged([1])
    assert mark.prefix == (14, 140)
    assert mark.outstanding() == []
    mark.settled(row(15))
    assert mark.prefix == (15, 150)


def test_watermark_a_later_row_of_a_key_replaces_an_unsettled_one() -> None:
    def row(line: int) -> Row:
        return Row(line, line * 10, f"row {line}", {"n": line})

    mark = Watermark()
    mark.sent(0, row(1), ("K",))  # its chunk fails later
    mark.sent(1, row(2), ("other",))
    mark.sent(2, row(3), ("K",))  # the newer version of K
    mark.acknowledged([1, 2])
    # Row 1 must never be written again after row 3: it is not outstanding, only replaced.
    assert mark.outstanding() == []
    assert mark.replaced() == [0]
    assert mark.prefix == (0, 0)  # unsettled still: a resume re-reads it, then row 3 again
    mark.acknowledged(mark.replaced())
    assert mark.prefix == (3, 30)
    # Keys of settled rows are forgotten: a later row of K replaces nothing.
    mark.sent(3, row(4), ("K",))
    assert mark.replaced() == []


def test_watermark_resumes_after_the_last_line_of_a_multiline_record() -> None:
    data = b'PK,SK,note\na,1,"two\nlines"\nb,2,x\n'
    rows = rows_of(data, "csv")
    assert [(r.line, r.through) for r in rows] == [(2, 3), (4, 4)]
    mark = Watermark(1, len(b"PK,SK,note\n"))
    mark.sent(0, rows[0], ("a",))
    mark.acknowledged([0])
    assert mark.prefix == (3, rows[0].end)


def test_rejects_keep_text_with_lone_surrogates(tmp_path: Path) -> None:
    rejects = Rejects(tmp_path / "r.jsonl")
    rejects.add(7, "attribute name '\ud800' is not valid", '{"PK": "b", "\ud800": 1}')
    rejects.close()
    record = json.loads((tmp_path / "r.jsonl").read_text())
    assert record["line"] == 7
    assert "\\ud800" in record["input"] and "\\ud800" in record["error"]


# ------------------------------------------------------------------------------ files


def test_checkpoint_round_trip_and_verification(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_bytes(b'{"PK": "a"}\n{"PK": "b"}\n')
    path = tmp_path / "in.jsonl.checkpoint.json"
    with data.open("rb") as stream:
        saved = Checkpoint(str(data), "T", "jsonl", 1, 12, 0, Checkpoint.digest(stream, 12))
        saved.save(path)
        loaded = Checkpoint.load(path)
        assert loaded == saved
        loaded.verify(stream, "T", "jsonl")
        with pytest.raises(InputError, match="for table 'T'"):
            loaded.verify(stream, "U", "jsonl")
    data.write_bytes(b'{"PK": "A"}\n{"PK": "b"}\n')
    with data.open("rb") as stream, pytest.raises(InputError, match="changed"):
        loaded.verify(stream, "T", "jsonl")
    path.write_text("{}")
    with pytest.raises(InputError, match="cannot read checkpoint"):
        Checkpoint.load(path)


def test_rejects_keep_what_the_checkpoint_covers(tmp_path: Path) -> None:
    path = tmp_path / "rejects.jsonl"
    rejects = Rejects(path)
    for line in (3, 9, 20):
        rejects.add(line, "bad", f"row {line}")
    rejects.close()
    assert [json.loads(x)["line"] for x in path.read_text().splitlines()] == [3, 9, 20]
    resumed = Rejects(path, keep_through=9)
    assert len(resumed) == 2 and resumed.through(8) == 1
    resumed.add(12, "bad again", "row 12")
    resumed.close()
    kept = [json.loads(x) for x in path.read_text().splitlines()]
    assert kept[-1] == {"line": 12, "error": "bad again", "input": "row 12"}
    assert [x["line"] for x in kept] == [3, 9, 12]


# ------------------------------------------------------------------------------ export


def test_json_line_is_exact() -> None:
    item = {
        "n": Decimal("123456789012345678901234567890.123"),
        "i": Decimal("18446744073709551616"),
        "tiny": Decimal("1E-130"),
        "tags": {"b", "a"},
        "nums": {Decimal("2"), Decimal("-1.5")},
        "blob": b"\x00\xff",
        "none": None,
    }
    line = json_line(item)
    assert line.endswith(b"\n")
    back = json.loads(line, parse_float=Decimal)
    assert back == {
        "n": Decimal("123456789012345678901234567890.123"),
        "i": 18446744073709551616,
        "tiny": Decimal("1E-130"),
        "tags": ["a", "b"],
        "nums": [Decimal("-1.5"), 2],
        "blob": "AP8=",
        "none": None,
    }


def test_ddb_json_line_round_trips() -> None:
    item = {"PK": "a", "n": Decimal("1.25"), "s": {1, 2}, "b": {b"x"}, "m": {"l": [None, True]}}
    line = ddb_json_line(item)
    assert orjson.loads(line)["Item"]["n"] == {"N": "1.25"}
    assert from_ddb_json(orjson.loads(line)["Item"]) == item


# ------------------------------------------------------------------------------ writer hook


async def test_writer_acknowledges_positions_written_or_replaced() -> None:
    def batch(headers: Any, body: bytes) -> Any:
        requests = orjson.loads(body)["RequestItems"]["T"]
        if any(r["PutRequest"]["Item"]["PK"]["S"] == "refused" for r in requests):
            return error("ValidationException", "no")
        return answer({"UnprocessedItems": {}})

    transport = ScriptedTransport(default=batch)
    acked: list[int] = []
    async with Client(
        region="us-east-1", endpoint_url="http://test", credentials=("a", "b"), transport=transport
    ) as db:
        writer = db.table("T", key=("PK",)).writer(max_in_flight=1)
        writer.on_acknowledged = acked.extend
        with pytest.raises(Exception, match="unprocessed|last error"):
            async with writer:
                await writer.put({"PK": "a", "v": 1})  # 0: replaced by 2 while buffered
                await writer.put({"PK": "b"})  # 1
                await writer.put({"PK": "a", "v": 2})  # 2
                await writer.flush()
                await writer.put({"PK": "refused"})  # 3: its chunk is refused
    assert sorted(acked) == [0, 1, 2]


# ------------------------------------------------------------------------------ main


def test_main_without_rich(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "rich.console", None)
    assert main(["export", "--table", "T"]) == EXIT_ERROR
    assert capsys.readouterr().err == (
        "asyncdyn: the command line needs rich: pip install 'asyncdyn[cli]'\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["load", "{file}", "--table", "T", "--create-table", "PK:X"], "not one of S, N, B"),
        (["load", "{missing}", "--table", "T"], "cannot read"),
        (["load", "{file}", "--table", "T", "--csv-types", "a:N"], "--format csv only"),
        (["load", "{file}", "--table", "T", "--resume", "--checkpoint", "{file}"], "checkpoint"),
    ],
)
def test_usage_errors_exit_2_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text('{"PK": "a"}\n')
    paths = {"file": str(data), "missing": str(tmp_path / "nope.jsonl")}
    assert main([arg.format(**paths) for arg in argv]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv", [["load", "f", "--table", "T", "--rate", "0"], ["local", "--port", "x"]]
)
def test_argument_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == EXIT_USAGE


@pytest.mark.parametrize("engine", ["auto", "moto"])
def test_local_without_moto_names_the_extra(
    engine: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # None in sys.modules is Python's own "not importable" (import raises ModuleNotFoundError),
    # as in a venv where moto was never installed.
    monkeypatch.setitem(sys.modules, "moto", None)
    monkeypatch.setenv("ASYNCDYN_NODE_DIR", str(tmp_path))  # no dynalite there either
    monkeypatch.delenv("ASYNCDYN_DYNALITE", raising=False)
    assert main(["local", "--engine", engine]) == EXIT_ERROR  # not 3: nothing to do with DynamoDB
    err = capsys.readouterr().err
    assert "pip install 'asyncdyn[local]'" in err
    assert "Traceback" not in err and "ModuleNotFoundError" not in err


def test_local_help_lists_only_its_own_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["local", "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert "--engine" in out and "--port" in out
    for meaningless in ("--endpoint-url", "--region", "--profile", "--concurrency"):
        assert meaningless not in out
    # Its own exit statuses only: none of load's, export's or design check's.
    assert "the port is in use" in out and "asyncdyn[local]" in out
    assert "install_dynalite()" in out  # Node.js alone does not make dynalite the engine
    for others in ("rejects file", "--resume", "design check", "--check"):
        assert others not in out
    # load and export keep them.
    with pytest.raises(SystemExit):
        main(["load", "--help"])
    assert "--endpoint-url" in capsys.readouterr().out


def test_docs_cli_lists_every_exit_status_of_the_help() -> None:
    # docs/cli.md's table says what `asyncdyn --help` says: one row per status it lists.
    import re
    from pathlib import Path

    from asyncdyn import cli

    page = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    helped = re.findall(r"^  (\d+) ", cli._EXIT_CODES, re.MULTILINE)
    documented = re.findall(r"^\| (\d+) \|", page, re.MULTILINE)
    assert "7" in helped and helped == documented


def test_load_check_tells_apart_keys_whose_parts_hold_nul() -> None:
    # --check counts distinct keys by digest: ("a\0", "b") and ("a", "\0b") are two keys
    # (DynamoDB strings may hold NUL), so two digests, else the count falls one short.
    from asyncdyn.cli import _digest

    assert _digest(("a\x00", "b")) != _digest(("a", "\x00b"))
    assert _digest(("a", "b")) == _digest(("a", "b"))
