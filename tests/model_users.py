"""A hot partition spread over shards: every user under ``USERS#{shard}``."""

from __future__ import annotations

from asyncdyn.model import Design, Entity, field

accounts_by_shard = Design("Users")


@accounts_by_shard.entity("User")
class ShardedUser(Entity):
    user_id: str
    name: str
    shard: int = field(shard_of="user_id", shards=4)
    key = accounts_by_shard.key(pk="USERS#{shard}", sk="USER#{user_id}")
