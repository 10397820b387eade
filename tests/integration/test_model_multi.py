"""Multi-attribute GSI keys (DynamoDB, November 2025: up to 4 partition and 4 sort
attributes per index) on moto, which creates and answers them (checked with moto 5.2.6, the
version the dev extra requires). dynalite refuses such a KeySchema ("Member must have length
less than or equal to 2"), so these run on moto only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from asyncdyn import Client, InvalidItem
from asyncdyn.model import Repository
from tests.integration.test_model import bound
from tests.unit.test_model import TenantOrder, tenants

T0 = datetime(2024, 1, 3, 9, 30, tzinfo=UTC)

pytestmark = pytest.mark.moto_only


@pytest.fixture
async def repo(db: Client) -> AsyncIterator[Repository]:
    async for r in bound(db, tenants):
        yield r


def order(tenant: str, region: str, day: int, order_id: str, total: int = 0) -> TenantOrder:
    return TenantOrder(
        tenant=tenant,
        region=region,
        created=T0 + timedelta(days=day),
        order_id=order_id,
        total=total,
    )


async def test_create_table_declares_the_multi_attribute_key(repo: Repository) -> None:
    described = await repo.describe()
    (index,) = [g for g in described["GlobalSecondaryIndexes"] if g["IndexName"] == "BY_REGION"]
    assert index["KeySchema"] == [
        {"AttributeName": "tenant", "KeyType": "HASH"},
        {"AttributeName": "region", "KeyType": "HASH"},
        {"AttributeName": "created", "KeyType": "RANGE"},
        {"AttributeName": "order_id", "KeyType": "RANGE"},
    ]
    types = {d["AttributeName"]: d["AttributeType"] for d in described["AttributeDefinitions"]}
    assert {types[a] for a in ("tenant", "region", "created", "order_id")} == {"S"}


async def test_queries_on_a_multi_attribute_index(repo: Repository) -> None:
    orders = [
        order("t1", "eu", 3, "c", 30),
        order("t1", "eu", 1, "a", 10),
        order("t1", "eu", 2, "b", 20),
        order("t1", "eu", 2, "a2", 21),
        order("t1", "us", 1, "x", 99),  # another region: another partition of the index
        order("t2", "eu", 1, "y", 98),  # another tenant
    ]
    for o in orders:
        await repo.put(o)
    by_region = TenantOrder.by_region
    everything = [o async for o in repo.query(by_region, tenant="t1", region="eu")]
    # Sorted by (created, order_id): the index compares its sort attributes left to right.
    assert [o.order_id for o in everything] == ["a", "a2", "b", "c"]
    assert everything[0] == order("t1", "eu", 1, "a", 10)
    ranged = repo.query(
        by_region,
        tenant="t1",
        region="eu",
        where=TenantOrder.created.between(T0 + timedelta(days=2), T0 + timedelta(days=3)),
    )
    assert [o.order_id async for o in ranged] == ["a2", "b", "c"]
    newest = repo.query(by_region, tenant="t1", region="eu", descending=True, limit=2)
    assert [o.order_id async for o in newest] == ["c", "b"]
    # An equality on the first sort attribute, a range on the second.
    same_day = repo.query(
        by_region,
        tenant="t1",
        region="eu",
        created=T0 + timedelta(days=2),
        where=TenantOrder.order_id.begins_with("a"),
    )
    assert [o.order_id async for o in same_day] == ["a2"]
    later = repo.query(
        by_region, tenant="t1", region="eu", where=TenantOrder.created.gt(T0 + timedelta(days=2))
    )
    assert [o.order_id async for o in later] == ["c"]
    us = [o async for o in repo.query(by_region, tenant="t1", region="us")]
    assert us == [order("t1", "us", 1, "x", 99)]
    # An update of a key attribute moves the item in the index: nothing derived to go stale.
    moved = await repo.update(TenantOrder.ref(tenant="t1", order_id="c"), region="us")
    assert moved is not None and moved.region == "us"
    us_now = [o.order_id async for o in repo.query(by_region, tenant="t1", region="us")]
    assert us_now == ["x", "c"]
    with pytest.raises(InvalidItem, match="give region"):
        repo.query(by_region, tenant="t1")
