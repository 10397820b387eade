"""In-process instruction count of asyncdyn's own work per GetItem / Query(50): no sockets.

Run under callgrind (stable on a noisy machine), once with 0 operations for the start-up:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m benchmarks.inprocess get 2000

instructions per operation = (total(N) - total(0)) / N.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping

from asyncdyn import Client, Key
from asyncdyn.testing import answer
from asyncdyn.transport import HttpResponse

ITEM = {
    "PK": {"S": "CUSTOMER#1"},
    "SK": {"S": "ORDER#1"},
    "total": {"N": "99.99"},
    "status": {"S": "PENDING"},
    "lines": {"L": [{"M": {"sku": {"S": "A"}, "n": {"N": "2"}}}]},
    "note": {"S": "x" * 800},
}
GET = answer({"Item": ITEM})
QUERY = answer({"Items": [dict(ITEM, SK={"S": f"ORDER#{i:03d}"}) for i in range(50)], "Count": 50})


class Canned:
    def __init__(self, response: HttpResponse) -> None:
        self.response = response

    async def send(self, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        return self.response

    async def close(self) -> None:
        pass


async def main(kind: str, n: int) -> None:
    transport = Canned(GET if kind == "get" else QUERY)
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("a", "b"),
        transport=transport,
    ) as db:
        t = db.table("T")
        for _ in range(n):
            if kind == "get":
                await t.get({"PK": "CUSTOMER#1", "SK": "ORDER#1"})
            else:
                async for _item in t.query(Key("PK").eq("CUSTOMER#1")):
                    pass


asyncio.run(main(sys.argv[1], int(sys.argv[2])))
