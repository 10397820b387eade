"""asyncdyn.runner: the loop choice for entry points."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from asyncdyn.errors import ConfigurationError
from asyncdyn.runner import LOOP_ENV, loop_factory, loop_name, run

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_opt_out_keeps_the_standard_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOOP_ENV, "asyncio")
    assert loop_factory() is None
    assert loop_name() == "asyncio"
    assert run(_loop_module()).startswith("asyncio")


def test_auto_uses_uvloop_only_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LOOP_ENV, raising=False)
    assert loop_name() == ("uvloop" if HAVE_UVLOOP else "asyncio")
    assert run(_loop_module()).startswith("uvloop" if HAVE_UVLOOP else "asyncio")


def test_bad_choice_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOOP_ENV, "trio")
    with pytest.raises(ConfigurationError, match=LOOP_ENV):
        loop_factory()


@pytest.mark.skipif(HAVE_UVLOOP, reason="uvloop is installed")
def test_insisting_on_a_missing_uvloop_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOOP_ENV, "uvloop")
    with pytest.raises(ConfigurationError, match="not installed"):
        loop_factory()
