"""README's Quick start pasted as-is into a fresh process with no AWS configuration at all:
no AWS_* variables, HOME pointing to an empty folder (so no ~/.aws files). It must run green
against both local servers, with credentials chosen by Client itself on loopback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from asyncdyn.local import LocalServer

README = Path(__file__).resolve().parents[2] / "README.md"
README_ENDPOINT = "http://localhost:8000"


def quick_start() -> str:
    text = README.read_text()
    match = re.search(r"^## Quick start\n+```python\n(.*?)^```", text, re.S | re.M)
    assert match is not None, "README has no Quick start python block"
    return match.group(1)


def test_quick_start_runs_with_no_aws_configuration(server: LocalServer, tmp_path: Path) -> None:
    code = quick_start()
    # The two substitutions a reader makes: where their server listens, and (dynalite cannot
    # be reset) a table name of this test's own.
    assert code.count(README_ENDPOINT) == 1 and code.count('"Shop"') == 1
    table = f"t-{uuid.uuid4().hex[:16]}"
    code = code.replace(README_ENDPOINT, server.endpoint_url).replace('"Shop"', f'"{table}"')
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "BOTO_CONFIG"}
    env["HOME"] = str(home)
    # This checkout's asyncdyn, whatever the venv has installed.
    env["PYTHONPATH"] = str(README.parent)
    for _ in range(2):  # as written, it runs again on the same server
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "CUSTOMER#123" in done.stdout and "PENDING" in done.stdout
