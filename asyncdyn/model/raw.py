"""Items no entity claims: ``Raw(item)``, and the ``unknown=`` choice of what reads do with
them (``"raise"``, ``"skip"``, ``"raw"``), never a silent drop."""

from __future__ import annotations

from typing import Any, Literal

from ..errors import ConfigurationError

__all__ = ["Raw", "Unknown", "check_unknown"]

Unknown = Literal["raise", "skip", "raw"]
_UNKNOWN = ("raise", "skip", "raw")


def check_unknown(unknown: str) -> None:
    if unknown not in _UNKNOWN:
        raise ConfigurationError(f"unknown= is one of {', '.join(_UNKNOWN)}, not {unknown!r}")


class Raw:
    """An item no entity of the design claims (``unknown="raw"``); ``.item`` is the dict."""

    __slots__ = ("item",)

    def __init__(self, item: dict[str, Any]) -> None:
        self.item = item

    def __repr__(self) -> str:
        return f"Raw({self.item!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Raw) and self.item == other.item

    __hash__ = None  # type: ignore[assignment]
