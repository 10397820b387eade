"""One adapter per client library, so every benchmark drives them all the same way.

Each adapter takes plain Python keys and items (``str``, ``int``, ``Decimal``, ``bool``,
maps and lists), does what a user of that library writes for one get, put or query, and
returns the library's own result. What a result looks like differs (the raw aiobotocore
client returns DynamoDB JSON), so checks go through :meth:`Peer.plain`, outside the timing.

The libraries are imported in ``setup``: a missing optional peer is reported, not fatal.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable
from typing import Any, ClassVar

__all__ = [
    "ACCESS_KEY",
    "PEERS",
    "REGION",
    "SECRET_KEY",
    "Peer",
    "make_peer",
]

REGION = "us-east-1"
# Dummy static credentials: every server used here accepts any SigV4-shaped signature, and
# static credentials keep the provider chain (files, IMDS) out of the measurement.
ACCESS_KEY = "AKIDBENCHMARK"
SECRET_KEY = "benchmark-secret-key"

Item = dict[str, Any]


class Peer(abc.ABC):
    """A client library under test: open it once, then get/put/query many times."""

    name: ClassVar[str]
    """The name used on the command line and in result tables."""
    distribution: ClassVar[str]
    """The PyPI distribution whose version goes into the results."""

    @abc.abstractmethod
    async def setup(self, endpoint_url: str, table: str, *, concurrency: int) -> None:
        """Create the client; its connection pool is sized for ``concurrency`` callers."""

    @abc.abstractmethod
    async def get(self, key: Item) -> Any:
        """GetItem: the library's item, or ``None`` when there is none."""

    @abc.abstractmethod
    async def put(self, item: Item) -> None:
        """PutItem."""

    @abc.abstractmethod
    async def query(self, pk: str) -> list[Any]:
        """Every item of partition ``pk``, all pages read."""

    def plain(self, item: Any) -> Item:
        """One returned item as plain Python (for checks, never timed)."""
        return dict(item)

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the client and its connections."""


class AsyncdynPeer(Peer):
    name = "asyncdyn"
    distribution = "asyncdyn"

    async def setup(self, endpoint_url: str, table: str, *, concurrency: int) -> None:
        from asyncdyn import Client, Key

        self._key = Key
        self._client = Client(
            region=REGION,
            endpoint_url=endpoint_url,
            credentials=(ACCESS_KEY, SECRET_KEY),
            max_concurrency=concurrency,
        )
        self._table = self._client.table(table)

    async def get(self, key: Item) -> Any:
        return await self._table.get(key)

    async def put(self, item: Item) -> None:
        await self._table.put(item)

    async def query(self, pk: str) -> list[Any]:
        return [item async for item in self._table.query(self._key("PK").eq(pk))]

    async def close(self) -> None:
        await self._client.close()


class AiobotocorePeer(Peer):
    """The raw low-level client: DynamoDB JSON in and out.

    Inputs are converted with boto3's ``TypeSerializer`` (what a raw-client user with plain
    values writes); answers are left in DynamoDB JSON, as the raw client returns them, so
    this peer does *less* decoding work than the others.
    """

    name = "aiobotocore"
    distribution = "aiobotocore"

    async def setup(self, endpoint_url: str, table: str, *, concurrency: int) -> None:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        self._serialize = TypeSerializer().serialize
        self._deserialize = TypeDeserializer().deserialize
        self._name = table
        self._stack = contextlib.AsyncExitStack()
        self._client = await self._stack.enter_async_context(
            get_session().create_client(
                "dynamodb",
                region_name=REGION,
                endpoint_url=endpoint_url,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
                # The default pool of 10 would queue 16 concurrent callers.
                config=AioConfig(max_pool_connections=concurrency),
            )
        )

    def _wire(self, item: Item) -> Item:
        serialize = self._serialize
        return {name: serialize(value) for name, value in item.items()}

    async def get(self, key: Item) -> Any:
        response = await self._client.get_item(TableName=self._name, Key=self._wire(key))
        return response.get("Item")

    async def put(self, item: Item) -> None:
        await self._client.put_item(TableName=self._name, Item=self._wire(item))

    async def query(self, pk: str) -> list[Any]:
        request: dict[str, Any] = {
            "TableName": self._name,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
        }
        items: list[Any] = []
        while True:
            response = await self._client.query(**request)
            items.extend(response["Items"])
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return items
            request["ExclusiveStartKey"] = last_key

    def plain(self, item: Any) -> Item:
        return {name: self._deserialize(value) for name, value in item.items()}

    async def close(self) -> None:
        await self._stack.aclose()


class Aioboto3Peer(Peer):
    """aioboto3's ``Table`` resource: plain Python in and out through boto3's (de)serializer."""

    name = "aioboto3"
    distribution = "aioboto3"

    async def setup(self, endpoint_url: str, table: str, *, concurrency: int) -> None:
        import aioboto3
        from aiobotocore.config import AioConfig
        from boto3.dynamodb.conditions import Key

        self._key = Key
        session = aioboto3.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
        )
        self._stack = contextlib.AsyncExitStack()
        resource = await self._stack.enter_async_context(
            session.resource(
                "dynamodb",
                endpoint_url=endpoint_url,
                config=AioConfig(max_pool_connections=concurrency),
            )
        )
        self._table = await resource.Table(table)

    async def get(self, key: Item) -> Any:
        response = await self._table.get_item(Key=key)
        return response.get("Item")

    async def put(self, item: Item) -> None:
        await self._table.put_item(Item=item)

    async def query(self, pk: str) -> list[Any]:
        request: dict[str, Any] = {"KeyConditionExpression": self._key("PK").eq(pk)}
        items: list[Any] = []
        while True:
            response = await self._table.query(**request)
            items.extend(response["Items"])
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return items
            request["ExclusiveStartKey"] = last_key

    async def close(self) -> None:
        await self._stack.aclose()


class AiodynamoPeer(Peer):
    """aiodynamo over its aiohttp adapter (numbers decode to float, its default)."""

    name = "aiodynamo"
    distribution = "aiodynamo"

    async def setup(self, endpoint_url: str, table: str, *, concurrency: int) -> None:
        import aiohttp
        from aiodynamo.client import Client
        from aiodynamo.credentials import Key, StaticCredentials
        from aiodynamo.errors import ItemNotFound
        from aiodynamo.expressions import HashKey
        from aiodynamo.http.aiohttp import AIOHTTP
        from yarl import URL

        self._not_found = ItemNotFound
        self._hash_key = HashKey
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
        client = Client(
            AIOHTTP(self._session),
            StaticCredentials(Key(ACCESS_KEY, SECRET_KEY)),
            REGION,
            endpoint=URL(endpoint_url),
        )
        self._table = client.table(table)

    async def get(self, key: Item) -> Any:
        try:
            return await self._table.get_item(key)
        except self._not_found:
            return None

    async def put(self, item: Item) -> None:
        await self._table.put_item(item)

    async def query(self, pk: str) -> list[Any]:
        return [item async for item in self._table.query(self._hash_key("PK", pk))]

    async def close(self) -> None:
        await self._session.close()


PEERS: dict[str, Callable[[], Peer]] = {
    peer.name: peer for peer in (AsyncdynPeer, AiobotocorePeer, Aioboto3Peer, AiodynamoPeer)
}
"""Every adapter by name, in the order results are shown."""


def make_peer(name: str) -> Peer:
    """A new, not yet set up adapter; ``KeyError`` names the known ones."""
    try:
        factory = PEERS[name]
    except KeyError:
        raise KeyError(f"unknown client {name!r}; known: {', '.join(PEERS)}") from None
    return factory()
