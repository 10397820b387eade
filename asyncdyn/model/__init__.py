"""The entity layer: single-table design as a checked design, above ``Table``.

``Design`` declares entities, key templates, indexes and collections; ``design.bind(db)``
gives a ``Repository`` of typed reads and writes. Raw dicts stay available on ``Table``.
"""

from .collection import Collection
from .design import Design
from .entity import Entity, Ref
from .fields import field
from .raw import Raw
from .repository import EntityPage, Repository
from .where import FieldRef, Where

__all__ = [
    "Collection",
    "Design",
    "Entity",
    "EntityPage",
    "FieldRef",
    "Raw",
    "Ref",
    "Repository",
    "Where",
    "field",
]
