"""Test helpers that ship with the library: a transport that answers from a script.

``ScriptedTransport`` lets a test (yours or ours) drive retries, throttling, checksum
failures and timeouts deterministically, with no socket::

    transport = ScriptedTransport([throttled(), answer({"Item": {"PK": {"S": "a"}}})])
    async with Client(region="us-east-1", endpoint_url="http://test", credentials=("a", "b"),
                      transport=transport) as db:
        await db.table("T").get({"PK": "a"})
    assert transport.operations == ["GetItem", "GetItem"]
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import orjson

from .errors import TransportError
from .transport import HttpResponse

__all__ = ["ScriptedTransport", "answer", "error", "throttled"]

# One step of a script: a response, an exception to raise, or a function of the request.
Step = (
    HttpResponse
    | BaseException
    | Callable[[Mapping[str, str], bytes], HttpResponse | Awaitable[HttpResponse]]
)


def answer(body: Mapping[str, Any] | bytes, status: int = 200, *, crc: bool = True) -> HttpResponse:
    """A response with a JSON body (and a correct ``x-amz-crc32`` unless ``crc`` is false)."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {"x-amz-crc32": str(zlib.crc32(raw))} if crc else {}
    return HttpResponse(status, headers, raw)


def error(code: str, message: str = "", status: int = 400, **extra: Any) -> HttpResponse:
    """An error answer as DynamoDB sends it (``__type`` with the service prefix)."""
    body = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message, **extra}
    return answer(body, status)


def throttled() -> HttpResponse:
    return error("ProvisionedThroughputExceededException", "slow down")


class ScriptedTransport:
    """Answers each request with the next step of a script and records what was sent.

    When the script runs out, ``default`` answers (an error if none was given).
    """

    def __init__(self, steps: Iterable[Step] = (), *, default: Step | None = None) -> None:
        self.steps: list[Step] = list(steps)
        self.default = default
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.closed = False

    @property
    def operations(self) -> list[str]:
        """The operation of each request sent, in order."""
        return [h["X-Amz-Target"].rpartition(".")[2] for h, _ in self.requests]

    @property
    def payloads(self) -> list[dict[str, Any]]:
        """The decoded JSON body of each request sent, in order."""
        return [orjson.loads(body) for _, body in self.requests]

    async def send(self, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        self.requests.append((dict(headers), body))
        await asyncio.sleep(0)  # a real transport always yields to the loop
        if self.steps:
            step = self.steps.pop(0)
        elif self.default is not None:
            step = self.default
        else:
            raise TransportError("ScriptedTransport: the script has no more answers")
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, HttpResponse):
            return step
        result = step(headers, body)
        if isinstance(result, HttpResponse):
            return result
        return await result

    async def close(self) -> None:
        self.closed = True
