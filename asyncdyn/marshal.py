"""DynamoDB JSON <-> Python, through dispatch tables, and DynamoDB's item size computation.

Encoding validates everything DynamoDB would refuse that can be known without the table's
schema (unsupported types, NaN, numbers out of range or too precise, empty and mixed sets,
nesting, the 400 KB item size) and raises :class:`~asyncdyn.errors.InvalidItem` naming the
attribute path, before anything is sent. The same walk that encodes bounds the item's size
from above; the exact size (DynamoDB's rule) is computed only for an item near the limit.

Decoding is the hot path of every read: a :class:`Decoder` is built once per client and turns
the wire form of a page of items into plain Python values with one dict lookup per value.
When the optional C extension ``asyncdyn._speedups`` was built at install time (it is, when a
C compiler is present), the decoder walks orjson's output in C instead, and encoding walks the
common shapes of items (dicts, lists, str, int, bool, None) in C, handing every other value to
the encoders here and every refusal back to the pure walk. The Python functions stay the
reference and the fallback (``ASYNCDYN_PURE=1`` forces them), and both paths run the same
tests. :data:`COMPILED` says which one is in use.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import importlib
import math
import os
from collections.abc import Callable, Mapping, Sequence, Set
from decimal import Decimal
from typing import Any, Literal, TypeAlias

from .errors import ConfigurationError, InvalidItem

__all__ = [
    "COMPILED",
    "MAX_DEPTH",
    "MAX_ITEM_BYTES",
    "Decoder",
    "Item",
    "NumberMode",
    "WireItem",
    "WireValue",
    "decoder",
    "encode_item",
    "encode_key",
    "encode_value",
    "item_size",
    "wire_item_size",
]

Item: TypeAlias = dict[str, Any]
"""A Python item: attribute name -> plain Python value."""
WireValue: TypeAlias = dict[str, Any]
"""One DynamoDB AttributeValue in its JSON form, e.g. ``{"S": "x"}``."""
WireItem: TypeAlias = dict[str, WireValue]
"""An item in DynamoDB JSON: attribute name -> AttributeValue."""
NumberMode: TypeAlias = Literal["auto", "decimal", "float"]
"""How ``N`` values decode: ``auto`` (int when integral, else Decimal), ``decimal``, ``float``."""

MAX_ITEM_BYTES = 409_600
"""DynamoDB's item size limit: 400 KB of 1024 bytes (facts sheet 1.1, 1.2)."""
MAX_DEPTH = 32
"""DynamoDB's document nesting limit (facts sheet 1.10); see ``_enc_map`` for the counting."""

_MAX_NAME_BYTES = 65_535
_MAX_KEY_VALUE_BYTES = 2_048  # partition key limit; a sort key (1024) is smaller still
_MAX_DIGITS = 38
# Positions (powers of ten) of the most significant digit DynamoDB can hold: the range is
# 1E-130 .. 9.99..9E+125 in magnitude, so the leading digit sits at 10**-130 .. 10**125.
_MAX_EXP = 125
_MIN_EXP = -130
_E38 = 10**_MAX_DIGITS
_E126 = 10 ** (_MAX_EXP + 1)

_b64encode = base64.b64encode
_b64decode = binascii.a2b_base64
_isfinite = math.isfinite

Encoder: TypeAlias = Callable[[Any, int], tuple[WireValue, int]]


class _Refusal(Exception):
    """Internal: a value cannot be encoded. Containers add their key to ``segments`` as the
    exception passes through them, so the path costs nothing unless something is refused."""

    __slots__ = ("message", "segments", "own")

    def __init__(self, message: str, *, own: bool = False) -> None:
        super().__init__(message)
        self.message = message
        # Innermost first: str for a map key / attribute name, int for a list index.
        self.segments: list[str | int] = []
        # True when the refusal is about the container itself (a bad map key), so the
        # container must not add the offending key to the path.
        self.own = own


def _format_path(prefix: str, segments: list[str | int]) -> str:
    parts = [prefix]
    for seg in reversed(segments):
        if isinstance(seg, int):
            parts.append(f"[{seg}]")
        elif parts[-1]:
            parts.append("." + seg)
        else:
            parts.append(seg)
    return "".join(parts)


def _invalid(exc: _Refusal, prefix: str = "") -> InvalidItem:
    return InvalidItem(exc.message, _format_path(prefix, exc.segments))


def _type_name(value: object) -> str:
    return type(value).__qualname__


def _utf8_len(s: str) -> int:
    try:
        return len(s.encode("utf-8"))
    except UnicodeEncodeError:
        raise _Refusal("string is not valid UTF-8 (it contains a lone surrogate)") from None


# --------------------------------------------------------------------------------------------
# Numbers
#
# A number is validated and sized from the positions (powers of ten) of its most significant
# non-zero digit ``hi`` and least significant non-zero digit ``lo``:
#   significant digits = hi - lo + 1   (leading and trailing zeros do not count; <= 38)
#   range              = _MIN_EXP <= hi <= _MAX_EXP
#   size               = hi // 2 - lo // 2 + 1 bytes of digits, + 1, + 1 if negative; 0 is 1.
# The size rule stores digits in pairs aligned on the decimal point (base 100), which is the
# facts sheet's ``ceil(int_digits/2) + ceil(frac_digits/2) + 1`` (+1 negative): 42 -> 2,
# -42 -> 3, 12345 -> 4, 1.5 -> 3, 0.001 -> 2. Where the alignment and the plain digit count
# disagree (11000 is pairs 01|10|00: 2 pairs, though "11" is one pair of digits), the aligned
# figure is the larger one, so the 400 KB check errs on the side of refusing locally rather
# than letting the server refuse.
#
# Encoding does not compute that exact size: it returns a cheap upper bound, len(s) // 2 + 2
# for a plain number string s (at most two digits per byte, one for the point, plus the
# exponent and sign bytes), and the exact figure is computed from the wire form only when the
# bounded total of an item comes near the limit (see encode_item). Likewise an int below
# 10**38, a plain Decimal string of <= 38 characters, or a float's repr without an exponent
# is always within DynamoDB's digits and range, so those need no checks at all.
# --------------------------------------------------------------------------------------------


def _check_digits(hi: int, lo: int) -> None:
    if hi - lo >= _MAX_DIGITS:
        raise _Refusal(
            f"number has {hi - lo + 1} significant digits; DynamoDB keeps at most {_MAX_DIGITS}"
        )
    if hi > _MAX_EXP:
        raise _Refusal("number magnitude is larger than DynamoDB supports (max 9.99..9E+125)")
    if hi < _MIN_EXP:
        raise _Refusal("number magnitude is smaller than DynamoDB supports (min 1E-130)")


def _int_number(v: int) -> tuple[str, int]:
    """Wire string and size bound of an int (exact ``int`` only)."""
    if -_E38 < v < _E38:
        s = str(v)
        return s, len(s) // 2 + 2
    if not -_E126 < v < _E126:
        raise _Refusal("number magnitude is larger than DynamoDB supports (max 9.99..9E+125)")
    digits = str(-v if v < 0 else v)
    stripped = digits.rstrip("0")
    z = len(digits) - len(stripped)
    hi = len(digits) - 1
    _check_digits(hi, z)
    # More than 38 digits, all but <= 38 of them trailing zeros: send the exponent form so the
    # server sees exactly the significant digits ("1E+38", not 39 characters of digits).
    return ("-" if v < 0 else "") + stripped + "E+" + str(z), hi // 2 - z // 2 + 2 + (v < 0)


def _decimal_number(v: Decimal) -> tuple[str, int]:
    """Wire string and size bound of a Decimal."""
    s = str(v)
    if len(s) <= _MAX_DIGITS and "E" not in s and "N" not in s and "I" not in s:
        # Plain and short ("102.99", "-0.5"): cannot break a limit.
        return s, len(s) // 2 + 2
    # Exponent forms, NaN/Infinity/sNaN, and long strings take the exact path.
    return _decimal_exact(v)


def _decimal_exact(v: Decimal) -> tuple[str, int]:
    if not v.is_finite():
        raise _Refusal(f"number {v} is not finite; DynamoDB has no NaN or Infinity")
    sign, digits, exp = v.as_tuple()
    assert isinstance(exp, int)  # finite
    if not any(digits):
        return "0", 1
    n = len(digits)
    z = 0
    while digits[n - 1 - z] == 0:
        z += 1
    hi = exp + n - 1
    lo = exp + z
    _check_digits(hi, lo)
    if n > _MAX_DIGITS:
        # Trailing zeros beyond 38 digits ("1.000...0"): send only the significant digits.
        s = str(Decimal((sign, digits[: n - z], lo)))
    else:
        s = str(v)
    return s, hi // 2 - lo // 2 + 2 + sign


def _float_number(v: float) -> tuple[str, int]:
    """Wire string (the shortest repr) and size bound of a float."""
    r = repr(v)
    if "e" in r or not _isfinite(v):
        # Below 1e-4 or from 1e16 up: let Decimal read the exponent and range-check it.
        # (nan and inf come here too and are refused by _decimal_exact.)
        return _decimal_exact(Decimal(r))
    # Up to 17 digits, magnitude in [1e-4, 1e16): always within DynamoDB's limits.
    return r, len(r) // 2 + 2


def _number_of(v: Any) -> tuple[str, int]:
    """A number of any accepted type, subclasses included (bool must be excluded before)."""
    if isinstance(v, Decimal):
        return _decimal_number(v)
    if isinstance(v, float):
        return _float_number(float(v))
    return _int_number(int(v))


# --------------------------------------------------------------------------------------------
# Encoders: ``(value, level) -> (wire, size bound)``; ``level`` is the nesting level of
# ``value`` (a top-level attribute's value is level 1). The bound is exact except for numbers
# (see above). Dispatch is on the exact type; subclasses are resolved once by ``_resolve`` and
# cached.
# --------------------------------------------------------------------------------------------


def _enc_str(v: str, level: int) -> tuple[WireValue, int]:
    return {"S": v}, len(v) if v.isascii() else _utf8_len(v)


def _enc_int(v: int, level: int) -> tuple[WireValue, int]:
    if -_E38 < v < _E38:  # inlined common case of _int_number
        s = str(v)
        return {"N": s}, len(s) // 2 + 2
    s, size = _int_number(v)
    return {"N": s}, size


def _enc_decimal(v: Decimal, level: int) -> tuple[WireValue, int]:
    s, size = _decimal_number(v)
    return {"N": s}, size


def _enc_float(v: float, level: int) -> tuple[WireValue, int]:
    s, size = _float_number(v)
    return {"N": s}, size


def _enc_bool(v: bool, level: int) -> tuple[WireValue, int]:
    return {"BOOL": v}, 1


def _enc_none(v: None, level: int) -> tuple[WireValue, int]:
    return {"NULL": True}, 1


def _enc_bytes(v: bytes | bytearray, level: int) -> tuple[WireValue, int]:
    return {"B": _b64encode(v).decode("ascii")}, len(v)


def _enc_memoryview(v: memoryview, level: int) -> tuple[WireValue, int]:
    return _enc_bytes(v.tobytes(), level)


def _enc_map(value: Mapping[Any, Any], level: int) -> tuple[WireValue, int]:
    # Nesting: a top-level attribute's value is level 1 and each map or list adds one level
    # to its elements. Real DynamoDB accepts a value wrapped in 31 maps and refuses 32 (facts
    # sheet 1.10): with 31 wraps the innermost map is at level 31 and its scalar at level 32.
    # So a map or list may sit at levels 1..MAX_DEPTH-1; one at level MAX_DEPTH is refused.
    if level >= MAX_DEPTH:
        raise _Refusal(f"nesting exceeds DynamoDB's limit of {MAX_DEPTH} levels")
    child = level + 1
    out: dict[str, WireValue] = {}
    size = 3
    key: Any = None
    try:
        for key, v in value.items():
            if type(key) is not str:
                if not isinstance(key, str):
                    raise _Refusal(f"map key {key!r} is not a str", own=True)
                key = str.__str__(key)
            t = type(v)
            if t is str:
                out[key] = {"S": v}
                vs = len(v) if v.isascii() else _utf8_len(v)
            elif t is int and -_E38 < v < _E38:
                n = str(v)
                out[key] = {"N": n}
                vs = len(n) // 2 + 2
            else:
                out[key], vs = (_ENCODERS.get(t) or _resolve(t))(v, child)
            size += (len(key) if key.isascii() else _utf8_len(key)) + vs + 1
    except _Refusal as exc:
        if exc.own:
            exc.own = False
        else:
            exc.segments.append(key)
        raise
    return {"M": out}, size


def _enc_list(value: Sequence[Any], level: int) -> tuple[WireValue, int]:
    if level >= MAX_DEPTH:  # counted as in _enc_map
        raise _Refusal(f"nesting exceeds DynamoDB's limit of {MAX_DEPTH} levels")
    child = level + 1
    out: list[WireValue] = []
    append = out.append
    size = 3 + len(value)
    i = 0
    try:
        for v in value:
            t = type(v)
            if t is str:
                append({"S": v})
                size += len(v) if v.isascii() else _utf8_len(v)
            elif t is int and -_E38 < v < _E38:
                n = str(v)
                append({"N": n})
                size += len(n) // 2 + 2
            else:
                w, vs = (_ENCODERS.get(t) or _resolve(t))(v, child)
                append(w)
                size += vs
            i += 1
    except _Refusal as exc:
        exc.segments.append(i)
        raise
    return {"L": out}, size


_NUMBER_TYPES = frozenset({int, float, Decimal})


def _enc_set(value: Set[Any], level: int) -> tuple[WireValue, int]:
    if not value:
        raise _Refusal("empty set; DynamoDB refuses empty sets (store None or omit the attribute)")
    kinds = set(map(type, value))
    if len(kinds) == 1 and str in kinds:
        return {"SS": list(value)}, sum(len(s) if s.isascii() else _utf8_len(s) for s in value)
    if kinds <= _NUMBER_TYPES:
        return _number_set(value, kinds)
    if len(kinds) == 1 and bytes in kinds:
        return {"BS": [_b64encode(b).decode("ascii") for b in value]}, sum(map(len, value))
    return _set_slow(value, level)


def _number_set(value: Set[Any], kinds: set[type]) -> tuple[WireValue, int]:
    out: list[str] = []
    size = 0
    for v in value:
        t = type(v)
        if t is int:
            s, n = _int_number(v)
        elif t is Decimal:
            s, n = _decimal_number(v)
        elif t is float:
            s, n = _float_number(v)
        else:  # a subclass, let through by _set_slow
            s, n = _number_of(v)
        out.append(s)
        size += n
    if float in kinds and len(kinds) > 1 and len({Decimal(s) for s in out}) != len(out):
        # 0.1 != Decimal("0.1") in Python, but both are sent as "0.1": DynamoDB refuses
        # duplicate set members.
        raise _Refusal("number set holds the same number twice once floats are converted")
    return {"NS": out}, size


def _set_slow(value: Set[Any], level: int) -> tuple[WireValue, int]:
    """Sets with subclasses of str/int/bytes, or with something wrong in them."""
    kind = ""
    for v in value:
        if isinstance(v, bool):
            raise _Refusal("set holds a bool; DynamoDB sets hold strings, numbers or binary")
        if isinstance(v, str):
            k = "SS"
        elif isinstance(v, (int, float, Decimal)):
            k = "NS"
        elif isinstance(v, (bytes, bytearray, memoryview)):
            k = "BS"
        else:
            raise _Refusal(
                f"set holds {_unsupported_reason(v)}; DynamoDB sets hold strings, numbers or binary"
            )
        if kind and k != kind:
            raise _Refusal("set mixes kinds; a DynamoDB set holds only strings, numbers or binary")
        kind = k
    if kind == "SS":
        strs = [str.__str__(v) for v in value]
        return {"SS": strs}, sum(len(s) if s.isascii() else _utf8_len(s) for s in strs)
    if kind == "NS":
        # Unknown subclass mix: force the duplicate check in _number_set.
        return _number_set(value, {float, object})
    blobs = [v.tobytes() if isinstance(v, memoryview) else bytes(v) for v in value]
    return {"BS": [_b64encode(b).decode("ascii") for b in blobs]}, sum(map(len, blobs))


# DynamoDB has no time type, and guessing one of the two common encodings would store a value
# that another reader of the table decodes differently: refuse, and say how to choose.
_TIME_HINT = (
    "{name} is not a DynamoDB type; store an ISO-8601 UTC string "
    "(value.astimezone(UTC).isoformat(), sorts as text) or an epoch number "
    "(int(value.timestamp()), what TTL needs); datetime fields of entities (asyncdyn.model) "
    "do this both ways"
)


def _unsupported_reason(v: Any) -> str:
    if isinstance(v, _dt.date | _dt.time):
        return _TIME_HINT.format(name=_type_name(v))
    return f"unsupported type {_type_name(v)}"


def _unsupported(v: Any, level: int) -> tuple[WireValue, int]:
    raise _Refusal(_unsupported_reason(v))


def _resolve(t: type) -> Encoder:
    """Find (and cache) the encoder for a type not in the table: subclasses of the supported
    types (a str Enum, an IntEnum, OrderedDict, a list subclass) and any other Mapping."""
    enc: Encoder
    if issubclass(t, str):
        enc = _subclass_str
    elif issubclass(t, int):
        enc = _subclass_int
    elif issubclass(t, float):
        enc = _subclass_float
    elif issubclass(t, Decimal):
        enc = _enc_decimal
    elif issubclass(t, (bytes, bytearray)):
        enc = _subclass_bytes
    elif issubclass(t, memoryview):
        enc = _enc_memoryview
    elif issubclass(t, Mapping):
        enc = _enc_map
    elif issubclass(t, (list, tuple)):
        enc = _enc_list
    elif issubclass(t, (set, frozenset)):
        enc = _enc_set
    else:
        return _unsupported  # not cached: a refusal is not on the hot path
    _ENCODERS[t] = enc
    return enc


def _subclass_str(v: str, level: int) -> tuple[WireValue, int]:
    return _enc_str(str.__str__(v), level)


def _subclass_int(v: int, level: int) -> tuple[WireValue, int]:
    return _enc_int(int(v), level)


def _subclass_float(v: float, level: int) -> tuple[WireValue, int]:
    return _enc_float(float(v), level)


def _subclass_bytes(v: bytes, level: int) -> tuple[WireValue, int]:
    return _enc_bytes(bytes(v), level)


_ENCODERS: dict[type, Encoder] = {
    str: _enc_str,
    int: _enc_int,
    bool: _enc_bool,
    float: _enc_float,
    Decimal: _enc_decimal,
    type(None): _enc_none,
    bytes: _enc_bytes,
    bytearray: _enc_bytes,
    memoryview: _enc_memoryview,
    dict: _enc_map,
    list: _enc_list,
    tuple: _enc_list,
    set: _enc_set,
    frozenset: _enc_set,
}


def _encode_item(item: Mapping[str, Any]) -> tuple[WireItem, int]:
    """The wire form of an item and an upper bound of its size."""
    if _fast_encode is not None:
        # The compiled walk does plain dicts, lists, str, int, bool and None itself and calls
        # _slow_value for the rest; it answers None for anything it will not vouch for
        # (every refusal included), and the walk below then runs and raises.
        done: tuple[WireItem, int] | None = _fast_encode(item)
        if done is not None:
            return done
    if not isinstance(item, Mapping):
        raise InvalidItem(f"an item must be a mapping of attribute names, not {_type_name(item)}")
    out: WireItem = {}
    size = 0
    name: Any = None
    try:
        for name, v in item.items():
            if type(name) is not str:
                if not isinstance(name, str):
                    raise InvalidItem(f"attribute name {name!r} is not a str")
                name = str.__str__(name)
            t = type(v)
            # str and small int inlined: most attribute values of most items.
            if t is str:
                out[name] = {"S": v}
                vs = len(v) if v.isascii() else _utf8_len(v)
            elif t is int and -_E38 < v < _E38:
                n = str(v)
                out[name] = {"N": n}
                vs = len(n) // 2 + 2
            else:
                out[name], vs = (_ENCODERS.get(t) or _resolve(t))(v, 1)
            nb = len(name) if name.isascii() else _utf8_len(name)
            if not 0 < nb <= _MAX_NAME_BYTES:
                # Not a _Refusal: the path would be the (empty or huge) name itself.
                raise InvalidItem(f"attribute names must be 1..{_MAX_NAME_BYTES} bytes, got {nb}")
            size += nb + vs
    except _Refusal as exc:
        exc.segments.append(name)
        raise _invalid(exc) from None
    return out, size


def _slow_value(value: Any, level: int) -> tuple[WireValue, int]:
    """One value of a type the compiled encoder leaves to this module (Decimal, float,
    bytes, sets, subclasses, large ints): the same encoder the pure walk would call."""
    t = type(value)
    return (_ENCODERS.get(t) or _resolve(t))(value, level)


def encode_item(item: Mapping[str, Any]) -> WireItem:
    """Encode a Python item to DynamoDB JSON, validating it completely.

    Raises :class:`InvalidItem` naming the attribute path (``order.lines[3].price``) for a
    value DynamoDB would refuse, or with an empty path when the item is over 400 KB as
    DynamoDB computes size (:func:`item_size`).
    """
    out, bound = _encode_item(item)
    if bound > MAX_ITEM_BYTES:
        # The walk gives an upper bound (numbers are over-estimated); only an item that may
        # be over the limit pays for the exact figure.
        size = wire_item_size(out)
        if size > MAX_ITEM_BYTES:
            raise InvalidItem(
                f"item is {size} bytes; DynamoDB's limit is {MAX_ITEM_BYTES} bytes (400 KB)"
            )
    return out


def item_size(item: Mapping[str, Any]) -> int:
    """DynamoDB's size of a Python item in bytes (names + values; facts sheet 1.2).

    Validates the item like :func:`encode_item` but does not apply the 400 KB limit.
    """
    return wire_item_size(_encode_item(item)[0])


def encode_key(key: Mapping[str, Any]) -> WireItem:
    """Encode a primary key: one or two attributes, each a non-empty string, a number or
    non-empty binary."""
    if key.__class__ is dict and 0 < len(key) <= 2:
        # Most keys are a plain dict of short ASCII strings: checked here in half the time of
        # the general path below, which every other key takes (and which raises the errors).
        fast: WireItem = {}
        for name, v in key.items():
            if (
                name.__class__ is not str
                or v.__class__ is not str
                or not name
                or not 0 < len(v) <= _MAX_KEY_VALUE_BYTES
                or not v.isascii()
            ):
                break
            fast[name] = {"S": v}
        else:
            return fast
    if not isinstance(key, Mapping):
        raise InvalidItem(f"a key must be a mapping of attribute names, not {_type_name(key)}")
    if not 0 < len(key) <= 2:
        raise InvalidItem(
            f"a key has one or two attributes (partition and sort key), got {len(key)}"
        )
    out: WireItem = {}
    for name, v in key.items():
        if not isinstance(name, str) or not name:
            raise InvalidItem(f"attribute name {name!r} is not a non-empty str")
        name = str.__str__(name)
        try:
            if isinstance(v, str):
                s = str.__str__(v)
                if not s:
                    raise _Refusal("key attribute must not be an empty string")
                n = len(s) if s.isascii() else _utf8_len(s)
                if n > _MAX_KEY_VALUE_BYTES:
                    raise _Refusal(
                        f"key attribute is {n} bytes; DynamoDB's limit is {_MAX_KEY_VALUE_BYTES}"
                    )
                out[name] = {"S": s}
            elif isinstance(v, (int, float, Decimal)) and not isinstance(v, bool):
                out[name] = {"N": _number_of(v)[0]}
            elif isinstance(v, (bytes, bytearray, memoryview)):
                b = v.tobytes() if isinstance(v, memoryview) else bytes(v)
                if not b:
                    raise _Refusal("key attribute must not be empty binary")
                if len(b) > _MAX_KEY_VALUE_BYTES:
                    raise _Refusal(
                        f"key attribute is {len(b)} bytes; "
                        f"DynamoDB's limit is {_MAX_KEY_VALUE_BYTES}"
                    )
                out[name] = {"B": _b64encode(b).decode("ascii")}
            else:
                raise _Refusal(
                    f"key attribute must be a string, number or binary, not {_type_name(v)}"
                )
        except _Refusal as exc:
            raise InvalidItem(exc.message, name) from None
    return out


def encode_value(value: Any, path: str = "") -> WireValue:
    """Encode one value (an expression's ``:placeholder``), validating it like an attribute.

    ``path`` prefixes the path in errors (the placeholder or attribute the value is for).
    """
    t = type(value)
    if t is str and value.isascii():
        return {"S": value}
    try:
        return (_ENCODERS.get(t) or _resolve(t))(value, 1)[0]
    except _Refusal as exc:
        raise _invalid(exc, path) from None


# --------------------------------------------------------------------------------------------
# Size of an already encoded item
# --------------------------------------------------------------------------------------------


def _n_size(s: str) -> int:
    """DynamoDB's size of an ``N`` string (same rule as ``_check_digits`` above)."""
    neg = s[:1] == "-"
    body = s[1:] if neg or s[:1] == "+" else s
    mantissa, e, exp_s = body.replace("E", "e").partition("e")
    ip, _, fp = mantissa.partition(".")
    digits = (ip + fp).lstrip("0")
    if not digits:
        return 1
    scale = (int(exp_s) if e else 0) - len(fp)
    stripped = digits.rstrip("0")
    lo = scale + len(digits) - len(stripped)
    hi = scale + len(digits) - 1
    return hi // 2 - lo // 2 + 2 + neg


def _b_size(b: str | bytes) -> int:
    if isinstance(b, (bytes, bytearray)):
        return len(b)
    n = len(b)
    if n == 0:
        return 0
    return n // 4 * 3 - (b[-1] == "=") - (b[-2:] == "==")


def _wire_value_size(w: WireValue) -> int:
    for tag in w:
        x = w[tag]
        if tag == "S":
            return len(x) if x.isascii() else len(x.encode("utf-8", "surrogatepass"))
        if tag == "N":
            return _n_size(x)
        if tag == "M":
            return 3 + sum(
                (len(k) if k.isascii() else len(k.encode("utf-8", "surrogatepass")))
                + _wire_value_size(v)
                + 1
                for k, v in x.items()
            )
        if tag == "L":
            return 3 + len(x) + sum(map(_wire_value_size, x))
        if tag in ("BOOL", "NULL"):
            return 1
        if tag == "B":
            return _b_size(x)
        if tag == "SS":
            return sum(
                len(s) if s.isascii() else len(s.encode("utf-8", "surrogatepass")) for s in x
            )
        if tag == "NS":
            return sum(map(_n_size, x))
        if tag == "BS":
            return sum(map(_b_size, x))
        raise ValueError(f"unknown DynamoDB type tag {tag!r}")
    raise ValueError("empty attribute value")


def wire_item_size(item: WireItem) -> int:
    """DynamoDB's size of an item already in DynamoDB JSON (for batch chunking)."""
    return sum(
        (len(k) if k.isascii() else len(k.encode("utf-8", "surrogatepass"))) + _wire_value_size(v)
        for k, v in item.items()
    )


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


def _auto_number(s: str) -> int | Decimal:
    # The server normalises numbers (no exponent, no trailing fractional zeros), so an
    # integral N arrives as plain digits.
    if "." in s or "e" in s or "E" in s:
        return Decimal(s)
    return int(s)


_NUMBER_READERS: dict[str, Callable[[str], Any]] = {
    "auto": _auto_number,
    "decimal": Decimal,
    "float": float,
}


def _null(x: object) -> None:
    return None


def _same(x: Any) -> Any:
    return x


_Decoding: TypeAlias = tuple[
    Callable[[WireValue], Any], Callable[[Any], Item], Callable[[Any], list[Any]]
]
"""``(value, map_, list_)``: decode one wire value, one item (or ``M``), one ``L``."""


def _build(num: Callable[[str], Any]) -> _Decoding:
    """The decoding functions for one number mode, as closures over their dispatch table.

    Maps and lists test for ``S`` and ``N`` first (most values of most items) and inline the
    ``auto`` number rule, saving a call per value; every other tag goes through ``handlers``.
    A wire value holds exactly one tag; the fast path trusts the server on that.
    """
    auto = num is _auto_number

    def value(w: WireValue) -> Any:
        (tag,) = w
        return handlers[tag](w[tag])

    def map_(m: Mapping[str, WireValue]) -> Item:
        out: Item = {}
        for k, w in m.items():
            x = w.get("S")
            if x is not None:
                out[k] = x
                continue
            x = w.get("N")
            if x is not None:
                if auto:
                    out[k] = Decimal(x) if "." in x or "e" in x or "E" in x else int(x)
                else:
                    out[k] = num(x)
                continue
            (tag,) = w
            out[k] = handlers[tag](w[tag])
        return out

    def list_(xs: list[WireValue]) -> list[Any]:
        out: list[Any] = []
        append = out.append
        for w in xs:
            x = w.get("S")
            if x is not None:
                append(x)
                continue
            x = w.get("N")
            if x is not None:
                if auto:
                    append(Decimal(x) if "." in x or "e" in x or "E" in x else int(x))
                else:
                    append(num(x))
                continue
            (tag,) = w
            append(handlers[tag](w[tag]))
        return out

    def num_set(xs: list[str]) -> set[Any]:
        return set(map(num, xs))

    def bin_set(xs: list[str]) -> set[bytes]:
        return set(map(_b64decode, xs))

    handlers: dict[str, Callable[[Any], Any]] = {
        "S": _same,
        "N": num,
        "BOOL": _same,
        "NULL": _null,
        "B": _b64decode,
        "M": map_,
        "L": list_,
        "SS": set,
        "NS": num_set,
        "BS": bin_set,
    }
    return value, map_, list_


_DECODE_ERRORS = (ValueError, KeyError, TypeError, ArithmeticError, AttributeError)

_MODES: tuple[NumberMode, ...] = ("auto", "decimal", "float")
"""The number modes, in the order of ``_speedups``' mode numbers."""


def _load_speedups() -> Any:
    """The compiled decoder's module, or None: not built (no C compiler at install time),
    or turned off with ``ASYNCDYN_PURE=1`` (then it is not even imported)."""
    if os.environ.get("ASYNCDYN_PURE", "") not in ("", "0"):
        return None
    try:
        return importlib.import_module("asyncdyn._speedups")
    except ImportError:
        return None


_speedups: Any = _load_speedups()

COMPILED: bool = _speedups is not None
"""True when a default :class:`Decoder` decodes in C (the ``asyncdyn._speedups`` extension)
and :func:`encode_item` walks the common shapes of items in C; False when both use the
pure-Python functions of this module."""

_fast_encode: Callable[[Any], tuple[WireItem, int] | None] | None = (
    _speedups.Encoder(_slow_value).item if _speedups is not None else None
)


class Decoder:
    """Turns DynamoDB JSON into Python values; built once per client (see :func:`decoder`).

    ``N`` decodes per ``numbers``: ``auto`` gives ``int`` for integral numbers and ``Decimal``
    otherwise, ``decimal`` always ``Decimal``, ``float`` always ``float``; ``NS`` gives a set
    of the same. ``B`` gives ``bytes``, ``SS``/``BS`` sets, ``L`` lists, ``M`` dicts, ``NULL``
    ``None``. A malformed wire value raises :class:`InvalidItem`.

    ``compiled`` picks the implementation: ``None`` (default) the C one when it is built
    (:data:`COMPILED`), ``False`` the pure-Python one, ``True`` the C one or an error.
    Both give the same values.
    """

    __slots__ = ("_items", "_map", "_value", "compiled", "numbers")

    _map: Callable[[Any], Item]
    _items: Callable[[Any], list[Item]]
    _value: Callable[[Any], Any]

    def __init__(self, numbers: NumberMode = "auto", *, compiled: bool | None = None) -> None:
        try:
            num = _NUMBER_READERS[numbers]
        except (KeyError, TypeError):
            raise ConfigurationError(
                f"numbers must be 'auto', 'decimal' or 'float', not {numbers!r}"
            ) from None
        self.numbers: NumberMode = numbers
        value, map_, list_ = _build(num)
        if compiled is None:
            compiled = COMPILED
        if compiled:
            if _speedups is None:
                raise ConfigurationError(
                    "the compiled decoder (asyncdyn._speedups) is not available: it is built "
                    "by pip install when a C compiler is present, and ASYNCDYN_PURE turns it off"
                )
            # The C decoder calls the pure map_/list_ for what JSON never produces (a map
            # payload that is not a dict), so both paths agree on any input.
            native = _speedups.Decoder(_MODES.index(numbers), Decimal, _b64decode, map_, list_)
            self._value, self._map, self._items = native.value, native.item, native.items
        else:

            def items(wires: Any) -> list[Item]:
                return [map_(w) for w in wires]

            self._value, self._map, self._items = value, map_, items
        self.compiled: bool = compiled

    def __repr__(self) -> str:
        return f"Decoder(numbers={self.numbers!r}, compiled={self.compiled!r})"

    def item(self, wire: WireItem) -> Item:
        """Decode one item (attribute name -> wire value)."""
        try:
            return self._map(wire)
        except _DECODE_ERRORS as exc:
            raise InvalidItem(f"cannot decode item: {exc!r}") from exc

    def items(self, wires: list[WireItem]) -> list[Item]:
        """Decode a page of items."""
        try:
            return self._items(wires)
        except _DECODE_ERRORS as exc:
            raise InvalidItem(f"cannot decode item: {exc!r}") from exc

    def value(self, wire: WireValue) -> Any:
        """Decode one wire value (``{"N": "1"}`` -> ``1``)."""
        try:
            return self._value(wire)
        except _DECODE_ERRORS as exc:
            raise InvalidItem(f"cannot decode value: {exc!r}") from exc


_DECODERS: dict[str, Decoder] = {}


def decoder(numbers: NumberMode = "auto") -> Decoder:
    """The (shared, immutable) default :class:`Decoder` for a number mode."""
    dec = _DECODERS.get(numbers)
    if dec is None:
        dec = _DECODERS[numbers] = Decoder(numbers)
    return dec


def as_floats(value: Any) -> Any:
    """``value`` as ``decoder("float")`` would have decoded it, from an exact (``auto`` or
    ``decimal``) decoding: every number a float, containers rebuilt, the rest kept."""
    t = type(value)
    if t is dict:
        return {name: as_floats(v) for name, v in value.items()}
    if t is list:
        return [as_floats(v) for v in value]
    if t is set:
        return {as_floats(v) for v in value}
    if t is int or t is Decimal:
        return float(value)
    return value
