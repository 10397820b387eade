"""The entity layer: single-table design as a checked design, above ``Table``.

``Design`` declares entities, key templates, indexes and collections; ``design.bind(db)``
gives a ``Repository`` of typed reads and writes. Raw dicts stay available on ``Table``.
"""

from .actions import EntityAction
from .check import DesignReport, Finding
from .collection import Collection
from .design import Design
from .entity import Entity, Ref
from .fields import field
from .patterns import Pattern
from .raw import Raw
from .repository import EntityPage, Repository
from .where import FieldCondition, FieldRef, Where

__all__ = [
    "Collection",
    "Design",
    "DesignReport",
    "Entity",
    "EntityAction",
    "EntityPage",
    "FieldCondition",
    "FieldRef",
    "Finding",
    "Pattern",
    "Raw",
    "Ref",
    "Repository",
    "Where",
    "field",
]
