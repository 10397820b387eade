"""Issue 20's acceptance, as a new user does it: in the fresh venv that has only
`pip install -e '.[local]'`, with no AWS variables and an empty HOME, start `asyncdyn local`
and run README's Quick start as written (twice: it must run again on the same server).
Only the port differs from README (a free one instead of 8000). Run by .ci/run with the
venv's python: `python .ci/laptop.py`."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def main() -> int:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"^## Quick start\n+```python\n(.*?)^```", readme, re.S | re.M)
    if match is None:
        print("README has no Quick start block", file=sys.stderr)
        return 1
    home = tempfile.mkdtemp(prefix="laptop-home-")
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": home}  # nothing of AWS, nothing of ours
    started = time.monotonic()
    server = subprocess.Popen(
        [str(BIN / "asyncdyn"), "local"],
        env=env,
        cwd=home,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        endpoint = server.stdout.readline().strip()  # the first line is the endpoint URL
        if not endpoint.startswith("http://127.0.0.1:"):
            print(f"asyncdyn local printed {endpoint!r}", file=sys.stderr)
            return 1
        print(f"asyncdyn local answered at {endpoint} in {time.monotonic() - started:.1f} s")
        script = Path(home) / "quickstart.py"
        script.write_text(match.group(1).replace("http://localhost:8000", endpoint))
        for run in (1, 2):
            began = time.monotonic()
            done = subprocess.run(
                [sys.executable, str(script)], env=env, cwd=home, timeout=120, check=False
            )
            if done.returncode != 0:
                print(f"the Quick start failed on run {run}", file=sys.stderr)
                return 1
            print(f"Quick start run {run}: green in {time.monotonic() - began:.2f} s")
        return 0
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
