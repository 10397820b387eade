"""marshal against boto3's TypeSerializer/TypeDeserializer, and the size rule against an
independent implementation, on generated values."""

from __future__ import annotations

import base64
import math
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncdyn import marshal
from asyncdyn.errors import InvalidItem
from asyncdyn.marshal import (
    MAX_DEPTH,
    Decoder,
    encode_item,
    encode_value,
    item_size,
    wire_item_size,
)

from .test_marshal import HAVE_SPEEDUPS, IMPLEMENTATIONS

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

# ------------------------------------------------------------------------------------------
# Strategies: values both boto3 and DynamoDB accept (boto3's number context is looser than
# DynamoDB's range on one side and stricter on 39+ digit ints on the other).
# ------------------------------------------------------------------------------------------

ints = st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1)


@st.composite
def decimals(draw: st.DrawFn) -> Decimal:
    """Decimals of <= 38 digits whose leading digit sits within DynamoDB's 1E-130..9.9E+125
    and whose exponent boto3's context holds exactly (>= -165)."""
    if draw(st.integers(0, 20)) == 0:
        return Decimal((draw(st.integers(0, 1)), (0,), draw(st.integers(-20, 20))))
    digits = [draw(st.integers(1, 9))]
    digits += draw(st.lists(st.integers(0, 9), max_size=37))
    n = len(digits)
    exponent = draw(st.integers(min_value=max(-165, -130 - (n - 1)), max_value=125 - (n - 1)))
    return Decimal((draw(st.integers(0, 1)), tuple(digits), exponent))


numbers = st.one_of(ints, decimals())
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=20),
    st.binary(max_size=20),
    ints,
    decimals(),
)
sets = st.one_of(
    st.frozensets(st.text(max_size=10), min_size=1, max_size=5),
    st.frozensets(numbers, min_size=1, max_size=5),
    st.frozensets(st.binary(max_size=10), min_size=1, max_size=5),
).map(set)
documents = st.recursive(
    st.one_of(scalars, sets),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=20,
)
items = st.dictionaries(st.text(min_size=1, max_size=10), documents, min_size=1, max_size=6)


def _convert_binary(av: dict[str, Any], blob: Any) -> dict[str, Any]:
    """Rewrite B/BS in one AttributeValue (recursing into L/M) with ``blob``."""
    ((tag, x),) = av.items()
    if tag == "B":
        return {"B": blob(x)}
    if tag == "BS":
        return {"BS": [blob(b) for b in x]}
    if tag == "L":
        return {"L": [_convert_binary(v, blob) for v in x]}
    if tag == "M":
        return {"M": {k: _convert_binary(v, blob) for k, v in x.items()}}
    return av


def _to_boto_wire(av: dict[str, Any]) -> dict[str, Any]:
    """Our JSON wire form -> boto3's (B/BS as raw bytes, before botocore's base64)."""
    return _convert_binary(av, base64.b64decode)


def _to_json_wire(av: dict[str, Any]) -> dict[str, Any]:
    """boto3's wire form -> the JSON one (what botocore puts on the wire)."""
    return _convert_binary(av, lambda b: base64.b64encode(bytes(b)).decode("ascii"))


def _canon(value: Any) -> Any:
    """A comparable form that tells bool from number, bytes from str, and ignores int vs
    Decimal and bytes vs Binary."""
    if value is None:
        return ("NULL",)
    if isinstance(value, bool):
        return ("BOOL", value)
    if isinstance(value, (int, Decimal)):
        return ("N", Decimal(value))
    if isinstance(value, str):
        return ("S", value)
    if isinstance(value, (bytes, bytearray, Binary)):
        return ("B", bytes(value))
    if isinstance(value, (set, frozenset)):
        return ("SET", frozenset(_canon(v) for v in value))
    if isinstance(value, list):
        return ("L", tuple(_canon(v) for v in value))
    if isinstance(value, dict):
        return ("M", tuple(sorted((k, _canon(v)) for k, v in value.items())))
    raise AssertionError(f"unexpected {type(value)}")


@SETTINGS
@given(documents)
def test_boto3_reads_our_encoding_as_it_reads_its_own(value: Any) -> None:
    ours = encode_value(value)
    theirs = _serializer.serialize(value)
    from_ours = _deserializer.deserialize(_to_boto_wire(ours))
    from_theirs = _deserializer.deserialize(theirs)
    assert _canon(from_ours) == _canon(from_theirs)


@pytest.mark.parametrize("compiled", IMPLEMENTATIONS)
@SETTINGS
@given(value=documents)
def test_we_read_boto3_encoding_back_to_the_original(compiled: bool, value: Any) -> None:
    wire = _to_json_wire(_serializer.serialize(value))
    assert _canon(Decoder("decimal", compiled=compiled).value(wire)) == _canon(value)
    assert _canon(Decoder("auto", compiled=compiled).value(wire)) == _canon(value)


@pytest.mark.parametrize("compiled", IMPLEMENTATIONS)
@settings(SETTINGS, max_examples=100)  # whole items: the slowest, and the others cover values
@given(item=items)
def test_item_round_trip_and_size_agree(compiled: bool, item: dict[str, Any]) -> None:
    wire = encode_item(item)
    assert _canon(Decoder("decimal", compiled=compiled).item(wire)) == _canon(item)
    # The bound kept during the walk never under-estimates DynamoDB's size.
    exact = wire_item_size(wire)
    assert marshal._encode_item(item)[1] >= exact
    assert item_size(item) == exact
    boto_wire = {k: _to_json_wire(_serializer.serialize(v)) for k, v in item.items()}
    assert wire_item_size(boto_wire) == exact


# ------------------------------------------------------------------------------------------
# Number size: an independent statement of the rule, pairs of digits aligned on the point
# ------------------------------------------------------------------------------------------


def _reference_number_size(d: Decimal) -> int:
    if d == 0:
        return 1
    text = format(d.copy_abs(), "f")  # abs() would round to the context precision
    int_part, _, frac_part = text.partition(".")
    int_part = int_part.lstrip("0")
    if len(int_part) % 2:
        int_part = "0" + int_part
    if len(frac_part) % 2:
        frac_part += "0"
    pairs = [(int_part + frac_part)[i : i + 2] for i in range(0, len(int_part + frac_part), 2)]
    while pairs and pairs[0] == "00":
        pairs.pop(0)
    while pairs and pairs[-1] == "00":
        pairs.pop()
    return len(pairs) + 1 + (d < 0)


@SETTINGS
@given(st.one_of(ints, decimals(), st.integers(-(10**60), 10**60).map(lambda i: i * 10**40)))
def test_number_size_matches_the_reference(number: int | Decimal) -> None:
    if isinstance(number, int) and abs(number) >= 10**38:
        stripped = str(abs(number)).rstrip("0")
        if len(stripped) > 38 or abs(number) >= 10**126:
            return  # refused, covered elsewhere
    expected = _reference_number_size(Decimal(number))
    assert item_size({"n": number}) == 1 + expected
    wire = encode_value(number)
    assert wire_item_size({"n": wire}) == 1 + expected
    assert Decimal(wire["N"]) == Decimal(number)


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_go_out_as_their_shortest_repr(number: float) -> None:
    d = Decimal(repr(number))
    in_range = number == 0 or -130 <= d.adjusted() <= 125
    if not in_range:
        try:
            encode_value(number)
        except ValueError:
            return
        raise AssertionError(f"{number!r} is out of DynamoDB's range but was accepted")
    wire = encode_value(number)["N"]
    assert float(wire) == number
    assert Decimal(wire) == d
    assert item_size({"n": number}) == 1 + _reference_number_size(d)
    assert math.isfinite(float(wire))


@SETTINGS
@given(st.integers(min_value=1, max_value=MAX_DEPTH + 3), st.booleans())
def test_depth_limit(depth: int, use_lists: bool) -> None:
    value: Any = 1
    for _ in range(depth):
        value = [value] if use_lists else {"k": value}
    if depth < MAX_DEPTH:
        encode_value(value)
    else:
        try:
            encode_value(value)
        except ValueError:
            return
        raise AssertionError(f"{depth} wraps were accepted")


# ------------------------------------------------------------------------------------------
# The compiled decoder against the pure one, on anything JSON can hold: well-formed wire
# values and malformed ones alike must give the same value (type for type) or both refuse.
# ------------------------------------------------------------------------------------------

_TAGS = ["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS", "X", "s", "NN"]
_number_text = st.one_of(
    st.from_regex(r"-?[0-9]{1,40}(\.[0-9]{0,5})?([eE][-+]?[0-9]{1,3})?", fullmatch=True),
    st.text(alphabet="0123456789-+._eE nNaIfy", max_size=8),
)
_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    _number_text,
    st.sampled_from(["AAE=", "AQ==", "", "not base64!", "4pyT"]),
)


def _wire_values(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    tagged = st.dictionaries(st.sampled_from(_TAGS), children, min_size=0, max_size=2)
    return st.one_of(
        tagged,
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=3), children, max_size=3),
    )


json_wire = st.recursive(_json_scalars, _wire_values, max_leaves=12)
json_items = st.dictionaries(st.text(max_size=4), json_wire, max_size=4)


def _strict(value: Any) -> Any:
    """A form that tells int from Decimal from float and bool from int; sets sorted."""
    t = type(value)
    if t is dict:
        return ("dict", tuple((k, _strict(v)) for k, v in value.items()))
    if t is list:
        return ("list", tuple(_strict(v) for v in value))
    if t is set:
        return ("set", tuple(sorted(repr(_strict(v)) for v in value)))
    return (t.__name__, repr(value))


def _outcome(decode: Any, wire: Any) -> Any:
    try:
        return _strict(decode(wire))
    except InvalidItem:
        return "refused"


@pytest.mark.skipif(not HAVE_SPEEDUPS, reason="asyncdyn._speedups not built")
@pytest.mark.parametrize("numbers", ["auto", "decimal", "float"])
@settings(SETTINGS, max_examples=300)
@given(item=json_items, value=json_wire)
def test_compiled_decoder_agrees_with_the_pure_one(numbers: Any, item: Any, value: Any) -> None:
    pure, compiled = Decoder(numbers, compiled=False), Decoder(numbers, compiled=True)
    assert _outcome(compiled.item, item) == _outcome(pure.item, item)
    assert _outcome(compiled.items, [item, item]) == _outcome(pure.items, [item, item])
    assert _outcome(compiled.value, value) == _outcome(pure.value, value)


@pytest.mark.skipif(not HAVE_SPEEDUPS, reason="asyncdyn._speedups not built")
@settings(SETTINGS, max_examples=200)
@given(item=items)
def test_compiled_decoder_agrees_on_encoded_items(item: dict[str, Any]) -> None:
    wire = encode_item(item)
    for numbers in ("auto", "decimal", "float"):
        pure, compiled = Decoder(numbers, compiled=False), Decoder(numbers, compiled=True)
        assert _strict(compiled.item(wire)) == _strict(pure.item(wire))


# ------------------------------------------------------------------------------------------
# The compiled encoding walk against the pure one: on anything, it gives exactly the pure
# walk's (wire, size bound), or None (the pure walk then runs, and raises if it must).
# ------------------------------------------------------------------------------------------


class _Str(str):
    pass


class _Int(int):
    pass


_odd_scalars = st.one_of(
    scalars,
    st.floats(),  # NaN and infinities included: refused
    st.integers(),  # any size: 39+ digits go to the pure rules
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=2),
    st.builds(_Str, st.text(max_size=3)),
    st.builds(_Int, st.integers(-5, 5)),
    st.just(set()),
    st.just(object()),
)
_odd_documents = st.recursive(
    st.one_of(_odd_scalars, sets),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=3), st.integers(0, 3)), children, max_size=3),
    ),
    max_leaves=12,
)
_odd_items = st.dictionaries(
    st.one_of(st.text(max_size=4), st.builds(_Str, st.text(min_size=1, max_size=2))),
    _odd_documents,
    max_size=4,
)


def _pure_outcome(item: Any) -> Any:
    saved = marshal._fast_encode
    marshal._fast_encode = None
    try:
        return marshal._encode_item(item)
    except InvalidItem:
        return "refused"
    finally:
        marshal._fast_encode = saved


@pytest.mark.skipif(not HAVE_SPEEDUPS, reason="asyncdyn._speedups not built")
@settings(SETTINGS, max_examples=400)
@given(item=st.one_of(items, _odd_items))
def test_compiled_encoder_agrees_with_the_pure_one(item: Any) -> None:
    fast = marshal._fast_encode
    assert fast is not None
    done = fast(item)
    pure = _pure_outcome(item)
    if done is None:
        return  # the pure walk decides; nothing of the compiled one is used
    assert pure != "refused", f"compiled walk accepted what the pure one refuses: {item!r}"
    assert done == pure


@pytest.mark.skipif(not HAVE_SPEEDUPS, reason="asyncdyn._speedups not built")
@settings(SETTINGS, max_examples=200)
@given(item=items)
def test_compiled_encoder_takes_ordinary_items(item: dict[str, Any]) -> None:
    # Items of plain types (Decimal and sets through the pure per-value encoders) are
    # encoded by the compiled walk, not handed back.
    fast = marshal._fast_encode
    assert fast is not None
    if all(isinstance(name, str) and name.isascii() for name in item):
        assert fast(item) == _pure_outcome(item)
