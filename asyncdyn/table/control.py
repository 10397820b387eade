"""The control plane of one table: waiting until it is active, streams and TTL settings."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..errors import (
    ConfigurationError,
    TableNotFound,
)
from ..schema import (
    StreamView,
)
from .core import (
    TableCore,
)

__all__ = ["Control"]


async def _poll(check: Any, timeout: float, message: str) -> None:
    """Call ``check()`` with growing pauses until it is true, or raise ``TimeoutError``."""
    deadline = time.monotonic() + timeout
    pause = 0.02
    while not await check():
        if time.monotonic() + pause > deadline:
            raise TimeoutError(message)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 1.0)


class Control(TableCore):
    __slots__ = ()

    async def wait_until_active(self, timeout: float = 120.0) -> None:
        """Return once the table and all its global indexes are ACTIVE."""

        async def active() -> bool:
            try:
                table = await self.describe()
            except TableNotFound:
                return False
            indexes = table.get("GlobalSecondaryIndexes") or ()
            return table.get("TableStatus") == "ACTIVE" and all(
                index.get("IndexStatus", "ACTIVE") == "ACTIVE" for index in indexes
            )

        await _poll(active, timeout, f"table {self.name!r} not ACTIVE after {timeout}s")

    async def enable_stream(
        self, view: StreamView = "NEW_AND_OLD_IMAGES", *, wait: bool = True
    ) -> str:
        """Turn on the table's stream (UpdateTable) and return its ARN; with ``wait``, return
        once the table is ACTIVE again."""
        if view not in ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
            raise ConfigurationError(f"unknown stream view type {view!r}")
        data = await self._call(
            "UpdateTable",
            {
                "TableName": self.name,
                "StreamSpecification": {"StreamEnabled": True, "StreamViewType": view},
            },
        )
        if wait:
            await self.wait_until_active()
        arn = (data.get("TableDescription") or {}).get("LatestStreamArn")
        if not arn:
            arn = (await self.describe()).get("LatestStreamArn")
        return str(arn)

    async def enable_ttl(self, attribute: str) -> None:
        """Have DynamoDB delete items once the epoch seconds in ``attribute`` have passed."""
        await self._call(
            "UpdateTimeToLive",
            {
                "TableName": self.name,
                "TimeToLiveSpecification": {"Enabled": True, "AttributeName": attribute},
            },
        )

    async def describe_ttl(self) -> dict[str, Any]:
        """The table's ``TimeToLiveDescription`` (status and attribute name)."""
        data = await self._call("DescribeTimeToLive", {"TableName": self.name})
        description: dict[str, Any] = data.get("TimeToLiveDescription", {})
        return description
