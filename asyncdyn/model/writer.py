"""``repo.writer()``: the table's buffered writer, fed entities and refs.

Each entity becomes its item exactly as ``repo.put`` builds it (keys, index keys, type,
timestamps), so the buffered path keeps derived attributes as right as the others. A batch
write cannot be conditional: versioned entities are refused (``repo.put``/``tx_put`` check
their version).
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..batch import BatchWriter, Rejected, WriterStats
from ..errors import UnprocessedItemsError
from .entity import Ref

if TYPE_CHECKING:
    from .repository import Repository

__all__ = ["EntityWriter"]


class EntityWriter:
    """``async with repo.writer() as w: await w.put(entity); await w.delete(ref)``."""

    __slots__ = ("_repo", "_writer")

    def __init__(self, repo: Repository, writer: BatchWriter) -> None:
        self._repo = repo
        self._writer = writer

    async def __aenter__(self) -> EntityWriter:
        await self._writer.__aenter__()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._writer.__aexit__(kind, exc, tb)

    @property
    def stats(self) -> WriterStats:
        return self._writer.stats

    @property
    def rejected(self) -> list[Rejected]:
        return self._writer.rejected

    @property
    def unwritten(self) -> UnprocessedItemsError | None:
        """The items and keys accepted but not written (``BatchWriter.unwritten``): after a
        failed or cancelled exit, what is still to be sent, as raw items."""
        return self._writer.unwritten

    async def put(self, entity: Any) -> Any:
        """Queue ``entity``'s item; returns the entity as it will be written."""
        written, item = self._repo._batch_item(entity, datetime.now(UTC), "the writer")
        await self._writer.put(item)
        return written

    async def delete(self, ref: Ref) -> None:
        repo = self._repo
        info = repo._info(ref.entity)
        repo._no_unique(info, "the writer")
        await self._writer.delete(repo._key(info, ref.fields))

    async def close(self) -> None:
        await self._writer.close()
