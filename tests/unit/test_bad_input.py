"""Bad input through the public API: a typed, readable error before anything is sent.

Each case drives ``Client`` / ``Table`` as a caller would, against a ``ScriptedTransport``,
and checks three things: the error is the expected ``AsyncDynError`` subclass (never a
``TypeError``, ``KeyError`` or ``RecursionError``), its message names what is wrong, and not
a single request went out. ``test_marshal.py`` covers the encoder's rules one by one; this
corpus checks that every entry point applies them. What only the server can judge (a key of
the wrong type for the table, an unused placeholder) is in ``tests/integration/test_fuzz.py``.
"""

from __future__ import annotations

import asyncio
import datetime
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from asyncdyn import (
    AsyncDynError,
    Attr,
    Client,
    ConfigurationError,
    InvalidCursor,
    InvalidExpression,
    InvalidItem,
    InvalidTransaction,
    Key,
    Table,
)
from asyncdyn.testing import ScriptedTransport, answer

KEY = {"PK": "a", "SK": "b"}
WIRE_KEY = {"PK": {"S": "a"}, "SK": {"S": "b"}}


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"m": value}
    return value


def _cyclic() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


def _deep_condition(levels: int) -> Any:
    condition = Attr("a").eq(0)
    for i in range(levels):
        condition = (condition & Attr("b").eq(i)) if i % 2 else (condition | Attr("c").eq(i))
    return condition


@dataclass
class Ctx:
    """What a case may use: the client, a table whose key is declared, one whose key is not,
    and a cursor of a query on ``orders``."""

    db: Client
    orders: Table
    loose: Table
    cursor: str


Call = Callable[[Ctx], Any]


@dataclass(frozen=True)
class Case:
    id: str
    call: Call
    error: type[AsyncDynError]
    message: str  # a regular expression the message must match (search)


def _item(**extra: Any) -> dict[str, Any]:
    return {**KEY, **extra}


CASES = [
    # ---- numbers
    Case("nan", lambda c: c.orders.put(_item(x=float("nan"))), InvalidItem, r"^x: .*NaN"),
    Case("inf", lambda c: c.orders.put(_item(x=float("inf"))), InvalidItem, r"^x: .*Infinity"),
    Case("-inf", lambda c: c.orders.put(_item(x=Decimal("-Infinity"))), InvalidItem, "^x: "),
    Case("snan", lambda c: c.orders.put(_item(x=Decimal("sNaN"))), InvalidItem, "^x: "),
    Case("39 digits", lambda c: c.orders.put(_item(n=10**38 + 1)), InvalidItem, r"^n: .*39"),
    Case(
        "39 digit decimal",
        lambda c: c.orders.put(_item(n=Decimal("1." + "1" * 38))),
        InvalidItem,
        "^n: .*significant digits",
    ),
    Case("1e126", lambda c: c.orders.put(_item(n=Decimal("1e126"))), InvalidItem, "^n: .*larger"),
    Case("-1e126", lambda c: c.orders.put(_item(n=-(10**126))), InvalidItem, "^n: .*larger"),
    Case(
        "1e-131", lambda c: c.orders.put(_item(n=Decimal("1e-131"))), InvalidItem, "^n: .*smaller"
    ),
    Case("float 1e-200", lambda c: c.orders.put(_item(n=1e-200)), InvalidItem, "^n: .*smaller"),
    Case(
        "nan in a number set",
        lambda c: c.orders.put(_item(ns={1, float("nan")})),
        InvalidItem,
        "^ns: .*NaN",
    ),
    Case(
        "nan deep in a list",
        lambda c: c.orders.put(_item(order={"lines": [{"price": 1}, {"price": float("nan")}]})),
        InvalidItem,
        r"^order\.lines\[1\]\.price: ",
    ),
    # ---- sets
    Case("empty set", lambda c: c.orders.put(_item(tags=set())), InvalidItem, "^tags: empty set"),
    Case(
        "empty frozenset nested",
        lambda c: c.orders.put(_item(m={"tags": frozenset()})),
        InvalidItem,
        r"^m\.tags: empty set",
    ),
    Case("mixed set", lambda c: c.orders.put(_item(s={1, "a"})), InvalidItem, "^s: .*mixes"),
    Case("bool in a set", lambda c: c.orders.put(_item(s={2, True})), InvalidItem, "^s: .*bool"),
    Case("None in a set", lambda c: c.orders.put(_item(s={None, "a"})), InvalidItem, "^s: .*None"),
    Case(
        "float and Decimal twins in a set",
        lambda c: c.orders.put(_item(s={0.1, Decimal("0.1")})),
        InvalidItem,
        "^s: .*same number twice",
    ),
    Case("tuple in a set", lambda c: c.orders.put(_item(s={(1, 2)})), InvalidItem, "^s: .*tuple"),
    # ---- nesting and size
    Case("depth 33", lambda c: c.orders.put(_item(x=_nested(32))), InvalidItem, "nesting"),
    Case("depth 10,000", lambda c: c.orders.put(_item(x=_nested(10_000))), InvalidItem, "nesting"),
    Case("cyclic map", lambda c: c.orders.put(_item(x=_cyclic())), InvalidItem, "nesting"),
    Case(
        "400 KB + 1 byte",
        # 4 bytes of key names and values: "PK" "a" "SK" "b" is 2+1+2+1 = 6, "x" is 1.
        lambda c: c.orders.put(_item(x="a" * (409_600 - 7 + 1))),
        InvalidItem,
        "409601 bytes",
    ),
    Case(
        "400 KB + 1 byte of binary in a list",
        # names 6 + "x" 1 + list overhead 3 + 1 per element = 11 bytes besides the blob.
        lambda c: c.orders.put(_item(x=[b"\0" * (409_600 - 11 + 1)])),
        InvalidItem,
        "409601 bytes",
    ),
    Case(
        "batch item over 400 KB",
        lambda c: c.orders.batch_write(puts=[KEY, _item(x="a" * 409_600)]),
        InvalidItem,
        r"^puts\[1\]: item is",
    ),
    # ---- names and types
    Case("empty attribute name", lambda c: c.orders.put({**KEY, "": 1}), InvalidItem, "names"),
    Case("bytes attribute name", lambda c: c.orders.put({**KEY, b"x": 1}), InvalidItem, "b'x'"),
    Case("int map key", lambda c: c.orders.put(_item(m={1: "a"})), InvalidItem, "^m: map key 1"),
    Case("object()", lambda c: c.orders.put(_item(o=object())), InvalidItem, "^o: .*object"),
    Case(
        "datetime without conversion",
        lambda c: c.orders.put(_item(at=datetime.datetime(2026, 1, 1))),
        InvalidItem,
        "^at: .*datetime",
    ),
    Case("complex", lambda c: c.orders.put(_item(z=1j)), InvalidItem, "^z: .*complex"),
    Case(
        "lone surrogate in a value",
        lambda c: c.orders.put(_item(s="\ud800")),
        InvalidItem,
        "^s: .*surrogate",
    ),
    Case("item is a list", lambda c: c.orders.put(["PK", "a"]), InvalidItem, "mapping"),
    Case("item is None", lambda c: c.orders.put(None), InvalidItem, "mapping"),
    # ---- keys
    Case("key missing (put)", lambda c: c.orders.put({"PK": "a"}), InvalidItem, "'SK'"),
    Case("key missing (get)", lambda c: c.orders.get({"PK": "a"}), InvalidItem, "PK, SK"),
    Case(
        "key with an extra attribute (delete)",
        lambda c: c.orders.delete({"PK": "a", "XX": "b"}),
        InvalidItem,
        "PK, SK",
    ),
    Case("three key attributes", lambda c: c.loose.get({**KEY, "c": 1}), InvalidItem, "got 3"),
    Case("key is a str", lambda c: c.loose.get("a"), InvalidItem, "mapping"),
    Case("empty string key", lambda c: c.loose.get({"PK": ""}), InvalidItem, "^PK: .*empty"),
    Case("empty binary key", lambda c: c.loose.get({"PK": b""}), InvalidItem, "^PK: .*empty"),
    Case("bool key", lambda c: c.loose.get({"PK": True}), InvalidItem, "^PK: .*bool"),
    Case("list key", lambda c: c.loose.get({"PK": ["a"]}), InvalidItem, "^PK: .*list"),
    Case("None key", lambda c: c.loose.delete({"PK": None}), InvalidItem, "^PK: .*NoneType"),
    Case("NaN key", lambda c: c.loose.get({"PK": float("nan")}), InvalidItem, "^PK: .*NaN"),
    Case("2049-byte key", lambda c: c.loose.get({"PK": "é" * 1025}), InvalidItem, "^PK: .*2050"),
    Case(
        "empty string key in a put",
        lambda c: c.orders.put({"PK": "", "SK": "b"}),
        InvalidItem,
        "PK",
    ),
    Case(
        "key of the wrong type in a put",
        lambda c: c.orders.put({"PK": {"a": 1}, "SK": "b"}),
        InvalidItem,
        "PK",
    ),
    # ---- batches
    Case(
        "batch_get key missing an attribute",
        lambda c: c.orders.batch_get([KEY, {"PK": "a"}]),
        InvalidItem,
        r"^keys\[1\]",
    ),
    Case(
        "batch_get None key", lambda c: c.orders.batch_get([KEY, None]), InvalidItem, r"^keys\[1\]"
    ),
    Case(
        "client batch_get bad key",
        lambda c: c.db.batch_get({"Orders": [KEY, {"PK": ""}]}),
        InvalidItem,
        r"requests\['Orders'\]\[1\]",
    ),
    Case(
        "batch_write put without its key",
        lambda c: c.orders.batch_write(puts=[KEY, {"PK": "a", "x": 1}]),
        InvalidItem,
        r"^puts\[1\]: .*'SK'",
    ),
    Case(
        "batch_write bad delete",
        lambda c: c.orders.batch_write(deletes=[KEY, {"PK": "a", "SK": True}]),
        InvalidItem,
        r"^deletes\[1\]",
    ),
    Case(
        "batch_write bad value",
        lambda c: c.orders.batch_write(puts=[KEY, _item(x=set())]),
        InvalidItem,
        r"^puts\[1\]\.x: empty set",
    ),
    # ---- paging arguments
    Case(
        "limit=0",
        lambda c: c.orders.query_page(Key("PK").eq("a"), limit=0),
        ConfigurationError,
        "0",
    ),
    Case("limit=-1", lambda c: c.orders.scan_page(limit=-1), ConfigurationError, "-1"),
    Case("limit=True", lambda c: c.orders.scan(limit=True), ConfigurationError, "True"),
    Case("limit=1.5", lambda c: c.orders.scan(limit=1.5), ConfigurationError, "1.5"),  # type: ignore[arg-type]
    Case("segments=0", lambda c: c.orders.scan(segments=0), ConfigurationError, "segments"),
    Case(
        "segments=-3",
        lambda c: c.orders.scan_page(segments=-3, limit=5),
        ConfigurationError,
        "segments",
    ),
    Case(
        "segments='2'",
        lambda c: c.orders.scan(segments="2"),  # type: ignore[call-overload]
        ConfigurationError,
        "segments",
    ),
    Case(
        "parallel scan_page without limit",
        lambda c: c.orders.scan_page(segments=2),
        ConfigurationError,
        "limit",
    ),
    Case(
        "query_partitions of nothing",
        lambda c: c.orders.query_partitions([]),
        ConfigurationError,
        "at least one",
    ),
    Case(
        "query_partitions twice the same",
        lambda c: c.orders.query_partitions(["a", "a"]),
        ConfigurationError,
        "twice",
    ),
    # ---- cursors
    Case(
        "tampered cursor",
        lambda c: c.orders.query_page(
            Key("PK").eq("a"),
            cursor=c.cursor[:20] + ("A" if c.cursor[20] != "A" else "B") + c.cursor[21:],
        ),
        InvalidCursor,
        "altered",
    ),
    Case(
        "truncated cursor",
        lambda c: c.orders.query_page(Key("PK").eq("a"), cursor=c.cursor[:-4]),
        InvalidCursor,
        "altered",
    ),
    Case(
        "cursor of another table",
        lambda c: c.loose.query_page(Key("PK").eq("a"), cursor=c.cursor),
        InvalidCursor,
        "another query, index or table",
    ),
    Case(
        "cursor of another index",
        lambda c: c.orders.query_page(Key("PK").eq("a"), index="GSI1", cursor=c.cursor),
        InvalidCursor,
        "another",
    ),
    Case(
        "cursor of another key condition",
        lambda c: c.orders.query_page(Key("PK").eq("b"), cursor=c.cursor),
        InvalidCursor,
        "another",
    ),
    Case(
        "query cursor given to a scan",
        lambda c: c.orders.scan_page(cursor=c.cursor),
        InvalidCursor,
        "another",
    ),
    Case(
        "query cursor given to a fan-out",
        lambda c: c.orders.query_partitions_page(["a", "b"], limit=5, cursor=c.cursor),
        InvalidCursor,
        "another",
    ),
    Case(
        "cursor as bytes",
        lambda c: c.orders.query_page(Key("PK").eq("a"), cursor=c.cursor.encode()),  # type: ignore[arg-type]
        InvalidCursor,
        "string",
    ),
    Case(
        "empty cursor",
        lambda c: c.orders.query_page(Key("PK").eq("a"), cursor=""),
        InvalidCursor,
        "non-empty",
    ),
    Case(
        "1 MB cursor",
        lambda c: c.orders.query_page(Key("PK").eq("a"), cursor="A" * 1_000_000),
        InvalidCursor,
        "cursor",
    ),
    # ---- transactions
    Case(
        "101-action transaction",
        lambda c: c.db.transact_write(
            [c.orders.tx_update({"PK": str(i), "SK": "s"}, Attr("n").add(1)) for i in range(101)]
        ),
        InvalidTransaction,
        "got 101",
    ),
    Case("empty transaction", lambda c: c.db.transact_write([]), InvalidTransaction, "got 0"),
    Case(
        "two actions on one item",
        lambda c: c.db.transact_write(
            [c.orders.tx_update(KEY, Attr("n").add(1)), c.orders.tx_check(KEY, Attr("n").exists())]
        ),
        InvalidTransaction,
        r"actions\[0\] and actions\[1\]",
    ),
    Case(
        "two actions on one item, numbers spelled differently",
        lambda c: c.db.transact_write(
            [
                c.loose.tx_delete({"PK": 1}),
                c.loose.tx_update({"PK": Decimal("1.0")}, Attr("n").add(1)),
            ]
        ),
        InvalidTransaction,
        "one action per item",
    ),
    Case(
        "101 transactional reads",
        lambda c: c.db.transact_get(
            [c.orders.tx_get({"PK": str(i), "SK": "s"}) for i in range(101)]
        ),
        InvalidTransaction,
        "got 101",
    ),
    Case(
        "a str among the actions",
        lambda c: c.db.transact_write([c.orders.tx_put(KEY), "Put"]),  # type: ignore[list-item]
        InvalidTransaction,
        r"actions\[1\] is a str",
    ),
    Case(
        "37-character token",
        lambda c: c.db.transact_write([c.orders.tx_put(KEY)], token="x" * 37),
        InvalidTransaction,
        "36",
    ),
    Case(
        "transaction over 4 MB",
        lambda c: c.db.transact_write(
            [c.orders.tx_put({"PK": str(i), "SK": "s", "x": "a" * 400_000}) for i in range(11)]
        ),
        InvalidTransaction,
        "4 MB",
    ),
    # ---- expressions
    Case("Attr()", lambda c: Attr(), InvalidExpression, "at least one"),
    Case("Attr('')", lambda c: Attr(""), InvalidExpression, "empty"),
    Case("Attr(b'x')", lambda c: Attr(b"x"), InvalidExpression, "b'x'"),  # type: ignore[arg-type]
    Case("negative list index", lambda c: Attr("a", -1), InvalidExpression, "-1"),
    Case("path of 33 levels", lambda c: Attr(*["a"] * 33), InvalidExpression, "33"),
    Case("Key('')", lambda c: Key(""), InvalidExpression, "non-empty"),
    Case(
        "is_in with 101 values",
        lambda c: c.orders.put(KEY, condition=Attr("x").is_in(range(101))),
        InvalidExpression,
        "101",
    ),
    Case(
        "is_in with no value",
        lambda c: c.orders.put(KEY, condition=Attr("x").is_in([])),
        InvalidExpression,
        "at least one",
    ),
    Case(
        "condition nested 3,000 levels",
        lambda c: c.orders.put(KEY, condition=_deep_condition(3000)),
        InvalidExpression,
        "nested too deeply",
    ),
    Case(
        "comparison of an attribute with itself",
        lambda c: c.orders.put(KEY, condition=Attr("x").eq(Attr("x"))),
        InvalidExpression,
        "itself",
    ),
    Case(
        "NaN in a condition",
        lambda c: c.orders.delete(KEY, condition=Attr("x").eq(float("nan"))),
        InvalidItem,
        "NaN",
    ),
    Case(
        "object() in an update",
        lambda c: c.orders.update(KEY, Attr("x").set(object())),
        InvalidItem,
        "object",
    ),
    Case(
        "two updates of one attribute",
        lambda c: c.orders.update(KEY, Attr("x").set(1) & Attr("x").add(2)),
        InvalidExpression,
        "same path",
    ),
    Case(
        "overlapping update paths",
        lambda c: c.orders.update(KEY, Attr("x").set(1) & Attr("x", "y").set(2)),
        InvalidExpression,
        "overlap",
    ),
    Case(
        "301 update operators",
        lambda c: c.orders.update(KEY, _many_updates(301)),
        InvalidExpression,
        "301",
    ),
    Case(
        "add of a string",
        lambda c: c.orders.update(KEY, Attr("x").add("s")),
        InvalidExpression,
        r"Attr\('x'\)\.add",
    ),
    Case(
        "update that sets the key",
        lambda c: c.orders.update(KEY, Attr("PK").set("other")),
        InvalidExpression,
        "'PK': it is part of the key",
    ),
    Case(
        "condition on the key, update of the same key",
        lambda c: c.orders.update(
            KEY, Attr("SK").set("c") & Attr("n").add(1), condition=Attr("SK").eq("b")
        ),
        InvalidExpression,
        "'SK': it is part of the key",
    ),
    Case(
        "update that removes the sort key (transaction)",
        lambda c: c.orders.tx_update(KEY, Attr("SK").remove()),
        InvalidExpression,
        "part of the key",
    ),
    Case(
        "empty raw condition",
        lambda c: c.orders.put(KEY, condition="  "),
        InvalidExpression,
        "empty",
    ),
    Case("empty raw update", lambda c: c.orders.update(KEY, ""), InvalidExpression, "empty"),
    Case(
        "raw expression over 4 KB",
        lambda c: c.orders.put(KEY, condition="attribute_exists(#a) AND " * 200 + "1"),
        InvalidExpression,
        "4096",
    ),
    Case(
        "placeholder name without #",
        lambda c: c.orders.put(KEY, condition="attribute_exists(#a)", names={"a": "x"}),
        InvalidExpression,
        "'a'",
    ),
    Case(
        "placeholder mapped to an empty name",
        lambda c: c.orders.put(KEY, condition="attribute_exists(#a)", names={"#a": ""}),
        InvalidExpression,
        "#a",
    ),
    Case(
        "placeholder value NaN",
        lambda c: c.orders.put(KEY, condition="#a = :v", names={"#a": "x"}, values={":v": 1e999}),
        InvalidItem,
        "^:v: ",
    ),
    Case(
        "Key condition used as a filter",
        lambda c: c.orders.query_page(Key("PK").eq("a"), filter=Key("SK").eq("b")),
        InvalidExpression,
        r"Key\(\.\.\.\) is for key conditions",
    ),
    Case(
        "Attr condition used as a key condition",
        lambda c: c.orders.query_page(Attr("PK").eq("a")),  # type: ignore[arg-type]
        InvalidExpression,
        "built with Key",
    ),
    Case(
        "key condition without the partition key",
        lambda c: c.orders.query_page(Key("SK").begins_with("a")),
        InvalidExpression,
        "no partition key",
    ),
    Case(
        "key condition on None",
        lambda c: c.orders.query_page(Key("PK").eq(None)),
        InvalidExpression,
        "NULL",
    ),
    Case(
        "between bounds inverted",
        lambda c: c.orders.query_page(Key("PK").eq("a") & Key("SK").between("z", "a")),
        InvalidExpression,
        "lower bound",
    ),
    Case(
        "projection of one empty name",
        lambda c: c.orders.get(KEY, attributes=[""]),
        InvalidExpression,
        "empty",
    ),
    Case(
        "projection of a number",
        lambda c: c.orders.get(KEY, attributes=[1]),  # type: ignore[list-item]
        InvalidExpression,
        "not 1",
    ),
    Case(
        "projection of nothing",
        lambda c: c.orders.get(KEY, attributes=[]),
        InvalidExpression,
        "at least one",
    ),
    Case(
        "malformed raw batch projection",
        lambda c: c.orders.batch_get([KEY], attributes="a,, b"),
        InvalidExpression,
        "expected an attribute name",
    ),
    Case(
        "returns=ALL_NEW on a put",
        lambda c: c.orders.put(KEY, returns="ALL_NEW"),  # type: ignore[arg-type]
        ConfigurationError,
        "ALL_NEW",
    ),
]


def _many_updates(n: int) -> Any:
    update = Attr("a0").set(0)
    for i in range(1, n):
        update = update & Attr(f"a{i}").set(i)
    return update


@pytest.fixture
async def ctx(client: Client, transport: ScriptedTransport) -> Ctx:
    orders = client.table("Orders", key=("PK", "SK"))
    transport.steps.append(answer({"Items": [WIRE_KEY], "LastEvaluatedKey": WIRE_KEY}))
    page = await orders.query_page(Key("PK").eq("a"), limit=1)
    assert page.cursor is not None
    transport.requests.clear()
    return Ctx(client, orders, client.table("Loose"), page.cursor)


async def _run(call: Call, ctx: Ctx) -> None:
    result = call(ctx)
    if isinstance(result, Awaitable):
        await result
    elif hasattr(result, "__anext__"):
        # A listing validates its arguments on the call; one that did not must not get this far.
        await result.__anext__()


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_refused_before_sending(case: Case, ctx: Ctx, transport: ScriptedTransport) -> None:
    async with asyncio.timeout(10):  # never a hang
        with pytest.raises(AsyncDynError) as caught:
            await _run(case.call, ctx)
    error = caught.value
    assert type(error) is case.error, f"{type(error).__name__}: {error}"
    assert re.search(case.message, str(error)), str(error)
    assert transport.requests == []


def test_invalid_item_errors_are_value_errors_with_a_path() -> None:
    # Callers catching ValueError keep working, and .path locates the value.
    for cls in (InvalidItem, InvalidExpression, InvalidCursor, InvalidTransaction):
        assert issubclass(cls, ValueError) and issubclass(cls, AsyncDynError)
    error = InvalidItem("empty set", "order.lines[3].tags")
    assert (error.path, error.reason) == ("order.lines[3].tags", "empty set")


# ---- names that look bad but are accepted, always through placeholders

_ODD_NAMES = [
    "status",  # reserved words
    "SIZE",
    "name",
    "data",
    "ünïcödé",
    "名前",
    "emoji 🎉",
    "a.b",  # ONE name with a dot, not a path
    "a.b.c",
    "0starts-with-digit",
    "has space",
    "#hash",
    ":colon",
    "a[0]",
    "x" * 300,
]


@pytest.mark.parametrize("name", _ODD_NAMES)
async def test_odd_attribute_names_go_out_as_placeholders(
    name: str, client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({})
    orders = client.table("Orders", key=("PK", "SK"))
    await orders.update(
        KEY,
        Attr(name).set(1) & Attr("m", name, 0).set(2),
        condition=Attr(name).exists() | Attr(name).not_exists(),
    )
    await orders.query_page(Key("PK").eq("a"), filter=Attr(name).eq("v"), attributes=[name])
    await orders.get(KEY, attributes=[Attr(name, 1)])
    assert len(transport.requests) == 3
    for payload in transport.payloads:
        names = payload["ExpressionAttributeNames"]
        assert name in names.values()
        for field in (
            "UpdateExpression",
            "ConditionExpression",
            "FilterExpression",
            "ProjectionExpression",
            "KeyConditionExpression",
        ):
            expression = payload.get(field)
            if expression is None:
                continue
            # Every name in the text is a generated placeholder; the name itself never is.
            tokens = re.findall(r"#\w+", expression)
            assert tokens and all(token in names for token in tokens), expression
            bare = re.sub(r"#\w+|:\w+", "", expression)
            assert name not in bare, expression


async def test_dotted_name_is_one_attribute_not_a_path(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({})
    await client.table("Orders").update(KEY, Attr("a.b").set(1) & Attr("a", "b").set(2))
    payload = transport.payloads[0]
    names = payload["ExpressionAttributeNames"]
    # "a.b" is one placeholder; ("a", "b") is two joined by a dot.
    assert sorted(names.values()) == ["a", "a.b", "b"]
    dotted = next(token for token, name in names.items() if name == "a.b")
    assert re.search(rf"{dotted} = :v\d", payload["UpdateExpression"])


# ---- bulk writes: the good items are written, the bad ones reported


async def test_writer_skip_invalid_writes_the_rest_and_reports_the_rejected(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({})
    orders = client.table("Orders", key=("PK", "SK"))
    bad = {
        1: {"PK": "p1", "SK": "s", "x": float("nan")},
        3: {"PK": "p3"},
        4: {"PK": "p4", "SK": "s", "tags": set()},
        6: {"PK": "", "SK": "s"},
    }
    inputs = [bad.get(i, {"PK": f"p{i}", "SK": "s", "i": i}) for i in range(8)]
    async with orders.writer(skip_invalid=True) as writer:
        for item in inputs:
            await writer.put(item)
    sent = [
        request["PutRequest"]["Item"]["PK"]["S"]
        for payload in transport.payloads
        for request in payload["RequestItems"]["Orders"]
    ]
    assert sorted(sent) == ["p0", "p2", "p5", "p7"]
    assert [r.position for r in writer.rejected] == [1, 3, 4, 6]
    assert [r.value for r in writer.rejected] == [bad[1], bad[3], bad[4], bad[6]]
    paths = [r.error.path for r in writer.rejected]
    assert paths == ["[1].x", "[3]", "[4].tags", "[6]"]
    assert (writer.stats.written, writer.stats.rejected) == (4, 4)


async def test_writer_without_skip_invalid_raises_per_item_and_carries_on(
    client: Client, transport: ScriptedTransport
) -> None:
    transport.default = answer({})
    orders = client.table("Orders", key=("PK", "SK"))
    async with orders.writer() as writer:
        await writer.put({"PK": "a", "SK": "1"})
        with pytest.raises(InvalidItem, match=r"^\[1\]\.n: .*39"):
            await writer.put({"PK": "a", "SK": "2", "n": 10**38 + 1})
        await writer.put({"PK": "a", "SK": "3"})
    assert writer.stats.written == 2
    assert [r.position for r in writer.rejected] == [1]


async def test_batch_write_with_a_bad_item_sends_nothing(
    client: Client, transport: ScriptedTransport
) -> None:
    orders = client.table("Orders", key=("PK", "SK"))
    items = [{"PK": "a", "SK": str(i)} for i in range(60)]
    items[57]["price"] = Decimal("NaN")
    with pytest.raises(InvalidItem, match=r"^puts\[57\]\.price: "):
        await orders.batch_write(puts=items)
    assert transport.requests == []


async def test_batch_get_of_no_keys_and_of_duplicates(
    client: Client, transport: ScriptedTransport
) -> None:
    orders = client.table("Orders")
    assert await orders.batch_get([]) == []
    assert transport.requests == []
    transport.steps.append(answer({"Responses": {"Orders": [{"PK": {"S": "a"}, "n": {"N": "1"}}]}}))
    got = await orders.batch_get([{"PK": "a"}, {"PK": "a"}, {"PK": Decimal("1")}, {"PK": 1}])
    # DynamoDB refuses a duplicate key in one request: each goes out once.
    (payload,) = transport.payloads
    assert payload["RequestItems"]["Orders"]["Keys"] == [{"PK": {"S": "a"}}, {"PK": {"N": "1"}}]
    assert got[0] == got[1] == {"PK": "a", "n": 1} and got[0] is not got[1]
    assert got[2] is None and got[3] is None
