"""``design.collection(name, *entities, index=None)``: entity types read by one query.

The members share a partition template (on the table, or on ``index`` for GSI overloading).
How the query is made is the read plan's business (``plan.py``): no filter when the design
proves only members live under the partition, sort-key ranges otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from .entity import EntityInfo
from .keys import EntityKey

if TYPE_CHECKING:
    from .design import Design

__all__ = ["Collection"]


class Collection:
    """Entity types that one query of a partition returns together, in sort-key order."""

    __slots__ = ("design", "entities", "index", "keys", "name")

    def __init__(
        self, design: Design, name: str, entities: list[EntityInfo], index: str | None
    ) -> None:
        if not entities:
            raise ConfigurationError(f"collection {name!r} has no entities")
        if index is not None and index not in design.indexes:
            raise ConfigurationError(f"collection {name!r}: design has no index {index!r}")
        keys: list[EntityKey] = []
        for info in entities:
            if info.design is not design:
                raise ConfigurationError(
                    f"collection {name!r}: {info.cls.__name__} is another design's"
                )
            key = info.key if index is None else info.indexes.get(index)
            if key is None:
                raise ConfigurationError(
                    f"collection {name!r}: {info.cls.__name__} has no key on index {index!r}"
                )
            keys.append(key)
        texts = {k.pk.text for k in keys}
        if len(texts) != 1:
            raise ConfigurationError(
                f"collection {name!r}: members must share one partition template, not "
                f"{', '.join(sorted(texts))}"
            )
        self.design = design
        self.name = name
        self.entities = tuple(entities)
        self.index = index
        self.keys = tuple(keys)

    def __repr__(self) -> str:
        names = ", ".join(e.type_name for e in self.entities)
        return f"Collection({self.name!r}: {names})"

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields a query of the collection takes: the partition template's."""
        return self.keys[0].pk.fields
