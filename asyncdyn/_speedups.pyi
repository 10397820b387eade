# The optional C extension (asyncdyn/_speedups.c), built by pip install when a C compiler is
# present; asyncdyn.marshal.Decoder wraps it.
from collections.abc import Callable, Iterable
from typing import Any

class Decoder:
    def __init__(
        self,
        mode: int,
        decimal: Callable[[Any], Any],
        b64decode: Callable[[Any], bytes],
        map_pure: Callable[[Any], dict[str, Any]],
        list_pure: Callable[[Any], list[Any]],
    ) -> None: ...
    def item(self, wire: Any, /) -> dict[str, Any]: ...
    def items(self, wires: Iterable[Any], /) -> list[dict[str, Any]]: ...
    def value(self, wire: Any, /) -> Any: ...

class Encoder:
    def __init__(self, slow: Callable[[Any, int], tuple[dict[str, Any], int]]) -> None: ...
    def item(self, item: Any, /) -> tuple[dict[str, dict[str, Any]], int] | None: ...
