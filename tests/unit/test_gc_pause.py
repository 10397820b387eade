"""Big answers are decoded with the cyclic garbage collector paused, and only then."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from asyncdyn import Client, InvalidItem, Key
from asyncdyn.testing import ScriptedTransport, answer


def _page(n: int) -> dict[str, Any]:
    # ~1 KB per item: 20 of them make an answer well over the pause threshold.
    return {
        "Items": [
            {"PK": {"S": "p"}, "SK": {"S": f"{i:04d}"}, "x": {"S": "y" * 1000}} for i in range(n)
        ],
        "Count": n,
    }


@pytest.fixture
def states(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """gc.isenabled() as seen by every page decoded, i.e. while items are decoded.

    The spy wraps ``Decoder.items`` (not ``Decimal``, which the compiled decoder binds once),
    so it sees the pure and the compiled decoder alike."""
    seen: list[bool] = []
    import asyncdyn.marshal as marshal

    real = marshal.Decoder.items

    def spy(self: marshal.Decoder, wires: Any) -> Any:
        seen.append(gc.isenabled())
        return real(self, wires)

    monkeypatch.setattr(marshal.Decoder, "items", spy)
    assert gc.isenabled()
    yield seen
    assert gc.isenabled()


def _with_number(page: dict[str, Any]) -> dict[str, Any]:
    page["Items"] = [{**item, "n": {"N": "1.5"}} for item in page["Items"]]
    return page


async def test_big_page_is_decoded_with_gc_paused(
    client: Client, transport: ScriptedTransport, states: list[bool]
) -> None:
    transport.steps.append(answer(_with_number(_page(20))))
    items = [item async for item in client.table("t").query(Key("PK").eq("p"))]
    assert len(items) == 20 and items[0]["SK"] == "0000"
    assert states and not any(states)
    assert gc.isenabled()


async def test_small_answer_leaves_gc_alone(
    client: Client, transport: ScriptedTransport, states: list[bool]
) -> None:
    transport.steps.append(answer(_with_number(_page(1))))
    items = [item async for item in client.table("t").query(Key("PK").eq("p"))]
    assert len(items) == 1
    assert states == [True]


async def test_gc_comes_back_after_a_decoding_error(
    client: Client, transport: ScriptedTransport
) -> None:
    page = _page(20)
    page["Items"][-1] = {"PK": {"XX": "bad tag"}}
    transport.steps.append(answer(page))
    with pytest.raises(InvalidItem):
        [item async for item in client.table("t").query(Key("PK").eq("p"))]
    assert gc.isenabled()


async def test_gc_disabled_by_the_application_stays_disabled(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.steps.append(answer(_page(20)))
    gc.disable()
    try:
        [item async for item in client.table("t").query(Key("PK").eq("p"))]
        assert not gc.isenabled()
    finally:
        gc.enable()
