"""``field(...)``: what an entity attribute is besides its type (default, stored name, kind).

A kind decides who writes the value: ``created`` and ``updated`` are stamped by the
repository, ``version`` is counted by it (optimistic locking), ``ttl`` is stored as epoch
seconds so that DynamoDB's TTL can expire the item. The spec is read once, when the entity
class is compiled; nothing here runs per call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ..offload import S3Offload

__all__ = ["MISSING", "FieldSpec", "field"]


class _Missing:
    """The absence of a default (``None`` is a legitimate default)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """What ``field(...)`` declared for one attribute."""

    default: Any = MISSING
    default_factory: Callable[[], Any] | None = None
    name: str | None = None
    created: bool = False
    updated: bool = False
    version: bool = False
    ttl: bool = False
    epoch: bool = False
    unique: bool = False
    shard_of: str | None = None
    shards: int = 0
    compress: bool = False
    offload: S3Offload | None = None


def field(
    *,
    default: Any = MISSING,
    default_factory: Callable[[], Any] | None = None,
    name: str | None = None,
    created: bool = False,
    updated: bool = False,
    version: bool = False,
    ttl: bool = False,
    epoch: bool = False,
    unique: bool = False,
    shard_of: str | None = None,
    shards: int | None = None,
    compress: bool = False,
    offload: S3Offload | None = None,
) -> Any:
    """Declare an entity attribute's default, stored ``name`` and kind.

    ``created=True``: set on the first write, kept after. ``updated=True``: set on every
    write. ``version=True``: an int that starts at 1 and grows by 1 on each write, each
    write conditional on the version it read. ``ttl=True``: a datetime stored as epoch
    seconds (reads hide expired items). ``epoch=True``: a datetime stored as epoch seconds
    rather than ISO-8601. ``unique=True``: no two entities of the type share the value.
    ``shard_of="user_id", shards=10``: an int the repository computes on every write from
    that field (the stable hash ``WriteSharding`` uses), for a partition template
    ``"USERS#{shard}"`` that spreads a hot key; reads that do not give the source field query
    every shard and merge them in sort-key order.
    ``compress=True``: a str or bytes stored as binary with a codec header when that is
    smaller (``asyncdyn.compression``). ``offload=S3Offload(bucket, prefix)``: a str or bytes
    uploaded to S3 when the item would be over the threshold, the item keeping a reference.
    Neither can be part of a key, a condition or a ``where=``.
    """
    if default is not MISSING and default_factory is not None:
        raise ConfigurationError("field() takes a default or a default_factory, not both")
    kinds = [
        k
        for k, on in (
            ("created", created),
            ("updated", updated),
            ("version", version),
            ("ttl", ttl),
        )
        if on
    ]
    if len(kinds) > 1:
        raise ConfigurationError(f"field() has one kind at most, not {' and '.join(kinds)}")
    if (shard_of is None) != (shards is None):
        raise ConfigurationError("field(shard_of=..., shards=...) takes both")
    if shards is not None and (
        isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= 1000
    ):
        raise ConfigurationError(f"shards is an int from 1 to 1000, not {shards!r}")
    if shard_of is not None and default is MISSING:
        default = None  # computed on write: the constructor does not ask for it
    if name is not None and (not isinstance(name, str) or not name):
        raise ConfigurationError("field(name=...) is the stored attribute name: a non-empty str")
    if offload is not None and not isinstance(offload, S3Offload):
        raise ConfigurationError(f"field(offload=...) takes an S3Offload, not {offload!r}")
    if (compress or offload is not None) and kinds:
        raise ConfigurationError(f"a {kinds[0]} field cannot be compressed or offloaded")
    return FieldSpec(
        default,
        default_factory,
        name,
        created,
        updated,
        version,
        ttl,
        epoch or ttl,
        unique,
        shard_of,
        shards or 0,
        bool(compress),
        offload,
    )
