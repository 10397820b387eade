"""Peers' model layers for ``benchmarks.entities``: pydynox models (async, Rust core) and
PynamoDB models (sync, run in threads), declaring the canned order item as their users would.

Neither is a dependency of asyncdyn: each is used when it can be imported (``pip install
pydynox pynamodb`` into the benchmark's environment) and skipped otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Op = Callable[[], Awaitable[Any]]

PK = "CUSTOMER#000123"
SK = "ORDER#00000000"


def pydynox_ops(endpoint_url: str, table: str) -> dict[str, Op]:
    """``get`` and ``query(50)`` through pydynox models ({} when pydynox is missing)."""
    try:
        from pydynox import DynamoDBClient, Model, ModelConfig
        from pydynox.attributes import (
            BooleanAttribute,
            DecimalAttribute,
            ListAttribute,
            MapAttribute,
            NumberAttribute,
            StringAttribute,
        )
    except ImportError:
        return {}
    client = DynamoDBClient(
        region="us-east-1", endpoint_url=endpoint_url, access_key="bench", secret_key="bench"
    )

    class PydynoxOrder(Model):  # type: ignore[misc]
        model_config = ModelConfig(table=table, client=client)
        pk = StringAttribute(partition_key=True)
        sk = StringAttribute(sort_key=True)
        status = StringAttribute()
        total = DecimalAttribute()
        quantity = NumberAttribute()
        created = NumberAttribute()
        gift = BooleanAttribute()
        customer = MapAttribute()
        tags = ListAttribute()
        note = StringAttribute()

    async def get() -> Any:
        return await PydynoxOrder.get(pk=PK, sk=SK)

    async def query() -> Any:
        condition = PydynoxOrder.sk.begins_with("ORDER#")
        return [o async for o in PydynoxOrder.query(partition_key=PK, sort_key_condition=condition)]

    return {"get pydynox": get, "query(50) pydynox": query}


def pynamodb_ops(endpoint_url: str, table: str) -> dict[str, Op]:
    """``get`` and ``query(50)`` through PynamoDB models in threads ({} when missing)."""
    try:
        from pynamodb.attributes import (
            BooleanAttribute,
            ListAttribute,
            MapAttribute,
            NumberAttribute,
            UnicodeAttribute,
        )
        from pynamodb.models import Model
    except ImportError:
        return {}

    class PynamoOrder(Model):  # type: ignore[misc]
        class Meta:
            table_name = table
            host = endpoint_url
            region = "us-east-1"
            aws_access_key_id = "bench"
            aws_secret_access_key = "bench"
            max_pool_connections = 64

        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        status = UnicodeAttribute()
        total = NumberAttribute()
        quantity = NumberAttribute()
        created = NumberAttribute()
        gift = BooleanAttribute()
        customer = MapAttribute()  # type: ignore[var-annotated]
        tags = ListAttribute()  # type: ignore[var-annotated]
        note = UnicodeAttribute()

    def get_sync() -> Any:
        return PynamoOrder.get(PK, SK)

    def query_sync() -> Any:
        return list(PynamoOrder.query(PK, PynamoOrder.sk.startswith("ORDER#")))

    async def get() -> Any:
        return await asyncio.to_thread(get_sync)

    async def query() -> Any:
        return await asyncio.to_thread(query_sync)

    return {"get pynamodb": get, "query(50) pynamodb": query}
