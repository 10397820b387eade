"""``Table``: the operations on one table, one family per module.

- ``core``: the table's state, key schema, encoders, checks and request expressions
- ``actions``: transaction actions (``tx_put``, ``tx_update``, ``tx_delete``, ``tx_check``,
  ``tx_get``)
- ``items``: get, put, update, delete (and recognising one's own write after a lost answer)
- ``locking``: optimistic locking (``put_versioned``, ``modify``)
- ``batches``: ``batch_get``, ``batch_get_iter``, ``batch_write``, ``writer``
- ``listing``: ``query``, ``query_page``, ``count``
- ``parallel``: ``scan`` (parallel with ``segments``), ``query_partitions`` and its pages
- ``control``: ``wait_until_active``, ``enable_stream``, ``enable_ttl``, ``describe_ttl``
  and DynamoDB's own S3 jobs: ``export_to_s3``, ``import_from_s3``, ``s3`` (``asyncdyn.native``)

Each family is a class of its own over ``TableCore``; ``Table`` only puts them together, so
every method is written and documented once, in the module of its concept.
"""

from __future__ import annotations

from .batches import Batches
from .control import Control
from .locking import Locking
from .parallel import Parallel

__all__ = ["Table"]


class Table(Locking, Batches, Parallel, Control):
    """Operations on one table. Get one from ``Client.table(name)``; it holds no connection."""

    __slots__ = ()
