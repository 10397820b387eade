"""One adapter per client library, so every benchmark drives them all the same way.

Each adapter takes plain Python keys and items (``str``, ``int``, ``Decimal``, ``bool``,
maps and lists), does what a user of that library writes for one get, put or query, and
returns the library's own result. What a result looks like differs (the raw aiobotocore
client returns DynamoDB JSON), so checks go through :meth:`Peer.plain`, outside the timing.

get, put, query and the two sort-key queries (``query_prefix``, ``query_between``) are
required. The multi-partition reads are written once here the way a user of a plain client
writes them — ``fan_out``: the shards' queries at once (``asyncio.gather``), then one sort by
sort key; ``time_range``: one month's query after the other — and asyncdyn overrides them with
``Table.query_partitions``. The bulk operations (``batch_get``, ``batch_write``) are optional:
an adapter that does not override them raises ``NotImplementedError``, and
:meth:`Peer.supports` tells the harness to skip (and report "n/a" for) such workloads.

The libraries are imported in ``setup``: a missing optional peer is reported, not fatal.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
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

BATCH_GET_KEYS = 100
"""BatchGetItem's limit: keys per request."""
BATCH_WRITE_ITEMS = 25
"""BatchWriteItem's limit: put/delete requests per request."""


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

    @abc.abstractmethod
    async def query_prefix(self, pk: str, prefix: str) -> list[Any]:
        """The items of partition ``pk`` whose SK begins with ``prefix``, all pages read."""

    @abc.abstractmethod
    async def query_between(self, pk: str, low: str, high: str) -> list[Any]:
        """The items of partition ``pk`` with ``low <= SK <= high``, all pages read."""

    async def fan_out(self, partitions: Sequence[str], prefix: str) -> list[Any]:
        """The items of every partition whose SK begins with ``prefix``, in SK order."""
        pages = await asyncio.gather(*(self.query_prefix(pk, prefix) for pk in partitions))
        return sorted(itertools.chain.from_iterable(pages), key=self._sort_key)

    async def time_range(self, partitions: Sequence[str], low: str, high: str) -> list[Any]:
        """The items with ``low <= SK <= high`` of consecutive time buckets, oldest first."""
        items: list[Any] = []
        for pk in partitions:
            items += await self.query_between(pk, low, high)
        return items

    def string(self, item: Any, name: str) -> str:
        """The string attribute ``name`` of one returned item (for merging and checks)."""
        value: str = item[name]
        return value

    def _sort_key(self, item: Any) -> str:
        return self.string(item, "SK")

    async def batch_get(self, keys: Sequence[Item]) -> list[Any]:
        """Every item of ``keys`` (at most 100 distinct keys per request, unprocessed keys
        re-sent), in the library's usual way; the order need not follow ``keys``."""
        raise NotImplementedError

    async def batch_write(self, items: Sequence[Item]) -> None:
        """Put every item of ``items`` (25 per request, unprocessed items re-sent)."""
        raise NotImplementedError

    def supports(self, method: str) -> bool:
        """Whether this adapter implements ``method`` (an optional one such as batch_get)."""
        return getattr(type(self), method) is not getattr(Peer, method)

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
        # The key stated: a fan-out needs no DescribeTable (the canned server has none).
        self._table = self._client.table(table, key=("PK", "SK"))

    async def get(self, key: Item) -> Any:
        return await self._table.get(key)

    async def put(self, item: Item) -> None:
        await self._table.put(item)

    async def query(self, pk: str) -> list[Any]:
        return [item async for item in self._table.query(self._key("PK").eq(pk))]

    async def query_prefix(self, pk: str, prefix: str) -> list[Any]:
        condition = self._key("PK").eq(pk) & self._key("SK").begins_with(prefix)
        return [item async for item in self._table.query(condition)]

    async def query_between(self, pk: str, low: str, high: str) -> list[Any]:
        condition = self._key("PK").eq(pk) & self._key("SK").between(low, high)
        return [item async for item in self._table.query(condition)]

    async def fan_out(self, partitions: Sequence[str], prefix: str) -> list[Any]:
        # Every shard at once, merged by SK as pages arrive.
        sort = self._key("SK").begins_with(prefix)
        return [item async for item in self._table.query_partitions(partitions, sort)]

    async def time_range(self, partitions: Sequence[str], low: str, high: str) -> list[Any]:
        # ordered=True: the buckets hold consecutive SK ranges (README's time-bucket read).
        window = self._key("SK").between(low, high)
        return [
            item async for item in self._table.query_partitions(partitions, window, ordered=True)
        ]

    def supports(self, method: str) -> bool:
        # The bulk API is recent: an asyncdyn without it (an older checkout) skips those.
        from asyncdyn.client import Table

        return super().supports(method) and hasattr(Table, method)

    async def batch_get(self, keys: Sequence[Item]) -> list[Any]:
        # Aligned with keys, None for a missing one; asyncdyn chunks and retries itself.
        items: list[Any] = await self._table.batch_get(keys)
        return items

    async def batch_write(self, items: Sequence[Item]) -> None:
        await self._table.batch_write(puts=items)

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
        return await _query_all(self._query_raw, self._name, pk)

    async def _query_raw(self, request: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = await self._client.query(**request)
        return response

    async def query_prefix(self, pk: str, prefix: str) -> list[Any]:
        return await _query_all(self._query_raw, self._name, pk, _prefix_condition(prefix))

    async def query_between(self, pk: str, low: str, high: str) -> list[Any]:
        return await _query_all(self._query_raw, self._name, pk, _between_condition(low, high))

    def string(self, item: Any, name: str) -> str:
        value: str = item[name]["S"]
        return value

    async def batch_get(self, keys: Sequence[Item]) -> list[Any]:
        async def send(request: dict[str, Any]) -> dict[str, Any]:
            response: dict[str, Any] = await self._client.batch_get_item(**request)
            return response

        return await _batch_get_all(send, self._name, keys, self._wire)

    async def batch_write(self, items: Sequence[Item]) -> None:
        async def send(request: dict[str, Any]) -> dict[str, Any]:
            response: dict[str, Any] = await self._client.batch_write_item(**request)
            return response

        await _batch_write_all(send, self._name, items, self._wire)

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
        self._name = table
        self._resource = await self._stack.enter_async_context(
            session.resource(
                "dynamodb",
                endpoint_url=endpoint_url,
                config=AioConfig(max_pool_connections=concurrency),
            )
        )
        self._table = await self._resource.Table(table)

    async def get(self, key: Item) -> Any:
        response = await self._table.get_item(Key=key)
        return response.get("Item")

    async def put(self, item: Item) -> None:
        await self._table.put_item(Item=item)

    async def query(self, pk: str) -> list[Any]:
        return await self._query_condition(self._key("PK").eq(pk))

    async def _query_condition(self, condition: Any) -> list[Any]:
        request: dict[str, Any] = {"KeyConditionExpression": condition}
        items: list[Any] = []
        while True:
            response = await self._table.query(**request)
            items.extend(response["Items"])
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return items
            request["ExclusiveStartKey"] = last_key

    async def query_prefix(self, pk: str, prefix: str) -> list[Any]:
        key = self._key
        return await self._query_condition(key("PK").eq(pk) & key("SK").begins_with(prefix))

    async def query_between(self, pk: str, low: str, high: str) -> list[Any]:
        key = self._key
        return await self._query_condition(key("PK").eq(pk) & key("SK").between(low, high))

    async def batch_get(self, keys: Sequence[Item]) -> list[Any]:
        # The service resource's batch_get_item: plain keys in, plain items out, and
        # UnprocessedKeys come back plain too, ready to be re-sent as they are.
        items: list[Any] = []
        for start in range(0, len(keys), BATCH_GET_KEYS):
            # A list: boto3's serializer leaves a tuple's keys untransformed.
            chunk = list(keys[start : start + BATCH_GET_KEYS])
            request: dict[str, Any] = {self._name: {"Keys": chunk}}
            while request:
                response = await self._resource.batch_get_item(RequestItems=request)
                items.extend(response["Responses"].get(self._name, ()))
                request = response.get("UnprocessedKeys") or {}
        return items

    async def batch_write(self, items: Sequence[Item]) -> None:
        # batch_writer buffers 25 puts per BatchWriteItem and re-queues UnprocessedItems.
        async with self._table.batch_writer() as writer:
            for item in items:
                await writer.put_item(Item=item)

    async def close(self) -> None:
        await self._stack.aclose()


class AiodynamoPeer(Peer):
    """aiodynamo over its aiohttp adapter (numbers decode to float, its default).

    Its ``Client.batch_get`` / ``Client.batch_write`` send exactly one BatchGetItem /
    BatchWriteItem request: no splitting into 100 keys / 25 items, no retry of what comes
    back unprocessed. This adapter does both around them, as its users must.
    """

    name = "aiodynamo"
    distribution = "aiodynamo"

    async def setup(self, endpoint_url: str, table: str, *, concurrency: int) -> None:
        import aiohttp
        from aiodynamo.client import Client
        from aiodynamo.credentials import Key, StaticCredentials
        from aiodynamo.errors import ItemNotFound
        from aiodynamo.expressions import HashKey, RangeKey
        from aiodynamo.http.aiohttp import AIOHTTP
        from aiodynamo.models import BatchGetRequest, BatchWriteRequest
        from yarl import URL

        self._not_found = ItemNotFound
        self._hash_key = HashKey
        self._range_key = RangeKey
        self._get_request = BatchGetRequest
        self._write_request = BatchWriteRequest
        self._name = table
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
        self._client = Client(
            AIOHTTP(self._session),
            StaticCredentials(Key(ACCESS_KEY, SECRET_KEY)),
            REGION,
            endpoint=URL(endpoint_url),
        )
        self._table = self._client.table(table)

    async def get(self, key: Item) -> Any:
        try:
            return await self._table.get_item(key)
        except self._not_found:
            return None

    async def put(self, item: Item) -> None:
        await self._table.put_item(item)

    async def query(self, pk: str) -> list[Any]:
        return [item async for item in self._table.query(self._hash_key("PK", pk))]

    async def query_prefix(self, pk: str, prefix: str) -> list[Any]:
        condition = self._hash_key("PK", pk) & self._range_key("SK").begins_with(prefix)
        return [item async for item in self._table.query(condition)]

    async def query_between(self, pk: str, low: str, high: str) -> list[Any]:
        condition = self._hash_key("PK", pk) & self._range_key("SK").between(low, high)
        return [item async for item in self._table.query(condition)]

    async def batch_get(self, keys: Sequence[Item]) -> list[Any]:
        name = self._name
        items: list[Any] = []
        for start in range(0, len(keys), BATCH_GET_KEYS):
            chunk = list(keys[start : start + BATCH_GET_KEYS])
            while chunk:
                response = await self._client.batch_get({name: self._get_request(keys=chunk)})
                items.extend(response.items.get(name, ()))
                chunk = response.unprocessed_keys.get(name, [])
        return items

    async def batch_write(self, items: Sequence[Item]) -> None:
        name = self._name
        for start in range(0, len(items), BATCH_WRITE_ITEMS):
            chunk = list(items[start : start + BATCH_WRITE_ITEMS])
            while chunk:
                result = await self._client.batch_write(
                    {name: self._write_request(items_to_put=chunk)}
                )
                # Unprocessed items come back decoded (numbers as float), re-sent as they are.
                left = result.get(name)
                chunk = left.unput_items if left else []

    async def close(self) -> None:
        await self._session.close()


class _ExpressionQueries(Peer):
    """The three query shapes for a client that takes a raw KeyConditionExpression and its
    string values (pydynox's low-level client, the AWS SDK): its ``_query`` sends one and
    reads every page."""

    @abc.abstractmethod
    async def _query(self, condition: str, values: dict[str, str]) -> list[Any]: ...

    async def query(self, pk: str) -> list[Any]:
        return await self._query("PK = :pk", {":pk": pk})

    async def query_prefix(self, pk: str, prefix: str) -> list[Any]:
        return await self._query(
            "PK = :pk AND begins_with(SK, :prefix)", {":pk": pk, ":prefix": prefix}
        )

    async def query_between(self, pk: str, low: str, high: str) -> list[Any]:
        return await self._query(
            "PK = :pk AND SK BETWEEN :low AND :high", {":pk": pk, ":low": low, ":high": high}
        )


class PydynoxPeer(_ExpressionQueries):
    """pydynox's low-level async client (``pydynox.DynamoDBClient``: a Rust core on the AWS
    SDK for Rust, plain dicts in and out, numbers decoded to int or float).

    Its ``batch_get`` / ``batch_write`` split into 100 keys / 25 items and re-send what comes
    back unprocessed themselves, so this adapter calls them once.
    """

    name = "pydynox"
    distribution = "pydynox"

    async def setup(self, endpoint_url: str, table: str, *, concurrency: int) -> None:
        try:
            from pydynox import DynamoDBClient
        except ImportError as exc:
            raise ImportError(
                f"pydynox is not installed ({exc}); pip install pydynox (in the dev extra)"
            ) from None

        self._name = table
        # No pool-size option: the Rust core's connection pool grows with the callers.
        self._client = DynamoDBClient(
            region=REGION,
            endpoint_url=endpoint_url,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
        )

    async def get(self, key: Item) -> Any:
        return await self._client.get_item(self._name, key)

    async def put(self, item: Item) -> None:
        await self._client.put_item(self._name, item)

    async def _query(self, condition: str, values: dict[str, Any]) -> list[Any]:
        result = self._client.query(self._name, condition, expression_attribute_values=values)
        return [item async for item in result]

    async def batch_get(self, keys: Sequence[Item]) -> list[Any]:
        items: list[Any] = await self._client.batch_get(self._name, list(keys))
        return items

    async def batch_write(self, items: Sequence[Item]) -> None:
        await self._client.batch_write(self._name, put_items=list(items))

    async def close(self) -> None:
        # The Rust client has no close: its connections go with the object.
        del self._client


class PydynoxModelPeer(PydynoxPeer):
    """pydynox's model layer: a ``pydynox.Model`` subclass declaring the benchmark item's
    attributes, read and written through its async class methods (``get``, ``query``,
    ``batch_get``) and ``save``; bulk writes through ``BatchWriter``."""

    name = "pydynox-model"
    distribution = "pydynox"

    async def setup(self, endpoint_url: str, table: str, *, concurrency: int) -> None:
        await super().setup(endpoint_url, table, concurrency=concurrency)
        from pydynox import BatchWriter, Model, ModelConfig
        from pydynox.attributes import (
            BooleanAttribute,
            ListAttribute,
            MapAttribute,
            NumberAttribute,
            StringAttribute,
        )

        client = self._client

        class Order(Model):  # type: ignore[misc]
            model_config = ModelConfig(table=table, client=client)
            PK = StringAttribute(partition_key=True)
            SK = StringAttribute(sort_key=True)
            status = StringAttribute()
            total = NumberAttribute()
            quantity = NumberAttribute()
            created = NumberAttribute()
            gift = BooleanAttribute()
            customer = MapAttribute()
            tags = ListAttribute()
            note = StringAttribute()

        self._model: Any = Order
        self._writer = BatchWriter

    async def get(self, key: Item) -> Any:
        return await self._model.get(**key)

    async def put(self, item: Item) -> None:
        await self._model(**item).save()

    async def query(self, pk: str) -> list[Any]:
        return [item async for item in self._model.query(partition_key=pk)]

    async def query_prefix(self, pk: str, prefix: str) -> list[Any]:
        model = self._model
        condition = model.SK.begins_with(prefix)
        return [item async for item in model.query(partition_key=pk, sort_key_condition=condition)]

    async def query_between(self, pk: str, low: str, high: str) -> list[Any]:
        model = self._model
        condition = model.SK.between(low, high)
        return [item async for item in model.query(partition_key=pk, sort_key_condition=condition)]

    def string(self, item: Any, name: str) -> str:
        value: str = getattr(item, name)
        return value

    async def batch_get(self, keys: Sequence[Item]) -> list[Any]:
        items: list[Any] = await self._model.batch_get(list(keys))
        return items

    async def batch_write(self, items: Sequence[Item]) -> None:
        async with self._writer(self._client, self._name) as batch:
            for item in items:
                batch.put(item)

    def plain(self, item: Any) -> Item:
        plain: Item = item.to_dict()
        return plain


class AwsSdkPeer(_ExpressionQueries):
    """The AWS SDK for Python's new async client (``aws-sdk-dynamodb``, Smithy-generated,
    experimental): its low-level ``AsyncDynamoDBClient`` with typed inputs, answers left as
    its ``AttributeValue`` objects (like aiobotocore's raw client, it decodes less than the
    others). It has no document layer and no batch helpers: this adapter chunks and re-sends
    unprocessed keys/items as its users must.

    From 0.10 on it needs Python 3.12; on 3.11 pip installs an unrelated 0.4.1 package of that
    name, so there the adapter is skipped with that message.
    """

    name = "aws-sdk"
    distribution = "aws-sdk-dynamodb"

    async def setup(self, endpoint_url: str, table: str, *, concurrency: int) -> None:
        import sys

        if sys.version_info < (3, 12):
            raise ImportError(
                "aws-sdk-dynamodb >= 0.10 needs Python >= 3.12; this is "
                f"{sys.version_info.major}.{sys.version_info.minor}"
            )
        try:
            from aws_sdk_dynamodb import models
            from aws_sdk_dynamodb.client import AsyncDynamoDBClient
            from aws_sdk_dynamodb.config import AsyncDynamoDBConfig
            from smithy_aws_core.identity import StaticCredentialsResolver
            from smithy_aws_core.identity.components import AWSCredentialsIdentity
        except ImportError as exc:
            raise ImportError(
                f"aws-sdk-dynamodb >= 0.10 is not installed ({exc}): pip install aws-sdk-dynamodb"
            ) from None

        self._m: Any = models
        self._name = table
        credentials = AWSCredentialsIdentity(access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)
        # Its default transport is aiohttp with its own pool; no pool-size option here.
        config = await AsyncDynamoDBConfig.resolve(
            region=REGION,
            endpoint_uri=endpoint_url,
            aws_credentials_identity_resolver=StaticCredentialsResolver(credentials),
        )
        self._client: Any = AsyncDynamoDBClient(config=config)

    def _av(self, value: Any) -> Any:
        """One Python value as the SDK's AttributeValue (the types the benchmark items use)."""
        m = self._m
        if isinstance(value, bool):
            return m.AttributeValueBOOL(value)
        if isinstance(value, str):
            return m.AttributeValueS(value)
        if isinstance(value, int | Decimal):
            return m.AttributeValueN(str(value))
        if isinstance(value, dict):
            return m.AttributeValueM({k: self._av(v) for k, v in value.items()})
        if isinstance(value, list):
            return m.AttributeValueL([self._av(v) for v in value])
        raise TypeError(f"no AttributeValue for {type(value).__name__}")

    def _wire(self, item: Item) -> dict[str, Any]:
        return {name: self._av(value) for name, value in item.items()}

    async def get(self, key: Item) -> Any:
        out = await self._client.get_item(
            self._m.GetItemInput(table_name=self._name, key=self._wire(key))
        )
        return out.item

    async def put(self, item: Item) -> None:
        request = self._m.PutItemInput(table_name=self._name, item=self._wire(item))
        await self._client.put_item(request)

    async def _query(self, condition: str, values: dict[str, str]) -> list[Any]:
        m = self._m
        request = m.QueryInput(
            table_name=self._name,
            key_condition_expression=condition,
            expression_attribute_values={k: m.AttributeValueS(v) for k, v in values.items()},
        )
        items: list[Any] = []
        while True:
            out = await self._client.query(request)
            items.extend(out.items or ())
            if not out.last_evaluated_key:
                return items
            request.exclusive_start_key = out.last_evaluated_key

    def string(self, item: Any, name: str) -> str:
        value: str = item[name].value
        return value

    async def batch_get(self, keys: Sequence[Item]) -> list[Any]:
        m, name = self._m, self._name
        items: list[Any] = []
        for start in range(0, len(keys), BATCH_GET_KEYS):
            chunk = [self._wire(key) for key in keys[start : start + BATCH_GET_KEYS]]
            request_items: Any = {name: m.KeysAndAttributes(keys=chunk)}
            while request_items:
                out = await self._client.batch_get_item(
                    m.BatchGetItemInput(request_items=request_items)
                )
                items.extend((out.responses or {}).get(name, ()))
                request_items = out.unprocessed_keys
        return items

    async def batch_write(self, items: Sequence[Item]) -> None:
        m, name = self._m, self._name
        for start in range(0, len(items), BATCH_WRITE_ITEMS):
            chunk = [
                m.WriteRequest(put_request=m.PutRequest(item=self._wire(item)))
                for item in items[start : start + BATCH_WRITE_ITEMS]
            ]
            request_items: Any = {name: chunk}
            while request_items:
                out = await self._client.batch_write_item(
                    m.BatchWriteItemInput(request_items=request_items)
                )
                request_items = out.unprocessed_items

    def plain(self, item: Any) -> Item:
        return {name: _plain_av(value) for name, value in item.items()}

    async def close(self) -> None:
        await self._client.close()


def _plain_av(value: Any) -> Any:
    """An aws-sdk-dynamodb AttributeValue as plain Python (for checks, never timed)."""
    kind = type(value).__name__.removeprefix("AttributeValue")
    x = value.value
    if kind == "M":
        return {k: _plain_av(v) for k, v in x.items()}
    if kind == "L":
        return [_plain_av(v) for v in x]
    if kind == "N":
        return Decimal(x)
    if kind == "NS":
        return {Decimal(n) for n in x}
    if kind in ("SS", "BS"):
        return set(x)
    if kind == "NULL":
        return None
    return x


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
        # uvloop's transports are not asyncio.Transport subclasses: duck-typed, like lean.py.
        self.transport = transport  # type: ignore[assignment]

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
        conn = self._take_idle() or await self._connect()
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

    def _take_idle(self) -> _FloorConnection | None:
        # The server may have closed an idle connection meanwhile (Node's keep-alive timeout
        # is 5 s, shorter than a bulk workload of the other clients): writing on it would
        # wait for an answer forever.
        while self._idle:
            conn = self._idle.pop()
            if conn.reusable and conn.transport is not None and not conn.transport.is_closing():
                return conn
            self._all.discard(conn)
        return None

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

    async def query_prefix(self, pk: str, prefix: str) -> list[Any]:
        return await _query_all(
            lambda request: self._call("Query", request),
            self._name,
            pk,
            _prefix_condition(prefix),
        )

    async def query_between(self, pk: str, low: str, high: str) -> list[Any]:
        return await _query_all(
            lambda request: self._call("Query", request),
            self._name,
            pk,
            _between_condition(low, high),
        )

    def string(self, item: Any, name: str) -> str:
        value: str = item[name]["S"]
        return value

    async def batch_get(self, keys: Sequence[Item]) -> list[Any]:
        return await _batch_get_all(
            lambda request: self._call("BatchGetItem", request), self._name, keys, self._wire
        )

    async def batch_write(self, items: Sequence[Item]) -> None:
        await _batch_write_all(
            lambda request: self._call("BatchWriteItem", request), self._name, items, self._wire
        )

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
    for peer in (
        AsyncdynPeer,
        AiobotocorePeer,
        Aioboto3Peer,
        AiodynamoPeer,
        PydynoxPeer,
        PydynoxModelPeer,
        AwsSdkPeer,
        FloorPeer,
    )
}
"""Every adapter by name, in the order results are shown."""

DEFAULT_PEERS = (
    "asyncdyn",
    "aiobotocore",
    "aioboto3",
    "aiodynamo",
    "pydynox",
    "pydynox-model",
    "aws-sdk",
)
"""The client libraries compared by default; one that is not installed (or, for aws-sdk, a
Python below 3.12) is skipped with a message. ``floor`` is a reference, asked for by name."""


def make_peer(name: str) -> Peer:
    """A new, not yet set up adapter; ``KeyError`` names the known ones."""
    try:
        factory = PEERS[name]
    except KeyError:
        raise KeyError(f"unknown client {name!r}; known: {', '.join(PEERS)}") from None
    return factory()


# A sort-key condition in wire form: the expression's tail and its placeholder values.
_SortCondition = tuple[str, dict[str, Any]]


def _prefix_condition(prefix: str) -> _SortCondition:
    return " AND begins_with(SK, :prefix)", {":prefix": {"S": prefix}}


def _between_condition(low: str, high: str) -> _SortCondition:
    return " AND SK BETWEEN :low AND :high", {":low": {"S": low}, ":high": {"S": high}}


async def _query_all(
    send: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
    table: str,
    pk: str,
    sort: _SortCondition | None = None,
) -> list[Any]:
    """Every raw item of partition ``pk`` (those meeting ``sort``), page after page, through
    a wire-level ``send``."""
    expression, values = sort or ("", {})
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "PK = :pk" + expression,
        "ExpressionAttributeValues": {":pk": {"S": pk}, **values},
    }
    items: list[Any] = []
    while True:
        data = await send(request)
        items.extend(data["Items"])
        last_key = data.get("LastEvaluatedKey")
        if not last_key:
            return items
        request["ExclusiveStartKey"] = last_key


async def _batch_get_all(
    send: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
    table: str,
    keys: Sequence[Item],
    wire: Callable[[Item], Item],
) -> list[Any]:
    """Every raw item of ``keys``: 100-key BatchGetItem requests one after another, each
    re-sending its UnprocessedKeys (already DynamoDB JSON) until none are left."""
    items: list[Any] = []
    for start in range(0, len(keys), BATCH_GET_KEYS):
        chunk = [wire(key) for key in keys[start : start + BATCH_GET_KEYS]]
        request_items: dict[str, Any] = {table: {"Keys": chunk}}
        while request_items:
            data = await send({"RequestItems": request_items})
            items.extend(data["Responses"].get(table, ()))
            request_items = data.get("UnprocessedKeys") or {}
    return items


async def _batch_write_all(
    send: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]],
    table: str,
    items: Sequence[Item],
    wire: Callable[[Item], Item],
) -> None:
    """Put ``items``: 25-item BatchWriteItem requests one after another, each re-sending
    its UnprocessedItems until none are left."""
    for start in range(0, len(items), BATCH_WRITE_ITEMS):
        chunk = [
            {"PutRequest": {"Item": wire(item)}}
            for item in items[start : start + BATCH_WRITE_ITEMS]
        ]
        request_items: dict[str, Any] = {table: chunk}
        while request_items:
            data = await send({"RequestItems": request_items})
            request_items = data.get("UnprocessedItems") or {}
