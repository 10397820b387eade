"""Unit tests never open a socket: a client wired to a ScriptedTransport and no-wait retries."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from asyncdyn import Client, RetryPolicy
from asyncdyn.testing import ScriptedTransport


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("unit tests must not open sockets")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield


@pytest.fixture
def transport() -> ScriptedTransport:
    return ScriptedTransport()


@pytest.fixture
async def client(transport: ScriptedTransport) -> AsyncIterator[Client]:
    # base=0: retries do not wait, so retry paths run instantly and deterministically.
    async with Client(
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        credentials=("AKIDEXAMPLE", "secret"),
        retry=RetryPolicy(max_attempts=4, base=0.0),
        transport=transport,
    ) as db:
        yield db
