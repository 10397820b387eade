"""One adapter per client library, so every benchmark drives them all the same way.

Each adapter takes plain Python keys and items (``str``, ``int``, ``Decimal``, ``bool``,
maps and lists), does what a user of that library writes for one get, put or query, and
returns the library's own result. What a result looks like differs (the raw aiobotocore
client returns DynamoDB JSON), so checks go through :meth:`Peer.plain`, outside the timing.

The libraries are imported in ``setup``: a missing optional peer is reported, not fatal.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar
from urllib.parse import urlsplit

__all__ = [
    "ACCESS_KEY",
    "PEERS",
    "REGION",
    "SECRET_KEY",
    "DEFAULT_PEERS",
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
        async def send(request: dict[str, Any]) -> dict[str, Any]:
            response: dict[str, Any] = await self._client.query(**request)
            return response

        return await _query_all(send, self._name, pk)

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


class _FloorConnection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        import httptools

        self._parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.transport: asyncio.Transport | None = None
        self.reusable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ConnectionError(f"connection lost: {exc!r}"))

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        body, self._body = b"".join(self._body), []
        if not self._parser.should_keep_alive():
            self.reusable = False
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((self._parser.get_status_code(), body))

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self._waiter


class FloorPeer(Peer):
    """Not a client: the least an asyncio client can spend per request, for reference.

    Raw asyncio Protocol connections (one per concurrent caller, kept alive), the request
    serialized with orjson, the answer parsed with httptools and read with orjson. No
    signing (one fixed, SigV4-shaped header that the local servers accept), no checksum,
    no retries, no item decoding: answers stay in DynamoDB JSON. The gap between a client
    and this row is that client's own work.
    """

    name = "floor"
    distribution = "httptools"

    async def setup(self, endpoint_url: str, table: str, *, concurrency: int) -> None:
        import orjson
        from boto3.dynamodb.types import TypeDeserializer

        from .data import to_wire

        parts = urlsplit(endpoint_url)
        self._address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._dumps = orjson.dumps
        self._loads = orjson.loads
        self._to_wire = to_wire
        self._deserialize = TypeDeserializer().deserialize
        self._name = table
        self._idle: list[_FloorConnection] = []
        self._all: set[_FloorConnection] = set()
        self._head = (
            f"POST / HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/x-amz-json-1.0\r\n"
            "X-Amz-Date: 20260101T000000Z\r\n"
            # moto routes on the credential scope; neither server checks the signature.
            f"Authorization: AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20260101/{REGION}/"
            "dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=0\r\n"
            "X-Amz-Target: DynamoDB_20120810."
        ).encode()

    async def _call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = self._dumps(payload)
        request = b"".join(
            (
                self._head,
                operation.encode(),
                b"\r\nContent-Length: ",
                b"%d" % len(body),
                b"\r\n\r\n",
                body,
            )
        )
        conn = self._idle.pop() if self._idle else await self._connect()
        try:
            status, answer = await conn.exchange(request)
        finally:
            if conn.reusable:
                self._idle.append(conn)
            else:
                self._all.discard(conn)
                if conn.transport is not None:
                    conn.transport.close()
        data: dict[str, Any] = self._loads(answer)
        if status >= 300:
            raise RuntimeError(f"{operation}: HTTP {status}: {data!r:.200}")
        return data

    async def _connect(self) -> _FloorConnection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_FloorConnection, *self._address)
        self._all.add(conn)
        return conn

    def _wire(self, item: Item) -> Item:
        to_wire = self._to_wire
        return {name: to_wire(value) for name, value in item.items()}

    async def get(self, key: Item) -> Any:
        data = await self._call("GetItem", {"TableName": self._name, "Key": self._wire(key)})
        return data.get("Item")

    async def put(self, item: Item) -> None:
        await self._call("PutItem", {"TableName": self._name, "Item": self._wire(item)})

    async def query(self, pk: str) -> list[Any]:
        return await _query_all(lambda request: self._call("Query", request), self._name, pk)

    def plain(self, item: Any) -> Item:
        return {name: self._deserialize(value) for name, value in item.items()}

    async def close(self) -> None:
        for conn in self._all:
            if conn.transport is not None:
                conn.transport.close()
        self._all.clear()
        self._idle.clear()


PEERS: dict[str, Callable[[], Peer]] = {
    peer.name: peer
    for peer in (AsyncdynPeer, AiobotocorePeer, Aioboto3Peer, AiodynamoPeer, FloorPeer)
}
"""Every adapter by name, in the order results are shown."""

DEFAULT_PEERS = ("asyncdyn", "aiobotocore", "aioboto3", "aiodynamo")
"""The client libraries compared by default; ``floor`` is a reference, asked for by name."""


def make_peer(name: str) -> Peer:
    """A new, not yet set up adapter; ``KeyError`` names the known ones."""
    try:
        factory = PEERS[name]
    except KeyError:
        raise KeyError(f"unknown client {name!r}; known: {', '.join(PEERS)}") from None
    return factory()


async def _query_all(
    send: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]], table: str, pk: str
) -> list[Any]:
    """Every raw item of partition ``pk``, page after page, through a wire-level ``send``."""
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "PK = :pk",
        "ExpressionAttributeValues": {":pk": {"S": pk}},
    }
    items: list[Any] = []
    while True:
        data = await send(request)
        items.extend(data["Items"])
        last_key = data.get("LastEvaluatedKey")
        if not last_key:
            return items
        request["ExclusiveStartKey"] = last_key
