"""``run(coro)``: ``asyncio.run`` on uvloop's event loop when uvloop is installed.

For entry points (the ``asyncdyn`` command, the benchmark harness), never for library code:
an application chooses its own loop. uvloop (``pip install 'asyncdyn[fast]'``) runs the
sockets, timers and callbacks of the loop in C. ``ASYNCDYN_LOOP=asyncio`` keeps the
standard loop even when uvloop is installed; ``ASYNCDYN_LOOP=uvloop`` insists on uvloop
(``ConfigurationError`` when it is missing).
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .errors import ConfigurationError

__all__ = ["LOOP_ENV", "loop_factory", "loop_name", "run"]

LOOP_ENV = "ASYNCDYN_LOOP"
"""The environment variable that picks the loop: ``asyncio``, ``uvloop`` or ``auto`` (unset)."""

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's ``new_event_loop`` when it is installed and not opted out of, else ``None``
    (the standard loop)."""
    choice = os.environ.get(LOOP_ENV, "auto").strip().lower() or "auto"
    if choice not in ("auto", "asyncio", "uvloop"):
        raise ConfigurationError(
            f"{LOOP_ENV} must be 'asyncio', 'uvloop' or 'auto', not {choice!r}"
        )
    if choice == "asyncio":
        return None
    try:
        # By name: an optional dependency, absent from most type-checking environments.
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        if choice == "uvloop":
            raise ConfigurationError(
                f"{LOOP_ENV}=uvloop but uvloop is not installed (pip install 'asyncdyn[fast]')"
            ) from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name() -> str:
    """``"uvloop"`` or ``"asyncio"``: the loop ``run`` would use now."""
    return "asyncio" if loop_factory() is None else "uvloop"


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
    """Run ``main`` to completion like ``asyncio.run``, on uvloop when it is available."""
    factory = loop_factory()
    if factory is None:
        return asyncio.run(main, debug=debug)
    # asyncio.Runner takes a loop factory (3.11+): no global event loop policy is changed.
    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(main)
