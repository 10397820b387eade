"""``python -m benchmarks``: asyncdyn, aiobotocore, aioboto3, aiodynamo and pydynox side by side.

With no arguments it starts dynalite (moto when dynalite is not installed) on 127.0.0.1,
seeds a table, runs every workload (get, put, query, fanout, timeseries, batch_get,
batch_write) for every client and prints one table, in about 90 s on two quiet cores;
``--help`` lists the options.
"""

from __future__ import annotations

import sys

from .harness import main

if __name__ == "__main__":
    sys.exit(main())
