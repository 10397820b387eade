"""marshal: every type both ways, every refusal with its path, DynamoDB's size rule, the limits."""

from __future__ import annotations

import datetime
import enum
import importlib.util
import os
import subprocess
import sys
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest

from asyncdyn import marshal
from asyncdyn.errors import ConfigurationError, InvalidItem
from asyncdyn.marshal import (
    COMPILED,
    MAX_DEPTH,
    MAX_ITEM_BYTES,
    Decoder,
    decoder,
    encode_item,
    encode_key,
    encode_value,
    item_size,
    wire_item_size,
)

HAVE_SPEEDUPS = marshal._speedups is not None
_FAST_ENCODE = marshal._fast_encode  # kept: the encode_path fixture may switch it off
IMPLEMENTATIONS = [
    pytest.param(False, id="pure"),
    pytest.param(
        True,
        id="compiled",
        marks=pytest.mark.skipif(
            not HAVE_SPEEDUPS, reason="asyncdyn._speedups not built (no C compiler?) or off"
        ),
    ),
]
"""``compiled=`` values for :class:`Decoder`; test_marshal_props uses them too."""


@pytest.fixture(autouse=True, params=IMPLEMENTATIONS)
def encode_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Every test here runs with the compiled encoding walk and without it (then
    ``encode_item`` is the pure-Python walk alone, the reference)."""
    compiled: bool = request.param
    if compiled:
        assert marshal._fast_encode is not None
    else:
        monkeypatch.setattr(marshal, "_fast_encode", None)
    return compiled


class Color(enum.IntEnum):
    RED = 7


class Status(str, enum.Enum):  # noqa: UP042 - the mixin whose str() is not its value
    PENDING = "PENDING"


class Level(enum.StrEnum):
    HIGH = "high"


class Name(str):
    pass


def _canon(wire: Any) -> Any:
    """Sets are unordered on the wire: compare their members sorted."""
    if isinstance(wire, dict):
        return {k: sorted(v) if k in ("SS", "NS", "BS") else _canon(v) for k, v in wire.items()}
    if isinstance(wire, list):
        return [_canon(v) for v in wire]
    return wire


def _id(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int too long for str()
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 40 else text[:37] + "..."


def _wrap(depth: int, leaf: Any = "leaf", kind: str = "map") -> Any:
    value = leaf
    for _ in range(depth):
        value = {"n": value} if kind == "map" else [value]
    return value


# ------------------------------------------------------------------------------------------
# Encoding: accepted values
# ------------------------------------------------------------------------------------------

ENCODE_CASES: list[tuple[Any, dict[str, Any]]] = [
    (None, {"NULL": True}),
    (True, {"BOOL": True}),
    (False, {"BOOL": False}),
    ("", {"S": ""}),
    ("héllo ✓", {"S": "héllo ✓"}),
    (Name("x"), {"S": "x"}),
    (Status.PENDING, {"S": "PENDING"}),
    (Level.HIGH, {"S": "high"}),
    (0, {"N": "0"}),
    (42, {"N": "42"}),
    (-42, {"N": "-42"}),
    (Color.RED, {"N": "7"}),
    (10**37, {"N": str(10**37)}),
    (10**38 - 1, {"N": "9" * 38}),
    (10**38, {"N": "1E+38"}),  # 39 digits, 1 significant: DynamoDB accepts it
    (-(10**38), {"N": "-1E+38"}),
    (12 * 10**100, {"N": "12E+100"}),
    (Decimal("1.5"), {"N": "1.5"}),
    (Decimal("-0.001"), {"N": "-0.001"}),
    (Decimal("1.500"), {"N": "1.500"}),
    (Decimal("1E+2"), {"N": "1E+2"}),
    (Decimal("0E-5"), {"N": "0.00000"}),
    (Decimal("0E+5"), {"N": "0"}),
    (Decimal("-0"), {"N": "-0"}),
    (Decimal("1." + "0" * 50), {"N": "1"}),
    (
        Decimal("9.9999999999999999999999999999999999999E+125"),
        {"N": "9.9999999999999999999999999999999999999E+125"},
    ),
    (Decimal("1E-130"), {"N": "1E-130"}),
    (Decimal("-1E-130"), {"N": "-1E-130"}),
    (0.1, {"N": "0.1"}),
    (99.99, {"N": "99.99"}),
    (100.0, {"N": "100.0"}),
    (-2.5, {"N": "-2.5"}),
    (0.0, {"N": "0.0"}),
    (-0.0, {"N": "-0.0"}),  # DynamoDB stores -0 as 0
    (1.5e-7, {"N": "1.5E-7"}),
    (1e16, {"N": "1E+16"}),
    (1e125, {"N": "1E+125"}),
    (b"\x00\x01", {"B": "AAE="}),
    (bytearray(b"\x00\x01"), {"B": "AAE="}),
    (memoryview(b"\x00\x01"), {"B": "AAE="}),
    (b"", {"B": ""}),
    ({"a", "b"}, {"SS": ["a", "b"]}),
    (frozenset({""}), {"SS": [""]}),
    ({Name("a"), "b"}, {"SS": ["a", "b"]}),
    ({1, Decimal("2.5"), 0.5}, {"NS": ["0.5", "1", "2.5"]}),
    ({Color.RED}, {"NS": ["7"]}),
    ({b"x", b""}, {"BS": ["", "eA=="]}),
    ([], {"L": []}),
    ([1, "a", None], {"L": [{"N": "1"}, {"S": "a"}, {"NULL": True}]}),
    ((1, (2,)), {"L": [{"N": "1"}, {"L": [{"N": "2"}]}]}),
    ({}, {"M": {}}),
    (
        {"a": 1, "b": {"c": [True]}},
        {"M": {"a": {"N": "1"}, "b": {"M": {"c": {"L": [{"BOOL": True}]}}}}},
    ),
    (OrderedDict(a="x"), {"M": {"a": {"S": "x"}}}),
    (MappingProxyType({"a": b"\x01"}), {"M": {"a": {"B": "AQ=="}}}),
    ({Name("k"): 1}, {"M": {"k": {"N": "1"}}}),
]


@pytest.mark.parametrize(("value", "wire"), ENCODE_CASES, ids=_id)
def test_encode_value(value: Any, wire: dict[str, Any]) -> None:
    got = encode_value(value)
    assert _canon(got) == _canon(wire)
    # The same value as an attribute of an item encodes the same way.
    assert _canon(encode_item({"a": value})) == {"a": _canon(wire)}


def test_encode_returns_plain_types_for_subclasses() -> None:
    assert type(encode_value(Status.PENDING)["S"]) is str
    assert type(encode_value(Name("x"))["S"]) is str
    assert type(next(iter(encode_item({Name("n"): 1})))) is str


def test_encode_item_keeps_attribute_order() -> None:
    item = {"z": 1, "a": "x", "m": [1]}
    assert list(encode_item(item)) == ["z", "a", "m"]


# ------------------------------------------------------------------------------------------
# Encoding: refusals, with the attribute path
# ------------------------------------------------------------------------------------------

REFUSED_VALUES: list[tuple[Any, str]] = [
    (float("nan"), "not finite"),
    (float("inf"), "not finite"),
    (float("-inf"), "not finite"),
    (Decimal("NaN"), "not finite"),
    (Decimal("sNaN"), "not finite"),
    (Decimal("-Infinity"), "not finite"),
    (10**126, "larger"),
    (-(10**126), "larger"),
    (10**5000, "larger"),  # must not trip Python's int-to-str digit limit first
    (Decimal("1E+126"), "larger"),
    (1e126, "larger"),
    (1e300, "larger"),
    (Decimal("1E-131"), "smaller"),
    (Decimal("-9E-131"), "smaller"),
    (1e-131, "smaller"),
    (5e-324, "smaller"),
    (2**127, "39 significant digits"),
    (10**38 + 1, "39 significant digits"),
    (Decimal("1.23456789012345678901234567890123456789"), "39 significant digits"),
    (Decimal("1234567890123456789012345678901234567.89"), "39 significant digits"),
    (set(), "empty set"),
    (frozenset(), "empty set"),
    ({1, "a"}, "mixes"),
    ({"a", b"a"}, "mixes"),
    ({2, True}, "bool"),
    ({None}, "unsupported type NoneType"),
    ({(1, 2)}, "unsupported type tuple"),
    ({0.1, Decimal("0.1")}, "same number twice"),
    (object(), "unsupported type object"),
    (range(3), "unsupported type range"),
    (complex(1, 2), "unsupported type complex"),
    ("\ud800", "lone surrogate"),
    ({"\ud800"}, "lone surrogate"),
]


@pytest.mark.parametrize(("value", "message"), REFUSED_VALUES, ids=_id)
def test_refused_values(value: Any, message: str) -> None:
    with pytest.raises(InvalidItem, match=message) as info:
        encode_item({"pk": "k", "attr": value})
    assert info.value.path == "attr"
    with pytest.raises(InvalidItem, match=message) as info:
        encode_value(value, ":v0")
    assert info.value.path == ":v0"
    with pytest.raises(InvalidItem) as info:
        encode_value(value)
    assert info.value.path == ""


def test_invalid_item_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not finite"):
        encode_value(float("nan"))


NESTED_PATHS: list[tuple[dict[str, Any], str]] = [
    ({"a": {"b": [0, 1, {"c": set()}]}}, "a.b[2].c"),
    ({"a": [[1, [float("nan")]]]}, "a[0][1][0]"),
    ({"order": {"lines": [{}, {}, {}, {"price": object()}]}}, "order.lines[3].price"),
    ({"a": {"b.c": {"d": frozenset()}}}, "a.b.c.d"),  # a dot in a name is not escaped
    ({"a": {1: "x"}}, "a"),  # a non-str key is the map's fault
    ({"a": [{"b": {2: 3}}]}, "a[0].b"),
    ({"é": {"ü": [set()]}}, "é.ü[0]"),
]


@pytest.mark.parametrize(("item", "path"), NESTED_PATHS, ids=_id)
def test_nested_paths(item: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidItem) as info:
        encode_item(item)
    assert info.value.path == path
    assert str(info.value).startswith(path + ": ")


def test_encode_value_prefixes_the_path() -> None:
    with pytest.raises(InvalidItem) as info:
        encode_value([1, {"x": set()}], ":v3")
    assert info.value.path == ":v3[1].x"
    with pytest.raises(InvalidItem) as info:
        encode_value({"x": [set()]})
    assert info.value.path == "x[0]"


def test_non_str_map_key_is_named_in_the_message() -> None:
    with pytest.raises(InvalidItem, match=r"map key 1 is not a str"):
        encode_item({"a": {1: "x"}})


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ([("a", 1)], "must be a mapping"),
        ("abc", "must be a mapping"),
        (None, "must be a mapping"),
        ({1: "x"}, "attribute name 1 is not a str"),
        ({"": "x"}, "attribute names must be 1..65535 bytes, got 0"),
        ({"x" * 65_536: 1}, "attribute names must be 1..65535 bytes, got 65536"),
    ],
    ids=_id,
)
def test_refused_items(item: Any, message: str) -> None:
    with pytest.raises(InvalidItem, match=message) as info:
        encode_item(item)
    assert info.value.path == ""


def test_empty_values_are_allowed_outside_keys() -> None:
    wire = encode_item({"s": "", "b": b"", "l": [], "m": {}, "ss": {""}, "bs": {b""}})
    assert wire == {
        "s": {"S": ""},
        "b": {"B": ""},
        "l": {"L": []},
        "m": {"M": {}},
        "ss": {"SS": [""]},
        "bs": {"BS": [""]},
    }


def test_nested_map_keys_may_be_empty() -> None:
    assert encode_value({"": 1}) == {"M": {"": {"N": "1"}}}


# ------------------------------------------------------------------------------------------
# Nesting depth: a top-level attribute's value is level 1. DynamoDB accepts a value wrapped in
# 31 maps (its scalar sits at level 32) and refuses 32 wraps.
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["map", "list"])
def test_depth_boundary(kind: str) -> None:
    assert MAX_DEPTH == 32
    ok = _wrap(MAX_DEPTH - 1, kind=kind)
    encode_item({"pk": "k", "d": ok})
    encode_value(ok)
    too_deep = _wrap(MAX_DEPTH, kind=kind)
    with pytest.raises(InvalidItem, match="nesting exceeds") as info:
        encode_item({"pk": "k", "d": too_deep})
    step = ".n" if kind == "map" else "[0]"
    assert info.value.path == "d" + step * (MAX_DEPTH - 1)
    with pytest.raises(InvalidItem, match="nesting exceeds"):
        encode_value(too_deep)


def test_depth_counts_maps_and_lists_alike() -> None:
    mixed_ok: Any = "leaf"
    for i in range(MAX_DEPTH - 1):
        mixed_ok = {"n": mixed_ok} if i % 2 else [mixed_ok]
    encode_value(mixed_ok)
    with pytest.raises(InvalidItem, match="nesting"):
        encode_value([mixed_ok])


def test_depth_boundary_with_empty_and_set_leaves() -> None:
    # A set is a leaf: one inside 31 wraps is at level 32, like a scalar.
    encode_value(_wrap(MAX_DEPTH - 1, leaf={1, 2}))
    # An empty map at level 32 is a 32nd wrap.
    with pytest.raises(InvalidItem, match="nesting"):
        encode_value(_wrap(MAX_DEPTH - 1, leaf={}))


# ------------------------------------------------------------------------------------------
# Keys
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "wire"),
    [
        ({"pk": "a"}, {"pk": {"S": "a"}}),
        ({"pk": "a", "sk": 1}, {"pk": {"S": "a"}, "sk": {"N": "1"}}),
        ({"pk": Decimal("1.5"), "sk": 2.5}, {"pk": {"N": "1.5"}, "sk": {"N": "2.5"}}),
        ({"pk": b"\x01"}, {"pk": {"B": "AQ=="}}),
        ({"pk": bytearray(b"\x01")}, {"pk": {"B": "AQ=="}}),
        ({"pk": Status.PENDING, "sk": Color.RED}, {"pk": {"S": "PENDING"}, "sk": {"N": "7"}}),
        ({"pk": "x" * 2048}, {"pk": {"S": "x" * 2048}}),
    ],
    ids=_id,
)
def test_encode_key(key: dict[str, Any], wire: dict[str, Any]) -> None:
    assert encode_key(key) == wire


@pytest.mark.parametrize(
    ("key", "path", "message"),
    [
        ({"pk": ""}, "pk", "empty string"),
        ({"pk": "a", "sk": b""}, "sk", "empty binary"),
        ({"pk": True}, "pk", "must be a string, number or binary"),
        ({"pk": None}, "pk", "must be a string, number or binary"),
        ({"pk": ["a"]}, "pk", "must be a string, number or binary"),
        ({"pk": {"a"}}, "pk", "must be a string, number or binary"),
        ({"pk": {"a": 1}}, "pk", "must be a string, number or binary"),
        ({"pk": float("nan")}, "pk", "not finite"),
        ({"pk": 10**200}, "pk", "larger"),
        ({"pk": "x" * 2049}, "pk", "2049 bytes"),
        ({"pk": "é" * 1025}, "pk", "2050 bytes"),
        ({"pk": b"x" * 2049}, "pk", "2049 bytes"),
        ({}, "", "one or two attributes"),
        ({"a": 1, "b": 2, "c": 3}, "", "one or two attributes"),
        ({"": 1}, "", "non-empty str"),
        ({1: 1}, "", "non-empty str"),
    ],
    ids=_id,
)
def test_refused_keys(key: dict[Any, Any], path: str, message: str) -> None:
    with pytest.raises(InvalidItem, match=message) as info:
        encode_key(key)
    assert info.value.path == path


def test_encode_key_needs_a_mapping() -> None:
    with pytest.raises(InvalidItem, match="must be a mapping"):
        encode_key("pk")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# Size (facts sheet 1.2)
# ------------------------------------------------------------------------------------------


def test_size_example_from_the_developer_guide() -> None:
    assert item_size({"shirt-color": "R", "shirt-size": "M"}) == 23


@pytest.mark.parametrize(
    ("number", "size"),
    [
        (0, 1),
        (Decimal("-0"), 1),
        (0.0, 1),
        (7, 2),
        (42, 2),
        (-42, 3),
        (100, 2),
        (999, 3),
        (12345, 4),
        (-12345, 5),
        (1.5, 3),
        (0.001, 2),
        (Decimal("0.0123"), 3),
        (Decimal("1.500"), 3),  # trailing zeros are trimmed
        (Decimal("123.45"), 4),
        (11000, 3),  # digit pairs are aligned on the decimal point: 01|10|00
        (10**37, 2),
        (10**38, 2),
        (Decimal("1E+125"), 2),
        (Decimal("1E-130"), 2),
        (10**38 - 1, 20),
        (-(10**38 - 1), 21),
        (Decimal("0.1") * 3, 2),
    ],
    ids=_id,
)
def test_number_size(number: Any, size: int) -> None:
    assert item_size({"n": number}) == 1 + size
    assert wire_item_size({"n": encode_value(number)}) == 1 + size


@pytest.mark.parametrize(
    ("wire_number", "size"),
    [("1E+2", 2), ("1.5e2", 3), ("00042", 2), ("3.1400", 3), ("-0", 1), ("+7", 2), ("0.000", 1)],
)
def test_wire_number_size_reads_any_notation(wire_number: str, size: int) -> None:
    assert wire_item_size({"n": {"N": wire_number}}) == 1 + size


@pytest.mark.parametrize(
    ("item", "size"),
    [
        ({"s": "abc"}, 4),
        ({"é": "ü✓"}, 2 + 5),
        ({"b": b"\x00" * 10}, 11),
        ({"b": bytearray(7)}, 8),
        ({"t": True, "z": None}, 4),
        ({"l": []}, 4),
        ({"m": {}}, 4),
        ({"l": ["a", "bc"]}, 1 + 3 + (1 + 1) + (2 + 1)),
        ({"m": {"a": "x"}}, 1 + 3 + (1 + 1 + 1)),
        ({"m": {"k": {"j": [1]}}}, 1 + 3 + (1 + 1 + (3 + 1 + 1 + (3 + 1 + 2)))),
        ({"ss": {"ab", "c"}}, 2 + 3),
        ({"ns": {1, 22, -3}}, 2 + 2 + 2 + 3),
        ({"bs": {b"ab", b"c"}}, 2 + 3),
        # A worked example: 5 + 5 + 5 + 7.
        ({"id": "abc", "n": 12345, "flag": True, "l": ["xy"]}, 22),
    ],
    ids=_id,
)
def test_item_size(item: dict[str, Any], size: int) -> None:
    assert item_size(item) == size
    assert wire_item_size(encode_item(item)) == size


def test_item_of_exactly_400kb_is_accepted_and_one_byte_more_is_refused() -> None:
    assert MAX_ITEM_BYTES == 409_600
    exact = {"pk": "x" * (MAX_ITEM_BYTES - 2)}
    assert item_size(exact) == MAX_ITEM_BYTES
    encode_item(exact)
    over = {"pk": "x" * (MAX_ITEM_BYTES - 1)}
    with pytest.raises(InvalidItem, match="409601 bytes") as info:
        encode_item(over)
    assert info.value.path == ""
    assert item_size(over) == MAX_ITEM_BYTES + 1  # item_size itself does not refuse


def test_size_limit_with_numbers_and_binary_is_exact() -> None:
    # Numbers are only bounded during the walk; near the limit the exact figure decides.
    filler = MAX_ITEM_BYTES - (1 + 3) - (1 + 4) - (1 + 3) - 1
    item: dict[str, Any] = {"s": "x" * filler, "n": -42, "d": Decimal("123.45"), "f": 1.5}
    assert item_size(item) == MAX_ITEM_BYTES
    encode_item(item)
    item["s"] += "x"
    with pytest.raises(InvalidItem, match="409601 bytes"):
        encode_item(item)
    blob = {"b": b"\xff" * (MAX_ITEM_BYTES - 1)}
    encode_item(blob)
    with pytest.raises(InvalidItem, match="bytes"):
        encode_item({"b": b"\xff" * MAX_ITEM_BYTES})


def test_size_counts_utf8_bytes_of_names_and_strings() -> None:
    item = {"é": "€" * ((MAX_ITEM_BYTES - 2) // 3)}  # 2 + 3 * 136532 = 409598
    assert item_size(item) == 409_598
    encode_item(item)
    with pytest.raises(InvalidItem):
        encode_item({"é": "€" * ((MAX_ITEM_BYTES - 2) // 3 + 1)})


# ------------------------------------------------------------------------------------------
# Decoding: every decoding test runs on both decoders (make_decoder), and on both encoders.
# ------------------------------------------------------------------------------------------

MakeDecoder = Callable[..., Decoder]


@pytest.fixture(params=IMPLEMENTATIONS)
def make_decoder(request: pytest.FixtureRequest) -> MakeDecoder:
    compiled: bool = request.param

    def make(numbers: Any = "auto") -> Decoder:
        made = Decoder(numbers, compiled=compiled)
        assert made.compiled is compiled
        return made

    return make


WIRE_ALL: dict[str, dict[str, Any]] = {
    "s": {"S": "x"},
    "i": {"N": "42"},
    "neg": {"N": "-7"},
    "d": {"N": "1.5"},
    "e": {"N": "1E+2"},
    "big": {"N": "1" + "0" * 125},
    "b": {"B": "AAE="},
    "t": {"BOOL": True},
    "f": {"BOOL": False},
    "z": {"NULL": True},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": ["AQ==", ""]},
    "l": {"L": [{"S": "a"}, {"N": "1"}, {"N": "0.5"}, {"B": "AQ=="}, {"L": []}, {"M": {}}]},
    "m": {"M": {"k": {"N": "3"}, "n": {"M": {"x": {"NULL": True}}}, "q": {"S": ""}}},
}


def test_decode_auto(make_decoder: MakeDecoder) -> None:
    got = make_decoder("auto").item(WIRE_ALL)
    assert got == {
        "s": "x",
        "i": 42,
        "neg": -7,
        "d": Decimal("1.5"),
        "e": Decimal("1E+2"),
        "big": 10**125,
        "b": b"\x00\x01",
        "t": True,
        "f": False,
        "z": None,
        "ss": {"a", "b"},
        "ns": {1, Decimal("2.5")},
        "bs": {b"\x01", b""},
        "l": ["a", 1, Decimal("0.5"), b"\x01", [], {}],
        "m": {"k": 3, "n": {"x": None}, "q": ""},
    }
    assert type(got["i"]) is int
    assert type(got["big"]) is int
    assert type(got["d"]) is Decimal
    assert type(got["b"]) is bytes
    assert type(got["l"][1]) is int
    assert type(got["m"]["k"]) is int
    assert {type(n) for n in got["ns"]} == {int, Decimal}


def test_decode_decimal(make_decoder: MakeDecoder) -> None:
    got = make_decoder("decimal").item(WIRE_ALL)
    assert type(got["i"]) is Decimal and got["i"] == 42
    assert type(got["l"][1]) is Decimal
    assert type(got["m"]["k"]) is Decimal
    assert {type(n) for n in got["ns"]} == {Decimal}
    assert got["ns"] == {Decimal(1), Decimal("2.5")}


def test_decode_float(make_decoder: MakeDecoder) -> None:
    got = make_decoder("float").item(WIRE_ALL)
    assert type(got["i"]) is float and got["i"] == 42.0
    assert got["d"] == 1.5
    assert got["big"] == 1e125
    assert type(got["l"][1]) is float
    assert type(got["m"]["k"]) is float
    assert got["ns"] == {1.0, 2.5}
    assert {type(n) for n in got["ns"]} == {float}


@pytest.mark.parametrize(
    ("wire", "value"),
    [
        ({"S": "x"}, "x"),
        ({"N": "-0"}, 0),
        ({"N": "0.50"}, Decimal("0.5")),
        ({"B": ""}, b""),
        ({"NULL": True}, None),
        ({"BOOL": True}, True),
        ({"L": [{"NULL": True}, {"BOOL": False}]}, [None, False]),
        ({"M": {"a": {"SS": ["x"]}}}, {"a": {"x"}}),
    ],
    ids=_id,
)
def test_decode_value(wire: dict[str, Any], value: Any, make_decoder: MakeDecoder) -> None:
    assert make_decoder().value(wire) == value


def test_decode_items_page(make_decoder: MakeDecoder) -> None:
    page = [{"pk": {"S": str(i)}, "n": {"N": str(i)}} for i in range(5)]
    assert make_decoder().items(page) == [{"pk": str(i), "n": i} for i in range(5)]
    assert make_decoder().items([]) == []


@pytest.mark.parametrize(
    "wire",
    [
        {"a": {}},
        {"a": {"X": "1"}},
        {"a": {"N": "abc"}},
        {"a": {"N": "1.2.3"}},
        {"a": {"B": "not base64!"}},
        {"a": {"L": [{"Q": 1}]}},
        {"a": {"M": {"b": {}}}},
        {"a": "S"},
        {"a": None},
    ],
    ids=_id,
)
def test_decode_malformed(wire: dict[str, Any], make_decoder: MakeDecoder) -> None:
    with pytest.raises(InvalidItem, match="cannot decode"):
        make_decoder().item(wire)
    with pytest.raises(InvalidItem, match="cannot decode"):
        make_decoder().items([wire])


def test_decode_malformed_value(make_decoder: MakeDecoder) -> None:
    with pytest.raises(InvalidItem, match="cannot decode"):
        make_decoder().value({"S": "a", "N": "1"})


def test_decoder_construction() -> None:
    assert decoder() is decoder("auto")
    assert decoder("decimal") is not decoder("float")
    assert isinstance(decoder("float"), Decoder)
    assert Decoder("decimal").numbers == "decimal"
    assert "decimal" in repr(Decoder("decimal"))
    assert not hasattr(Decoder(), "__dict__")
    with pytest.raises(ConfigurationError, match="numbers must be"):
        Decoder("int")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        decoder("")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["auto", "decimal", "float"])
def test_round_trip(mode: Any, make_decoder: MakeDecoder) -> None:
    item = {
        "pk": "CUSTOMER#1",
        "n": 7,
        "price": Decimal("99.99") if mode != "float" else 99.99,
        "blob": b"\x00\xff",
        "tags": {"a", "b"},
        "scores": {1, 2, 3},
        "blobs": {b"x", b"y"},
        "nested": {"list": [1, "two", None, True, {"deep": [[]]}], "empty": {}},
        "nothing": None,
    }
    assert make_decoder(mode).item(encode_item(item)) == item


def test_as_floats_matches_the_float_decoder(make_decoder: MakeDecoder) -> None:
    from asyncdyn.marshal import as_floats

    item = {"a": 1, "b": Decimal("1.5"), "c": [2, {"d": Decimal("1e40")}], "s": {3, 4}, "t": "x"}
    wire = encode_item(item)
    assert as_floats(make_decoder("auto").item(wire)) == make_decoder("float").item(wire)
    assert type(as_floats(make_decoder("auto").item(wire))["a"]) is float


def test_decode_what_json_never_gives(make_decoder: MakeDecoder) -> None:
    # Not orjson's output (a tuple for L, a mapping proxy for M, a str subclass for N): the
    # compiled path hands these to the pure functions, so both still agree.
    wire = {
        "l": {"L": ({"S": "a"}, {"N": "2"})},
        "m": {"M": MappingProxyType({"k": {"N": "1.5"}})},
        "n": {"N": Name("12")},
        "ss": {"SS": ("a", "b")},
        "ns": {"NS": ("1", "2")},
        "first": {"S": "x", "N": "1"},  # two tags: S wins, as the pure fast path trusts S
        "null_s": {"S": None},
    }
    got = make_decoder().item(wire)
    assert got == {
        "l": ["a", 2],
        "m": {"k": Decimal("1.5")},
        "n": 12,
        "ss": {"a", "b"},
        "ns": {1, 2},
        "first": "x",
        "null_s": None,
    }
    assert type(got["n"]) is int
    assert make_decoder().items(iter([{"a": {"S": "x"}}])) == [{"a": "x"}]


@pytest.mark.parametrize(
    ("number", "auto"),
    [
        ("0", 0),
        ("-0", 0),
        ("007", 7),
        ("999999999999999999", 999_999_999_999_999_999),  # 18 digits: read in C
        ("-999999999999999999", -999_999_999_999_999_999),
        ("1000000000000000000", 10**18),  # 19 digits: int()'s parser
        ("-" + "9" * 38, -(10**38 - 1)),
        ("+5", 5),
        ("1_000", 1000),  # int() accepts it; so does the decoder, on both paths
        ("1.50", Decimal("1.50")),
        ("-1E-130", Decimal("-1E-130")),
        ("12e3", Decimal("12e3")),
        ("\u0661\u0662", 12),  # int() reads any Unicode decimal digits
    ],
)
def test_number_rules(number: str, auto: Any, make_decoder: MakeDecoder) -> None:
    got = make_decoder("auto").value({"N": number})
    assert got == auto and type(got) is type(auto)
    assert make_decoder("decimal").value({"N": number}) == Decimal(number)
    assert make_decoder("float").value({"N": number}) == float(number)


@pytest.mark.parametrize("number", ["", "-", "1-", "abc", "1.2.3", "--1", "1e", " ", "0x10"])
def test_bad_numbers(number: str, make_decoder: MakeDecoder) -> None:
    for mode in ("auto", "decimal", "float"):
        with pytest.raises(InvalidItem, match="cannot decode"):
            make_decoder(mode).value({"N": number})


def test_deep_nesting_is_refused_not_crashed(make_decoder: MakeDecoder) -> None:
    wire: dict[str, Any] = {"S": "leaf"}
    for _ in range(100_000):
        wire = {"M": {"a": wire}}
    with pytest.raises(RecursionError):
        make_decoder().value(wire)


def test_compiled_encoder_does_the_common_shapes_itself() -> None:
    # Not a fallback every time: an ordinary item is encoded by the C walk, and equals the
    # pure walk's result, bound included.
    if not HAVE_SPEEDUPS:
        pytest.skip("asyncdyn._speedups not built")
    item = {
        "pk": "CUSTOMER#1",
        "n": -(2**63),
        "big": 10**30,
        "price": Decimal("99.99"),
        "f": 1.5,
        "ok": True,
        "none": None,
        "é": "€",
        "nested": {"list": [1, "two", None, (3, {"deep": []})], "": {}},
        "blob": b"\x00",
        "tags": {"a"},
    }
    fast = _FAST_ENCODE
    assert fast is not None
    done = fast(item)
    assert done is not None
    assert done == _pure_encode(item)


def _pure_encode(item: Any) -> Any:
    saved = marshal._fast_encode
    marshal._fast_encode = None
    try:
        return marshal._encode_item(item)
    finally:
        marshal._fast_encode = saved


@pytest.mark.parametrize(
    "item",
    [
        {"a": "\ud800"},  # lone surrogate
        {"": "x"},  # empty attribute name
        {"a" * 65_536: 1},  # name too long
        {Name("a"): 1},  # str subclass name: the pure walk's business
        {1: "x"},
        {"a": {1: "x"}},
        {"a": {Name("k"): "x"}},
        {"a": float("nan")},
        {"a": set()},
        {"a": object()},
        {"a": _wrap(MAX_DEPTH)},
        {"a": _wrap(MAX_DEPTH, kind="list")},
        OrderedDict(a=1),
    ],
    ids=_id,
)
def test_compiled_encoder_leaves_the_rest_to_python(item: Any) -> None:
    if not HAVE_SPEEDUPS:
        pytest.skip("asyncdyn._speedups not built")
    fast = _FAST_ENCODE
    assert fast is not None
    assert fast(item) is None


# ------------------------------------------------------------------------------------------
# Which implementation is active
# ------------------------------------------------------------------------------------------


def _probe(env: dict[str, str]) -> str:
    code = (
        "import sys, asyncdyn.marshal as m; "
        "print(m.COMPILED, m.decoder().compiled, 'asyncdyn._speedups' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_compiled_flag_says_which_decoder_is_active() -> None:
    assert COMPILED is (marshal._speedups is not None)
    assert decoder().compiled is COMPILED
    assert Decoder().compiled is COMPILED
    assert Decoder(compiled=False).compiled is False
    if os.environ.get("ASYNCDYN_REQUIRE_SPEEDUPS") == "1":
        # CI sets this: there is a C compiler, so `pip install` must have built the extension.
        assert COMPILED, "asyncdyn._speedups was not built"
    if COMPILED:
        from asyncdyn import _speedups  # type: ignore[attr-defined]

        assert type(decoder()._map.__self__) is _speedups.Decoder  # type: ignore[attr-defined]


def test_asyncdyn_pure_turns_the_compiled_decoder_off() -> None:
    assert _probe({"ASYNCDYN_PURE": "1"}) == "False False False"
    built = importlib.util.find_spec("asyncdyn._speedups") is not None
    expected = "True True True" if built else "False False False"
    assert _probe({"ASYNCDYN_PURE": "0"}) == expected


def test_asking_for_the_compiled_decoder_when_it_is_absent() -> None:
    code = (
        "import asyncdyn.marshal as m\n"
        "try:\n    m.Decoder(compiled=True)\n"
        "except m.ConfigurationError as e:\n    print('refused:', e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "ASYNCDYN_PURE": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith("refused: the compiled decoder (asyncdyn._speedups)")


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),  # aware: refused too
        datetime.datetime(2026, 1, 2, 3, 4, 5),
        datetime.date(2026, 1, 2),
        datetime.time(3, 4),
        {datetime.date(2026, 1, 2)},
        {"nested": [datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)]},
    ],
    ids=repr,
)
def test_datetimes_are_refused_with_the_two_encodings_named(value: Any) -> None:
    with pytest.raises(InvalidItem) as info:
        encode_item({"pk": "k", "at": value})
    message = str(info.value)
    assert info.value.path.startswith("at")
    assert "is not a DynamoDB type" in message
    assert "ISO-8601 UTC string" in message and "epoch number" in message
    assert "asyncdyn.model" in message
