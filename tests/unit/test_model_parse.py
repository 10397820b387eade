"""The generated key parsers agree with the regular-expression parse on any text."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from asyncdyn import Client
from asyncdyn.model import Raw
from asyncdyn.model.templates import Template
from asyncdyn.testing import ScriptedTransport, answer

KINDS: dict[str, Any] = {"a": str, "b": int, "c": datetime, "d": date, "e": Decimal}
TEXTS = [
    "ORDER#{a}",
    "METADATA",
    "{a}",
    "{c}#ORDER#{a}",
    "ITEM#{b:05d}",
    "SENSOR#{a}#{c:%Y-%m}",
    "P#{a}#{b}#{d}#X",
    "{e}#{a}",
    "A{a}x{b}",  # a field followed by a literal without the separator: the regex parse
]


def compiled(text: str) -> Template:
    t = Template(text, "#")
    t.compile("T", KINDS)
    return t


def test_shapes_get_a_generated_parser_unless_ambiguous() -> None:
    generated = {text: compiled(text)._fast is not None for text in TEXTS}
    assert generated == {text: text != "A{a}x{b}" for text in TEXTS}
    order = compiled("{c}#ORDER#{a}")
    assert order.parse("2024-01-03T09:30:00.000000Z#ORDER#9") == {
        "c": datetime.fromisoformat("2024-01-03T09:30:00+00:00"),
        "a": "9",
    }
    assert order.parse("2024-01-03#ORDER#9") is None
    assert compiled("ITEM#{b:05d}").parse("ITEM#00042") == {"b": 42}
    assert compiled("METADATA").parse("METADATA") == {}
    assert compiled("METADATA").parse("METADATAX") is None


alphabet = st.sampled_from(list("#OREDITMAXP0123456789-:.TZ ab_"))
key_text = st.text(alphabet, max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(TEXTS), key_text, st.data())
def test_generated_parse_agrees_with_the_regex(text: str, noise: str, data: Any) -> None:
    template = compiled(text)
    # Keys made from the template's own literals with noise between them, and pure noise.
    literal_parts = [p if isinstance(p, str) else noise for p in template.parts]
    candidates = [noise, "".join(literal_parts), "".join(literal_parts) + "#", None, 7]
    candidates.append(data.draw(key_text))
    for candidate in candidates:
        assert template.parse(candidate) == template._parse_regex(candidate), candidate


def test_keyed_decode_agrees_with_parse_then_decode() -> None:
    from asyncdyn.model.entity import KEYED_MISS
    from tests.model_shop import Customer, Order, OrderItem

    order = {
        "PK": "CUSTOMER#1",
        "SK": "ORDER#9",
        "Type": "Order",
        "total": Decimal("3.5"),
        "status": "NEW",
        "placed_at": "2024-01-03T09:30:00.000000Z",
        "n": "gift",
    }
    item = {"PK": "ORDER#7", "SK": "ITEM#00042", "sku": "S", "qty": 2}
    customer = {"PK": "CUSTOMER#1", "SK": "METADATA", "email": "e", "name": "N", "version": 3}
    cases: list[tuple[Any, dict[str, Any], dict[str, Any]]] = [
        (Order, order, {"customer_id": "1"}),
        (OrderItem, item, {"order_id": "7"}),
        (OrderItem, {**item, "qty": None}, {"order_id": "7"}),
        (Customer, customer, {"customer_id": "1"}),
        (Customer, {**customer, "customer_id": "stored"}, {"customer_id": "1"}),
    ]
    for cls, stored, known in cases:
        info = cls.__asyncdyn_entity__
        assert info.keyed is not None
        parsed = info.key.sk.parse(stored["SK"])
        assert parsed is not None
        expected = info.decode(stored, {**parsed, **known})
        assert info.keyed(stored, known) == expected
    order_info = Order.__asyncdyn_entity__
    assert order_info.keyed is not None
    # Not its key, a field missing, a key its parser refuses: the long way decides.
    assert order_info.keyed({**order, "SK": "METADATA"}, {"customer_id": "1"}) is KEYED_MISS
    lacking = {k: v for k, v in order.items() if k != "status"}
    assert order_info.keyed(lacking, {"customer_id": "1"}) is KEYED_MISS
    item_info = OrderItem.__asyncdyn_entity__
    assert item_info.keyed is not None
    assert item_info.keyed({**item, "SK": "ITEM#x"}, {"order_id": "7"}) is KEYED_MISS


def _wire(pk: str, sk: str, **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"PK": {"S": pk}, "SK": {"S": sk}}
    for name, value in more.items():
        out[name] = {"N": str(value)} if isinstance(value, int) else {"S": value}
    return out


async def test_pages_of_decodes_hand_what_they_do_not_take_to_the_long_way(
    client: Client, transport: ScriptedTransport
) -> None:
    from tests.model_shop import Customer, Order, customer_page, shop

    def order(n: int) -> dict[str, Any]:
        return _wire(
            "CUSTOMER#1",
            f"ORDER#{n}",
            total=n,
            status="NEW",
            placed_at="2024-01-03T09:30:00.000000Z",
        )

    customer = _wire("CUSTOMER#1", "METADATA", email="e", name="N", version=1)
    stranger = _wire("CUSTOMER#1", "NOTE#1", Type="Note")
    transport.default = answer({"Items": [customer, order(1), stranger, order(2)], "Count": 4})
    repo = shop.bind(client)
    rows = [r async for r in repo.query(customer_page, customer_id="1", unknown="skip")]
    assert [type(r) for r in rows] == [Customer, Order, Order]
    assert [r.order_id for r in rows[1:]] == ["1", "2"]
    rows = [r async for r in repo.query(customer_page, customer_id="1", unknown="raw")]
    assert [type(r).__name__ for r in rows] == ["Customer", "Order", "Raw", "Order"]
    assert isinstance(rows[2], Raw) and rows[2].item["SK"] == "NOTE#1"
    page = await repo.page(customer_page, customer_id="1", unknown="skip", limit=10)
    assert [type(r) for r in page.items] == [Customer, Order, Order]
    # One member: an item its decode does not take goes the long way, and is skipped there.
    transport.default = answer({"Items": [order(1), stranger, order(2)], "Count": 3})
    orders = [o.order_id async for o in repo.query(Order, customer_id="1", unknown="skip")]
    assert orders == ["1", "2"]
