"""Start and stop an embedded DynamoDB-compatible server on 127.0.0.1.

Two servers are supported, each run in a child process:

* ``moto`` -- moto's WSGI app served by werkzeug, single-threaded (a threaded moto
  loses concurrent updates to the same item).  Supports transactions, TTL and Streams.
  :meth:`LocalServer.reset` wipes every table.
* ``dynalite`` -- the dynalite npm package on Node.js: in-memory, stricter validation
  and faster, but no transactions/TTL/Streams and no reset, so callers must use unique
  table names.  Install it with :func:`install_dynalite`.

The child never outlives its parent: it is started with its stdin connected to a pipe
the parent never writes to, and exits as soon as it reads EOF there.  The kernel
closes that pipe however the parent ends (normal exit, exception, ``SIGKILL``), and
unlike ``prctl(PR_SET_PDEATHSIG)`` this does not depend on which *thread* started
the server and works on every POSIX system.  (Only the parent holds the pipe's write
end -- other subprocesses are started with ``close_fds`` -- but a child made with a bare
``os.fork()`` inherits it and keeps the server alive until that child exits too.)
Servers still running at interpreter exit are stopped by a :func:`weakref.finalize`
hook.

Both servers accept any SigV4-shaped request without checking the signature; moto
routes on the credential scope of the ``Authorization`` header (``.../dynamodb/...``),
and dynalite insists on an ``X-Amz-Date`` (or ``Date``) header.  moto answers each
request on its own connection (HTTP/1.0, see :func:`start_moto`).

POSIX only (the servers are test and benchmark tools).  Running
``python -m asyncdyn.local moto --port 0`` serves moto in the foreground and
prints ``LISTENING <port>`` once it accepts connections.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import weakref
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = [
    "LocalServer",
    "NotInstalled",
    "dynalite_path",
    "install_dynalite",
    "main",
    "moto_installed",
    "start",
    "start_dynalite",
    "start_moto",
]

HOST = "127.0.0.1"
_LISTENING = "LISTENING"
_DYNALITE_READY = "Dynalite listening at"
_DYNALITE_SPEC = "dynalite@4"
#: How many fresh ports :func:`start_dynalite` tries when it picked the port itself.
_DYNALITE_PORT_ATTEMPTS = 3
#: werkzeug's default listen backlog (128) overflows under benchmark fan-out; an
#: overflowing backlog silently drops SYNs and turns into 1 s client-side stalls.
_MOTO_BACKLOG = 1024
_STOP_TIMEOUT = 5.0
# What moto's server needs beyond moto itself (its "server" extra): without them the child
# would die on an ImportError that the parent could only report as a failed start.
_MOTO_MODULES = ("moto", "flask", "flask_cors", "werkzeug")
_NO_MOTO = (
    "moto's server is not installed: pip install 'asyncdyn[local]' (it pins moto's boto3 to "
    "the botocore that aiobotocore accepts; a bare `pip install moto` may break that pin)"
)
_NO_DYNALITE = (
    "dynalite is not installed: run `python -c 'import asyncdyn.local as l; "
    "l.install_dynalite()'` (needs Node.js and npm), or set ASYNCDYN_DYNALITE to its cli.js"
)
# Loopback only: an http_proxy in the environment must not capture these requests.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# Runs dynalite's CLI unchanged (argv[1] is cli.js, argv[2:] its flags) after arming an
# exit on stdin EOF, so dynalite dies with its parent like the moto child does.
_NODE_BOOTSTRAP = (
    "const die = () => process.exit(0);"
    "process.stdin.on('end', die); process.stdin.on('error', die); process.stdin.resume();"
    "require(process.argv[1]);"
)

# A request moto routes to its DynamoDB backend: it picks the backend from the SigV4
# credential scope and never verifies the signature.
_WARMUP_HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "Authorization": (
        "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=host, Signature=0"
    ),
}


class LocalServer:
    """A DynamoDB-compatible server running in a child process on 127.0.0.1.

    Use it as a context manager, or call :meth:`stop`; a server still running when
    the interpreter exits is stopped then.
    """

    kind: str
    """``"moto"`` or ``"dynalite"``."""
    port: int
    """The TCP port the server listens on."""
    endpoint_url: str
    """``http://127.0.0.1:<port>``, for a client's ``endpoint_url``."""
    pid: int
    """The process id of the server process."""
    supports_reset: bool = False
    """Whether :meth:`reset` is available (moto only)."""

    def __init__(self, kind: str, process: subprocess.Popen[bytes], port: int, log: IO[bytes]):
        self.kind = kind
        self.port = port
        self.endpoint_url = f"http://{HOST}:{port}"
        self.pid = process.pid
        self._process = process
        self._log = log
        self._last_cpu = 0.0
        self._finalizer = weakref.finalize(self, _shutdown, process, log)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.kind} {self.endpoint_url} pid={self.pid} {state}>"

    @property
    def running(self) -> bool:
        """True until the server process has exited."""
        return self._finalizer.alive and self._process.poll() is None

    def stop(self) -> None:
        """Terminate the server, wait for it (killing it after a timeout), close its pipes.

        Idempotent.
        """
        if self._finalizer.alive:
            self._last_cpu = max(self._last_cpu, self._read_cpu())
            self._finalizer()

    def reset(self) -> None:
        """Delete every table on the server.

        Only moto supports this; on dynalite it raises :class:`RuntimeError`, so give
        every test its own table name instead.
        """
        raise RuntimeError(
            f"{self.kind} has no reset: use unique table names per test instead "
            "(check LocalServer.supports_reset)"
        )

    def cpu_seconds(self) -> float:
        """User plus system CPU seconds the server process has used so far.

        Reads ``/proc/<pid>/stat``; returns 0.0 where ``/proc`` is unavailable.  After
        :meth:`stop` it returns the last figure observed before the process ended.
        """
        if self._finalizer.alive:
            self._last_cpu = max(self._last_cpu, self._read_cpu())
        return self._last_cpu

    def log_tail(self, limit: int = 4000) -> str:
        """The last ``limit`` characters the server wrote to stdout/stderr."""
        return _tail(self._log, limit) if not self._log.closed else ""

    def _read_cpu(self) -> float:
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return 0.0
        # The command name (field 2) is parenthesised and may contain spaces, so split
        # after its closing parenthesis: utime/stime are fields 14/15 overall.
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class NotInstalled(RuntimeError):
    """The server asked for is not installed; the message says what to install.

    A ``RuntimeError`` like every other failure to start, so that callers catching that keep
    working; its own class so that a command line can tell "install something" from "the
    server failed"."""


def moto_installed() -> bool:
    """Whether moto's server (the ``local`` extra) can be imported, without importing it."""
    return all(importlib.util.find_spec(name) is not None for name in _MOTO_MODULES)


class _MotoServer(LocalServer):
    supports_reset = True

    def reset(self) -> None:
        """Delete every table (and all other moto state) via ``POST /moto-api/reset``."""
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/reset", data=b"", method="POST"
        )
        with _NO_PROXY.open(request, timeout=30) as response:
            response.read()
            if response.status != 200:
                raise RuntimeError(f"moto reset answered HTTP {response.status}")


class _DynaliteServer(LocalServer):
    pass


def _shutdown(process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    # Module-level so the weakref finalizer holds no reference to the server object.
    try:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        log.close()


def _tail(log: IO[bytes], limit: int = 4000) -> str:
    # pread/fstat leave the file offset alone: the child's stdout/stderr share this
    # open file description, so moving the offset would make the child overwrite.
    fd = log.fileno()
    size = os.fstat(fd).st_size
    start = max(0, size - limit)
    return os.pread(fd, size - start, start).decode("utf-8", "replace")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _spawn(argv: list[str], *, handshake: bool) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    """Start ``argv`` with stdin on a pipe and its output in an anonymous temp file.

    With ``handshake`` stdout is a pipe instead, for the child to report its port.
    A file rather than a pipe for the output: nobody drains it while the server runs,
    and a full pipe would block the server.
    """
    log = tempfile.TemporaryFile()
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE if handshake else log,
            stderr=log,
            # Own session: a Ctrl-C in the terminal reaches the parent, which then stops
            # the server in order, instead of killing the server mid-teardown.
            start_new_session=True,
            close_fds=True,
        )
    except BaseException:
        log.close()
        raise
    return process, log


def _fail(kind: str, process: subprocess.Popen[bytes], log: IO[bytes], why: str) -> RuntimeError:
    """Stop a child that failed to start; return the error to raise, with its output."""
    tail = ""
    with contextlib.suppress(ValueError, OSError):
        tail = _tail(log)
    _shutdown(process, log)
    detail = f"\n--- {kind} output (tail) ---\n{tail}" if tail.strip() else ""
    return RuntimeError(f"{kind} server failed to start: {why}{detail}")


def _wait_accepting(
    kind: str, process: subprocess.Popen[bytes], log: IO[bytes], port: int, deadline: float
) -> None:
    while not _accepts(port):
        if process.poll() is not None:
            raise _fail(kind, process, log, f"exited with status {process.returncode}")
        if time.monotonic() > deadline:
            raise _fail(kind, process, log, f"port {port} not accepting connections in time")
        time.sleep(0.02)


# --------------------------------------------------------------------------- moto


def start_moto(*, port: int = 0, timeout: float = 30.0) -> LocalServer:
    """Start moto's server (single-threaded werkzeug) on 127.0.0.1.

    With ``port=0`` the child binds a free port itself and reports it, so there is no
    race with other processes.  The server handles one request at a time and closes
    each connection after answering (HTTP/1.0): with keep-alive, one idle pooled
    connection would block every other client.  Raises :class:`RuntimeError` (with
    the child's output) if it dies or is not accepting connections within ``timeout``
    seconds; :class:`NotInstalled` if moto's server is not installed.
    """
    if not moto_installed():
        raise NotInstalled(_NO_MOTO)
    # Run this file as a script rather than ``-m asyncdyn.local``: the child then does
    # not import the asyncdyn package (and the HTTP client stack it pulls in); -P keeps
    # this file's folder off sys.path so its sibling modules cannot shadow others.
    argv = [
        sys.executable,
        "-P",
        str(Path(__file__).resolve()),
        "moto",
        "--port",
        str(port),
        "--exit-on-stdin-eof",
    ]
    process, log = _spawn(argv, handshake=True)
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    line = _read_line(process.stdout, deadline)
    process.stdout.close()
    if not line.startswith(_LISTENING + " "):
        if process.poll() is None and time.monotonic() >= deadline:
            raise _fail("moto", process, log, f"no {_LISTENING} line within {timeout:g}s")
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(_STOP_TIMEOUT)
        raise _fail("moto", process, log, f"exited with status {process.returncode}")
    bound = int(line.split()[1])
    _wait_accepting("moto", process, log, bound, deadline)
    return _MotoServer("moto", process, bound, log)


def _read_line(stream: IO[bytes], deadline: float) -> str:
    """Read one line from a pipe, giving up (returning what arrived) at the deadline."""
    fd = stream.fileno()
    os.set_blocking(fd, False)
    data = b""
    while b"\n" not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], min(0.1, max(0.0, deadline - time.monotonic())))
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            continue
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0].decode("ascii", "replace").strip()


def _serve_moto(port: int, *, exit_on_stdin_eof: bool) -> None:
    """Serve moto in this process until killed (the child side of :func:`start_moto`)."""
    # moto prints diagnostics to stdout; give the handshake a private copy of the
    # original stdout and send everything else written there to stderr.
    handshake = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    if exit_on_stdin_eof:
        threading.Thread(target=_exit_on_stdin_eof, name="stdin-eof", daemon=True).start()

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    class QuietHandler(MotoRequestHandler):
        # One log line per request costs real CPU in a single-threaded server and
        # floods the output; errors are still logged by log_error().
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

    app = DomainDispatcherApplication(create_backend_app)
    _warm_up_moto(app)
    # threaded=False: a threaded moto loses concurrent updates.  It also keeps
    # werkzeug's HTTP/1.0 (one request per connection), so one idle keep-alive
    # connection cannot starve the others on this single thread.
    server = make_server(HOST, port, app, threaded=False, request_handler=QuietHandler)
    server.socket.listen(_MOTO_BACKLOG)
    handshake.write(f"{_LISTENING} {server.port}\n")
    handshake.close()
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


def _warm_up_moto(app: Callable[..., Any]) -> None:
    # moto builds each backend on its first request (~0.5 s for DynamoDB); pay that
    # before reporting ready so the first real request is not an outlier.
    from werkzeug.test import Client

    client = Client(app)
    for target in ("DynamoDB_20120810.ListTables", "DynamoDBStreams_20120810.ListStreams"):
        client.post("/", headers={**_WARMUP_HEADERS, "X-Amz-Target": target}, data=b"{}")
    client.post("/moto-api/reset")


def _exit_on_stdin_eof() -> None:
    try:
        while os.read(0, 4096):
            pass
    finally:
        os._exit(0)


# ----------------------------------------------------------------------- dynalite


def _node_dir() -> Path:
    explicit = os.environ.get("ASYNCDYN_NODE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path.home() / ".cache" / "asyncdyn" / "node"


def dynalite_path() -> str | None:
    """The dynalite CLI script, or None if dynalite or Node.js is not installed.

    Looks at ``$ASYNCDYN_DYNALITE`` (an explicit path to ``cli.js``) first, then in
    ``<dir>/node_modules`` where ``<dir>`` is ``$ASYNCDYN_NODE_DIR`` or
    ``~/.cache/asyncdyn/node`` (where :func:`install_dynalite` puts it).
    """
    if shutil.which("node") is None:
        return None
    explicit = os.environ.get("ASYNCDYN_DYNALITE")
    if explicit:
        path = Path(explicit).expanduser()
        return str(path) if path.is_file() else None
    modules = _node_dir() / "node_modules"
    for candidate in (modules / "dynalite" / "cli.js", modules / ".bin" / "dynalite"):
        if candidate.is_file():
            return str(candidate.resolve())
    return None


def install_dynalite(cache_dir: str | None = None) -> str:
    """``npm install dynalite@4`` into ``cache_dir`` and return the CLI path.

    ``cache_dir`` defaults to ``$ASYNCDYN_NODE_DIR`` or ``~/.cache/asyncdyn/node``.
    Raises :class:`RuntimeError` if npm is missing or the install fails.
    """
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm not found: install Node.js (>= 18) to use dynalite")
    target = Path(cache_dir).expanduser() if cache_dir else _node_dir()
    target.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(target), _DYNALITE_SPEC],
        capture_output=True,
        text=True,
        check=False,
    )
    cli = target / "node_modules" / "dynalite" / "cli.js"
    if result.returncode != 0 or not cli.is_file():
        raise RuntimeError(
            f"npm install {_DYNALITE_SPEC} into {target} failed "
            f"(status {result.returncode}):\n{result.stderr[-4000:]}"
        )
    return str(cli)


def start_dynalite(*, port: int = 0, timeout: float = 30.0) -> LocalServer:
    """Start dynalite (in-memory, no table state delays) on 127.0.0.1.

    With ``port=0`` a free port is picked, retrying with another one a few times if
    something else grabs it first.  Raises :class:`RuntimeError` if dynalite is not
    installed, dies, or is not accepting connections within ``timeout`` seconds.
    """
    cli = dynalite_path()
    node = shutil.which("node")
    if cli is None or node is None:
        raise NotInstalled(_NO_DYNALITE)
    deadline = time.monotonic() + timeout
    attempts = _DYNALITE_PORT_ATTEMPTS if port == 0 else 1
    for attempt in range(attempts):
        chosen = port or _free_port()
        argv = [
            node,
            "-e",
            _NODE_BOOTSTRAP,
            cli,
            "--host",
            HOST,
            "--port",
            str(chosen),
            "--createTableMs",
            "0",
            "--deleteTableMs",
            "0",
            "--updateTableMs",
            "0",
        ]
        process, log = _spawn(argv, handshake=False)
        # Wait for dynalite's own "listening" line rather than just a connectable port:
        # if another process holds the port, connecting would succeed against *it*.
        while _DYNALITE_READY not in _tail(log):
            if process.poll() is not None:
                break
            if time.monotonic() > deadline:
                raise _fail("dynalite", process, log, f"not listening within {timeout:g}s")
            time.sleep(0.02)
        else:
            _wait_accepting("dynalite", process, log, chosen, deadline)
            return _DynaliteServer("dynalite", process, chosen, log)
        output = _tail(log)
        if "EADDRINUSE" in output and attempt + 1 < attempts:
            _shutdown(process, log)
            continue
        why = f"port {chosen} is in use" if "EADDRINUSE" in output else "exited"
        raise _fail("dynalite", process, log, f"{why} (status {process.returncode})")
    raise AssertionError("unreachable")


# -------------------------------------------------------------------------- both


def start(kind: str = "auto", **kw: Any) -> LocalServer:
    """Start a server of ``kind``: ``"moto"``, ``"dynalite"``, or ``"auto"``.

    ``"auto"`` picks dynalite when it is installed, else moto.  Keyword arguments go
    to :func:`start_moto` / :func:`start_dynalite`.  :class:`NotInstalled` (before any
    process is started) when the server asked for, or for ``"auto"`` neither, is installed.
    """
    if kind == "auto":
        if dynalite_path() is not None:
            kind = "dynalite"
        elif moto_installed():
            kind = "moto"
        else:
            raise NotInstalled(f"no local server is installed. {_NO_MOTO}. Or {_NO_DYNALITE}")
    if kind == "moto":
        return start_moto(**kw)
    if kind == "dynalite":
        return start_dynalite(**kw)
    raise ValueError(f"unknown local server kind {kind!r}: expected moto, dynalite or auto")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m asyncdyn.local``: serve moto in the foreground."""
    parser = argparse.ArgumentParser(
        prog="python -m asyncdyn.local", description="Serve moto's DynamoDB on 127.0.0.1."
    )
    parser.add_argument("kind", choices=["moto"])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="exit when stdin reaches EOF (how a parent process ties our lifetime to its own)",
    )
    args = parser.parse_args(argv)
    _serve_moto(args.port, exit_on_stdin_eof=args.exit_on_stdin_eof)
    return 0


if __name__ == "__main__":
    sys.exit(main())
