"""create_table(..., exist_ok=True) compares the table it found with the one it asked for:
key attributes, their types and roles, and every index asked for. No sockets."""

from __future__ import annotations

from typing import Any

from asyncdyn import GlobalIndex, LocalIndex
from asyncdyn.schema import create_table_request, schema_differences


def described(request: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """What DescribeTable says of a table created from ``request`` (plus ``changes``)."""
    table = {
        "TableName": request["TableName"],
        "KeySchema": request["KeySchema"],
        "AttributeDefinitions": request["AttributeDefinitions"],
        "TableStatus": "ACTIVE",
        **{
            k: request[k]
            for k in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes")
            if k in request
        },
    }
    table.update(changes)
    return table


SHOP = create_table_request(
    "Shop",
    partition_key="PK",
    sort_key="SK",
    indexes=[GlobalIndex("GSI1", "GSI1PK", "GSI1SK"), LocalIndex("ByDate", ("placed", "N"))],
)


def test_the_same_table_has_no_differences() -> None:
    assert schema_differences(SHOP, described(SHOP)) == []
    # An index of the table's own that was not asked for is no difference.
    extra = described(SHOP)
    extra["GlobalSecondaryIndexes"] = [
        *extra["GlobalSecondaryIndexes"],
        {"IndexName": "Other", "KeySchema": [{"AttributeName": "x", "KeyType": "HASH"}]},
    ]
    assert schema_differences(SHOP, extra) == []


def test_another_key_is_named() -> None:
    other = create_table_request("Shop", partition_key=("PK", "N"), sort_key="SK")
    found = schema_differences(SHOP, described(other))
    assert found and any("PK" in line and "N" in line for line in found)
    no_sort = create_table_request("Shop", partition_key="PK")
    assert any("SK" in line for line in schema_differences(SHOP, described(no_sort)))


def test_a_missing_or_different_index_is_named() -> None:
    bare = create_table_request("Shop", partition_key="PK", sort_key="SK")
    found = schema_differences(SHOP, described(bare))
    assert any("GSI1" in line for line in found) and any("ByDate" in line for line in found)
    moved = create_table_request(
        "Shop",
        partition_key="PK",
        sort_key="SK",
        indexes=[GlobalIndex("GSI1", "GSI1PK", "other"), LocalIndex("ByDate", ("placed", "N"))],
    )
    found = schema_differences(SHOP, described(moved))
    assert len(found) == 1 and "GSI1" in found[0]
