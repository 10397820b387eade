"""Key templates: ``"CUSTOMER#{customer_id}"`` rendered to a key and parsed back to fields.

A template is ``str.format`` text whose fields are entity fields, with optional format specs
(``{seq:08d}``, ``{day:%Y-%m-%d}``). Rendering refuses what would make a key that reads back
differently or collides with another entity's key: a value holding the design's separator
(``customer_id="1#ORDER#9"`` would otherwise *be* order 9's key), an empty value, a naive
datetime. Datetimes without a spec render as fixed-width UTC ISO-8601
(``2024-01-03T09:30:00.000000Z``) so that string order is time order. Case is never changed.

Each template is compiled once, when its entity class is, into a generated ``render``
function and an anchored regular expression; ``tokens`` feed the design's proofs of which
templates can produce the same key (``could_overlap``).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from ..errors import ConfigurationError, InvalidItem

__all__ = ["Template", "could_overlap", "could_reach", "could_start_with"]

# The largest code point: in DynamoDB's byte order (UTF-8) nothing sorts after it, so
# ``prefix + TOP`` bounds every string that starts with ``prefix``.
TOP = "\U0010ffff"
_ISO = "%Y-%m-%dT%H:%M:%S.%fZ"

# One token of a template's language: a literal character, a field (one or more characters
# other than the separator), or (only in prefixes) any tail.
_FIELD = ("f",)
_ANY = ("*",)
Token = tuple[str, ...]


def render_datetime(value: datetime) -> str:
    utc = value.astimezone(UTC)
    # Explicit widths: strftime("%Y") does not pad years below 1000 on every platform.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
        f"{utc.second:02d}.{utc.microsecond:06d}Z"
    )


class Template:
    """One compiled key template. ``fields`` lists its entity fields in order."""

    __slots__ = (
        "_converters",
        "_fast",
        "_groups",
        "_parsers",
        "_regex",
        "_render",
        "entity",
        "fields",
        "kinds",
        "parts",
        "prefix",
        "separator",
        "text",
        "tokens",
    )

    def __init__(self, text: str, separator: str) -> None:
        if not isinstance(text, str) or not text:
            raise ConfigurationError(f"a key template is a non-empty str, not {text!r}")
        self.text = text
        self.separator = separator
        self.entity = "?"
        parts: list[str | tuple[str, str]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ConfigurationError(f"key template {text!r}: {exc}") from None
        for literal, name, spec, conversion in parsed:
            if literal:
                parts.append(literal)
            if name is None:
                continue
            if not name.isidentifier() or conversion:
                raise ConfigurationError(
                    f"key template {text!r}: {{{name}}} must name an entity field "
                    "(no index, attribute or !conversion)"
                )
            if parts and not isinstance(parts[-1], str):
                raise ConfigurationError(
                    f"key template {text!r}: fields {{{parts[-1][0]}}} and {{{name}}} touch; "
                    f"put a literal between them so that a key parses back"
                )
            parts.append((name, spec or ""))
        self.parts = tuple(parts)
        self.fields = tuple(p[0] for p in parts if not isinstance(p, str))
        self.prefix = parts[0] if parts and isinstance(parts[0], str) else ""
        tokens: list[Token] = []
        for part in parts:
            if isinstance(part, str):
                tokens.extend(("c", ch) for ch in part)
            else:
                tokens.append(_FIELD)
        self.tokens = tuple(tokens)
        self._converters: dict[str, Callable[[Any], str]] = {}
        self.kinds: dict[str, Any] = {}
        self._parsers: dict[str, Callable[[str], Any]] = {}
        self._groups: tuple[tuple[str, str, Callable[[str], Any]], ...] = ()
        self._regex: re.Pattern[str] | None = None
        self._render: Callable[[Mapping[str, Any]], str] | None = None
        self._fast: Callable[[Any], dict[str, Any] | None] | None = None

    def __repr__(self) -> str:
        return f"Template({self.text!r})"

    # -- compilation (once per entity class) ---------------------------------------------

    def compile(self, entity: str, types: Mapping[str, Any]) -> None:
        """Build the renderer and parser for the entity named ``entity`` whose fields have
        ``types`` (a field's type without ``| None``)."""
        self.entity = entity
        sep = re.escape(self.separator)
        pattern: list[str] = []
        code: list[str] = []
        env: dict[str, Any] = {}
        for i, part in enumerate(self.parts):
            if isinstance(part, str):
                pattern.append(re.escape(part))
                code.append(repr(part))
                continue
            name, spec = part
            if name not in types:
                raise ConfigurationError(
                    f"key template {self.text!r} of {entity}: no field {name!r} "
                    f"(fields: {', '.join(types)})"
                )
            self.kinds[name] = types[name]
            self._converters[name] = self._converter(name, spec, types[name])
            self._parsers[name] = self._parser(spec, types[name])
            pattern.append(f"(?P<g{i}>[^{sep}]+)")
            env[f"c{i}"] = self._converters[name]
            code.append(f"c{i}(v[{name!r}])")
        self._regex = re.compile("".join(pattern))
        self._groups = tuple(
            (f"g{i}", part[0], self._parsers[part[0]])
            for i, part in enumerate(self.parts)
            if not isinstance(part, str)
        )
        lines, render_env, expr = self.render_code("")
        exec(
            "def render(v):\n" + "".join(f"{line}\n" for line in lines) + f"    return {expr}\n",
            render_env,
        )
        self._render = render_env["render"]
        self._fast = self._generated_parser()

    def render_code(self, tag: str) -> tuple[list[str], dict[str, Any], str]:
        """Python lines (indented once) that render this template from the mapping ``v``,
        the names they need, and the key text as an expression over their variables
        (``tag`` keeps those apart from another template's). A plain ``str`` field is
        checked inline (a ``str``, not empty, no separator); anything else, and any value
        that fails those checks, goes through the field's converter, which converts it or
        raises ``InvalidItem`` naming the field. A missing field raises ``KeyError``."""
        sep = self.separator
        lines: list[str] = []
        env: dict[str, Any] = {}
        pieces: list[str] = []
        for i, part in enumerate(self.parts):
            if isinstance(part, str):
                pieces.append(repr(part))
                continue
            name, spec = part
            var, conv = f"x{tag}_{i}", f"c{tag}_{i}"
            env[conv] = self._converters[name]
            lines.append(f"    {var} = v[{name!r}]")
            if self.kinds.get(name) is str and not spec:
                lines.append(f"    if {var}.__class__ is not str or not {var} or {sep!r} in {var}:")
                lines.append(f"        {var} = {conv}({var})")
            else:
                lines.append(f"    {var} = {conv}({var})")
            pieces.append(var)
        return lines, env, " + ".join(pieces) if pieces else "''"

    def parse_code(
        self, text: str, fail: str, tag: str = "", *, exact: bool = False
    ) -> tuple[list[str], dict[str, Any], dict[str, str]] | None:
        """Python lines (indented once) that read the key in the variable ``text`` as
        straight-line string slicing, running ``fail`` (a statement: ``return None``) when it
        is not a key of this template; with the names they need, and each field's value as
        an expression over the variables they set (``tag`` keeps those apart from others).
        ``exact``: only a ``str`` itself is read (a subclass fails, for a caller whose
        ``fail`` takes the long way); otherwise any ``str``, as the regular expression.

        ``None`` unless every field ends the template or is followed by a literal that
        starts with the separator: a field never holds the separator, so it ends at the
        next one, exactly where the regular expression's ``[^sep]+`` ends it, and the reads
        agree on every input. Other shapes (``{a}x{b}``) keep the regular expression. The
        value expressions call the fields' parsers, which raise ``ValueError`` (or an
        ``ArithmeticError``) for text they refuse: the caller catches those."""
        sep = self.separator
        parts = self.parts
        env: dict[str, Any] = {}
        if len(parts) == 1 and isinstance(parts[0], str) and exact:
            return [f"    if {text} != {parts[0]!r}:", f"        {fail}"], env, {}
        at, cut = f"i{tag}", f"j{tag}"
        check = f"{text}.__class__ is not str" if exact else f"not isinstance({text}, str)"
        code = [f"    if {check}:", f"        {fail}"]
        # While only literals precede, the position is a constant of the template.
        offset: int | None = 0
        values: dict[str, str] = {}

        def position() -> str:
            return at if offset is None else str(offset)

        for n, part in enumerate(parts):
            if isinstance(part, str):
                start = "" if offset == 0 else f", {position()}"
                code += [f"    if not {text}.startswith({part!r}{start}):", f"        {fail}"]
                if offset is None:
                    code.append(f"    {at} += {len(part)}")
                else:
                    offset += len(part)
                continue
            name = part[0]
            var = f"v{tag}_{n}"
            if n < len(parts) - 1:
                following = parts[n + 1]
                if not isinstance(following, str) or not following.startswith(sep):
                    return None
                code += [
                    f"    {cut} = {text}.find({sep!r}, {position()})",
                    # No separator after (-1), or an empty field (j == i).
                    f"    if {cut} <= {position()}:",
                    f"        {fail}",
                    f"    {var} = {text}[{position()}:{cut}]",
                    f"    {at} = {cut}",
                ]
                offset = None
            else:
                code += [
                    f"    {var} = {text}[{position()}:]",
                    f"    if not {var} or {sep!r} in {var}:",
                    f"        {fail}",
                ]
                offset = -1  # the whole text is read
            parser = self._parsers[name]
            if parser is str:
                values[name] = var
            else:
                env[f"p{tag}_{n}"] = parser
                values[name] = f"p{tag}_{n}({var})"
        if offset is None:
            code += [f"    if {at} != len({text}):", f"        {fail}"]
        elif offset != -1:
            code += [f"    if len({text}) != {offset}:", f"        {fail}"]
        return code, env, values

    def _generated_parser(self) -> Callable[[Any], dict[str, Any] | None] | None:
        """``parse`` generated from ``parse_code``, or ``None`` for the regex's shapes."""
        made = self.parse_code("text", "return None")
        if made is None:
            return None
        code, env, values = made
        shown = ", ".join(f"{name!r}: {expr}" for name, expr in values.items())
        if env:  # a parser that can refuse the text (int, datetime...): None, as the regex
            code += [
                "    try:",
                f"        return {{{shown}}}",
                "    except (ValueError, ArithmeticError):",
                "        return None",
            ]
        else:
            code.append(f"    return {{{shown}}}")
        exec("def parse(text):\n" + "\n".join(code) + "\n", env)
        parse: Callable[[Any], dict[str, Any] | None] = env["parse"]
        return parse

    @property
    def parser(self) -> Callable[[Any], dict[str, Any] | None]:
        """``parse`` as a plain function, the fastest this template's shape allows."""
        return self._fast if self._fast is not None else self._parse_regex

    def _converter(self, name: str, spec: str, kind: Any) -> Callable[[Any], str]:
        sep = self.separator
        where = f"{self.entity}.{name}"

        def checked(text: str) -> str:
            if not text:
                raise InvalidItem(f"an empty value cannot go into the key {self.text!r}", where)
            if sep in text:
                raise InvalidItem(
                    f"{text!r} contains the key separator {sep!r}: it would make another "
                    f"key than {self.text!r} means (refused so no key can be forged)",
                    where,
                )
            return text

        if kind is datetime:
            if spec and sep in datetime(2000, 1, 2, 3, 4, 5, 6, UTC).strftime(spec):
                raise ConfigurationError(f"{where}: the format {spec!r} writes the separator")

            def from_datetime(value: Any) -> str:
                if not isinstance(value, datetime):
                    raise InvalidItem(f"a datetime, not {type(value).__name__}", where)
                if value.tzinfo is None or value.utcoffset() is None:
                    raise InvalidItem("a naive datetime is ambiguous: give it a timezone", where)
                if spec:
                    return checked(value.astimezone(UTC).strftime(spec))
                return render_datetime(value)

            return from_datetime
        if kind is date:

            def from_date(value: Any) -> str:
                if not isinstance(value, date) or isinstance(value, datetime):
                    raise InvalidItem(f"a date, not {type(value).__name__}", where)
                return format(value, spec) if spec else value.isoformat()

            return from_date
        if kind is int or kind is Decimal:
            numeric = (int,) if kind is int else (int, Decimal)

            def from_number(value: Any) -> str:
                if isinstance(value, bool) or not isinstance(value, numeric):
                    raise InvalidItem(f"{kind.__name__}, not {type(value).__name__}", where)
                return checked(format(value, spec) if spec else str(value))

            return from_number
        if kind is str:

            def from_str(value: Any) -> str:
                if not isinstance(value, str):
                    raise InvalidItem(f"a str, not {type(value).__name__}", where)
                return checked(format(value, spec) if spec else value)

            return from_str

        def from_other(value: Any) -> str:
            if value is None:
                raise InvalidItem("None cannot go into a key", where)
            return checked(format(value, spec))

        return from_other

    @staticmethod
    def _parser(spec: str, kind: Any) -> Callable[[str], Any]:
        if kind is datetime:
            fmt = spec or _ISO

            def to_datetime(text: str) -> datetime:
                return datetime.strptime(text, fmt).replace(tzinfo=UTC)

            return to_datetime
        if kind is date:
            return date.fromisoformat
        if kind is int:
            return int
        if kind is Decimal:
            return Decimal
        if kind is str:
            return str
        if isinstance(kind, type):
            return kind
        return str

    # -- use -----------------------------------------------------------------------------

    def render(self, values: Mapping[str, Any]) -> str:
        """The key text for ``values`` (a mapping with every field of the template)."""
        render = self._render
        assert render is not None, "template used before its entity was compiled"
        try:
            return render(values)
        except KeyError as exc:
            raise InvalidItem(
                f"the key {self.text!r} needs {', '.join(self.missing(values))}",
                f"{self.entity}.{exc.args[0]}",
            ) from None

    def missing(self, values: Mapping[str, Any]) -> list[str]:
        return [name for name in self.fields if name not in values]

    def render_value(self, name: str, value: Any) -> str:
        return self._converters[name](value)

    def parse(self, text: Any) -> dict[str, Any] | None:
        """The fields of key ``text``, or ``None`` when it is not a key of this template."""
        fast = self._fast
        if fast is not None:
            return fast(text)
        return self._parse_regex(text)

    def _parse_regex(self, text: Any) -> dict[str, Any] | None:
        regex = self._regex
        assert regex is not None, "template used before its entity was compiled"
        if not isinstance(text, str):
            return None
        match = regex.fullmatch(text)
        if match is None:
            return None
        out: dict[str, Any] = {}
        try:
            for group, name, parser in self._groups:
                out[name] = parser(match[group])
        except (ValueError, ArithmeticError):
            return None
        return out

    def matches(self, text: Any) -> bool:
        regex = self._regex
        assert regex is not None
        return isinstance(text, str) and regex.fullmatch(text) is not None

    def head(self, values: Mapping[str, Any], upto: str | None) -> str:
        """The text before field ``upto`` (the whole template when ``None``), rendered
        from ``values``: what every key with those values starts with."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif part[0] == upto:
                break
            else:
                out.append(self._converters[part[0]](values[part[0]]))
        return "".join(out)

    def after(self, name: str) -> str:
        """The literal right after field ``name`` ("" when it ends the template)."""
        parts = self.parts
        for i, part in enumerate(parts):
            if not isinstance(part, str) and part[0] == name:
                nxt = parts[i + 1] if i + 1 < len(parts) else ""
                return nxt if isinstance(nxt, str) else ""
        return ""

    def spec_of(self, name: str) -> str:
        for part in self.parts:
            if not isinstance(part, str) and part[0] == name:
                return part[1]
        return ""

    def buckets(
        self, values: Mapping[str, Any], name: str, start: datetime, end: datetime
    ) -> list[str]:
        """Every key this template makes for ``values`` and the datetime field ``name``
        between ``start`` and ``end`` (both included), oldest first: the time buckets
        (``"SENSOR#{sensor}#{at:%Y-%m}"``) a time range spans."""
        where = f"{self.entity}.{name}"
        spec = self.spec_of(name)
        if self.kinds.get(name) is not datetime or not spec:
            raise ConfigurationError(
                f"{where} in {self.text!r} is no datetime with a format: no time buckets"
            )
        for value in (start, end):
            if not isinstance(value, datetime) or value.utcoffset() is None:
                raise InvalidItem("a time range needs timezone-aware datetimes", where)
        unit = _unit(spec)
        if unit is None:
            raise ConfigurationError(f"{where}: {spec!r} buckets finer than a minute")
        low, high = start.astimezone(UTC), end.astimezone(UTC)
        keys: list[str] = []
        at = _floor(low, unit)
        while at <= high:
            key = self.render({**values, name: max(at, low)})
            if not keys or keys[-1] != key:
                keys.append(key)
            if len(keys) > _MAX_BUCKETS:
                raise ConfigurationError(
                    f"{where}: the range spans more than {_MAX_BUCKETS} partitions of "
                    f"{self.text!r}; narrow it"
                )
            at = _step(at, unit)
        return keys


_MAX_BUCKETS = 1000
# strftime directives from the finest unit they change with to the coarsest.
_UNITS = (
    ("minute", ("%M", "%R", "%T", "%X", "%c")),
    ("hour", ("%H", "%I", "%p")),
    ("day", ("%d", "%j", "%a", "%A", "%w", "%u", "%U", "%W", "%V", "%x", "%D", "%F", "%e")),
    ("month", ("%m", "%b", "%B", "%h")),
    ("year", ("%Y", "%y", "%G", "%C")),
)


def _unit(spec: str) -> str | None:
    if "%S" in spec or "%f" in spec or "%s" in spec:
        return None
    for unit, directives in _UNITS:
        if any(d in spec for d in directives):
            return unit
    return None


def _floor(at: datetime, unit: str) -> datetime:
    if unit == "minute":
        return at.replace(second=0, microsecond=0)
    if unit == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    if unit == "day":
        return at.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "month":
        return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return at.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)


def _step(at: datetime, unit: str) -> datetime:
    if unit == "minute":
        return at + timedelta(minutes=1)
    if unit == "hour":
        return at + timedelta(hours=1)
    if unit == "day":
        return at + timedelta(days=1)
    if unit == "month":
        return at.replace(year=at.year + at.month // 12, month=at.month % 12 + 1)
    return at.replace(year=at.year + 1)


# -- proofs over the templates' languages -----------------------------------------------
#
# A template's keys form a simple language: literal characters and fields (one or more
# characters other than the separator). Whether two templates can produce one key, or a
# template a key that starts with some prefix, is decided exactly by running both as
# automata side by side. States: (token index, inside a field that has consumed a char).


def _closure(tokens: Sequence[Token], states: set[tuple[int, bool]]) -> set[tuple[int, bool]]:
    out = set(states)
    stack = list(states)
    while stack:
        i, inside = stack.pop()
        nxt: list[tuple[int, bool]] = []
        if inside:  # a field with at least one character may end here
            nxt.append((i + 1, False))
        if i < len(tokens) and tokens[i] == _ANY:
            nxt.append((i + 1, False))
        for state in nxt:
            if state not in out:
                out.add(state)
                stack.append(state)
    return out


def _steps(
    tokens: Sequence[Token], state: tuple[int, bool], sep: str
) -> list[tuple[Token, tuple[int, bool]]]:
    """(what the next character may be, next state): ("c", ch), ("notsep",) or ("any",)."""
    i, _ = state
    if i >= len(tokens):
        return []
    token = tokens[i]
    if token == _FIELD:
        return [(("notsep",), (i, True))]
    if token == _ANY:
        return [(("any",), (i, False))]
    return [(token, (i + 1, False))]


def _meet(a: Token, b: Token, sep: str) -> bool:
    """Whether one character can satisfy both character classes."""
    if a[0] == "c" and b[0] == "c":
        return a[1] == b[1]
    if a[0] == "c":
        return b[0] == "any" or a[1] != sep
    if b[0] == "c":
        return a[0] == "any" or b[1] != sep
    return True


def _intersect(left: Sequence[Token], right: Sequence[Token], sep: str) -> bool:
    start = (_closure(left, {(0, False)}), _closure(right, {(0, False)}))
    seen: set[tuple[tuple[int, bool], tuple[int, bool]]] = set()
    stack = [(a, b) for a in start[0] for b in start[1]]
    while stack:
        a, b = stack.pop()
        if (a, b) in seen:
            continue
        seen.add((a, b))
        if a[0] >= len(left) and b[0] >= len(right) and not a[1] and not b[1]:
            return True
        for ca, na in _steps(left, a, sep):
            for cb, nb in _steps(right, b, sep):
                if _meet(ca, cb, sep):
                    right_next = _closure(right, {nb})
                    stack.extend((x, y) for x in _closure(left, {na}) for y in right_next)
    return False


def could_overlap(a: Template, b: Template) -> bool:
    """Whether some key is produced by both templates."""
    return _intersect(a.tokens, b.tokens, a.separator)


def could_start_with(template: Template, prefix: str) -> bool:
    """Whether some key of ``template`` starts with ``prefix``."""
    tokens = tuple(("c", ch) for ch in prefix) + (_ANY,)
    return _intersect(template.tokens, tokens, template.separator)


def could_reach(other: Template, template: Template, upto: str | None) -> bool:
    """Whether some key of ``other`` starts like ``template``'s keys do before its field
    ``upto`` (the whole template when ``None``), for any values of the fields before it: whether
    a ``begins_with`` read of that range can meet ``other``'s keys."""
    head: list[Token] = []
    for part in template.parts:
        if isinstance(part, str):
            head.extend(("c", ch) for ch in part)
        elif part[0] == upto:
            break
        else:
            head.append(_FIELD)
    return _intersect(other.tokens, (*head, _ANY), template.separator)
