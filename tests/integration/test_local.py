"""The embedded local servers (asyncdyn.local), driven with raw HTTP requests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from asyncdyn import local

KINDS = ["moto", "dynalite"]
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    # Neither server checks the signature, but moto routes on the credential scope
    # and dynalite insists on a date header.
    "Authorization": (
        "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=host, Signature=abc"
    ),
    "X-Amz-Date": "20260101T000000Z",
}


def call(endpoint: str, operation: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        endpoint + "/",
        data=json.dumps(body or {}).encode(),
        headers={**HEADERS, "X-Amz-Target": f"DynamoDB_20120810.{operation}"},
        method="POST",
    )
    with NO_PROXY.open(request, timeout=30) as response:
        return json.loads(response.read())


def create_table(endpoint: str) -> str:
    name = f"test-local-{uuid.uuid4().hex[:12]}"
    call(
        endpoint,
        "CreateTable",
        {
            "TableName": name,
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )
    return name


def require(kind: str) -> None:
    """Skip (or fail under ASYNCDYN_REQUIRE_DYNALITE=1) when dynalite is missing."""
    if kind == "dynalite" and local.dynalite_path() is None:
        if os.environ.get("ASYNCDYN_REQUIRE_DYNALITE") == "1":
            pytest.fail("dynalite is not installed but ASYNCDYN_REQUIRE_DYNALITE=1")
        pytest.skip("dynalite is not installed")


def start(kind: str, **kw: Any) -> local.LocalServer:
    require(kind)
    return local.start(kind, **kw)


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # SO_REUSEADDR: connections the server closed linger in TIME_WAIT; only a listener
        # still holding the port should count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def process_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: fall back to signal 0 (which counts zombies as alive)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    # An orphan may linger as a zombie if the container's init does not reap it.
    return stat[stat.rindex(")") + 2] != "Z"


def wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# ------------------------------------------------------------- shared servers


def test_server_attributes(server: local.LocalServer) -> None:
    assert server.kind in KINDS
    assert server.endpoint_url == f"http://127.0.0.1:{server.port}"
    assert server.running
    assert process_alive(server.pid)
    assert server.supports_reset == (server.kind == "moto")


def test_list_tables(server: local.LocalServer) -> None:
    answer = call(server.endpoint_url, "ListTables")
    assert isinstance(answer["TableNames"], list)


def test_created_table_is_listed(server: local.LocalServer) -> None:
    name = create_table(server.endpoint_url)
    try:
        assert name in call(server.endpoint_url, "ListTables", {"Limit": 100})["TableNames"]
    finally:
        call(server.endpoint_url, "DeleteTable", {"TableName": name})


def test_cpu_seconds_grows_under_load(server: local.LocalServer) -> None:
    before = server.cpu_seconds()
    deadline = time.monotonic() + 20
    # CPU time is counted in clock ticks (usually 10 ms), so load until it moves.
    while server.cpu_seconds() <= before:
        assert time.monotonic() < deadline, "server CPU time did not grow"
        for _ in range(50):
            call(server.endpoint_url, "ListTables")
    assert server.cpu_seconds() > before


def test_reset_unsupported_on_dynalite(server: local.LocalServer) -> None:
    if server.kind == "moto":
        return  # resetting the shared moto would wipe other tests' tables
    with pytest.raises(RuntimeError, match="unique table names"):
        server.reset()


# ------------------------------------------------------------ private servers


def test_moto_reset_wipes_tables() -> None:
    with local.start_moto() as moto:
        name = create_table(moto.endpoint_url)
        assert call(moto.endpoint_url, "ListTables")["TableNames"] == [name]
        moto.reset()
        assert call(moto.endpoint_url, "ListTables")["TableNames"] == []


@pytest.mark.parametrize("kind", KINDS)
def test_stop_kills_process_and_frees_port(kind: str) -> None:
    srv = start(kind)
    assert srv.kind == kind
    call(srv.endpoint_url, "ListTables")
    used = srv.cpu_seconds()
    srv.stop()
    assert not srv.running
    assert not process_alive(srv.pid)
    assert port_is_free(srv.port)
    srv.stop()  # idempotent
    assert srv.cpu_seconds() >= used > 0 or not Path("/proc").is_dir()


@pytest.mark.parametrize("kind", KINDS)
def test_context_manager_stops(kind: str) -> None:
    with start(kind) as srv:
        call(srv.endpoint_url, "ListTables")
    assert not srv.running
    assert not process_alive(srv.pid)


@pytest.mark.parametrize("kind", KINDS)
def test_explicit_port(kind: str) -> None:
    port = local._free_port()
    with start(kind, port=port) as srv:
        assert srv.port == port
        call(srv.endpoint_url, "ListTables")


@pytest.mark.parametrize("kind", KINDS)
def test_explicit_port_in_use_is_an_error(kind: str) -> None:
    require(kind)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(RuntimeError, match="in use"):
            local.start(kind, port=port, timeout=15)


def test_dynalite_retries_when_picked_port_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    require("dynalite")
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        free = local._free_port
        ports = iter([taken])
        monkeypatch.setattr(local, "_free_port", lambda: next(ports, None) or free())
        with local.start_dynalite() as srv:
            assert srv.port != taken
            call(srv.endpoint_url, "ListTables")


CHILD = """
import sys, time
from asyncdyn import local
srv = local.start(sys.argv[1])
print(srv.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("kind", KINDS)
def test_server_dies_with_its_parent(kind: str) -> None:
    require(kind)
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CHILD), kind],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line.strip().isdigit(), parent.stderr.read() if parent.stderr else line
        pid = int(line)
        assert process_alive(pid)
        parent.kill()  # SIGKILL: no atexit, no finalizers
        parent.wait()
        assert wait_dead(pid), f"{kind} server {pid} outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for stream in (parent.stdout, parent.stderr):
            if stream is not None:
                stream.close()


AT_EXIT = """
import atexit
from asyncdyn import local
servers = []
# Registered before the first finalizer exists, so it runs after the finalizers (LIFO).
atexit.register(lambda: print("exited" if servers[0]._process.poll() is not None else "alive"))
servers.append(local.start_moto())
print(servers[0].pid)
"""


def test_running_servers_are_stopped_at_exit() -> None:
    result = subprocess.run(
        [sys.executable, "-c", AT_EXIT], capture_output=True, text=True, timeout=60, check=True
    )
    pid, state = result.stdout.split()
    assert state == "exited"
    assert not process_alive(int(pid))


def test_python_m_entry_point() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "asyncdyn.local", "moto", "--port", "0", "--exit-on-stdin-eof"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        words = proc.stdout.readline().split()
        assert words[:1] == ["LISTENING"], proc.stderr.read() if proc.stderr else words
        endpoint = f"http://127.0.0.1:{int(words[1])}"
        assert isinstance(call(endpoint, "ListTables")["TableNames"], list)
        assert proc.stdin is not None
        proc.stdin.close()  # EOF on stdin ends it
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_start_auto_prefers_dynalite() -> None:
    with local.start("auto") as srv:
        assert srv.kind == ("dynalite" if local.dynalite_path() else "moto")


def test_start_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown local server kind"):
        local.start("dynamodb-local")


def test_dynalite_path_lookup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ASYNCDYN_DYNALITE", raising=False)
    monkeypatch.setenv("ASYNCDYN_NODE_DIR", str(tmp_path))
    if local.shutil.which("node") is None:
        assert local.dynalite_path() is None
        return
    assert local.dynalite_path() is None
    cli = tmp_path / "node_modules" / "dynalite" / "cli.js"
    cli.parent.mkdir(parents=True)
    cli.write_text("")
    assert local.dynalite_path() == str(cli.resolve())
    explicit = tmp_path / "elsewhere.js"
    monkeypatch.setenv("ASYNCDYN_DYNALITE", str(explicit))
    assert local.dynalite_path() is None
    explicit.write_text("")
    assert local.dynalite_path() == str(explicit)


def test_start_dynalite_not_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ASYNCDYN_DYNALITE", raising=False)
    monkeypatch.setenv("ASYNCDYN_NODE_DIR", str(tmp_path))
    with pytest.raises(RuntimeError, match="dynalite is not installed"):
        local.start_dynalite()
