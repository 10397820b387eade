"""``Key`` / ``Attr`` builders, compiled to DynamoDB expression strings with placeholders.

Builders are small immutable trees; nothing is encoded or named until a request compiles them
through one ``Placeholders`` object, which hands out ``#n0`` / ``:v0`` tokens, shares a token
between every use of the same attribute name or the same wire value in that request, and emits
only the tokens that were used. Every attribute-name segment goes out as a placeholder, so
DynamoDB's reserved words (``status``, ``name``, ``size``...) never need escaping.

::

    ph = Placeholders()
    request = {
        "KeyConditionExpression": ph.key_condition(Key("PK").eq("C#1") & Key("SK").gt("O#")),
        "FilterExpression": ph.condition(Attr("status").ne("CANCELLED")),
    }
    ph.apply(request)   # adds ExpressionAttributeNames / ExpressionAttributeValues if non-empty
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar, NoReturn, Self

from .errors import InvalidExpression
from .marshal import encode_value

__all__ = [
    "Attr",
    "Condition",
    "Key",
    "KeyCondition",
    "Placeholders",
    "Size",
    "Update",
    "projection_paths",
    "projection_with",
]

# Limits from the DynamoDB developer guide (service quotas, document paths).
MAX_EXPRESSION_BYTES = 4096
MAX_IN_OPERANDS = 100
MAX_UPDATE_OPERATORS = 300
MAX_PATH_DEPTH = 32

Path = tuple[str | int, ...]
"""A document path: attribute names (str) and list indexes (int), outermost first."""

ATTRIBUTE_TYPES = frozenset({"S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"})

_ORDERED_TYPES = ("S", "N", "B")
# Wire contents that are already hashable (S, N and B are str; BOOL and NULL are bool).
_PLAIN = frozenset({str, bool, bytes})
_SET_TYPES = ("SS", "NS", "BS")
_ADD_TYPES = ("N", "SS", "NS", "BS")

# The builders guard against mutation with __setattr__, so their constructors write slots
# through object.__setattr__.
_set = object.__setattr__

# Pre-built tokens keep f-string formatting off the common path of small requests.
_NAME_TOKENS = tuple(f"#n{i}" for i in range(64))
_VALUE_TOKENS = tuple(f":v{i}" for i in range(64))


def _fail(message: str) -> NoReturn:
    raise InvalidExpression(message)


def _show(path: Path) -> str:
    return "Attr(" + ", ".join(repr(p) for p in path) + ")"


def _check_path(path: Sequence[Any]) -> Path:
    """Validate a document path and normalise str/int subclasses (StrEnum, IntEnum) to plain
    values, so they hash, compare and serialise exactly like the builtin types."""
    n = len(path)
    if n == 0:
        _fail("an attribute path needs at least one attribute name")
    first = path[0]
    if n == 1 and first.__class__ is str and first:
        return (first,)
    if n > MAX_PATH_DEPTH:
        _fail(f"document path is {n} levels deep; DynamoDB allows at most {MAX_PATH_DEPTH}")
    if not isinstance(first, str):
        _fail(f"a document path starts with an attribute name, not {first!r}")
    out: list[str | int] = []
    for element in path:
        if isinstance(element, str):
            if not element:
                _fail("an attribute name in a path must not be empty")
            out.append(str.__str__(element))
        elif isinstance(element, int) and not isinstance(element, bool):
            if element < 0:
                _fail(f"a list index must not be negative, got {element}")
            out.append(int(element))
        else:
            _fail(
                f"a path element is an attribute name (str) or a list index (int), not {element!r}"
            )
    return tuple(out)


def _raw(text: str, what: str) -> str:
    """A caller's raw expression string: refused when blank (DynamoDB's "The expression can
    not be empty") or not valid UTF-8, else checked for size."""
    if not text.strip():
        _fail(f"{what} is empty")
    _check_utf8(text, what)
    return _check_size(text, what)


def _check_utf8(text: str, what: str) -> None:
    # A lone surrogate cannot be sent as JSON at all.
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            _fail(f"{what} {text!r} is not valid UTF-8 (it contains a lone surrogate)")


def _check_size(text: str, what: str) -> str:
    # UTF-8 spends at most 4 bytes per code point: short strings need no encoding to check.
    if len(text) > MAX_EXPRESSION_BYTES // 4:
        size = len(text.encode("utf-8"))
        if size > MAX_EXPRESSION_BYTES:
            _fail(
                f"{what} is {size} bytes; DynamoDB allows at most {MAX_EXPRESSION_BYTES} "
                f"(placeholders included)"
            )
    return text


def _freeze(inner: Any) -> Any:
    """A hashable twin of an AttributeValue's content, for deduplicating values."""
    if isinstance(inner, dict):
        return ("{", tuple(sorted((k, _freeze(v)) for k, v in inner.items())))
    if isinstance(inner, list):
        return ("[", tuple(_freeze(v) for v in inner))
    if isinstance(inner, bytearray | memoryview):
        return bytes(inner)
    return inner


def _wire_key(encoded: Mapping[str, Any]) -> tuple[str, Any]:
    ((tag, inner),) = encoded.items()
    return (tag, inner) if inner.__class__ in _PLAIN else (tag, _freeze(inner))


def _as_bytes(inner: Any) -> bytes:
    if isinstance(inner, str):  # B already base64-encoded for JSON
        return base64.b64decode(inner)
    return bytes(inner)


def _check_bounds(lo_tag: str, lo: Any, hi_tag: str, hi: Any, where: object) -> None:
    # ``where`` is the builder, shown by repr only when there is something to report.
    if lo_tag != hi_tag:
        _fail(f"{where!r}: BETWEEN bounds must have the same type, got {lo_tag} and {hi_tag}")
    if lo_tag not in _ORDERED_TYPES:
        _fail(f"{where!r}: BETWEEN needs string, number or binary bounds, got {lo_tag}")
    if lo_tag == "N":
        inverted = Decimal(lo) > Decimal(hi)
    elif lo_tag == "S":
        # Code point order is UTF-8 byte order, which is how DynamoDB compares strings.
        inverted = lo > hi
    else:
        inverted = _as_bytes(lo) > _as_bytes(hi)
    if inverted:
        _fail(f"{where!r}: BETWEEN lower bound is greater than the upper bound")


def _check_distinct(left: Attr | Size, right: Any, op: str) -> None:
    # DynamoDB refuses "a = a" ("The first operand must be distinct from the remaining
    # operands"); a copy-paste mistake is the only way to write it.
    if isinstance(left, Attr) and isinstance(right, Attr) and left._path == right._path:
        _fail(f"{op}: compares {left!r} with itself")


class _Frozen:
    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} objects are immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} objects are immutable")

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self


# --------------------------------------------------------------------------- placeholders


class Placeholders:
    """The placeholder allocator and compiler for ONE request.

    ``names`` / ``values`` are the caller's own maps for raw string expressions
    (``{"#s": "status"}``, ``{":v": "PENDING"}``, values as plain Python); they are sent as
    given, and the generated ``#n<i>`` / ``:v<i>`` tokens skip any token the caller took. A
    builder that uses the same attribute name or wire value as a caller entry reuses that
    entry's token. Generated tokens exist only for what some compiled expression used, so
    the request never carries an unused placeholder.
    """

    __slots__ = ("_name_ids", "_names", "_next_name", "_next_value", "_value_ids", "_values")

    def __init__(
        self,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        self._names: dict[str, str] = {}
        self._name_ids: dict[str, str] = {}
        self._values: dict[str, dict[str, Any]] = {}
        self._value_ids: dict[tuple[str, Any], str] = {}
        self._next_name = 0
        self._next_value = 0
        if names:
            for token, name in names.items():
                if not isinstance(token, str) or len(token) < 2 or token[0] != "#":
                    _fail(f"names: placeholder {token!r} must look like '#name'")
                if not isinstance(name, str) or not name:
                    _fail(f"names: {token} must map to a non-empty attribute name")
                _check_utf8(name, f"names: {token} maps to the attribute name")
                self._names[token] = name
                self._name_ids.setdefault(name, token)
        if values:
            for token, value in values.items():
                if not isinstance(token, str) or len(token) < 2 or token[0] != ":":
                    _fail(f"values: placeholder {token!r} must look like ':value'")
                encoded = encode_value(value, token)
                self._values[token] = encoded
                self._value_ids.setdefault(_wire_key(encoded), token)

    def __repr__(self) -> str:
        return f"Placeholders(names={self._names!r}, values={self._values!r})"

    # -- tokens

    def name(self, segment: str) -> str:
        """The ``#`` placeholder for one attribute name; the same name always gets the same one."""
        token = self._name_ids.get(segment)
        if token is None:
            if not segment:
                _fail("an attribute name must not be empty")
            _check_utf8(segment, "attribute name")
            names = self._names
            i = self._next_name
            token = _NAME_TOKENS[i] if i < 64 else f"#n{i}"
            while token in names:  # the caller took it
                i += 1
                token = _NAME_TOKENS[i] if i < 64 else f"#n{i}"
            self._next_name = i + 1
            names[token] = segment
            self._name_ids[segment] = token
        return token

    def value(self, value: Any) -> str:
        """The ``:`` placeholder for a Python value, shared by every value with the same wire form
        (so ``1`` and ``Decimal(1)`` share one)."""
        if value.__class__ is str:  # the common case needs no encoder call
            key: tuple[str, Any] = ("S", value)
            token = self._value_ids.get(key)
            return token if token is not None else self._add_value(key, {"S": value})
        encoded = encode_value(value)
        key = _wire_key(encoded)
        token = self._value_ids.get(key)
        return token if token is not None else self._add_value(key, encoded)

    def _typed(self, value: Any) -> tuple[str, str, Any]:
        """Placeholder, type tag and wire content of a value, for checks that need the type."""
        if value.__class__ is str:
            return self.value(value), "S", value
        encoded = encode_value(value)
        ((tag, inner),) = encoded.items()
        key = (tag, inner) if inner.__class__ in _PLAIN else (tag, _freeze(inner))
        token = self._value_ids.get(key)
        if token is None:
            token = self._add_value(key, encoded)
        return token, tag, inner

    def _add_value(self, key: tuple[str, Any], encoded: dict[str, Any]) -> str:
        values = self._values
        i = self._next_value
        token = _VALUE_TOKENS[i] if i < 64 else f":v{i}"
        while token in values:  # the caller took it
            i += 1
            token = _VALUE_TOKENS[i] if i < 64 else f":v{i}"
        self._next_value = i + 1
        values[token] = encoded
        self._value_ids[key] = token
        return token

    def _path(self, path: Path) -> str:
        if len(path) == 1:
            return self.name(path[0])  # type: ignore[arg-type]  # paths start with a name
        pieces: list[str] = []
        for element in path:
            if element.__class__ is int:
                pieces.append(f"[{element}]")
            else:
                if pieces:
                    pieces.append(".")
                pieces.append(self.name(element))  # type: ignore[arg-type]
        return "".join(pieces)

    def _operand(self, operand: Any) -> str:
        if isinstance(operand, Attr):
            return self._path(operand._path)
        if isinstance(operand, Size):
            return f"size({self._path(operand._attr._path)})"
        return self.value(operand)

    # -- expressions

    def condition(self, c: Condition | str) -> str:
        """A ConditionExpression / FilterExpression; a ``str`` is passed through unchanged."""
        if isinstance(c, str):
            return _raw(c, "condition expression")
        if not isinstance(c, Condition):
            _fail(
                f"a condition is built with Attr(...) or given as a string, not {c!r}"
                + (" (Key(...) is for key conditions)" if isinstance(c, KeyCondition) else "")
            )
        try:
            text = c._render(self)
        except RecursionError:
            # Thousands of nested & / | levels; DynamoDB's 4 KB cap allows a few hundred.
            _fail("condition expression is nested too deeply")
        return _check_size(text, "condition expression")

    def key_condition(self, c: KeyCondition | str) -> str:
        """A KeyConditionExpression; a ``str`` is passed through unchanged."""
        if isinstance(c, str):
            return _raw(c, "key condition expression")
        if not isinstance(c, KeyCondition):
            _fail(f"a key condition is built with Key(...) or given as a string, not {c!r}")
        return _check_size(c._render(self), "key condition expression")

    def update(self, u: Update | str) -> str:
        """An UpdateExpression; a ``str`` is passed through unchanged."""
        if isinstance(u, str):
            return _raw(u, "update expression")
        if not isinstance(u, Update):
            _fail(
                f"an update is built with Attr(...).set(...) etc. or given as a string, not {u!r}"
            )
        return _check_size(u._render(self), "update expression")

    def projection(self, attributes: str | Iterable[str | Attr | Path]) -> str:
        """A ProjectionExpression from attribute names (``"a.b"`` is ONE name), ``Attr`` paths or
        path tuples (``("orders", 0)``). A single ``str`` is a raw expression, passed through.

        Repeated paths, and paths inside another projected path (``a.b`` beside ``a``), are
        dropped: DynamoDB refuses overlapping paths, and projecting ``a`` already returns
        ``a.b``.
        """
        if isinstance(attributes, str):
            # Read as its paths (the caller's #tokens resolved through ``names``), then sent
            # like any other projection: the same rule on every read, coalesced or batched.
            attributes = projection_paths(attributes, self._names)
        paths: list[Path] = []
        seen: set[Path] = set()
        nested = False
        for attribute in attributes:
            if isinstance(attribute, str):
                path: Path = _check_path((attribute,))
            elif isinstance(attribute, Attr):
                path = attribute._path
            elif isinstance(attribute, tuple):
                path = _check_path(attribute)
            else:
                _fail(
                    f"a projected attribute is a name, an Attr or a path tuple, not {attribute!r}"
                )
            if path in seen:
                continue
            seen.add(path)
            paths.append(path)
            nested = nested or len(path) > 1
        if not paths:
            _fail("a projection needs at least one attribute")
        if nested:
            paths = [p for p in paths if not any(p[:i] in seen for i in range(1, len(p)))]
            _check_conflicts(paths)
        return _check_size(", ".join([self._path(p) for p in paths]), "projection expression")

    def apply(self, request: dict[str, Any]) -> dict[str, Any]:
        """Add ``ExpressionAttributeNames`` / ``ExpressionAttributeValues`` to ``request``, each
        only when non-empty (DynamoDB refuses empty maps). Returns ``request``."""
        if self._names:
            present = request.get("ExpressionAttributeNames")
            request["ExpressionAttributeNames"] = (
                {**present, **self._names} if present else self._names
            )
        if self._values:
            present = request.get("ExpressionAttributeValues")
            request["ExpressionAttributeValues"] = (
                {**present, **self._values} if present else self._values
            )
        return request

    @property
    def names(self) -> dict[str, str]:
        """The names map so far (placeholder -> attribute name)."""
        return self._names

    @property
    def values(self) -> dict[str, dict[str, Any]]:
        """The values map so far (placeholder -> AttributeValue)."""
        return self._values


def _check_conflicts(paths: Sequence[Path]) -> None:
    """Refuse two paths that treat the same attribute as a map and as a list (``a.b`` and
    ``a[0]``), which DynamoDB rejects as conflicting."""
    kinds: dict[Path, tuple[bool, Path]] = {}
    for path in paths:
        for i in range(1, len(path)):
            is_index = path[i].__class__ is int
            prefix = path[:i]
            prev = kinds.setdefault(prefix, (is_index, path))
            if prev[0] != is_index:
                _fail(f"paths {_show(prev[1])} and {_show(path)} conflict (map key vs list index)")


# --------------------------------------------------------------------------- operands


class Attr(_Frozen):
    """An attribute, or a path into a nested attribute, for conditions, filters and updates.

    Each ``str`` is one literal attribute name (a dot is part of the name), each ``int`` a
    list index. Comparisons are methods, never operators, so ``==`` keeps its Python meaning.

    Example::

        Attr("status").eq("PENDING") & Attr("orders", 0, "total").gt(100)   # condition
        Attr("tags").contains("sale") | ~Attr("deleted_at").exists()
        Attr("views").add(1) & Attr("status").set("SHIPPED") & Attr("tmp").remove()  # update
    """

    __slots__ = ("_path",)
    _path: Path

    def __init__(self, *path: str | int) -> None:
        _set(self, "_path", _check_path(path))

    @property
    def path(self) -> Path:
        """The path elements, outermost first."""
        return self._path

    def __repr__(self) -> str:
        return _show(self._path)

    # -- conditions

    def eq(self, value: Any) -> Condition:
        """``attr = value`` (``value`` may be another ``Attr`` or a ``size()``)."""
        return _Compare(self, "=", value)

    def ne(self, value: Any) -> Condition:
        """``attr <> value``."""
        return _Compare(self, "<>", value)

    def lt(self, value: Any) -> Condition:
        """``attr < value``."""
        return _Compare(self, "<", value)

    def lte(self, value: Any) -> Condition:
        """``attr <= value``."""
        return _Compare(self, "<=", value)

    def gt(self, value: Any) -> Condition:
        """``attr > value``."""
        return _Compare(self, ">", value)

    def gte(self, value: Any) -> Condition:
        """``attr >= value``."""
        return _Compare(self, ">=", value)

    def between(self, low: Any, high: Any) -> Condition:
        """``attr BETWEEN low AND high`` (inclusive; same type, ``low <= high``)."""
        return _Between(self, low, high)

    def begins_with(self, prefix: Any) -> Condition:
        """``begins_with(attr, prefix)``; ``prefix`` is a string or bytes."""
        return _Function("begins_with", self, prefix)

    def contains(self, value: Any) -> Condition:
        """``contains(attr, value)``: substring of a string, element of a set or list."""
        return _Function("contains", self, value)

    def is_in(self, values: Iterable[Any]) -> Condition:
        """``attr IN (v1, v2, ...)`` with 1 to 100 values."""
        return _In(self, values)

    def exists(self) -> Condition:
        """``attribute_exists(attr)``."""
        return _Function("attribute_exists", self, _NO_ARG)

    def not_exists(self) -> Condition:
        """``attribute_not_exists(attr)``."""
        return _Function("attribute_not_exists", self, _NO_ARG)

    def attribute_type(self, type_name: str) -> Condition:
        """``attribute_type(attr, t)``, ``t`` one of S SS N NS B BS BOOL NULL L M."""
        if type_name not in ATTRIBUTE_TYPES:
            _fail(
                f"attribute_type: {type_name!r} is not one of {', '.join(sorted(ATTRIBUTE_TYPES))}"
            )
        return _Function("attribute_type", self, type_name)

    def size(self) -> Size:
        """``size(attr)``, an operand to compare: ``Attr("tags").size().gt(3)``."""
        return Size(self)

    # -- updates

    def set(self, value: Any) -> Update:
        """``SET attr = value`` (``value`` may be an ``Attr`` to copy another attribute)."""
        if isinstance(value, Size):
            _fail("set: size() cannot be used in an update")
        return Update((("set", self._path, value),))

    def set_if_not_exists(self, value: Any) -> Update:
        """``SET attr = if_not_exists(attr, value)``: write only when absent."""
        if isinstance(value, Size):
            _fail("set_if_not_exists: size() cannot be used in an update")
        return Update((("if_not_exists", self._path, value),))

    def add(self, value: Any) -> Update:
        """``ADD attr value``: add to a number (creating it at 0) or add elements to a set."""
        if isinstance(value, Attr | Size):
            _fail("add: the operand must be a number or a set value")
        return Update((("add", self._path, value),))

    def remove(self) -> Update:
        """``REMOVE attr``: delete the attribute (or list element)."""
        return Update((("remove", self._path, None),))

    def delete(self, value: Any) -> Update:
        """``DELETE attr set``: remove these elements from a set attribute."""
        if isinstance(value, Attr | Size):
            _fail("delete: the operand must be a set value")
        return Update((("delete", self._path, value),))

    def append(self, value: Any) -> Update:
        """``SET attr = list_append(attr, value)``: add a list's elements at the end."""
        if isinstance(value, Size):
            _fail("append: size() cannot be used in an update")
        return Update((("append", self._path, value),))

    def prepend(self, value: Any) -> Update:
        """``SET attr = list_append(value, attr)``: add a list's elements at the start."""
        if isinstance(value, Size):
            _fail("prepend: size() cannot be used in an update")
        return Update((("prepend", self._path, value),))


class Size(_Frozen):
    """``size(attr)``: the length of a string, binary, set, list or map, to compare."""

    __slots__ = ("_attr",)
    _attr: Attr

    def __init__(self, attr: Attr) -> None:
        _set(self, "_attr", attr)

    def __repr__(self) -> str:
        return f"{self._attr!r}.size()"

    def eq(self, value: Any) -> Condition:
        """``size(attr) = value``."""
        return _Compare(self, "=", value)

    def ne(self, value: Any) -> Condition:
        """``size(attr) <> value``."""
        return _Compare(self, "<>", value)

    def lt(self, value: Any) -> Condition:
        """``size(attr) < value``."""
        return _Compare(self, "<", value)

    def lte(self, value: Any) -> Condition:
        """``size(attr) <= value``."""
        return _Compare(self, "<=", value)

    def gt(self, value: Any) -> Condition:
        """``size(attr) > value``."""
        return _Compare(self, ">", value)

    def gte(self, value: Any) -> Condition:
        """``size(attr) >= value``."""
        return _Compare(self, ">=", value)

    def between(self, low: Any, high: Any) -> Condition:
        """``size(attr) BETWEEN low AND high``."""
        return _Between(self, low, high)


# --------------------------------------------------------------------------- conditions


class Condition(_Frozen):
    """A condition (ConditionExpression / FilterExpression) built from ``Attr``.

    Combine with ``&`` (AND), ``|`` (OR) and ``~`` (NOT); Python's ``and`` / ``or`` / ``not``
    would silently drop a part, so using a condition as a bool raises ``TypeError``.
    """

    __slots__ = ()
    # How a node is printed as a child: parenthesised under AND, under OR, under NOT.
    _paren_in_and: ClassVar[bool] = False
    _paren_in_or: ClassVar[bool] = False
    _paren_in_not: ClassVar[bool] = True

    def __and__(self, other: Condition) -> Condition:
        if not isinstance(other, Condition):
            return NotImplemented
        left = self._parts if isinstance(self, _And) else (self,)
        right = other._parts if isinstance(other, _And) else (other,)
        return _And(left + right)

    def __or__(self, other: Condition) -> Condition:
        if not isinstance(other, Condition):
            return NotImplemented
        left = self._parts if isinstance(self, _Or) else (self,)
        right = other._parts if isinstance(other, _Or) else (other,)
        return _Or(left + right)

    def __invert__(self) -> Condition:
        return _Not(self)

    def __bool__(self) -> bool:
        raise TypeError(
            "a Condition has no truth value: combine conditions with & | ~, not and/or/not"
        )

    def _render(self, ph: Placeholders) -> str:
        raise NotImplementedError


_COMPARE_METHODS = {"=": "eq", "<>": "ne", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte"}


class _Compare(Condition):
    __slots__ = ("_left", "_op", "_right")
    _left: Attr | Size
    _op: str
    _right: Any

    def __init__(self, left: Attr | Size, op: str, right: Any) -> None:
        _check_distinct(left, right, _COMPARE_METHODS[op])
        _set(self, "_left", left)
        _set(self, "_op", op)
        _set(self, "_right", right)

    def __repr__(self) -> str:
        return f"{self._left!r}.{_COMPARE_METHODS[self._op]}({self._right!r})"

    def _render(self, ph: Placeholders) -> str:
        left = ph._operand(self._left)
        right = self._right
        op = self._op
        if isinstance(right, Attr | Size) or op == "=" or op == "<>":
            return f"{left} {op} {ph._operand(right)}"
        token, tag, _ = ph._typed(right)
        if tag not in _ORDERED_TYPES:
            _fail(
                f"{self!r}: {_COMPARE_METHODS[op]} compares strings, numbers or binary, "
                f"not a {tag} value"
            )
        return f"{left} {op} {token}"


class _Between(Condition):
    __slots__ = ("_high", "_left", "_low")
    _paren_in_and = True
    _paren_in_or = True
    _left: Attr | Size
    _low: Any
    _high: Any

    def __init__(self, left: Attr | Size, low: Any, high: Any) -> None:
        _check_distinct(left, low, "between")
        _check_distinct(left, high, "between")
        _set(self, "_left", left)
        _set(self, "_low", low)
        _set(self, "_high", high)

    def __repr__(self) -> str:
        return f"{self._left!r}.between({self._low!r}, {self._high!r})"

    def _render(self, ph: Placeholders) -> str:
        left = ph._operand(self._left)
        low, high = self._low, self._high
        if isinstance(low, Attr | Size) or isinstance(high, Attr | Size):
            return f"{left} BETWEEN {ph._operand(low)} AND {ph._operand(high)}"
        lo_token, lo_tag, lo = ph._typed(low)
        hi_token, hi_tag, hi = ph._typed(high)
        _check_bounds(lo_tag, lo, hi_tag, hi, self)
        return f"{left} BETWEEN {lo_token} AND {hi_token}"


class _In(Condition):
    __slots__ = ("_left", "_values")
    _left: Attr
    _values: tuple[Any, ...]

    def __init__(self, left: Attr, values: Iterable[Any]) -> None:
        if isinstance(values, str | bytes | bytearray | Mapping):
            _fail(f"is_in takes a collection of values, not {values!r}")
        items = tuple(values)
        if not items:
            _fail("is_in needs at least one value")
        if len(items) > MAX_IN_OPERANDS:
            _fail(f"is_in has {len(items)} values; DynamoDB allows at most {MAX_IN_OPERANDS}")
        for item in items:
            _check_distinct(left, item, "is_in")
        _set(self, "_left", left)
        _set(self, "_values", items)

    def __repr__(self) -> str:
        return f"{self._left!r}.is_in({list(self._values)!r})"

    def _render(self, ph: Placeholders) -> str:
        operand = ph._operand
        listed = ", ".join([operand(v) for v in self._values])
        return f"{operand(self._left)} IN ({listed})"


class _NoArg:
    __slots__ = ()

    def __repr__(self) -> str:
        return ""


_NO_ARG: Any = _NoArg()


class _Function(Condition):
    __slots__ = ("_arg", "_attr", "_name")
    # A call already has its own parentheses: NOT attribute_exists(#n0) reads unambiguously.
    _paren_in_not = False
    _name: str
    _attr: Attr
    _arg: Any

    def __init__(self, name: str, attr: Attr, arg: Any) -> None:
        if arg is not _NO_ARG:
            _check_distinct(attr, arg, name)
        _set(self, "_name", name)
        _set(self, "_attr", attr)
        _set(self, "_arg", arg)

    def __repr__(self) -> str:
        method = {"attribute_exists": "exists", "attribute_not_exists": "not_exists"}.get(
            self._name, self._name
        )
        return f"{self._attr!r}.{method}({self._arg!r})"

    def _render(self, ph: Placeholders) -> str:
        path = ph._path(self._attr._path)
        arg = self._arg
        if arg is _NO_ARG:
            return f"{self._name}({path})"
        if self._name == "begins_with" and not isinstance(arg, Attr | Size):
            token, tag, _ = ph._typed(arg)
            if tag != "S" and tag != "B":
                _fail(f"{self!r}: begins_with takes a string or binary prefix, not {tag}")
            return f"begins_with({path}, {token})"
        return f"{self._name}({path}, {ph._operand(arg)})"


class _And(Condition):
    __slots__ = ("_parts",)
    _paren_in_or = True
    _parts: tuple[Condition, ...]

    def __init__(self, parts: tuple[Condition, ...]) -> None:
        _set(self, "_parts", parts)

    def __repr__(self) -> str:
        return " & ".join(f"({p!r})" if isinstance(p, _Or) else repr(p) for p in self._parts)

    def _render(self, ph: Placeholders) -> str:
        pieces = []
        for part in self._parts:
            text = part._render(ph)
            pieces.append(f"({text})" if part._paren_in_and else text)
        return " AND ".join(pieces)


class _Or(Condition):
    __slots__ = ("_parts",)
    _paren_in_and = True
    _parts: tuple[Condition, ...]

    def __init__(self, parts: tuple[Condition, ...]) -> None:
        _set(self, "_parts", parts)

    def __repr__(self) -> str:
        return " | ".join(f"({p!r})" if isinstance(p, _And) else repr(p) for p in self._parts)

    def _render(self, ph: Placeholders) -> str:
        pieces = []
        for part in self._parts:
            text = part._render(ph)
            pieces.append(f"({text})" if part._paren_in_or else text)
        return " OR ".join(pieces)


class _Not(Condition):
    __slots__ = ("_inner",)
    _inner: Condition

    def __init__(self, inner: Condition) -> None:
        _set(self, "_inner", inner)

    def __invert__(self) -> Condition:
        return self._inner

    def __repr__(self) -> str:
        inner = self._inner
        return f"~({inner!r})" if isinstance(inner, _And | _Or) else f"~{inner!r}"

    def _render(self, ph: Placeholders) -> str:
        inner = self._inner
        text = inner._render(ph)
        return f"NOT ({text})" if inner._paren_in_not else f"NOT {text}"


# --------------------------------------------------------------------------- updates

# Operators and functions each action adds towards DynamoDB's 300 per UpdateExpression.
_UPDATE_WEIGHT = {
    "set": 1,
    "if_not_exists": 2,
    "append": 2,
    "prepend": 2,
    "remove": 1,
    "add": 1,
    "delete": 1,
}
_UPDATE_METHODS = {"if_not_exists": "set_if_not_exists"}

_Action = tuple[str, Path, Any]


class Update(_Frozen):
    """One or more update actions built from ``Attr``, combined with ``&``.

    Compiles to one UpdateExpression with its clauses grouped:
    ``SET #n0 = :v0, #n1 = :v1 REMOVE #n2 ADD #n3 :v2 DELETE #n4 :v3``. Two actions on the
    same or overlapping paths are refused, as DynamoDB would.
    """

    __slots__ = ("_actions",)
    _actions: tuple[_Action, ...]

    def __init__(self, actions: tuple[_Action, ...]) -> None:
        _set(self, "_actions", actions)

    def __and__(self, other: Update) -> Update:
        if not isinstance(other, Update):
            return NotImplemented
        return Update(self._actions + other._actions)

    def __bool__(self) -> bool:
        raise TypeError("an Update has no truth value: combine updates with &, not and")

    def __len__(self) -> int:
        return len(self._actions)

    @property
    def paths(self) -> tuple[Path, ...]:
        """The document path each action changes, in order."""
        return tuple([action[1] for action in self._actions])

    def __repr__(self) -> str:
        pieces = []
        for kind, path, arg in self._actions:
            method = _UPDATE_METHODS.get(kind, kind)
            shown = "" if kind == "remove" else repr(arg)
            pieces.append(f"{_show(path)}.{method}({shown})")
        return " & ".join(pieces)

    def _check(self) -> None:
        actions = self._actions
        operators = sum(_UPDATE_WEIGHT[a[0]] for a in actions)
        if operators > MAX_UPDATE_OPERATORS:
            _fail(
                f"the update has {operators} operators and functions; DynamoDB allows at most "
                f"{MAX_UPDATE_OPERATORS}"
            )
        if len(actions) < 2:
            return
        targets: set[Path] = set()
        nested = False
        for _, path, _ in actions:
            if path in targets:
                _fail(f"two update actions on the same path {_show(path)}")
            targets.add(path)
            nested = nested or len(path) > 1
        if nested:
            for _, path, _ in actions:
                for i in range(1, len(path)):
                    if path[:i] in targets:
                        _fail(
                            f"update paths {_show(path[:i])} and {_show(path)} overlap; "
                            f"DynamoDB refuses overlapping paths in one update"
                        )
            _check_conflicts([a[1] for a in actions])

    def _render(self, ph: Placeholders) -> str:
        self._check()
        sets: list[_Action] = []
        removes: list[_Action] = []
        adds: list[_Action] = []
        deletes: list[_Action] = []
        for action in self._actions:
            kind = action[0]
            if kind == "remove":
                removes.append(action)
            elif kind == "add":
                adds.append(action)
            elif kind == "delete":
                deletes.append(action)
            else:
                sets.append(action)
        # Clause by clause, so placeholder numbers follow the text whatever the action order.
        clauses: list[str] = []
        if sets:
            clauses.append("SET " + ", ".join([self._set_action(ph, a) for a in sets]))
        if removes:
            clauses.append("REMOVE " + ", ".join([ph._path(a[1]) for a in removes]))
        if adds:
            clauses.append("ADD " + ", ".join([self._set_operand(ph, a, _ADD_TYPES) for a in adds]))
        if deletes:
            clauses.append(
                "DELETE " + ", ".join([self._set_operand(ph, a, _SET_TYPES) for a in deletes])
            )
        return " ".join(clauses)

    @classmethod
    def _set_action(cls, ph: Placeholders, action: _Action) -> str:
        kind, path, arg = action
        target = ph._path(path)
        if kind == "set":
            return f"{target} = {ph._operand(arg)}"
        if kind == "if_not_exists":
            return f"{target} = if_not_exists({target}, {ph._operand(arg)})"
        operand = cls._list_operand(ph, kind, path, arg)
        if kind == "append":
            return f"{target} = list_append({target}, {operand})"
        return f"{target} = list_append({operand}, {target})"

    @staticmethod
    def _list_operand(ph: Placeholders, kind: str, path: Path, arg: Any) -> str:
        if isinstance(arg, Attr):
            return ph._path(arg._path)
        token, tag, _ = ph._typed(arg)
        if tag != "L":
            _fail(f"{_show(path)}.{kind}: list_append takes a list, not a {tag} value")
        return token

    @staticmethod
    def _set_operand(ph: Placeholders, action: _Action, allowed: tuple[str, ...]) -> str:
        kind, path, arg = action
        target = ph._path(path)
        token, tag, _ = ph._typed(arg)
        if tag not in allowed:
            wanted = "a number or a set" if kind == "add" else "a set"
            _fail(f"{_show(path)}.{kind}: the operand must be {wanted}, not a {tag} value")
        return f"{target} {token}"


# --------------------------------------------------------------------------- key conditions

_KEY_TYPES = ("S", "N", "B")
_KEY_METHODS = {
    "=": "eq",
    "<": "lt",
    "<=": "lte",
    ">": "gt",
    ">=": "gte",
    "BETWEEN": "between",
    "begins_with": "begins_with",
}

_Part = tuple[str, str, tuple[Any, ...]]


def _part_repr(part: _Part) -> str:
    name, op, values = part
    return f"Key({name!r}).{_KEY_METHODS[op]}({', '.join(repr(v) for v in values)})"


class Key(_Frozen):
    """A key attribute, for a Query's key condition.

    ``eq`` on the partition key, optionally ``&`` one sort-key condition: ``eq lt lte gt gte
    between begins_with``.

    Example::

        Key("PK").eq("CUSTOMER#123") & Key("SK").begins_with("ORDER#")
        Key("PK").eq("SENSOR#1") & Key("SK").between("2024-01", "2024-02")
    """

    __slots__ = ("_name",)
    _name: str

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            _fail(f"a key attribute name must be a non-empty string, not {name!r}")
        _set(self, "_name", name if name.__class__ is str else str.__str__(name))

    @property
    def name(self) -> str:
        """The key attribute's name."""
        return self._name

    def __repr__(self) -> str:
        return f"Key({self._name!r})"

    def eq(self, value: Any) -> KeyCondition:
        """``key = value``: the partition key's condition (or an exact sort key)."""
        return KeyCondition((self._name, "=", (value,)), None)

    def lt(self, value: Any) -> KeyCondition:
        """``key < value`` (sort key)."""
        return KeyCondition(None, (self._name, "<", (value,)))

    def lte(self, value: Any) -> KeyCondition:
        """``key <= value`` (sort key)."""
        return KeyCondition(None, (self._name, "<=", (value,)))

    def gt(self, value: Any) -> KeyCondition:
        """``key > value`` (sort key)."""
        return KeyCondition(None, (self._name, ">", (value,)))

    def gte(self, value: Any) -> KeyCondition:
        """``key >= value`` (sort key)."""
        return KeyCondition(None, (self._name, ">=", (value,)))

    def between(self, low: Any, high: Any) -> KeyCondition:
        """``key BETWEEN low AND high`` (sort key, inclusive)."""
        return KeyCondition(None, (self._name, "BETWEEN", (low, high)))

    def begins_with(self, prefix: Any) -> KeyCondition:
        """``begins_with(key, prefix)`` (string or binary sort key)."""
        return KeyCondition(None, (self._name, "begins_with", (prefix,)))


class KeyCondition(_Frozen):
    """A key condition: the partition key's ``eq`` and at most one sort-key condition.

    A lone ``eq`` is taken as the partition part; when two ``eq`` parts are combined the
    left one is the partition key. A lone sort condition (``Key("SK").begins_with("A")``) is
    valid only combined with a partition part, e.g. ``Key("PK").eq(p) & cond`` or
    ``cond.with_partition("PK", p)`` — which is how a fan-out rebuilds one per partition.
    """

    __slots__ = ("_partition", "_sort")
    _partition: _Part | None
    _sort: _Part | None

    def __init__(self, partition: _Part | None, sort: _Part | None) -> None:
        _set(self, "_partition", partition)
        _set(self, "_sort", sort)

    def __and__(self, other: KeyCondition) -> KeyCondition:
        if not isinstance(other, KeyCondition):
            return NotImplemented
        mine, theirs = self._parts(), other._parts()
        if len(mine) + len(theirs) > 2:
            _fail(
                "a key condition has at most two parts: the partition key's eq and one "
                "sort-key condition"
            )
        a, b = mine[0], theirs[0]
        if a[0] == b[0]:
            _fail(f"a key condition names {a[0]!r} twice")
        if a[1] == "=":
            return KeyCondition(a, b)
        if b[1] == "=":
            return KeyCondition(b, a)
        _fail("a key condition needs an eq on the partition key; both parts are range conditions")

    def __bool__(self) -> bool:
        raise TypeError("a KeyCondition has no truth value: combine key conditions with &")

    def _parts(self) -> tuple[_Part, ...]:
        p, s = self._partition, self._sort
        if p is None:
            return () if s is None else (s,)
        return (p,) if s is None else (p, s)

    def __repr__(self) -> str:
        return " & ".join(_part_repr(p) for p in self._parts())

    @property
    def partition_name(self) -> str | None:
        """The partition key's name, or ``None`` for a sort-only condition."""
        return None if self._partition is None else self._partition[0]

    @property
    def partition_value(self) -> Any:
        """The partition key's value (a Python value), or ``None`` for a sort-only condition."""
        return None if self._partition is None else self._partition[2][0]

    @property
    def sort(self) -> KeyCondition | None:
        """The sort-key part on its own (a condition with no partition part), or ``None``."""
        return None if self._sort is None else KeyCondition(None, self._sort)

    @property
    def sort_name(self) -> str | None:
        """The sort key's name, or ``None`` when there is no sort-key part."""
        return None if self._sort is None else self._sort[0]

    @property
    def sort_operator(self) -> str | None:
        """``=`` ``<`` ``<=`` ``>`` ``>=`` ``BETWEEN`` or ``begins_with``; ``None`` without one."""
        return None if self._sort is None else self._sort[1]

    @property
    def sort_values(self) -> tuple[Any, ...]:
        """The sort-key part's operands (two for ``BETWEEN``), or ``()``."""
        return () if self._sort is None else self._sort[2]

    def with_partition(self, name: str, value: Any) -> KeyCondition:
        """This condition's sort part under the partition key ``name = value`` (replacing
        any partition part): one call per partition when fanning a query out."""
        if not isinstance(name, str) or not name:
            _fail(f"a key attribute name must be a non-empty string, not {name!r}")
        if self._sort is not None and self._sort[0] == name:
            _fail(f"a key condition names {name!r} twice")
        return KeyCondition((name, "=", (value,)), self._sort)

    def _render(self, ph: Placeholders) -> str:
        partition = self._partition
        if partition is None:
            _fail(
                f"{self!r} has no partition key: a Query needs Key(partition).eq(value) "
                f"& the sort condition"
            )
        name, _, (value,) = partition
        text = f"{ph.name(name)} = {self._key_value(ph, partition, value)}"
        sort = self._sort
        if sort is None:
            return text
        sort_name, op, values = sort
        key = ph.name(sort_name)
        if op == "BETWEEN":
            lo_token, lo_tag, lo = ph._typed(values[0])
            hi_token, hi_tag, hi = ph._typed(values[1])
            _check_bounds(lo_tag, lo, hi_tag, hi, self)
            return f"{text} AND {key} BETWEEN {lo_token} AND {hi_token}"
        if op == "begins_with":
            token, tag, _ = ph._typed(values[0])
            if tag != "S" and tag != "B":
                _fail(f"{_part_repr(sort)}: begins_with takes a string or binary prefix")
            return f"{text} AND begins_with({key}, {token})"
        return f"{text} AND {key} {op} {self._key_value(ph, sort, values[0])}"

    @staticmethod
    def _key_value(ph: Placeholders, part: _Part, value: Any) -> str:
        token, tag, _ = ph._typed(value)
        if tag not in _KEY_TYPES:
            _fail(f"{_part_repr(part)}: key values are strings, numbers or binary, not {tag}")
        return token


_DIGITS = frozenset("0123456789")
_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def projection_paths(text: str, names: Mapping[str, str] | None = None) -> list[Path]:
    """The document paths of a raw ProjectionExpression (``"a, b.c[2], #s"``), with the
    caller's ``#tokens`` resolved through ``names``.

    A raw projection is read rather than passed through so that every read can extend it
    (the key attributes a batch needs to match answers, the TTL attribute ``hide_expired``
    needs) and strip those again. It is sent as its paths, with placeholders: a reserved
    word that DynamoDB refuses bare is simply read. Malformed text raises
    ``InvalidExpression``, as DynamoDB would refuse it.
    """
    what = "projection expression"
    _raw(text, what)
    n = len(text)
    i = 0

    def skip_blanks(i: int) -> int:
        while i < n and text[i].isspace():
            i += 1
        return i

    def word(i: int) -> tuple[str, int]:
        start = i
        while i < n and text[i] in _WORD_CHARS:
            i += 1
        return text[start:i], i

    def name(i: int) -> tuple[str, int]:
        i = skip_blanks(i)
        if i < n and text[i] == "#":
            token, end = word(i + 1)
            if not token:
                _fail(f"{what} {text!r}: '#' must be followed by a placeholder name")
            resolved = (names or {}).get("#" + token)
            if resolved is None:
                _fail(f"{what} {text!r} uses #{token}, which names= does not define")
            return resolved, end
        token, end = word(i)
        if not token or token[0] in _DIGITS:
            found = repr(text[i]) if i < n else "the end"
            _fail(
                f"{what} {text!r}: expected an attribute name at {found} (a name that is not "
                "letters, digits and '_', or starts with a digit, needs a #placeholder)"
            )
        return token, end

    paths: list[Path] = []
    while True:
        first, i = name(i)
        path: list[str | int] = [first]
        while True:
            i = skip_blanks(i)
            if i < n and text[i] == ".":
                segment, i = name(i + 1)
                path.append(segment)
            elif i < n and text[i] == "[":
                i = skip_blanks(i + 1)
                start = i
                while i < n and text[i] in _DIGITS:
                    i += 1
                digits = text[start:i]
                i = skip_blanks(i)
                if not digits or i >= n or text[i] != "]":
                    _fail(f"{what} {text!r}: a list index is [digits]")
                path.append(int(digits))
                i += 1
            else:
                break
        paths.append(_check_path(path))
        if i >= n:
            return paths
        if text[i] != ",":
            _fail(f"{what} {text!r}: unexpected {text[i]!r} (paths are separated by commas)")
        i += 1


def projection_with(
    attributes: str | Iterable[str | Attr | Path] | None,
    required: Iterable[str],
    names: Mapping[str, str] | None = None,
) -> tuple[list[str | Attr | Path] | None, list[str]]:
    """A projection that also fetches the ``required`` attributes (the keys a batch or a
    fan-out needs to match answers or resume, the TTL attribute of ``hide_expired``), and
    the names among them the caller did not ask for, to be removed from each item again.
    ``None`` projects everything. A ``str`` is a raw ProjectionExpression (its ``#tokens``
    in ``names``), read into its paths."""
    if attributes is None:
        return None, []
    wanted: list[str | Attr | Path]
    if isinstance(attributes, str):
        wanted = list(projection_paths(attributes, names))
    else:
        wanted = list(attributes)
    tops: set[object] = set()
    for attribute in wanted:
        if isinstance(attribute, Attr):
            tops.add(attribute.path[0])
        elif isinstance(attribute, tuple):
            tops.add(attribute[0] if attribute else None)
        else:
            tops.add(attribute)
    strip = [name for name in dict.fromkeys(required) if name not in tops]
    return [*wanted, *strip], strip
