"""Smoke tests of ``python -m benchmarks``: tiny data, every workload, every client.

The harness runs as a child process, as README's first command runs it, against the
session's dynalite (moto where dynalite is missing: one server is enough for a smoke test,
and moto is the slow one) and against the canned server it starts itself.
Sizes are tiny (``--items 200``: 20 get keys, one item per query partition, shard and
month; 200-item batches), so each run takes a few seconds; the figures mean nothing, the
rows, the correctness checks (every client must read the same items in the same order) and
the files do.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from asyncdyn.local import LocalServer

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ("asyncdyn", "aiobotocore", "aioboto3", "aiodynamo")
WORKLOADS = ("get", "put", "query", "fanout", "timeseries", "batch_get", "batch_write")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = ["--items", "200", "--ops", "2", "--rounds", "1", "--warmup", "1"]


@pytest.fixture(scope="module")
def bench_server(local_servers: Callable[[str], LocalServer]) -> LocalServer:
    """The session's dynalite, else its moto."""
    try:
        return local_servers("dynalite")
    except pytest.skip.Exception:
        return local_servers("moto")


def _harness(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"harness failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return done


def _rows(table: str) -> dict[tuple[str, str], list[str]]:
    """The result table's cells by (client, workload)."""
    rows: dict[tuple[str, str], list[str]] = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) > 2 and cells[0] in (*CLIENTS, "floor"):
            rows[cells[0], cells[1]] = cells[2:]
    return rows


def _assert_every_row(stdout: str, clients: tuple[str, ...] = CLIENTS) -> None:
    rows = _rows(stdout)
    missing = [(c, w) for w in WORKLOADS for c in clients if (c, w) not in rows]
    assert not missing, f"rows missing: {missing}\n{stdout}"
    for (client, workload), cells in rows.items():
        assert "n/a" not in cells, f"{client} skipped {workload}:\n{stdout}"
        # ops/s and items/s: positive numbers.
        assert float(cells[0].replace(",", "")) > 0, (client, workload, cells)
        assert float(cells[1].replace(",", "")) > 0, (client, workload, cells)


def test_every_workload_and_plot(bench_server: LocalServer, tmp_path: Path) -> None:
    plot = tmp_path / "out" / "harness.png"
    out = tmp_path / "harness.json"
    done = _harness(
        "--endpoint-url",
        bench_server.endpoint_url,
        *TINY,
        "--workload",
        ",".join(WORKLOADS),
        "--clients",
        ",".join(CLIENTS),
        "--plot",
        str(plot),
        "--json",
        str(out),
    )
    _assert_every_row(done.stdout)
    assert plot.read_bytes()[:8] == PNG_MAGIC
    assert plot.stat().st_size > 10_000, "the chart is suspiciously small"
    data = json.loads(out.read_text())
    assert data["meta"]["items"] == 200
    assert {(s["client"], s["workload"]) for s in data["summary"]} == {
        (c, w) for c in CLIENTS for w in WORKLOADS
    }
    by_workload = {s["workload"]: s for s in data["summary"] if s["client"] == "asyncdyn"}
    # --items 200: one item per shard, per month and in the query partition.
    assert by_workload["fanout"]["items_per_s"] == pytest.approx(
        10 * by_workload["fanout"]["ops_per_s"]
    )
    assert by_workload["batch_get"]["items_per_s"] == pytest.approx(
        200 * by_workload["batch_get"]["ops_per_s"]
    )


def test_canned_server_isolates_the_client(tmp_path: Path) -> None:
    done = _harness("--server", "canned", *TINY, "--clients", ",".join((*CLIENTS, "floor")))
    _assert_every_row(done.stdout, (*CLIENTS, "floor"))
    assert done.stdout.lstrip().startswith("canned;")


def test_plot_without_matplotlib_fails_before_the_run(tmp_path: Path) -> None:
    # A None entry in sys.modules makes `import matplotlib` raise ImportError.
    code = (
        "import sys; sys.modules['matplotlib'] = None; "
        "from benchmarks.harness import main; "
        f"sys.exit(main(['--plot', {str(tmp_path / 'x.png')!r}]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--plot needs matplotlib" in done.stderr
    assert "server:" not in done.stderr, "the run started anyway"
    assert not (tmp_path / "x.png").exists()
