"""``python -m benchmarks``: asyncdyn, aiobotocore, aioboto3 and aiodynamo side by side.

With no arguments it starts dynalite (moto when dynalite is not installed) on 127.0.0.1,
seeds a table, runs the get, put and query workloads for every client and prints one
table; ``--help`` lists the options.
"""

from __future__ import annotations

import sys

from .harness import main

if __name__ == "__main__":
    sys.exit(main())
