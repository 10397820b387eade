"""Table definitions for the control plane: keys, secondary indexes, and the CreateTable request."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .errors import ConfigurationError

__all__ = [
    "BillingMode",
    "GlobalIndex",
    "KeySchema",
    "KeySpec",
    "LocalIndex",
    "Projection",
    "StreamView",
    "create_table_request",
    "schema_differences",
]

KeyType = Literal["S", "N", "B"]
# "PK" means a string key; ("PK", "N") names the type.
KeySpec = str | tuple[str, KeyType]
# "ALL", "KEYS_ONLY", or the non-key attributes to copy into the index (INCLUDE).
Projection = Literal["ALL", "KEYS_ONLY"] | Sequence[str]
BillingMode = Literal["PAY_PER_REQUEST", "PROVISIONED"]
StreamView = Literal["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"]

_TABLE_NAME = re.compile(r"[a-zA-Z0-9_.\-]{3,255}\Z")
_KEY_TYPES = ("S", "N", "B")
_STREAM_VIEWS = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")


@dataclass(frozen=True, slots=True)
class GlobalIndex:
    """A global secondary index: its own partition key (and optional sort key).

    Each may also be a tuple of up to four key specs, a multi-attribute key (DynamoDB since
    November 2025): ``GlobalIndex("GSI3", ("tenant", "region"), ("created", "id"))``. A pair
    whose second item is ``"S"``, ``"N"`` or ``"B"`` is one typed attribute, as elsewhere.
    """

    name: str
    partition_key: KeySpec | tuple[KeySpec, ...]
    sort_key: KeySpec | tuple[KeySpec, ...] | None = None
    projection: Projection = "ALL"
    read_capacity: int | None = None
    write_capacity: int | None = None


@dataclass(frozen=True, slots=True)
class LocalIndex:
    """A local secondary index: the table's partition key with another sort key."""

    name: str
    sort_key: KeySpec
    projection: Projection = "ALL"


@dataclass(frozen=True, slots=True)
class KeySchema:
    """Key attribute names of a table and of each of its indexes, read from DescribeTable."""

    partition_key: str
    sort_key: str | None
    indexes: Mapping[str, tuple[str, str | None]]

    @classmethod
    def from_description(cls, table: Mapping[str, Any]) -> KeySchema:
        def keys(schema: Sequence[Mapping[str, str]]) -> tuple[str, str | None]:
            # A multi-attribute index key is named by its first attribute here.
            by_role = {part["KeyType"]: part["AttributeName"] for part in reversed(schema)}
            return by_role["HASH"], by_role.get("RANGE")

        pk, sk = keys(table["KeySchema"])
        indexes = {
            index["IndexName"]: keys(index["KeySchema"])
            for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes")
            for index in table.get(kind) or ()
        }
        return cls(pk, sk, indexes)

    @property
    def names(self) -> tuple[str, ...]:
        """The table's key attribute names: partition key first."""
        return (
            (self.partition_key,) if self.sort_key is None else (self.partition_key, self.sort_key)
        )

    def for_index(self, index: str | None) -> tuple[str, str | None]:
        """(partition key, sort key) of the table, or of ``index``."""
        if index is None:
            return self.partition_key, self.sort_key
        try:
            return self.indexes[index]
        except KeyError:
            raise ConfigurationError(f"the table has no index named {index!r}") from None


def _key(spec: KeySpec, role: str, definitions: dict[str, str]) -> dict[str, str]:
    if isinstance(spec, str):
        name, kind = spec, "S"
    else:
        name, kind = spec
    if not name:
        raise ConfigurationError(f"{role} key needs an attribute name")
    if kind not in _KEY_TYPES:
        raise ConfigurationError(f"key {name!r} has type {kind!r}; a key is 'S', 'N' or 'B'")
    if definitions.setdefault(name, kind) != kind:
        raise ConfigurationError(f"key attribute {name!r} is declared with two types")
    return {"AttributeName": name, "KeyType": role}


# DynamoDB's limit for a multi-attribute key: four attributes per partition and per sort key.
MAX_KEY_ATTRIBUTES = 4


def _index_keys(
    spec: KeySpec | tuple[KeySpec, ...], role: str, definitions: dict[str, str], index: str
) -> list[dict[str, str]]:
    """The KeySchema entries of an index key: one attribute, or several in order."""
    if isinstance(spec, tuple) and not (len(spec) == 2 and spec[1] in _KEY_TYPES):
        parts: tuple[Any, ...] = spec
        if not 1 <= len(parts) <= MAX_KEY_ATTRIBUTES:
            raise ConfigurationError(
                f"index {index!r}: a multi-attribute key has 1 to {MAX_KEY_ATTRIBUTES} "
                f"attributes, not {len(parts)}"
            )
        return [_key(part, role, definitions) for part in parts]
    return [_key(spec, role, definitions)]  # type: ignore[arg-type]


def _projection(projection: Projection) -> dict[str, Any]:
    if projection in ("ALL", "KEYS_ONLY"):
        return {"ProjectionType": projection}
    if isinstance(projection, str):
        raise ConfigurationError(
            f"projection {projection!r}: use 'ALL', 'KEYS_ONLY' or a list of attribute names"
        )
    return {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(projection)}


def _throughput(read: int | None, write: int | None, what: str) -> dict[str, int]:
    if read is None or write is None or read < 1 or write < 1:
        raise ConfigurationError(f"{what}: PROVISIONED billing needs read and write capacity >= 1")
    return {"ReadCapacityUnits": read, "WriteCapacityUnits": write}


def create_table_request(
    name: str,
    *,
    partition_key: KeySpec,
    sort_key: KeySpec | None = None,
    indexes: Sequence[GlobalIndex | LocalIndex] = (),
    billing: BillingMode = "PAY_PER_REQUEST",
    read_capacity: int | None = None,
    write_capacity: int | None = None,
    stream: StreamView | None = None,
) -> dict[str, Any]:
    """The CreateTable payload, checked before anything is sent."""
    if not _TABLE_NAME.match(name):
        raise ConfigurationError(
            f"table name {name!r}: 3 to 255 characters of a-z, A-Z, 0-9, '_', '-', '.'"
        )
    if billing not in ("PAY_PER_REQUEST", "PROVISIONED"):
        raise ConfigurationError(f"billing must be PAY_PER_REQUEST or PROVISIONED, not {billing!r}")
    provisioned = billing == "PROVISIONED"
    definitions: dict[str, str] = {}
    key_schema = [_key(partition_key, "HASH", definitions)]
    if sort_key is not None:
        key_schema.append(_key(sort_key, "RANGE", definitions))
    request: dict[str, Any] = {"TableName": name, "KeySchema": key_schema, "BillingMode": billing}
    if provisioned:
        request["ProvisionedThroughput"] = _throughput(read_capacity, write_capacity, name)

    global_indexes: list[dict[str, Any]] = []
    local_indexes: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index in indexes:
        if index.name in seen:
            raise ConfigurationError(f"two indexes are named {index.name!r}")
        seen.add(index.name)
        if isinstance(index, GlobalIndex):
            schema = _index_keys(index.partition_key, "HASH", definitions, index.name)
            if index.sort_key is not None:
                schema += _index_keys(index.sort_key, "RANGE", definitions, index.name)
            gsi: dict[str, Any] = {
                "IndexName": index.name,
                "KeySchema": schema,
                "Projection": _projection(index.projection),
            }
            if provisioned:
                gsi["ProvisionedThroughput"] = _throughput(
                    index.read_capacity or read_capacity,
                    index.write_capacity or write_capacity,
                    index.name,
                )
            global_indexes.append(gsi)
        else:
            if sort_key is None:
                raise ConfigurationError(f"local index {index.name!r} needs a table sort key")
            local_indexes.append(
                {
                    "IndexName": index.name,
                    "KeySchema": [
                        key_schema[0],
                        _key(index.sort_key, "RANGE", definitions),
                    ],
                    "Projection": _projection(index.projection),
                }
            )
    if global_indexes:
        request["GlobalSecondaryIndexes"] = global_indexes
    if local_indexes:
        request["LocalSecondaryIndexes"] = local_indexes
    if stream is not None:
        if stream not in _STREAM_VIEWS:
            raise ConfigurationError(f"stream must be one of {', '.join(_STREAM_VIEWS)}")
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream}
    request["AttributeDefinitions"] = [
        {"AttributeName": attr, "AttributeType": kind} for attr, kind in definitions.items()
    ]
    return request


def _keys_of(schema: Any, types: Mapping[str, str]) -> str:
    """A key schema as a reader sees it: ``PK (S, HASH), SK (S, RANGE)``."""
    return ", ".join(
        f"{k['AttributeName']} ({types.get(k['AttributeName'], '?')}, {k['KeyType']})"
        for k in schema or ()
    )


def schema_differences(request: Mapping[str, Any], described: Mapping[str, Any]) -> list[str]:
    """How the table ``described`` (DescribeTable's ``Table``) differs from the one
    ``request`` (a CreateTable payload) asks for: its key (names, types, roles) and each
    index asked for. Settings a table may change later (billing, streams, capacity) and
    indexes it has beyond those asked for are no difference. Empty when they agree."""
    asked_types = {d["AttributeName"]: d["AttributeType"] for d in request["AttributeDefinitions"]}
    found_types = {
        d["AttributeName"]: d["AttributeType"] for d in described.get("AttributeDefinitions") or ()
    }
    differences = []
    asked_key = _keys_of(request["KeySchema"], asked_types)
    found_key = _keys_of(described.get("KeySchema"), found_types)
    if asked_key != found_key:
        differences.append(f"its key is {found_key}, not {asked_key}")
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        found = {i["IndexName"]: i for i in described.get(kind) or ()}
        for index in request.get(kind) or ():
            name = index["IndexName"]
            asked = _keys_of(index["KeySchema"], asked_types)
            if name not in found:
                differences.append(f"it has no index {name!r} ({asked})")
                continue
            has = _keys_of(found[name].get("KeySchema"), found_types)
            if has != asked:
                differences.append(f"its index {name!r} is keyed {has}, not {asked}")
    return differences
