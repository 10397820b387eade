"""The ``asyncdyn`` command: ``load`` a file into a table, ``export`` a table, run a ``local``
server, ``design check`` a design's access patterns. ``--native`` on load and export uses
DynamoDB's own ImportTable / ExportTableToPointInTime through S3; ``--part i/n`` shares one
load or export between n processes or machines, and ``--check --parts n`` checks the whole.

Needs the ``cli`` extra (rich, for progress). Exit statuses (see ``asyncdyn --help``):
0 done; 1 unexpected error or an extra missing (rich, or moto for ``local``); 2 usage
(arguments, specs, unreadable input, checkpoint of another file, table of another key);
3 DynamoDB (table missing, credentials, region, access, server unreachable); 4 loaded, but
rows were rejected; 5 items left unwritten; 6 design check found errors; 7 ``--check`` found
a part missing or counts that differ; 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any

import orjson

from .batch import BatchWriter, key_identity
from .client import Client, Table
from .errors import (
    AsyncDynError,
    ConfigurationError,
    NativeTransferError,
    ResourceInUse,
    TableNotFound,
    UnprocessedItemsError,
    ValidationError,
)
from .loading import (
    FORMATS,
    Checkpoint,
    ExportRecord,
    InputError,
    KeyAttribute,
    Part,
    Rejects,
    Row,
    Watermark,
    ddb_json_line,
    json_line,
    parse_csv_types,
    parse_key_spec,
    parse_part,
    part_of_key,
    read_rows,
)
from .marshal import encode_key
from .native import ExportFormat, ImportFormat, IncrementalPeriod, NativeImport, parse_s3_url
from .runner import run
from .schema import KeySchema

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from .loading import CsvType, Format

__all__ = [
    "EXIT_DESIGN",
    "EXIT_DYNAMODB",
    "LoadJob",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_MISMATCH",
    "EXIT_OK",
    "EXIT_REJECTED",
    "EXIT_UNWRITTEN",
    "EXIT_USAGE",
    "main",
    "prepare_load",
    "run_load",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_DYNAMODB = 3
EXIT_REJECTED = 4
EXIT_UNWRITTEN = 5
EXIT_DESIGN = 6
EXIT_MISMATCH = 7
EXIT_INTERRUPTED = 130

_EXIT_CODES = f"""exit status:
  {EXIT_OK}    done
  {EXIT_ERROR}    unexpected error, or a needed extra is not installed (rich: asyncdyn[cli];
       moto's server for `local`: asyncdyn[local])
  {EXIT_USAGE}    usage: bad arguments or specs, unreadable input, checkpoint of another file,
       table exists with another key than --create-table, --native import into an
       existing table
  {EXIT_DYNAMODB}    DynamoDB: table missing, credentials, region, access denied, server
       unreachable
  {EXIT_REJECTED}    load: every good row written, but rows were rejected (see the rejects file)
  {EXIT_UNWRITTEN}    load: items left unwritten (rerun with --resume to retry them)
  {EXIT_DESIGN}    design check: the report has errors (warnings and info do not fail)
  {EXIT_MISMATCH}    --check: a part is missing or unfinished, or the counts differ
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); a load saved its checkpoint
"""
# `asyncdyn local` has none of load's, export's or design check's outcomes.
_LOCAL_EXIT_CODES = f"""exit status:
  {EXIT_OK}    stopped by Ctrl-C or SIGTERM
  {EXIT_ERROR}    unexpected error, or the engine is not installed (moto's server:
       asyncdyn[local]; dynalite: Node.js and asyncdyn.local.install_dynalite())
  {EXIT_DYNAMODB}    the server did not start (say, the port is in use) or exited
"""
_NO_RICH = "asyncdyn: the command line needs rich: pip install 'asyncdyn[cli]'\n"
# How often a load saves its checkpoint and the progress display is updated (seconds).
_CHECKPOINT_EVERY = 1.0
_YIELD_EVERY = 256  # rows read between two turns of the event loop
_REFRESH_EVERY = 0.2
_HEARTBEAT = 60.0  # seconds between two progress lines of a native job that shows no change


def main(argv: list[str] | None = None) -> int:
    """Run the ``asyncdyn`` command with ``argv`` (default ``sys.argv[1:]``); returns the
    exit status."""
    try:
        from rich.console import Console
    except ImportError:
        sys.stderr.write(_NO_RICH)
        return EXIT_ERROR
    args = _parser().parse_args(argv)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    command: Callable[[argparse.Namespace, Console], int] = args.command
    try:
        return command(args, console)
    except InputError as exc:
        _error(console, str(exc))
        return EXIT_USAGE
    except TableNotFound:
        # Only a load can create the table; an export of a missing one is usually another
        # region or endpoint than the table's.
        hint = (
            "--create-table creates it"
            if hasattr(args, "create_table")
            else "check --table, --region and --endpoint-url"
        )
        _error(console, f"table {args.table!r} does not exist ({hint})")
        return EXIT_DYNAMODB
    except NativeTransferError as exc:
        _error(console, str(exc))
        # An import into an existing table is the user's to fix (another name), as a
        # table of another key is for a load.
        return EXIT_USAGE if exc.code == "TableExists" else EXIT_DYNAMODB
    except AsyncDynError as exc:
        _error(console, f"{type(exc).__name__}: {exc}")
        return EXIT_DYNAMODB
    except KeyboardInterrupt:
        _error(console, "interrupted")
        return EXIT_INTERRUPTED


def _error(console: Console, message: str) -> None:
    from rich.markup import escape

    console.print(f"[bold red]error:[/] {escape(message)}")


# ---------------------------------------------------------------------------- arguments


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _positive_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def _s3_url(text: str) -> str:
    try:
        parse_s3_url(text)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _part(text: str) -> Part:
    try:
        return parse_part(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return value


def _parser() -> argparse.ArgumentParser:
    connection = argparse.ArgumentParser(add_help=False)
    group = connection.add_argument_group("connection")
    group.add_argument(
        "--endpoint-url",
        help="DynamoDB endpoint (default: AWS_ENDPOINT_URL_DYNAMODB, AWS config, or AWS); on a "
        "loopback endpoint the region defaults to us-east-1 and, with no AWS credentials "
        "configured, fixed local ones are used (as Client does)",
    )
    group.add_argument("--region", help="AWS region (default: AWS_REGION / the profile)")
    group.add_argument("--profile", help="AWS config profile for region, endpoint, credentials")
    group.add_argument(
        "--concurrency",
        type=_positive_int,
        default=64,
        help="requests in flight at once (default 64)",
    )

    parser = argparse.ArgumentParser(
        prog="asyncdyn",
        description="Bulk load, export and local DynamoDB servers, with asyncdyn.",
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    load = commands.add_parser(
        "load",
        parents=[connection],
        help="load a JSONL, CSV or DynamoDB-JSON file into a table",
        description="Write every row of FILE to a table through the batch writer. Bad rows "
        "go to the rejects file with their line number and reason; a checkpoint next to FILE "
        "lets --resume skip what was already written.",
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load.add_argument("file", metavar="FILE", type=Path, nargs="?")
    load.add_argument("--table", required=True, help="the table to write to")
    load.add_argument(
        "--format",
        choices=(*FORMATS, "ion"),
        help="jsonl: one JSON object per line; csv: a header row, then values (strings "
        "unless typed by the key or --csv-types); ddb-json: one DynamoDB-JSON item per line, "
        'bare or as {"Item": ...} (default: from the file name, else jsonl)',
    )
    load.add_argument(
        "--create-table",
        metavar="SPEC",
        help='create the table when missing, keyed "PK:S[,SK:N]" (types S, N, B); an '
        "existing table must have this key",
    )
    load.add_argument(
        "--rate",
        type=_positive_rate,
        help="write at most N items per second (a token bucket: one second's worth may go "
        "at once after an idle moment, e.g. at the start)",
    )
    load.add_argument(
        "--resume",
        action="store_true",
        help="skip the rows the checkpoint says are done (without it, start from line 1)",
    )
    load.add_argument("--checkpoint", type=Path, help="default: FILE.checkpoint.json")
    load.add_argument("--rejects", type=Path, help="default: FILE.rejects.jsonl")
    load.add_argument(
        "--csv-types",
        metavar="SPEC",
        help='CSV columns that are not strings: "price:N,active:BOOL" (types S, N, BOOL)',
    )
    load.add_argument("--no-progress", action="store_true", help="no progress bar")
    _split_arguments(load, "the input rows whose key hashes to part i")
    native = load.add_argument_group("native import (ImportTable, instead of FILE)")
    native.add_argument(
        "--native",
        metavar="S3URL",
        type=_s3_url,
        help="create the NEW table --table (keyed by --create-table) from the objects under "
        "s3://bucket/prefix with ImportTable (formats ddb-json (default), csv, ion)",
    )
    native.add_argument(
        "--compression",
        choices=("NONE", "GZIP", "ZSTD"),
        help="of the S3 objects (default: from their names: .gz, .zst, else NONE)",
    )
    load.set_defaults(command=_load_command)

    export = commands.add_parser(
        "export",
        parents=[connection],
        help="write every item of a table as JSON lines",
        description="Parallel scan of a table to JSON lines. jsonl: plain JSON, numbers "
        "exact, binary as base64, sets as sorted lists. ddb-json: DynamoDB JSON "
        '{"Item": ...} per line, which `asyncdyn load --format ddb-json` reads back exactly.',
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("--table", required=True)
    export.add_argument(
        "--segments", type=_positive_int, default=4, help="parallel scan segments (default 4)"
    )
    export.add_argument("--out", type=Path, help="output file (default: standard output)")
    export.add_argument(
        "--format",
        choices=("jsonl", "ddb-json", "DYNAMODB_JSON", "ION"),
        default="jsonl",
        help="of --out (and of --download); with --native, DYNAMODB_JSON (the default) or "
        "ION is the format DynamoDB writes to S3 (ION cannot be downloaded)",
    )
    export.add_argument("--no-progress", action="store_true", help="no progress display")
    _split_arguments(export, "scan segments i*k to i*k+k-1 of n*k (k: --segments)")
    native = export.add_argument_group("native export (ExportTableToPointInTime)")
    native.add_argument(
        "--native",
        metavar="S3URL",
        type=_s3_url,
        help="have DynamoDB export the table to s3://bucket/prefix (needs point-in-time "
        "recovery; uses no read capacity)",
    )
    native.add_argument(
        "--enable-pitr", action="store_true", help="turn point-in-time recovery on if it is off"
    )
    native.add_argument(
        "--incremental",
        action="store_true",
        help="export the changes between --from and --to (15 minutes to 24 hours)",
    )
    native.add_argument("--from", dest="since", metavar="TIME", help="ISO-8601 with a zone")
    native.add_argument("--to", dest="until", metavar="TIME", help="ISO-8601 with a zone")
    native.add_argument(
        "--view",
        choices=("NEW_AND_OLD_IMAGES", "NEW_IMAGE"),
        default="NEW_AND_OLD_IMAGES",
        help="what each change of an incremental export holds",
    )
    native.add_argument(
        "--download",
        metavar="FILE",
        type=Path,
        help="then read the exported files back from S3 into FILE (JSON lines)",
    )
    export.set_defaults(command=_export_command)

    # No connection options: the server it starts is the endpoint, and it needs no region,
    # profile or credentials.
    local = commands.add_parser(
        "local",
        help="run an embedded DynamoDB-compatible server in the foreground",
        description="Serve moto or dynalite on 127.0.0.1 until Ctrl-C. The endpoint URL is "
        "the first line on standard output.",
        epilog=_LOCAL_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    local.add_argument(
        "--engine",
        choices=("auto", "moto", "dynalite"),
        default="auto",
        help="auto: dynalite when installed (Node.js and asyncdyn.local.install_dynalite()), "
        "else moto",
    )
    local.add_argument("--port", type=_port, default=0, help="default: a free port")
    local.set_defaults(command=_local_command)

    design = commands.add_parser(
        "design",
        help="check a design's access patterns (asyncdyn.model)",
        description="Check a Design: every access pattern served by a key condition, key "
        "collisions, index maps, projection gaps, hot keys; with --table or --endpoint-url "
        "also against the live table (DescribeTable).",
    )
    design_commands = design.add_subparsers(title="commands", required=True, metavar="COMMAND")
    check = design_commands.add_parser(
        "check",
        parents=[connection],
        help="print the design's findings; fail on errors",
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("design", metavar="MODULE:DESIGN", help="e.g. myapp.db:shop")
    check.add_argument(
        "--format", choices=("text", "json", "markdown", "md"), default="text", dest="output"
    )
    check.add_argument(
        "--table", help="check against this live table (default with --endpoint-url: the design's)"
    )
    check.set_defaults(command=_design_check_command)
    return parser


def _split_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    group = parser.add_argument_group("splitting one job over n processes or machines")
    group.add_argument(
        "--part",
        metavar="i/n",
        type=_part,
        help=f"do share i (0 to n-1) of n: {what}; its checkpoint and files are named part-i-of-n",
    )
    group.add_argument(
        "--check",
        action="store_true",
        help="run nothing: check that all --parts finished and that their counts add up",
    )
    group.add_argument("--parts", type=_positive_int, metavar="N", help="with --check")


# ---------------------------------------------------------------------------- client


def _client(args: argparse.Namespace, **options: Any) -> Client:
    # Endpoint, region and credentials (fixed local ones on loopback) are Client's own
    # decision, the same for the command and for code.
    return Client(
        region=args.region,
        endpoint_url=args.endpoint_url,
        profile=args.profile,
        max_concurrency=args.concurrency,
        **options,
    )


async def _open(
    stack: contextlib.AsyncExitStack,
    args: argparse.Namespace,
    client: Client | None,
    **options: Any,
) -> Client:
    """``client`` (tests hand one in), else one from the arguments, closed with ``stack``."""
    if client is not None:
        return client
    return await stack.enter_async_context(_client(args, **options))


def _run(coroutine: Coroutine[Any, Any, int]) -> int:
    return run(coroutine)


# ---------------------------------------------------------------------------- load


@dataclass(slots=True)
class _LoadState:
    """What a load has done so far (read by the progress display and the summary)."""

    started: float = field(default_factory=time.monotonic)
    start_offset: int = 0
    read_offset: int = 0
    rows: int = 0
    salvaged: int = 0


def _split_checked(args: argparse.Namespace) -> None:
    if args.check and args.part is not None:
        raise InputError("--check checks every part: give --parts N, not --part")
    if args.parts is not None and not args.check:
        raise InputError("--parts goes with --check (a part to run is --part i/n)")


def _load_command(args: argparse.Namespace, console: Console) -> int:
    _split_checked(args)
    if args.native is not None:
        return _run(native_load(args, console))
    if args.check:
        return _run(check_load(args, console))
    job = prepare_load(args, console)
    try:
        return _run(run_load(job, console))
    finally:
        job.close()


def _guess_format(path: Path) -> Format:
    suffixes = [s.lower() for s in path.suffixes]
    if ".csv" in suffixes:
        return "csv"
    if ".ddb" in suffixes or ".ddbjson" in suffixes:
        return "ddb-json"
    return "jsonl"


async def _table_key(
    db: Client, name: str, spec: tuple[KeyAttribute, ...] | None, console: Console
) -> tuple[KeyAttribute, ...]:
    """The table's key (name and type of each attribute), creating the table from ``spec``
    when it is missing."""
    table = db.table(name)
    try:
        description = await table.describe()
    except TableNotFound:
        if spec is None:
            raise
        partition, *sort = spec
        try:
            await db.create_table(
                name,
                partition_key=(partition.name, partition.type),
                sort_key=(sort[0].name, sort[0].type) if sort else None,
            )
            console.print(f"created table {name} with key {', '.join(map(str, spec))}")
        except ResourceInUse:  # created by someone else meanwhile: check it like any other
            await table.wait_until_active()
        description = await table.describe()
    types = {d["AttributeName"]: d["AttributeType"] for d in description["AttributeDefinitions"]}
    roles = {k["KeyType"]: k["AttributeName"] for k in description["KeySchema"]}
    key = tuple(
        KeyAttribute(roles[role], types[roles[role]]) for role in ("HASH", "RANGE") if role in roles
    )
    if spec is not None and key != spec:
        raise InputError(
            f"table {name!r} exists with the key {', '.join(map(str, key))}, "
            f"not {', '.join(map(str, spec))}"
        )
    return key


@dataclass(slots=True)
class LoadJob:
    """A load's input, checkpoint and rejects file, opened and checked before any request."""

    args: argparse.Namespace
    format: Format
    spec: tuple[KeyAttribute, ...] | None
    csv_types: dict[str, CsvType]
    stream: IO[bytes]
    checkpoint: Checkpoint
    checkpoint_path: Path
    rejects: Rejects
    part: Part | None = None

    def close(self) -> None:
        self.stream.close()
        self.rejects.close()


def prepare_load(args: argparse.Namespace, console: Console) -> LoadJob:
    """Check the arguments, open the input, read the checkpoint when resuming, open the
    rejects file. Raises :class:`InputError` for anything the user must fix."""
    path, fmt = _load_input(args)
    spec = parse_key_spec(args.create_table) if args.create_table else None
    csv_types = parse_csv_types(args.csv_types)
    if csv_types and fmt != "csv":
        raise InputError("--csv-types applies to --format csv only")
    part: Part | None = args.part
    checkpoint_path, rejects_path = _part_files(path, part)
    checkpoint_path = args.checkpoint or checkpoint_path
    rejects_path = args.rejects or rejects_path
    label = "" if part is None else part.label
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    try:
        checkpoint = Checkpoint(str(path.resolve()), args.table, fmt, part=label)
        if args.resume and checkpoint_path.exists():
            checkpoint = Checkpoint.load(checkpoint_path)
            checkpoint.verify(stream, args.table, fmt, label)
        elif args.resume:
            console.print(f"no checkpoint at {checkpoint_path}: starting at line 1")
        elif checkpoint_path.exists():
            console.print(f"replacing the checkpoint {checkpoint_path} (--resume continues it)")
        try:
            rejects = Rejects(rejects_path, keep_through=checkpoint.line if args.resume else None)
        except OSError as exc:
            raise InputError(f"cannot write {rejects_path}: {exc.strerror}") from None
    except BaseException:
        stream.close()
        raise
    return LoadJob(args, fmt, spec, csv_types, stream, checkpoint, checkpoint_path, rejects, part)


def _load_input(args: argparse.Namespace) -> tuple[Path, Format]:
    """The input file of a (non-native) load and its format."""
    if args.file is None:
        raise InputError("load needs FILE (or --native s3://bucket/prefix)")
    if args.format == "ion":
        raise InputError("--format ion is for --native (ImportTable) only")
    path: Path = args.file
    fmt: Format = args.format or _guess_format(path)
    return path, fmt


def _part_files(path: Path, part: Part | None) -> tuple[Path, Path]:
    """The default checkpoint and rejects files of a load of ``path`` (or of its part)."""
    named = path if part is None else part.path(path)
    return (
        named.with_name(named.name + ".checkpoint.json"),
        named.with_name(named.name + ".rejects.jsonl"),
    )


async def run_load(job: LoadJob, console: Console, *, client: Client | None = None) -> int:
    """Run a prepared load; ``client`` replaces the one built from the arguments (tests)."""
    args = job.args
    async with contextlib.AsyncExitStack() as stack:
        db = await _open(stack, args, client)
        key = await _table_key(db, args.table, job.spec, console)
        checkpoint = job.checkpoint
        rows = read_rows(
            job.stream,
            job.format,
            key,
            line=checkpoint.line,
            offset=checkpoint.offset,
            csv_types=job.csv_types,
        )
        if checkpoint.line:
            console.print(
                f"resuming after line {checkpoint.line:,} ({checkpoint.rejected:,} rows "
                f"rejected before, listed in {job.rejects.path})"
            )
        return await _load_rows(job, console, db, key, rows)


async def _load_rows(
    job: LoadJob,
    console: Console,
    db: Client,
    key: tuple[KeyAttribute, ...],
    rows: Iterator[Row],
) -> int:
    args, stream, checkpoint, rejects = job.args, job.stream, job.checkpoint, job.rejects
    checkpoint_path = job.checkpoint_path
    sort_key = key[1].name if len(key) > 1 else None
    table = db.table(args.table, key=KeySchema(key[0].name, sort_key, {}))
    watermark = Watermark(checkpoint.line, checkpoint.offset)
    state = _LoadState(start_offset=checkpoint.offset, read_offset=checkpoint.offset)
    size = os.fstat(stream.fileno()).st_size
    requests_before = db.stats().requests.get("BatchWriteItem", 0)
    writer = table.writer(rate=args.rate, max_in_flight=args.concurrency)
    writer.on_acknowledged = watermark.acknowledged
    earlier = len(rejects)  # kept from the runs before a resume
    failure: BaseException | None = None

    def save() -> None:
        rejects.flush()  # a checkpoint must never cover a reject not yet on disk
        checkpoint.line, checkpoint.offset = watermark.prefix
        checkpoint.rejected = rejects.through(checkpoint.line)
        checkpoint.check = Checkpoint.digest(stream, checkpoint.offset)
        checkpoint.save(checkpoint_path)

    def figures() -> dict[str, Any]:
        stats = db.stats()
        return {
            "items": writer.stats.written + state.salvaged,
            "rejected": len(rejects),
            "retries": stats.retries,
            "throttles": stats.throttles,
        }

    unwritten = 0
    interrupted: BaseException | None = None
    with _progress(console, "loading", size - checkpoint.offset, args.no_progress) as show:

        async def tick() -> None:
            saved = time.monotonic()
            while True:
                await asyncio.sleep(_REFRESH_EVERY)
                show(state.read_offset - state.start_offset, figures())
                if time.monotonic() - saved >= _CHECKPOINT_EVERY:
                    save()
                    saved = time.monotonic()

        ticker = asyncio.create_task(tick())
        try:
            try:
                await _feed(writer, rows, watermark, rejects, state, key, job.part)
            except UnprocessedItemsError as exc:
                failure = exc.__cause__ or exc
                # A request DynamoDB refused outright fails its whole chunk: put those items
                # one by one, so that only the bad ones are rejected.
                if isinstance(exc.__cause__, ValidationError):
                    await _salvage(db, table, watermark, rejects, state, args.concurrency)
            unwritten = len(watermark.outstanding())
        except (asyncio.CancelledError, KeyboardInterrupt) as exc:
            interrupted = exc  # the summary still says what was done
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            save()
            show(state.read_offset - state.start_offset, figures())

    elapsed = time.monotonic() - state.started
    written = writer.stats.written + state.salvaged
    total_rejected = len(rejects)
    stats = db.stats()
    requests = stats.requests.get("BatchWriteItem", 0) - requests_before
    rate = written / elapsed if elapsed > 0 else 0.0
    console.print(
        f"{args.table}: {written:,} items written in {elapsed:.1f} s ({rate:,.0f} items/s), "
        f"{total_rejected:,} rows rejected{f' ({earlier:,} before resuming)' if earlier else ''}, "
        f"{unwritten:,} unwritten; "
        f"{requests:,} BatchWriteItem requests, {stats.retries:,} retries, "
        f"{stats.throttles:,} throttles"
    )
    if total_rejected:
        console.print(f"rejected rows (line, reason): {rejects.path}")
    if unwritten:
        _error(console, f"{unwritten:,} items left unwritten; last error: {failure}")
    more = unwritten or interrupted
    console.print(
        f"{'interrupted: ' if interrupted else ''}checkpoint at line {checkpoint.line:,} "
        f"({checkpoint_path}); {'--resume continues from there' if more else 'the file is done'}"
    )
    if interrupted is not None:
        raise interrupted
    if unwritten:
        return EXIT_UNWRITTEN
    return EXIT_REJECTED if total_rejected else EXIT_OK


async def _feed(
    writer: BatchWriter,
    rows: Iterator[Row],
    watermark: Watermark,
    rejects: Rejects,
    state: _LoadState,
    key: tuple[KeyAttribute, ...],
    part: Part | None = None,
) -> None:
    """Put every row, then close the writer. Interrupted (the first Ctrl-C cancels the main
    task), it stops reading but still lets the writer finish what it holds, so that the
    checkpoint covers every row sent; only a second Ctrl-C abandons requests in flight."""
    stopped: BaseException | None = None
    try:
        await _put_rows(writer, rows, watermark, rejects, state, key, part)
    except (asyncio.CancelledError, Exception) as exc:
        stopped = exc
    closing = asyncio.ensure_future(writer.close())
    while True:
        try:
            await asyncio.shield(closing)
            break
        except asyncio.CancelledError as exc:
            if closing.done():
                raise
            stopped = stopped or exc
        except UnprocessedItemsError:
            if stopped is None:
                raise
            break  # its rows stay outstanding: the checkpoint stops before them
    if stopped is not None:
        raise stopped


async def _put_rows(
    writer: BatchWriter,
    rows: Iterator[Row],
    watermark: Watermark,
    rejects: Rejects,
    state: _LoadState,
    key: tuple[KeyAttribute, ...],
    part: Part | None = None,
) -> None:
    names = [attribute.name for attribute in key]
    position = 0
    for row in rows:
        state.read_offset = row.end
        state.rows += 1
        if state.rows % _YIELD_EVERY == 0:
            # writer.put only waits when its buffer is full: rows that are rejected, or that
            # keep replacing the same few keys, would otherwise starve the checkpoint, the
            # progress display and Ctrl-C until the end of the file.
            await asyncio.sleep(0)
        error = row.error or "invalid row"
        identity = None
        if row.item is not None:
            try:
                # The writer's own key identity: 1 and 1.0 are one key, 10**28 + 1 and + 2
                # two.
                identity = key_identity(encode_key({n: row.item[n] for n in names}), names)
            except (ValueError, TypeError) as exc:  # InvalidItem: a key number out of range
                error = _reason(exc)
        if row.item is None or identity is None:
            # A row with no valid key belongs to no part by hash: part 0 reports it, so
            # that the parts together report it once.
            if part is None or part.index == 0:
                rejects.add(row.line, error, row.text)
            watermark.settled(row)
            continue
        if part is not None and not part.holds(identity):
            watermark.settled(row)  # another part's row
            continue
        try:
            await writer.put(row.item)
        except (ValueError, TypeError) as exc:  # InvalidItem, or text orjson cannot write
            rejects.add(row.line, _reason(exc), row.text)
            watermark.settled(row)
            writer.rejected.clear()  # reported here; the writer need not keep them
        else:
            watermark.sent(position, row, identity)
        position += 1


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    path = getattr(exc, "path", "")
    if reason is None:
        return str(exc)
    # The writer prefixes the input position ("[17].price"); the row's line says that.
    path = path[path.find("]") + 1 :].lstrip(".") if path.startswith("[") else path
    return f"{path}: {reason}" if path else str(reason)


async def _salvage(
    db: Client,
    table: Table,
    watermark: Watermark,
    rejects: Rejects,
    state: _LoadState,
    concurrency: int,
) -> None:
    # A failed row that a later row of its key replaced must not be written after it.
    watermark.acknowledged(watermark.replaced())
    slots = asyncio.Semaphore(concurrency)

    async def one(position: int, row: Row) -> None:
        assert row.item is not None  # only rows with an item are sent
        async with slots:
            try:
                await table.put(row.item)
            except ValidationError as exc:
                rejects.add(row.line, f"refused by DynamoDB: {exc}", row.text)
            except AsyncDynError:
                return  # still unwritten: the checkpoint stops before it
            else:
                state.salvaged += 1
            watermark.acknowledged([position])

    async with asyncio.TaskGroup() as group:
        for position, row in watermark.outstanding():
            group.create_task(one(position, row))


# ---------------------------------------------------------------------------- progress


@contextlib.contextmanager
def _progress(
    console: Console, what: str, total: int | None, off: bool
) -> Iterator[Callable[[int, dict[str, Any]], None]]:
    """A progress display on stderr; yields ``show(completed, figures)``. Off when stderr is
    not a terminal: a log gets the summary line, not frames of a bar."""
    if off or not console.is_terminal:
        yield lambda completed, figures: None
        return
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    started = time.monotonic()
    progress: Progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[items]:,} items ({task.fields[rate]:,.0f}/s)"),
        TextColumn(
            "retries {task.fields[retries]:,}  throttles {task.fields[throttles]:,}"
            "  rejected {task.fields[rejected]:,}"
        ),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    )
    zero: dict[str, Any] = {"items": 0, "rate": 0.0, "retries": 0, "throttles": 0, "rejected": 0}
    task: TaskID = progress.add_task(
        what, total=total, items=0, rate=0.0, retries=0, throttles=0, rejected=0
    )

    def show(completed: int, figures: dict[str, Any]) -> None:
        elapsed = time.monotonic() - started
        rate = figures["items"] / elapsed if elapsed > 0 else 0.0
        progress.update(task, completed=completed, **{**zero, **figures, "rate": rate})

    with progress:
        yield show


# ---------------------------------------------------------------------------- export


def _export_command(args: argparse.Namespace, console: Console) -> int:
    _split_checked(args)
    if args.native is not None:
        return _run(native_export(args, console))
    if args.check:
        return _run(check_export(args, console))
    return _run(export(args, console))


async def export(
    args: argparse.Namespace, console: Console, *, client: Client | None = None
) -> int:
    """``asyncdyn export``; ``client`` replaces the one built from the arguments (tests)."""
    if args.format not in ("jsonl", "ddb-json"):
        raise InputError(f"--format {args.format} is a format of --native exports")
    part: Part | None = args.part
    if part is not None and args.out is None:
        raise InputError("--part needs --out (each part writes its own file)")
    line = json_line if args.format == "jsonl" else ddb_json_line
    async with contextlib.AsyncExitStack() as stack:
        # Decimal for every number: exact digits, and no int too wide for JSON encoding.
        db = await _open(stack, args, client, numbers="decimal")
        table = db.table(args.table)
        description = await table.describe()
        estimate = description.get("ItemCount") or None
        out_path: Path | None = args.out if part is None else part.path(args.out)
        temporary = None if out_path is None else out_path.with_name(out_path.name + ".part")
        try:
            out = sys.stdout.buffer if temporary is None else temporary.open("wb")
        except OSError as exc:
            raise InputError(f"cannot write {temporary}: {exc.strerror}") from None
        started = time.monotonic()
        count = 0
        try:
            with _progress(console, "exporting", estimate, args.no_progress) as show:
                items = table.scan(
                    segments=args.segments,
                    part=None if part is None else (part.index, part.count),
                )
                async with contextlib.aclosing(items):
                    shown = started
                    async for item in items:
                        out.write(line(item))
                        count += 1
                        now = time.monotonic()
                        if now - shown >= _REFRESH_EVERY:
                            show(count, _export_figures(db, count))
                            shown = now
                show(count, _export_figures(db, count))
            out.flush()
        except BrokenPipeError:
            # The reader went away (`| head`): not an error of ours; keep Python's exit
            # flush from failing on the closed pipe.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_OK
        except BaseException:
            if temporary is not None:
                temporary.unlink(missing_ok=True)  # no half export left behind
            raise
        finally:
            if out is not sys.stdout.buffer:
                out.close()
        if temporary is not None and out_path is not None:
            os.replace(temporary, out_path)  # a failed export never leaves a complete-looking file
        if part is not None and out_path is not None:
            segments = part.segments(args.segments)
            ExportRecord(
                table=args.table,
                part=part.label,
                first_segment=segments.start,
                segments=len(segments),
                total_segments=part.count * args.segments,
                items=count,
                output=out_path.name,
            ).save(_export_record_path(out_path))
        elapsed = time.monotonic() - started
        rate = count / elapsed if elapsed > 0 else 0.0
        where = "standard output" if out_path is None else str(out_path)
        console.print(
            f"{args.table}: {count:,} items exported to {where} in {elapsed:.1f} s "
            f"({rate:,.0f} items/s, {args.segments} segments"
            f"{'' if part is None else f' of {part.count * args.segments}, part {part}'})"
        )
        return EXIT_OK


def _export_figures(db: Client, count: int) -> dict[str, Any]:
    stats = db.stats()
    return {"items": count, "retries": stats.retries, "throttles": stats.throttles}


# ---------------------------------------------------------------------------- native


def _when(text: str | None, flag: str) -> datetime:
    if text is None:
        raise InputError(f"--incremental needs {flag} (an ISO-8601 time with a zone)")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{flag} {text!r} is not an ISO-8601 time") from None
    if value.tzinfo is None:
        raise InputError(f"{flag} {text!r} has no time zone: add Z or +00:00")
    return value


def _native_progress(console: Console, what: str, off: bool) -> Callable[[Any], None]:
    """A progress line per state DescribeExport / DescribeImport reports: when it changes,
    and at least once a minute while it does not (an export runs for minutes to hours)."""
    started = time.monotonic()
    last: list[Any] = ["", 0.0]

    def show(state: Any) -> None:
        figures = (
            f"{state.imported:,} imported, {state.processed:,} processed, {state.errors:,} errors"
            if isinstance(state, NativeImport)
            else f"{state.item_count or 0:,} items"
        )
        line = f"{what}: {state.status}, {figures}"
        now = time.monotonic()
        if not off and (line != last[0] or now - last[1] >= _HEARTBEAT):
            console.print(f"{line} ({now - started:.0f} s)")
            last[:] = [line, now]

    return show


async def native_export(
    args: argparse.Namespace, console: Console, *, client: Client | None = None
) -> int:
    """``asyncdyn export --native s3://bucket/prefix``: ExportTableToPointInTime, waited for,
    then (``--download``) the exported items read back from S3 into JSON lines."""
    s3_format: ExportFormat = "ION" if args.format == "ION" else "DYNAMODB_JSON"
    if args.download is not None and s3_format == "ION":
        raise InputError("--download reads DYNAMODB_JSON exports only (not --format ION)")
    if args.part is not None or args.check:
        raise InputError("--part and --check split a scan export; a --native one is DynamoDB's")
    incremental = None
    if args.incremental:
        try:
            incremental = IncrementalPeriod(
                _when(args.since, "--from"), _when(args.until, "--to"), args.view
            )
        except ConfigurationError as exc:
            raise InputError(str(exc)) from None
    elif args.since or args.until:
        raise InputError("--from and --to go with --incremental")
    line = ddb_json_line if args.format == "ddb-json" else json_line
    async with contextlib.AsyncExitStack() as stack:
        db = await _open(stack, args, client, numbers="decimal")
        table = db.table(args.table)
        started = time.monotonic()
        export = await table.export_to_s3(
            args.native,
            format=s3_format,
            incremental=incremental,
            enable_recovery=args.enable_pitr,
            on_progress=_native_progress(console, f"export of {args.table}", args.no_progress),
        )
        console.print(
            f"{args.table}: {export.item_count or 0:,} items exported to {args.native} in "
            f"{time.monotonic() - started:.1f} s ({export.arn})"
        )
        if args.download is None:
            return EXIT_OK
        out_path: Path = args.download
        temporary = out_path.with_name(out_path.name + ".part")
        count = 0
        started = time.monotonic()
        try:
            with temporary.open("wb") as out:
                async with table.s3(concurrency=min(args.concurrency, 16)) as s3:
                    batches = s3.export_items(export)
                    async with contextlib.aclosing(batches):
                        async for batch in batches:
                            out.writelines(line(item) for item in batch)
                            count += len(batch)
        except OSError as exc:
            raise InputError(f"cannot write {temporary}: {exc.strerror}") from None
        except BaseException:
            temporary.unlink(missing_ok=True)  # no half download left behind
            raise
        os.replace(temporary, out_path)
        console.print(
            f"{args.table}: {count:,} items downloaded to {out_path} in "
            f"{time.monotonic() - started:.1f} s"
        )
        return EXIT_OK


async def native_load(
    args: argparse.Namespace, console: Console, *, client: Client | None = None
) -> int:
    """``asyncdyn load --native s3://bucket/prefix``: ImportTable into a new table."""
    if args.file is not None:
        raise InputError("give FILE or --native, not both (upload FILE to S3 for ImportTable)")
    if args.part is not None or args.check or args.resume:
        raise InputError("--part, --check and --resume are for loads of FILE, not --native")
    if not args.create_table:
        raise InputError("--native creates the table: give its key with --create-table PK:S[,SK:N]")
    spec = parse_key_spec(args.create_table)
    formats: dict[str | None, ImportFormat] = {
        None: "DYNAMODB_JSON",
        "ddb-json": "DYNAMODB_JSON",
        "csv": "CSV",
        "ion": "ION",
    }
    if args.format not in formats:
        raise InputError(
            f"ImportTable reads ddb-json, csv or ion, not {args.format}: convert it, or load "
            "it from a file without --native"
        )
    partition, *sort = spec
    async with contextlib.AsyncExitStack() as stack:
        db = await _open(stack, args, client)
        started = time.monotonic()
        job = await db.table(args.table).import_from_s3(
            args.native,
            partition_key=(partition.name, partition.type),
            sort_key=(sort[0].name, sort[0].type) if sort else None,
            format=formats[args.format],
            compression=args.compression,
            on_progress=_native_progress(console, f"import into {args.table}", args.no_progress),
        )
    console.print(
        f"{args.table}: {job.imported:,} items imported, {job.processed:,} processed, "
        f"{job.errors:,} errors in {time.monotonic() - started:.1f} s ({job.status}, {job.arn})"
    )
    if job.errors:
        _error(console, f"{job.errors:,} rows were not imported: {job.failure or 'see CloudWatch'}")
        return EXIT_REJECTED
    return EXIT_OK


# ---------------------------------------------------------------------------- --check


def _digest(identity: tuple[str, ...]) -> bytes:
    """A key's identity in 16 bytes: the check keeps one per distinct key of the input."""
    digest = hashlib.blake2b(digest_size=16)
    for value in identity:
        data = value.encode("utf-8", "surrogatepass")
        # Length-prefixed, as part_of_key: a string key may hold the separator itself.
        digest.update(len(data).to_bytes(4, "big"))
        digest.update(data)
    return digest.digest()


def _rejected_lines(path: Path) -> set[int]:
    lines: set[int] = set()
    if path.exists():
        for raw in path.read_bytes().splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                lines.add(int(orjson.loads(raw)["line"]))
    return lines


async def check_load(
    args: argparse.Namespace, console: Console, *, client: Client | None = None
) -> int:
    """``asyncdyn load FILE --check --parts n``: every part's checkpoint covers the whole
    file, and the table holds one item per distinct key the parts wrote; otherwise exit 7
    naming the part."""
    if args.parts is None:
        raise InputError("--check needs --parts N: how many parts the load was split into")
    path, fmt = _load_input(args)
    csv_types = parse_csv_types(args.csv_types)
    parts = [Part(i, args.parts) for i in range(args.parts)]
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    problems: list[str] = []
    with stream:
        size = os.fstat(stream.fileno()).st_size
        rejected: set[int] = set()
        for part in parts:
            checkpoint_path, rejects_path = _part_files(path, part)
            if not checkpoint_path.exists():
                problems.append(
                    f"part {part}: no checkpoint {checkpoint_path} (it never ran here; bring "
                    "its checkpoint and rejects files next to the input)"
                )
                continue
            try:
                checkpoint = Checkpoint.load(checkpoint_path)
                checkpoint.verify(stream, args.table, fmt, part.label)
            except InputError as exc:
                problems.append(f"part {part}: {exc}")
                continue
            if checkpoint.offset != size:
                problems.append(
                    f"part {part}: stopped at line {checkpoint.line:,} (byte "
                    f"{checkpoint.offset:,} of {size:,}); rerun it with --part {part} --resume"
                )
            rejected |= _rejected_lines(rejects_path)
        async with contextlib.AsyncExitStack() as stack:
            db = await _open(stack, args, client)
            key = await _table_key(db, args.table, None, console)
            names = [attribute.name for attribute in key]
            lines = [0] * len(parts)
            keys: list[set[bytes]] = [set() for _ in parts]
            bad = 0
            for row in read_rows(stream, fmt, key, csv_types=csv_types):
                identity = None
                if row.item is not None:
                    with contextlib.suppress(ValueError, TypeError):
                        identity = key_identity(encode_key({n: row.item[n] for n in names}), names)
                if identity is None:
                    bad += 1
                    continue
                index = part_of_key(identity, len(parts))
                lines[index] += 1
                if row.line not in rejected:
                    keys[index].add(_digest(identity))
            expected = sum(len(k) for k in keys)
            held = await db.table(args.table).count()
            if held != expected and not problems:
                # Which part's keys are missing: read each part's keys back (only now, on a
                # mismatch, as it costs a read of every key).
                rows = read_rows(stream, fmt, key, csv_types=csv_types)
                missing = await _missing_keys(db, args.table, rows, names, rejected, len(parts))
                for part in parts:
                    lost = missing[part.index]
                    if lost:
                        problems.append(
                            f"part {part}: {len(lost):,} of its {len(keys[part.index]):,} keys "
                            f"are not in table {args.table} (first: {lost[0]}); rerun it "
                            f"without --resume"
                        )
        for part in parts:
            console.print(
                f"part {part}: {lines[part.index]:,} rows, {len(keys[part.index]):,} distinct "
                "keys written"
            )
        console.print(
            f"{path}: {sum(lines) + bad:,} rows ({bad:,} without a valid key), {expected:,} "
            f"distinct keys written; table {args.table}: {held:,} items"
        )
        if held != expected and not problems:
            problems.append(
                f"table {args.table} holds {held:,} items, the parts wrote {expected:,} distinct "
                "keys" + (" (another writer, or items deleted since?)" if held > expected else "")
            )
    for problem in problems:
        _error(console, problem)
    return EXIT_MISMATCH if problems else EXIT_OK


async def _missing_keys(
    db: Client,
    table: str,
    rows: Iterator[Row],
    names: list[str],
    rejected: set[int],
    parts: int,
) -> list[list[dict[str, Any]]]:
    """Per part, the keys of the written input rows that the table does not hold."""
    wanted: list[dict[bytes, dict[str, Any]]] = [{} for _ in range(parts)]
    for row in rows:
        if row.item is None or row.line in rejected:
            continue
        key = {n: row.item[n] for n in names}
        with contextlib.suppress(ValueError, TypeError):
            identity = key_identity(encode_key(key), names)
            wanted[part_of_key(identity, parts)].setdefault(_digest(identity), key)
    missing: list[list[dict[str, Any]]] = []
    for keys in wanted:
        listed = list(keys.values())
        found = await db.table(table).batch_get(listed, attributes=names)
        missing.append([k for k, item in zip(listed, found, strict=True) if item is None])
    return missing


def _export_record_path(out: Path) -> Path:
    return out.with_name(out.name + ".checkpoint.json")


async def check_export(
    args: argparse.Namespace, console: Console, *, client: Client | None = None
) -> int:
    """``asyncdyn export --out FILE --check --parts n``: every part wrote its file, the parts'
    segments cover the scan once, no key is in two files, and the items add up to the
    table's count; otherwise exit 7 naming the part."""
    if args.parts is None:
        raise InputError("--check needs --parts N: how many parts the export was split into")
    if args.out is None:
        raise InputError("--check needs --out FILE: the name the parts' files were made from")
    parts = [Part(i, args.parts) for i in range(args.parts)]
    problems: list[str] = []
    covered: dict[int, str] = {}
    totals: set[int] = set()
    seen: set[bytes] = set()
    items = 0
    async with contextlib.AsyncExitStack() as stack:
        db = await _open(stack, args, client, numbers="decimal")
        key = await _table_key(db, args.table, None, console)
        names = [attribute.name for attribute in key]
        for part in parts:
            out = part.path(args.out)
            record_path = _export_record_path(out)
            if not record_path.exists():
                problems.append(f"part {part}: no {record_path} (it never finished here)")
                continue
            record = ExportRecord.load(record_path)
            if record.table != args.table or record.part != part.label:
                problems.append(f"part {part}: {record_path} is {record.part} of {record.table}")
                continue
            totals.add(record.total_segments)
            for segment in range(record.first_segment, record.first_segment + record.segments):
                if segment in covered:
                    problems.append(f"part {part}: segment {segment} also in {covered[segment]}")
                covered[segment] = str(part)
            try:
                data = out.read_bytes().splitlines()
            except OSError as exc:
                problems.append(f"part {part}: cannot read {out}: {exc.strerror}")
                continue
            rows = [line for line in data if line.strip()]
            if len(rows) != record.items:
                problems.append(f"part {part}: {out} has {len(rows):,} items, not {record.items:,}")
            twice = 0
            for raw in rows:
                item = orjson.loads(raw)
                item = item.get("Item", item) if args.format == "ddb-json" else item
                digest = hashlib.blake2b(
                    orjson.dumps([item.get(n) for n in names]), digest_size=16
                ).digest()
                twice += digest in seen
                seen.add(digest)
            if twice:
                problems.append(f"part {part}: {twice:,} items also in another part's file")
            items += len(rows)
            console.print(f"part {part}: {len(rows):,} items in {out}")
        held = await db.table(args.table).count()
    if len(totals) > 1:
        problems.append(f"the parts split the scan differently: {sorted(totals)} segments")
    elif totals and not problems and set(covered) != set(range(totals.pop())):
        problems.append("the parts' segments do not cover the whole scan")
    console.print(f"{args.table}: {items:,} items in {len(parts)} parts; the table holds {held:,}")
    if held != items and not problems:
        problems.append(f"table {args.table} holds {held:,} items, the parts exported {items:,}")
    for problem in problems:
        _error(console, problem)
    return EXIT_MISMATCH if problems else EXIT_OK


# ---------------------------------------------------------------------------- local


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _local_command(args: argparse.Namespace, console: Console) -> int:
    from rich.markup import escape

    from . import local

    try:
        server = local.start(args.engine, port=args.port)
    except local.NotInstalled as exc:
        # Something to install, not a DynamoDB or network problem (exit 3).
        _error(console, str(exc))
        return EXIT_ERROR
    except (RuntimeError, ValueError) as exc:
        _error(console, str(exc))
        return EXIT_DYNAMODB
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # Inside the try from the first moment the URL is out: a client may read it and stop
    # the server at once.
    try:
        with server:
            url = server.endpoint_url
            sys.stdout.write(url + "\n")
            sys.stdout.flush()
            # No credentials in the example: on loopback Client signs with local ones when
            # none are configured.
            console.print(
                f"[bold]{server.kind}[/] serves DynamoDB at [bold]{url}[/] (Ctrl-C stops it)\n"
                f"  asyncdyn load items.jsonl --table Items --create-table PK:S "
                f"--endpoint-url {url}\n"
                f"  Client(region={escape(repr('us-east-1'))}, endpoint_url={escape(repr(url))})"
            )
            while server.running:
                time.sleep(0.5)
            _error(console, f"{server.kind} exited unexpectedly:\n{server.log_tail()}")
            return EXIT_DYNAMODB
    except KeyboardInterrupt:
        console.print(f"stopped {server.kind}")
        return EXIT_OK
    finally:
        signal.signal(signal.SIGTERM, previous)


def _design_check_command(args: argparse.Namespace, console: Console) -> int:
    from .model.design import load_design

    try:
        design = load_design(args.design)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    described = None
    if args.table or args.endpoint_url:
        name = args.table or design.name

        async def describe() -> dict[str, Any]:
            async with _client(args) as db:
                return await db.table(name).describe()

        try:
            described = run(describe())
        except TableNotFound:
            _error(console, f"table {name!r} does not exist")
            return EXIT_DYNAMODB
    report = design.check(described)
    if args.output == "json":
        sys.stdout.write(report.to_json() + "\n")
    elif args.output in ("markdown", "md"):
        sys.stdout.write(report.to_markdown() + "\n")
    else:
        sys.stdout.write(report.to_text() + "\n")
    return EXIT_OK if report.ok else EXIT_DESIGN


if __name__ == "__main__":
    sys.exit(main())
