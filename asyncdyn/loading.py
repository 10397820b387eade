"""Bulk loading and exporting for the ``asyncdyn`` command: rows in, JSON lines out.

* :func:`read_rows` turns a JSON Lines, CSV or DynamoDB-JSON file into :class:`Row` values,
  each an item or the reason it cannot be one, with its line number and byte offsets, so a
  bad row is reported (never dropped) and a load can resume at an exact byte.
* :class:`Watermark` follows which rows are settled — written, replaced by a later row for
  the same key, or rejected — while the batch writer completes chunks out of order, and
  names the longest settled prefix of the file: the only safe place to resume.
* :class:`Checkpoint` stores that prefix next to the input; :class:`Rejects` writes bad rows
  with their line number and reason.
* :func:`json_line` and :func:`ddb_json_line` write items out exactly.
* :class:`Part` splits one load or export over n processes or machines (``--part i/n``):
  input rows by a stable hash of their key, scan segments by range; :func:`part_of_key`.

No I/O with DynamoDB here: the command (``asyncdyn.cli``) drives the client.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import csv
import hashlib
import json
import os
import re
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from .marshal import encode_item

__all__ = [
    "FORMATS",
    "Checkpoint",
    "ExportRecord",
    "InputError",
    "KeyAttribute",
    "Part",
    "Rejects",
    "Row",
    "Watermark",
    "check_key",
    "ddb_json_line",
    "from_ddb_json",
    "json_line",
    "parse_csv_types",
    "parse_key_spec",
    "parse_part",
    "part_of_key",
    "read_rows",
]

Format = Literal["jsonl", "csv", "ddb-json"]
FORMATS: tuple[Format, ...] = ("jsonl", "csv", "ddb-json")
KeyType = Literal["S", "N", "B"]
CsvType = Literal["S", "N", "BOOL"]

# DynamoDB's limits on key values (bytes); an over-long key fails the whole batch request
# server side, so it is refused here, per row.
_MAX_PARTITION_KEY = 2048
_MAX_SORT_KEY = 1024
_NAME = re.compile(r"[^\s:,]+")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_INTEGER = re.compile(r"[-+]?\d+")
_TYPE_NAMES = {"S": "a string", "N": "a number", "B": "binary (base64 text)"}
# Bytes before a checkpoint's offset that must be unchanged for the checkpoint to apply.
_CHECK_BYTES = 4096
_CHECKPOINT_VERSION = 1
_NOT_UTF8 = "the line is not valid UTF-8"
# A CSV field holds up to a whole item (400 KB); past csv's default limit (128 KiB) the row
# would be refused with a confusing reason instead of the item size check's.
_CSV_FIELD_LIMIT = 1 << 20


class InputError(ValueError):
    """A problem with the command's input as a whole (not one row): bad spec, bad header,
    a checkpoint of another file. The command exits with its usage status."""


# ------------------------------------------------------------------------------ key specs


@dataclass(frozen=True, slots=True)
class KeyAttribute:
    """One key attribute of a table: its name and DynamoDB type (S, N or B)."""

    name: str
    type: KeyType

    def __str__(self) -> str:
        return f"{self.name}:{self.type}"


def _typed_names(text: str, allowed: Sequence[str], what: str) -> list[tuple[str, str]]:
    parts = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not part for part in parts):
        raise InputError(f"{what} {text!r}: expected NAME:TYPE[,NAME:TYPE...]")
    out: list[tuple[str, str]] = []
    for part in parts:
        name, sep, kind = (s.strip() for s in part.partition(":"))
        kind = kind.upper() if sep else "S"
        if not _NAME.fullmatch(name):
            raise InputError(f"{what} {text!r}: {part!r} has no attribute name")
        if kind not in allowed:
            raise InputError(
                f"{what} {text!r}: type {kind!r} of {name!r} is not one of {', '.join(allowed)}"
            )
        if any(name == seen for seen, _ in out):
            raise InputError(f"{what} {text!r}: {name!r} is named twice")
        out.append((name, kind))
    return out


def parse_key_spec(text: str) -> tuple[KeyAttribute, ...]:
    """``"PK:S,SK:N"`` -> the partition key and optional sort key (type S when omitted)."""
    pairs = _typed_names(text, ("S", "N", "B"), "key spec")
    if len(pairs) > 2:
        raise InputError(f"key spec {text!r}: a key is a partition key and at most a sort key")
    return tuple(KeyAttribute(name, kind) for name, kind in pairs)  # type: ignore[arg-type]


def parse_csv_types(text: str | None) -> dict[str, CsvType]:
    """``"price:N,active:BOOL"`` -> the CSV columns that are not plain strings."""
    if text is None:
        return {}
    return dict(_typed_names(text, ("S", "N", "BOOL"), "--csv-types"))  # type: ignore[arg-type]


def _value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | Decimal | float):
        return "number"
    if isinstance(value, bytes):
        return "binary"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


def check_key(item: Mapping[str, Any], key: Sequence[KeyAttribute]) -> str | None:
    """Why ``item`` cannot be written to a table with ``key`` (None: it can).

    DynamoDB refuses a whole batch request for one mistyped or over-long key, so each row's
    key is checked here against the table's declared types before it joins a batch.
    """
    for i, attribute in enumerate(key):
        if attribute.name not in item:
            return f"missing key attribute {attribute.name!r}"
        value = item[attribute.name]
        kind = attribute.type
        if kind == "S":
            ok = isinstance(value, str)
            size = len(value.encode("utf-8", "surrogatepass")) if ok else 0
        elif kind == "N":
            ok = isinstance(value, int | Decimal | float) and not isinstance(value, bool)
            size = 1
        else:
            ok = isinstance(value, bytes)
            size = len(value) if ok else 0
        if not ok:
            return (
                f"key attribute {attribute.name!r} must be {_TYPE_NAMES[kind]} ({kind}), "
                f"got {_value_type(value)}"
            )
        if size == 0:
            return f"key attribute {attribute.name!r} is empty"
        limit = _MAX_PARTITION_KEY if i == 0 else _MAX_SORT_KEY
        if size > limit:
            return f"key attribute {attribute.name!r} is {size} bytes; DynamoDB's limit is {limit}"
    return None


# ------------------------------------------------------------------------------ values


def _number(text: str) -> int | Decimal:
    """A number from its text, exactly (ValueError when it is not one)."""
    if _INTEGER.fullmatch(text):
        return int(text)
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"{text!r} is not a number")
    return Decimal(text)


def _base64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError(f"{what} must be base64 text, got {_value_type(text)}")
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error as exc:
        raise ValueError(f"{what} is not valid base64: {exc}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _set(values: Any, tag: str, path: str, convert: Any) -> set[Any]:
    if not isinstance(values, list):
        raise ValueError(f"{path}: {tag} must hold a list, got {_value_type(values)}")
    out = {convert(v, f"{path}[{i}]") for i, v in enumerate(values)}
    if len(out) != len(values):
        raise ValueError(f"{path}: {tag} holds duplicate values")
    return out


def _ddb_str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{path}: expected a string, got {_value_type(value)}")
    return value


def _ddb_num(value: Any, path: str) -> int | Decimal:
    if not isinstance(value, str):
        raise ValueError(f"{path}: N must hold the number as a string, got {_value_type(value)}")
    try:
        return _number(value)
    except (ValueError, InvalidOperation):
        raise ValueError(f"{path}: {value!r} is not a number") from None


def _ddb_bin(value: Any, path: str) -> bytes:
    return _base64(value, path)


def _ddb_value(wire: Any, path: str) -> Any:
    if not isinstance(wire, dict) or len(wire) != 1:
        raise ValueError(f'{path}: expected an attribute value like {{"S": ...}}')
    ((tag, value),) = wire.items()
    if tag == "S":
        return _ddb_str(value, path)
    if tag == "N":
        return _ddb_num(value, path)
    if tag == "B":
        return _ddb_bin(value, path)
    if tag == "BOOL":
        if not isinstance(value, bool):
            raise ValueError(f"{path}: BOOL must hold true or false")
        return value
    if tag == "NULL":
        if value is not True:
            raise ValueError(f"{path}: NULL must hold true")
        return None
    if tag == "M":
        return from_ddb_json(value, path)
    if tag == "L":
        if not isinstance(value, list):
            raise ValueError(f"{path}: L must hold a list")
        return [_ddb_value(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if tag == "SS":
        return _set(value, tag, path, _ddb_str)
    if tag == "NS":
        return _set(value, tag, path, _ddb_num)
    if tag == "BS":
        return _set(value, tag, path, _ddb_bin)
    raise ValueError(f"{path}: unknown attribute type {tag!r}")


def from_ddb_json(wire: Any, path: str = "") -> dict[str, Any]:
    """An item from DynamoDB JSON (attribute name -> ``{"S": ...}``), checked strictly:
    numbers exact, binary decoded, duplicate set members refused (DynamoDB refuses them)."""
    if not isinstance(wire, dict):
        raise ValueError(f"{path or 'item'}: expected a map of attributes, got {_value_type(wire)}")
    return {
        name: _ddb_value(value, f"{path}.{name}" if path else name) for name, value in wire.items()
    }


# ------------------------------------------------------------------------------ rows


@dataclass(slots=True)
class Row:
    """One record of the input: ``item``, or ``error`` saying why there is none.

    ``line`` is the 1-based line the record starts on; ``end`` the byte offset just past it
    (where a resumed load continues); ``text`` the record as read, for the rejects file.
    ``last`` is the line the record ends on when it spans several (a quoted CSV field), so
    that a load resumed at ``end`` numbers the lines that follow correctly.
    """

    line: int
    end: int
    text: str
    item: dict[str, Any] | None = None
    error: str | None = None
    last: int | None = None

    @property
    def through(self) -> int:
        """The last line of the record."""
        return self.line if self.last is None else self.last


def _jsonl_item(text: str, key: Sequence[KeyAttribute]) -> dict[str, Any]:
    try:
        value = json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise ValueError("malformed JSON: nested too deeply") from None
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {_value_type(value)}")
    # JSON has no binary: a B key arrives as base64 text, as `export` writes it.
    for attribute in key:
        if attribute.type == "B" and attribute.name in value:
            value[attribute.name] = _base64(value[attribute.name], f"key {attribute.name!r}")
    return value


def _ddb_json_item(text: str, key: Sequence[KeyAttribute]) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"malformed JSON: {exc}") from None
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("Item"), dict):
        value = value["Item"]  # the shape of a DynamoDB export to S3
    try:
        return from_ddb_json(value)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _csv_value(text: str, kind: str, name: str) -> Any:
    if kind == "N":
        try:
            return _number(text.strip())
        except (ValueError, InvalidOperation):
            raise ValueError(f"column {name!r}: {text!r} is not a number") from None
    if kind == "B":
        return _base64(text, f"column {name!r}")
    if kind == "BOOL":
        flag = text.strip().lower()
        if flag not in ("true", "false"):
            raise ValueError(f"column {name!r}: {text!r} is not true or false")
        return flag == "true"
    return text


def _lines(
    stream: IO[bytes], line: int, offset: int
) -> Iterator[tuple[int, int, int, str | None, bytes]]:
    """(line number, start, end, text or None when not UTF-8, raw bytes) of each line."""
    for raw in stream:
        line += 1
        start, offset = offset, offset + len(raw)
        try:
            text: str | None = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        yield line, start, offset, text, raw


def _json_rows(
    stream: IO[bytes], fmt: Format, key: Sequence[KeyAttribute], line: int, offset: int
) -> Iterator[Row]:
    parse = _jsonl_item if fmt == "jsonl" else _ddb_json_item
    for number, start, end, text, raw in _lines(stream, line, offset):
        if text is None:
            yield Row(number, end, raw.decode("utf-8", "replace").rstrip("\r\n"), None, _NOT_UTF8)
            continue
        if start == 0:
            text = text.removeprefix("\ufeff")
        if not text.strip():
            continue  # a blank line holds no row (JSON Lines readers skip them too)
        text = text.rstrip("\r\n")
        try:
            item = parse(text, key)
        except ValueError as exc:
            yield Row(number, end, text, None, str(exc))
            continue
        error = check_key(item, key)
        yield Row(number, end, text, None if error else item, error)


def _feed(
    lines: Iterator[tuple[int, int, int, str | None, bytes]],
    state: dict[str, int],
    consumed: list[str],
) -> Iterator[str]:
    """The text of each line for ``csv.reader``, noting in ``state`` the line number and end
    offset of the last line it took: csv pulls exactly the physical lines of one record at a
    time, so the position after each record is known to the byte."""
    for number, start, end, text, raw in lines:
        state["line"], state["end"] = number, end
        if text is None:
            state["bad"] = 1
            text = raw.decode("utf-8", "replace")
        elif start == 0:
            text = text.removeprefix("\ufeff")
        consumed.append(text)
        yield text


def _csv_header(
    stream: IO[bytes], key: Sequence[KeyAttribute], types: Mapping[str, CsvType]
) -> tuple[list[tuple[str, str]], int, int]:
    """The columns (name, type) of a CSV file, and the line and offset where its header ends."""
    state = {"line": 0, "end": 0, "bad": 0}
    stream.seek(0)
    try:
        header = next(csv.reader(_feed(_lines(stream, 0, 0), state, [])))
    except StopIteration:
        raise InputError("the CSV file is empty: it needs a header row") from None
    except csv.Error as exc:
        raise InputError(f"CSV header: {exc}") from None
    if state["bad"]:
        raise InputError("CSV header: not valid UTF-8")
    header = [name.strip() for name in header]
    if any(not name for name in header) or len(set(header)) != len(header):
        raise InputError(f"CSV header: column names must be non-empty and distinct: {header}")
    missing = [attribute.name for attribute in key if attribute.name not in header]
    if missing:
        raise InputError(f"CSV header: no column for the key attribute {', '.join(missing)}")
    unknown = sorted(set(types) - set(header))
    if unknown:
        raise InputError(f"--csv-types names columns the header lacks: {', '.join(unknown)}")
    kinds: dict[str, str] = {**types, **{a.name: a.type for a in key}}
    return [(name, kinds.get(name, "S")) for name in header], state["line"], state["end"]


def _csv_rows(
    stream: IO[bytes],
    key: Sequence[KeyAttribute],
    columns: list[tuple[str, str]],
    line: int,
    offset: int,
) -> Iterator[Row]:
    state = {"line": line, "end": offset, "bad": 0}
    consumed: list[str] = []
    stream.seek(offset)
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    reader = csv.reader(_feed(_lines(stream, line, offset), state, consumed))
    while True:
        first = state["line"] + 1
        state["bad"] = 0
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            text = "".join(consumed).rstrip("\r\n")
            consumed.clear()
            yield Row(first, state["end"], text, None, f"malformed CSV: {exc}", state["line"])
            continue
        text = "".join(consumed).rstrip("\r\n")
        consumed.clear()
        end, last = state["end"], state["line"]
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue
        if state["bad"]:
            yield Row(first, end, text, None, "the record is not valid UTF-8", state["line"])
            continue
        if len(cells) != len(columns):
            yield Row(
                first, end, text, None, f"expected {len(columns)} fields, got {len(cells)}", last
            )
            continue
        try:
            # An empty cell is an absent attribute: CSV cannot tell "" from missing.
            item = {
                name: _csv_value(cell, kind, name)
                for (name, kind), cell in zip(columns, cells, strict=True)
                if cell != ""
            }
        except ValueError as exc:
            yield Row(first, end, text, None, str(exc), last)
            continue
        error = check_key(item, key)
        yield Row(first, end, text, None if error else item, error, last)


def read_rows(
    stream: IO[bytes],
    fmt: Format,
    key: Sequence[KeyAttribute],
    *,
    line: int = 0,
    offset: int = 0,
    csv_types: Mapping[str, CsvType] | None = None,
) -> Iterator[Row]:
    """The rows of a binary ``stream``, starting after ``line`` at byte ``offset``.

    ``key`` is the table's key: each row's key attributes are checked (and, from CSV or
    JSON text, typed) against it. Raises :class:`InputError` for a bad CSV header.
    """
    if fmt == "csv":
        # Checked now, not when the rows are first pulled: a bad header is a usage error.
        columns, header_line, header_end = _csv_header(stream, key, csv_types or {})
        if offset < header_end:
            line, offset = header_line, header_end
        return _csv_rows(stream, key, columns, line, offset)
    stream.seek(offset)
    return _json_rows(stream, fmt, key, line, offset)


# ------------------------------------------------------------------------------ progress


class Watermark:
    """The longest prefix of the input whose rows are all settled.

    Rows are read in order; a row sent to the writer is settled when the writer acknowledges
    its position, a rejected row at once. Chunks complete out of order, so a row written
    after an earlier one still in flight does not move the prefix: resuming there may send
    it again (a put is idempotent), but never skips a row that was not written.
    """

    __slots__ = ("_last", "_latest", "_replaced", "_unacked")

    def __init__(self, line: int = 0, offset: int = 0) -> None:
        self._last = (line, offset)
        # position -> (the settled prefix just before this row, the row, its key); insertion
        # order is row order, so the first entry is the earliest row still unsettled.
        self._unacked: dict[int, tuple[tuple[int, int], Row, Hashable]] = {}
        # The latest unsettled position of each key, and the unsettled rows a later row of
        # the same key replaced: only the keys of unsettled rows, so memory stays bounded.
        self._latest: dict[Hashable, int] = {}
        self._replaced: set[int] = set()

    def settled(self, row: Row) -> None:
        """``row`` was settled as soon as it was read (rejected)."""
        self._last = (row.through, row.end)

    def sent(self, position: int, row: Row, key: Hashable) -> None:
        """``row``, with primary key ``key``, went to the writer as its input ``position``."""
        earlier = self._latest.get(key)
        if earlier is not None:
            # Still unsettled (in flight, or failed): this row wins over it, so it must never
            # be written again after this one.
            self._replaced.add(earlier)
        self._latest[key] = position
        self._unacked[position] = (self._last, row, key)
        self._last = (row.through, row.end)

    def acknowledged(self, positions: list[int]) -> None:
        """The writer's ``on_acknowledged`` hook."""
        unacked, latest = self._unacked, self._latest
        for position in positions:
            entry = unacked.pop(position, None)
            if entry is None:
                continue
            self._replaced.discard(position)
            if latest.get(entry[2]) == position:
                del latest[entry[2]]

    def outstanding(self) -> list[tuple[int, Row]]:
        """(position, row) of every row sent and neither acknowledged nor replaced by a later
        row of the same key, in row order: at most one row per key."""
        replaced = self._replaced
        return [(p, row) for p, (_, row, _) in self._unacked.items() if p not in replaced]

    def replaced(self) -> list[int]:
        """Positions of unsettled rows that a later row of the same key replaced."""
        return sorted(self._replaced)

    @property
    def prefix(self) -> tuple[int, int]:
        """(line, byte offset) of the end of the settled prefix."""
        first = next(iter(self._unacked.values()), None)
        return self._last if first is None else first[0]


@dataclass(slots=True)
class Checkpoint:
    """Where a load may resume: every row up to ``line`` (byte ``offset``) is settled.

    ``rejected`` counts the rejected rows within that prefix; ``check`` is a digest of the
    bytes just before ``offset``, so a checkpoint is not applied to another file. ``part``
    is the share of the input this load writes (``"part-0-of-3"``; ``""``: all of it).
    """

    input: str
    table: str
    format: str
    line: int = 0
    offset: int = 0
    rejected: int = 0
    check: str = ""
    part: str = ""

    @staticmethod
    def digest(stream: IO[bytes], offset: int) -> str:
        start = max(0, offset - _CHECK_BYTES)
        data = os.pread(stream.fileno(), offset - start, start)
        return hashlib.sha256(data).hexdigest()

    def save(self, path: Path) -> None:
        record = {"version": _CHECKPOINT_VERSION, **{f: getattr(self, f) for f in _FIELDS}}
        record["part"] = self.part
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
        os.replace(temporary, path)  # a crash mid-write leaves the previous checkpoint whole

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        try:
            record = orjson.loads(path.read_bytes())
            if record.get("version") != _CHECKPOINT_VERSION:
                raise ValueError(f"version {record.get('version')!r}")
            # ``part`` came later: a checkpoint without one covers the whole input.
            checkpoint = cls(**{f: record[f] for f in _FIELDS}, part=record.get("part", ""))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"cannot read checkpoint {path}: {exc}") from None
        return checkpoint

    def verify(self, stream: IO[bytes], table: str, fmt: str, part: str = "") -> None:
        """Raise :class:`InputError` unless this checkpoint belongs to this load."""
        if (self.table, self.format) != (table, fmt):
            raise InputError(
                f"the checkpoint is for table {self.table!r} ({self.format}), not {table!r} ({fmt})"
            )
        if self.part != part:
            raise InputError(
                f"the checkpoint is for {self.part or 'the whole input'}, not {part or 'all of it'}"
            )
        size = os.fstat(stream.fileno()).st_size
        if self.offset > size or self.digest(stream, self.offset) != self.check:
            raise InputError(
                "the input file changed since the checkpoint was written; "
                "load it again without --resume"
            )


_FIELDS = ("input", "table", "format", "line", "offset", "rejected", "check")


def _printable(text: str) -> str:
    """``text`` as UTF-8 can carry it: a lone surrogate (a name or value the row was rejected
    for) becomes its escape, so that writing the reject never fails."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


class Rejects:
    """The rejects file: one JSON line per bad row, ``{"line", "error", "input"}``."""

    def __init__(self, path: Path, *, keep_through: int | None = None) -> None:
        """Open ``path`` afresh, or — resuming — keep the rejects of rows up to line
        ``keep_through`` (those the checkpoint covers) and drop the later ones, which
        the resumed load reads, and reports, again."""
        self.path = path
        self.lines: list[int] = []
        kept: list[bytes] = []
        if keep_through is not None and path.exists():
            for raw in path.read_bytes().splitlines():
                try:
                    number = orjson.loads(raw)["line"]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    continue
                if isinstance(number, int) and number <= keep_through:
                    kept.append(raw)
                    bisect.insort(self.lines, number)
        self._file = path.open("wb")
        for raw in kept:
            self._file.write(raw + b"\n")

    def add(self, line: int, error: str, text: str) -> None:
        record = {"line": line, "error": _printable(error), "input": _printable(text)}
        self._file.write(orjson.dumps(record) + b"\n")
        bisect.insort(self.lines, line)

    def through(self, line: int) -> int:
        """How many rejected rows lie at or before ``line``."""
        return bisect.bisect_right(self.lines, line)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __len__(self) -> int:
        return len(self.lines)


# ------------------------------------------------------------------------------ parts


@dataclass(frozen=True, slots=True)
class Part:
    """Share ``index`` (0 to ``count`` - 1) of a job split over ``count`` processes or
    machines: the input rows whose key hashes to it, or its range of scan segments."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise InputError(f"part {self.index}/{self.count}: i must be 0 to {self.count - 1}")

    @property
    def label(self) -> str:
        """``part-1-of-3``: in the name of the part's checkpoint and output files."""
        return f"part-{self.index}-of-{self.count}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def segments(self, per_part: int) -> range:
        """The scan segments of this part when each part scans ``per_part`` of them: the
        whole scan has ``count * per_part`` segments, and parts take consecutive ranges."""
        return range(self.index * per_part, (self.index + 1) * per_part)

    def holds(self, identity: Sequence[str]) -> bool:
        """Whether the key ``identity`` (``batch.key_identity``) belongs to this part."""
        return part_of_key(identity, self.count) == self.index

    def path(self, path: Path, suffix: str = "") -> Path:
        """``items.jsonl`` -> ``items.part-1-of-3.jsonl`` (+ ``suffix``): each part's file
        next to the others, never one part's file taken for another's."""
        stem, dot, ext = path.name.partition(".")
        name = f"{stem}.{self.label}{dot}{ext}" if dot else f"{stem}.{self.label}"
        return path.with_name(name + suffix)


@dataclass(slots=True)
class ExportRecord:
    """What one part of a split export wrote, saved next to its output once it is complete:
    its scan segments (``first_segment`` to ``first_segment + segments - 1`` of
    ``total_segments``) and how many items went to ``output``."""

    table: str
    part: str
    first_segment: int
    segments: int
    total_segments: int
    items: int
    output: str

    def save(self, path: Path) -> None:
        record = {"version": _CHECKPOINT_VERSION, **{f: getattr(self, f) for f in _RECORD}}
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: Path) -> ExportRecord:
        try:
            record = orjson.loads(path.read_bytes())
            if record.get("version") != _CHECKPOINT_VERSION:
                raise ValueError(f"version {record.get('version')!r}")
            return cls(**{f: record[f] for f in _RECORD})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"cannot read {path}: {exc}") from None


_RECORD = ("table", "part", "first_segment", "segments", "total_segments", "items", "output")


def parse_part(text: str) -> Part:
    """``"1/3"`` -> ``Part(1, 3)``; :class:`InputError` otherwise."""
    index, sep, count = text.partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise InputError(f"--part {text!r}: expected i/n, e.g. 0/3 (parts are 0 to n-1)")
    if int(count) < 1:
        raise InputError(f"--part {text!r}: n must be at least 1")
    return Part(int(index), int(count))


def part_of_key(identity: Sequence[str], count: int) -> int:
    """The part (0 to ``count`` - 1) a key belongs to: a SHA-256 of its identity, so that
    every process and every machine, whatever its Python and ``PYTHONHASHSEED``, agrees."""
    digest = hashlib.sha256()
    for value in identity:
        data = value.encode("utf-8", "surrogatepass")
        # Length-prefixed: ("a#", "b") and ("a", "#b") are two keys, two digests.
        digest.update(len(data).to_bytes(4, "big"))
        digest.update(data)
    return int.from_bytes(digest.digest()[:8], "big") % count


# ------------------------------------------------------------------------------ export


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))  # the exact digits, as a JSON number
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, set | frozenset):
        return sorted(value)  # a set is homogeneous; sorted makes exports comparable
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def json_line(item: Mapping[str, Any]) -> bytes:
    """One item as a plain JSON line: numbers exact, binary as base64, sets as sorted lists
    (decode numbers as ``Decimal``: ints beyond 64 bits are not JSON-serialisable here)."""
    return orjson.dumps(item, default=_json_default, option=orjson.OPT_APPEND_NEWLINE)


def ddb_json_line(item: Mapping[str, Any]) -> bytes:
    """One item as a DynamoDB-JSON line in the S3-export shape ``{"Item": {...}}``."""
    return orjson.dumps({"Item": encode_item(item)}, option=orjson.OPT_APPEND_NEWLINE)
