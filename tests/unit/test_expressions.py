"""Builders -> (expression text, ExpressionAttributeNames, ExpressionAttributeValues)."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncdyn.errors import InvalidExpression, InvalidItem
from asyncdyn.expressions import (
    Attr,
    Condition,
    Key,
    KeyCondition,
    Placeholders,
    Size,
    Update,
    projection_paths,
)

Names = dict[str, str] | None
Values = dict[str, Any] | None


def compiled(
    kind: str, expr: Any, names: Names = None, values: Any = None
) -> tuple[str, Names, Values]:
    """Compile one expression in a fresh request; return text and the maps apply() emits."""
    ph = Placeholders(names, values)
    text = getattr(ph, kind)(expr)
    request = ph.apply({})
    return text, request.get("ExpressionAttributeNames"), request.get("ExpressionAttributeValues")


def S(x: str) -> dict[str, Any]:
    return {"S": x}


def N(x: str) -> dict[str, Any]:
    return {"N": x}


# --------------------------------------------------------------------------- conditions

CONDITIONS: list[tuple[str, Condition, str, Names, Values]] = [
    ("eq", Attr("a").eq("x"), "#n0 = :v0", {"#n0": "a"}, {":v0": S("x")}),
    ("ne", Attr("a").ne("x"), "#n0 <> :v0", {"#n0": "a"}, {":v0": S("x")}),
    ("lt", Attr("a").lt(1), "#n0 < :v0", {"#n0": "a"}, {":v0": N("1")}),
    ("lte", Attr("a").lte(1), "#n0 <= :v0", {"#n0": "a"}, {":v0": N("1")}),
    ("gt", Attr("a").gt(1), "#n0 > :v0", {"#n0": "a"}, {":v0": N("1")}),
    ("gte", Attr("a").gte(1), "#n0 >= :v0", {"#n0": "a"}, {":v0": N("1")}),
    (
        "between",
        Attr("a").between(1, 5),
        "#n0 BETWEEN :v0 AND :v1",
        {"#n0": "a"},
        {":v0": N("1"), ":v1": N("5")},
    ),
    (
        "between equal bounds share a value",
        Attr("a").between("k", "k"),
        "#n0 BETWEEN :v0 AND :v0",
        {"#n0": "a"},
        {":v0": S("k")},
    ),
    (
        "begins_with",
        Attr("a").begins_with("ORD#"),
        "begins_with(#n0, :v0)",
        {"#n0": "a"},
        {":v0": S("ORD#")},
    ),
    (
        "is_in",
        Attr("a").is_in(["x", "y", "z"]),
        "#n0 IN (:v0, :v1, :v2)",
        {"#n0": "a"},
        {":v0": S("x"), ":v1": S("y"), ":v2": S("z")},
    ),
    (
        "is_in dedupes values",
        Attr("a").is_in([1, Decimal("1"), 2]),
        "#n0 IN (:v0, :v0, :v1)",
        {"#n0": "a"},
        {":v0": N("1"), ":v1": N("2")},
    ),
    ("exists", Attr("a").exists(), "attribute_exists(#n0)", {"#n0": "a"}, None),
    ("not_exists", Attr("a").not_exists(), "attribute_not_exists(#n0)", {"#n0": "a"}, None),
    (
        "attribute_type",
        Attr("a").attribute_type("NS"),
        "attribute_type(#n0, :v0)",
        {"#n0": "a"},
        {":v0": S("NS")},
    ),
    ("contains", Attr("a").contains("x"), "contains(#n0, :v0)", {"#n0": "a"}, {":v0": S("x")}),
    (
        "contains attr",
        Attr("a").contains(Attr("b")),
        "contains(#n0, #n1)",
        {"#n0": "a", "#n1": "b"},
        None,
    ),
    ("size gt", Attr("a").size().gt(3), "size(#n0) > :v0", {"#n0": "a"}, {":v0": N("3")}),
    ("size eq", Attr("a").size().eq(3), "size(#n0) = :v0", {"#n0": "a"}, {":v0": N("3")}),
    ("size ne", Attr("a").size().ne(3), "size(#n0) <> :v0", {"#n0": "a"}, {":v0": N("3")}),
    ("size lt", Attr("a").size().lt(3), "size(#n0) < :v0", {"#n0": "a"}, {":v0": N("3")}),
    ("size lte", Attr("a").size().lte(3), "size(#n0) <= :v0", {"#n0": "a"}, {":v0": N("3")}),
    ("size gte", Attr("a").size().gte(3), "size(#n0) >= :v0", {"#n0": "a"}, {":v0": N("3")}),
    (
        "size between",
        Attr("a").size().between(1, 3),
        "size(#n0) BETWEEN :v0 AND :v1",
        {"#n0": "a"},
        {":v0": N("1"), ":v1": N("3")},
    ),
    ("attr vs attr", Attr("a").eq(Attr("b")), "#n0 = #n1", {"#n0": "a", "#n1": "b"}, None),
    ("attr lt attr", Attr("a").lt(Attr("b")), "#n0 < #n1", {"#n0": "a", "#n1": "b"}, None),
    (
        "attr vs size",
        Attr("a").gte(Attr("b").size()),
        "#n0 >= size(#n1)",
        {"#n0": "a", "#n1": "b"},
        None,
    ),
    (
        "size vs size of same attr name elsewhere",
        Attr("a").size().eq(Attr("b").size()),
        "size(#n0) = size(#n1)",
        {"#n0": "a", "#n1": "b"},
        None,
    ),
    (
        "between attrs",
        Attr("a").between(Attr("lo"), Attr("hi")),
        "#n0 BETWEEN #n1 AND #n2",
        {"#n0": "a", "#n1": "lo", "#n2": "hi"},
        None,
    ),
    ("dotted literal name", Attr("a.b").eq(1), "#n0 = :v0", {"#n0": "a.b"}, {":v0": N("1")}),
    (
        "nested map path",
        Attr("a", "b").eq(1),
        "#n0.#n1 = :v0",
        {"#n0": "a", "#n1": "b"},
        {":v0": N("1")},
    ),
    (
        "list index path",
        Attr("orders", 0, "total").gt(100),
        "#n0[0].#n1 > :v0",
        {"#n0": "orders", "#n1": "total"},
        {":v0": N("100")},
    ),
    ("two indexes", Attr("m", 2, 10).exists(), "attribute_exists(#n0[2][10])", {"#n0": "m"}, None),
    (
        "repeated segment shares a name",
        Attr("a", "a").eq(1),
        "#n0.#n0 = :v0",
        {"#n0": "a"},
        {":v0": N("1")},
    ),
    (
        "odd characters in names",
        Attr("my attr-1", "ü:#").eq(True),
        "#n0.#n1 = :v0",
        {"#n0": "my attr-1", "#n1": "ü:#"},
        {":v0": {"BOOL": True}},
    ),
    ("null value", Attr("a").eq(None), "#n0 = :v0", {"#n0": "a"}, {":v0": {"NULL": True}}),
]


@pytest.mark.parametrize(
    ("cond", "text", "names", "values"),
    [c[1:] for c in CONDITIONS],
    ids=[c[0] for c in CONDITIONS],
)
def test_condition_verbs(cond: Condition, text: str, names: Names, values: Values) -> None:
    assert compiled("condition", cond) == (text, names, values)


a, b, c, d = (Attr(n).eq(i) for i, n in enumerate("abcd"))
A, B, C, D = "#n0 = :v0", "#n1 = :v1", "#n2 = :v2", "#n3 = :v3"

LOGIC: list[tuple[str, Condition, str]] = [
    ("and", a & b, f"{A} AND {B}"),
    ("and flattens", a & b & c, f"{A} AND {B} AND {C}"),
    ("and flattens right", a & (b & c), f"{A} AND {B} AND {C}"),
    ("or", a | b, f"{A} OR {B}"),
    ("or flattens", a | (b | c), f"{A} OR {B} OR {C}"),
    ("python & binds tighter than |", a | b & c, f"{A} OR ({B} AND {C})"),
    ("or inside and", (a | b) & c, f"({A} OR {B}) AND {C}"),
    ("and inside or", (a & b) | (c & d), f"({A} AND {B}) OR ({C} AND {D})"),
    ("three levels", ((a | b) & c) | d, f"(({A} OR {B}) AND {C}) OR {D}"),
    ("and inside or inside and", (a & (b | (c & d))), f"{A} AND ({B} OR ({C} AND {D}))"),
    ("not comparison", ~a, f"NOT ({A})"),
    ("not function is bare", ~Attr("a").exists(), "NOT attribute_exists(#n0)"),
    ("not and", ~(a & b), f"NOT ({A} AND {B})"),
    ("not or", ~(a | b), f"NOT ({A} OR {B})"),
    ("not binds tighter than and", ~a & b, f"NOT ({A}) AND {B}"),
    ("not inside or", a | ~b, f"{A} OR NOT ({B})"),
    ("double not cancels", ~~a, A),
    ("not not-and", ~(~(a & b)), f"{A} AND {B}"),
    (
        "between parenthesised in and",
        Attr("x").between(1, 2) & Attr("y").eq(3),
        "(#n0 BETWEEN :v0 AND :v1) AND #n1 = :v2",
    ),
    (
        "between parenthesised in or",
        Attr("x").eq(3) | Attr("y").between(1, 2),
        "#n0 = :v0 OR (#n1 BETWEEN :v1 AND :v2)",
    ),
    ("not between", ~Attr("x").between(1, 2), "NOT (#n0 BETWEEN :v0 AND :v1)"),
    ("not in", ~Attr("x").is_in([1]), "NOT (#n0 IN (:v0))"),
]


@pytest.mark.parametrize(("cond", "text"), [x[1:] for x in LOGIC], ids=[x[0] for x in LOGIC])
def test_logic_and_precedence(cond: Condition, text: str) -> None:
    assert compiled("condition", cond)[0] == text


def _redundant_parens(text: str) -> bool:
    """True when some "(( ... ))" wraps one expression twice, which DynamoDB refuses."""
    close_of: dict[int, int] = {}
    stack: list[int] = []
    for i, ch in enumerate(text):
        if ch == "(":
            stack.append(i)
        elif ch == ")":
            close_of[stack.pop()] = i
    assert not stack
    return any(text[i + 1] == "(" and close_of[i + 1] == j - 1 for i, j in close_of.items())


def test_redundant_parens_checker() -> None:
    assert _redundant_parens("((a))") and _redundant_parens("NOT ((a OR b))")
    assert not _redundant_parens("((a OR b) AND c) OR d")


@pytest.mark.parametrize(
    "cond",
    [
        ~(~a & b),
        ~((a | b) & c),
        (~(a | b)) & c,
        ~~~(a & b),
        ((a & b) | c) & d,
        ~(((a | b) & c) | d),
        ~Attr("x").between(1, 2) & (Attr("y").between(1, 2) | ~(a | b)),
    ],
)
def test_never_redundant_parentheses(cond: Condition) -> None:
    assert not _redundant_parens(compiled("condition", cond)[0])


# A tiny reader of the compiled text with DynamoDB's precedence (OR < AND < NOT < comparison),
# to check that the parentheses we print keep the meaning of the builder tree.


def _evaluate(
    text: str, names: dict[str, str], values: dict[str, Any], item: dict[str, int]
) -> bool:
    tokens = text.replace("(", " ( ").replace(")", " ) ").split()
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take(expected: str | None = None) -> str:
        nonlocal pos
        token = tokens[pos]
        assert expected is None or token == expected, (token, expected, text)
        pos += 1
        return token

    def disjunction() -> bool:
        result = conjunction()
        while peek() == "OR":
            take()
            result = conjunction() or result
        return result

    def conjunction() -> bool:
        result = negation()
        while peek() == "AND":
            take()
            result = negation() and result
        return result

    def negation() -> bool:
        if peek() == "NOT":
            take()
            return not negation()
        return primary()

    def primary() -> bool:
        if peek() == "(":
            take("(")
            result = disjunction()
            take(")")
            return result
        if peek() == "attribute_exists":
            take()
            take("(")
            name = names[take()]
            take(")")
            return name in item
        name = names[take()]
        take("=")
        value = int(values[take()]["N"])
        return item.get(name) == value

    result = disjunction()
    assert pos == len(tokens), text
    return result


Tree = tuple[Condition, Any]


def _leaf(draw_name: str, value: int | None) -> Tree:
    if value is None:
        return Attr(draw_name).exists(), lambda item: draw_name in item
    return Attr(draw_name).eq(value), lambda item: item.get(draw_name) == value


def _combine(children: st.SearchStrategy[Tree]) -> st.SearchStrategy[Tree]:
    def both(op: str, x: Tree, y: Tree) -> Tree:
        (cx, fx), (cy, fy) = x, y
        if op == "&":
            return cx & cy, lambda item: fx(item) and fy(item)
        return cx | cy, lambda item: fx(item) or fy(item)

    def negate(x: Tree) -> Tree:
        return ~x[0], lambda item: not x[1](item)

    return st.one_of(
        st.builds(both, st.sampled_from("&|"), children, children),
        st.builds(negate, children),
    )


_TREES = st.recursive(
    st.builds(_leaf, st.sampled_from("abc"), st.sampled_from([0, 1, None])),
    _combine,
    max_leaves=12,
)
_ITEMS = st.dictionaries(st.sampled_from("abc"), st.sampled_from([0, 1]))


@settings(max_examples=300, deadline=None)
@given(_TREES, st.lists(_ITEMS, min_size=1, max_size=8))
def test_precedence_matches_the_builder_tree(tree: Tree, items: list[dict[str, int]]) -> None:
    cond, truth = tree
    text, names, values = compiled("condition", cond)
    assert not _redundant_parens(text)
    for item in items:
        assert _evaluate(text, names or {}, values or {}, item) == truth(item), (text, item)


def test_names_and_values_shared_across_a_condition() -> None:
    cond = Attr("a").eq(1) | Attr("b").eq(Decimal("1")) | Attr("a").ne(True)
    assert compiled("condition", cond) == (
        "#n0 = :v0 OR #n1 = :v0 OR #n0 <> :v1",
        {"#n0": "a", "#n1": "b"},
        {":v0": N("1"), ":v1": {"BOOL": True}},
    )


@pytest.mark.parametrize("word", ["status", "name", "data", "size", "year", "timestamp"])
def test_reserved_words_always_placeholdered(word: str) -> None:
    text, names, _ = compiled("condition", Attr(word).eq("x") & Attr("m", word).size().gt(1))
    assert text == "#n0 = :v0 AND size(#n1.#n0) > :v1"
    assert names == {"#n0": word, "#n1": "m"}
    text, names, _ = compiled("update", Attr(word).set(1))
    assert (text, names) == ("SET #n0 = :v0", {"#n0": word})
    text, names, _ = compiled("key_condition", Key("PK").eq("p") & Key(word).gt(2000))
    assert (text, names) == ("#n0 = :v0 AND #n1 > :v1", {"#n0": "PK", "#n1": word})
    text, names, _ = compiled("projection", [word])
    assert (text, names) == ("#n0", {"#n0": word})


# --------------------------------------------------------------------------- updates

UPDATES: list[tuple[str, Update, str, Names, Values]] = [
    ("set", Attr("a").set("x"), "SET #n0 = :v0", {"#n0": "a"}, {":v0": S("x")}),
    ("set copy", Attr("a").set(Attr("b")), "SET #n0 = #n1", {"#n0": "a", "#n1": "b"}, None),
    (
        "set_if_not_exists",
        Attr("a").set_if_not_exists(0),
        "SET #n0 = if_not_exists(#n0, :v0)",
        {"#n0": "a"},
        {":v0": N("0")},
    ),
    ("add number", Attr("n").add(1), "ADD #n0 :v0", {"#n0": "n"}, {":v0": N("1")}),
    ("add set", Attr("t").add({"x"}), "ADD #n0 :v0", {"#n0": "t"}, {":v0": {"SS": ["x"]}}),
    ("remove", Attr("a").remove(), "REMOVE #n0", {"#n0": "a"}, None),
    ("remove list element", Attr("l", 3).remove(), "REMOVE #n0[3]", {"#n0": "l"}, None),
    ("delete", Attr("t").delete({"x"}), "DELETE #n0 :v0", {"#n0": "t"}, {":v0": {"SS": ["x"]}}),
    (
        "append",
        Attr("l").append([1]),
        "SET #n0 = list_append(#n0, :v0)",
        {"#n0": "l"},
        {":v0": {"L": [N("1")]}},
    ),
    (
        "prepend",
        Attr("l").prepend(["x"]),
        "SET #n0 = list_append(:v0, #n0)",
        {"#n0": "l"},
        {":v0": {"L": [S("x")]}},
    ),
    (
        "append attr",
        Attr("l").append(Attr("m")),
        "SET #n0 = list_append(#n0, #n1)",
        {"#n0": "l", "#n1": "m"},
        None,
    ),
    (
        "nested set",
        Attr("o", 0, "qty").set(2),
        "SET #n0[0].#n1 = :v0",
        {"#n0": "o", "#n1": "qty"},
        {":v0": N("2")},
    ),
    (
        "grouped clauses whatever the order",
        Attr("e").delete({"x"})
        & Attr("d").add(2)
        & Attr("c").remove()
        & Attr("a").set("1")
        & Attr("b").set("2"),
        "SET #n0 = :v0, #n1 = :v1 REMOVE #n2 ADD #n3 :v2 DELETE #n4 :v3",
        {"#n0": "a", "#n1": "b", "#n2": "c", "#n3": "d", "#n4": "e"},
        {":v0": S("1"), ":v1": S("2"), ":v2": N("2"), ":v3": {"SS": ["x"]}},
    ),
    (
        "same value shared",
        Attr("a").set(1) & Attr("b").add(1) & Attr("c").set_if_not_exists(Decimal(1)),
        "SET #n0 = :v0, #n1 = if_not_exists(#n1, :v0) ADD #n2 :v0",
        {"#n0": "a", "#n1": "c", "#n2": "b"},
        {":v0": N("1")},
    ),
    (
        "sibling nested paths are fine",
        Attr("m", "x").set(1) & Attr("m", "y").remove() & Attr("m.x").set(2),
        "SET #n0.#n1 = :v0, #n2 = :v1 REMOVE #n0.#n3",
        {"#n0": "m", "#n1": "x", "#n2": "m.x", "#n3": "y"},
        {":v0": N("1"), ":v1": N("2")},
    ),
    (
        "sibling list elements are fine",
        Attr("l", 0).set(1) & Attr("l", 1).remove(),
        "SET #n0[0] = :v0 REMOVE #n0[1]",
        {"#n0": "l"},
        {":v0": N("1")},
    ),
]


@pytest.mark.parametrize(
    ("update", "text", "names", "values"),
    [u[1:] for u in UPDATES],
    ids=[u[0] for u in UPDATES],
)
def test_update_verbs(update: Update, text: str, names: Names, values: Values) -> None:
    assert compiled("update", update) == (text, names, values)


@pytest.mark.parametrize(
    "update",
    [
        Attr("a").set(1) & Attr("a").remove(),
        Attr("a").add(1) & Attr("a").add(2),
        Attr("a").set(1) & Attr("a", "b").set(2),
        Attr("a", "b", 0).remove() & Attr("a").set(1),
        Attr("a", 0).set(1) & Attr("a", "b").set(2),  # list index vs map key: conflict
        Attr("x").set(1) & Attr("a", "b", "c").set(1) & Attr("a", "b").delete({1}),
    ],
    ids=["same", "same add", "prefix", "prefix reversed", "conflict", "deep prefix"],
)
def test_update_overlapping_paths_refused(update: Update) -> None:
    with pytest.raises(InvalidExpression):
        compiled("update", update)


def test_update_operator_limit() -> None:
    removes = Attr("r0").remove()
    for i in range(1, 300):
        removes = removes & Attr(f"r{i}").remove()
    assert len(removes) == 300
    text, names, values = compiled("update", removes)
    assert text.startswith("REMOVE #n0, #n1,") and text.endswith("#n299")
    assert names is not None and len(names) == 300 and values is None
    with pytest.raises(InvalidExpression, match="300"):
        compiled("update", removes & Attr("r300").remove())
    # if_not_exists is a function on top of the assignment.
    funcs = Attr("f0").set_if_not_exists(0)
    for i in range(1, 151):
        funcs = funcs & Attr(f"f{i}").set_if_not_exists(0)
    with pytest.raises(InvalidExpression, match="operators"):
        compiled("update", funcs)


# --------------------------------------------------------------------------- key conditions

KEYS: list[tuple[str, KeyCondition, str, Names, Values]] = [
    ("partition only", Key("PK").eq("p"), "#n0 = :v0", {"#n0": "PK"}, {":v0": S("p")}),
    (
        "begins_with",
        Key("PK").eq("p") & Key("SK").begins_with("A"),
        "#n0 = :v0 AND begins_with(#n1, :v1)",
        {"#n0": "PK", "#n1": "SK"},
        {":v0": S("p"), ":v1": S("A")},
    ),
    (
        "sort first still renders partition first",
        Key("SK").gt(5) & Key("PK").eq("p"),
        "#n0 = :v0 AND #n1 > :v1",
        {"#n0": "PK", "#n1": "SK"},
        {":v0": S("p"), ":v1": N("5")},
    ),
    (
        "between",
        Key("PK").eq("p") & Key("SK").between("a", "b"),
        "#n0 = :v0 AND #n1 BETWEEN :v1 AND :v2",
        {"#n0": "PK", "#n1": "SK"},
        {":v0": S("p"), ":v1": S("a"), ":v2": S("b")},
    ),
    (
        "lt",
        Key("PK").eq(1) & Key("SK").lt(2),
        "#n0 = :v0 AND #n1 < :v1",
        {"#n0": "PK", "#n1": "SK"},
        {":v0": N("1"), ":v1": N("2")},
    ),
    (
        "lte",
        Key("PK").eq(1) & Key("SK").lte(2),
        "#n0 = :v0 AND #n1 <= :v1",
        {"#n0": "PK", "#n1": "SK"},
        {":v0": N("1"), ":v1": N("2")},
    ),
    (
        "gte",
        Key("PK").eq(1) & Key("SK").gte(2),
        "#n0 = :v0 AND #n1 >= :v1",
        {"#n0": "PK", "#n1": "SK"},
        {":v0": N("1"), ":v1": N("2")},
    ),
    (
        "two eq: left is partition",
        Key("PK").eq("p") & Key("SK").eq("p"),
        "#n0 = :v0 AND #n1 = :v0",
        {"#n0": "PK", "#n1": "SK"},
        {":v0": S("p")},
    ),
    (
        "dotted key name is one name",
        Key("a.b").eq("p"),
        "#n0 = :v0",
        {"#n0": "a.b"},
        {":v0": S("p")},
    ),
]


@pytest.mark.parametrize(
    ("kc", "text", "names", "values"), [k[1:] for k in KEYS], ids=[k[0] for k in KEYS]
)
def test_key_conditions(kc: KeyCondition, text: str, names: Names, values: Values) -> None:
    assert compiled("key_condition", kc) == (text, names, values)


def test_key_condition_parts_exposed_for_fan_out() -> None:
    kc = Key("PK").eq("CUSTOMER#1") & Key("SK").begins_with("ORDER#")
    assert kc.partition_name == "PK"
    assert kc.partition_value == "CUSTOMER#1"
    assert kc.sort_name == "SK"
    assert kc.sort_operator == "begins_with"
    assert kc.sort_values == ("ORDER#",)
    sort = kc.sort
    assert sort is not None and sort.partition_name is None and sort.sort_name == "SK"

    only = Key("PK").eq("x")
    assert (only.partition_name, only.partition_value, only.sort) == ("PK", "x", None)
    assert (only.sort_name, only.sort_operator, only.sort_values) == (None, None, ())

    sort_only = Key("SK").between("a", "z")
    assert sort_only.partition_name is None and sort_only.partition_value is None
    assert sort_only.sort_values == ("a", "z")

    # Rebuild per partition, both ways.
    for shard in ("SHARD#0", "SHARD#1"):
        for rebuilt in (sort_only.with_partition("PK", shard), Key("PK").eq(shard) & sort_only):
            assert compiled("key_condition", rebuilt)[0] == "#n0 = :v0 AND #n1 BETWEEN :v1 AND :v2"
            assert rebuilt.partition_value == shard
    # A lone eq used as a sort condition joins a partition on the left.
    exact = Key("PK").eq("p") & Key("SK").eq("PROFILE")
    assert (exact.partition_name, exact.sort_name) == ("PK", "SK")
    assert kc.with_partition("PK", "other").partition_value == "other"
    assert kc.with_partition("PK", "other").sort_operator == "begins_with"


@pytest.mark.parametrize(
    "build",
    [
        lambda: Key("PK").eq(1) & Key("SK").eq(2) & Key("X").eq(3),
        lambda: Key("A").gt(1) & Key("B").lt(2),
        lambda: Key("PK").eq(1) & Key("PK").eq(2),
        lambda: Key(""),
        lambda: Key(3),  # type: ignore[arg-type]
        lambda: Key("SK").gt(1).with_partition("SK", 1),
        lambda: Key("SK").gt(1).with_partition("", 1),
    ],
    ids=["three parts", "no eq", "same key twice", "empty name", "not a str", "pk==sk", "empty pk"],
)
def test_key_condition_shape_errors(build: Any) -> None:
    with pytest.raises(InvalidExpression):
        build()


@pytest.mark.parametrize(
    "kc",
    [
        Key("SK").begins_with("A"),  # no partition part
        Key("PK").eq(None),
        Key("PK").eq([1]),
        Key("PK").eq(True),
        Key("PK").eq("p") & Key("SK").gt({"x"}),
        Key("PK").eq("p") & Key("SK").begins_with(5),
        Key("PK").eq("p") & Key("SK").between(5, 1),
        Key("PK").eq("p") & Key("SK").between("b", "a"),
        Key("PK").eq("p") & Key("SK").between("a", 5),
        Key("PK").eq("p") & Key("SK").between(True, True),
    ],
    ids=[
        "sort only",
        "null",
        "list",
        "bool",
        "set",
        "begins_with number",
        "inverted numbers",
        "inverted strings",
        "mixed types",
        "bool bounds",
    ],
)
def test_key_condition_value_errors(kc: KeyCondition) -> None:
    with pytest.raises(InvalidExpression):
        compiled("key_condition", kc)


def test_between_bounds_compare_numerically_and_binary() -> None:
    # "9" > "10" as strings, but 9 < 10 as numbers: no false alarm.
    assert compiled("condition", Attr("n").between(9, 10))[0] == "#n0 BETWEEN :v0 AND :v1"
    assert compiled("condition", Attr("b").between(b"\x00", b"\xff"))[0] == (
        "#n0 BETWEEN :v0 AND :v1"
    )
    with pytest.raises(InvalidExpression):
        compiled("condition", Attr("b").between(b"\xff", b"\x00"))
    with pytest.raises(InvalidExpression):
        compiled("condition", Attr("n").between(Decimal("10.5"), 10))


# --------------------------------------------------------------------------- projection


@pytest.mark.parametrize(
    ("attributes", "text", "names"),
    [
        (["a"], "#n0", {"#n0": "a"}),
        (["a", "b.c"], "#n0, #n1", {"#n0": "a", "#n1": "b.c"}),
        ([Attr("x", 0)], "#n0[0]", {"#n0": "x"}),
        ([("m", "k"), ("m", "j", 1)], "#n0.#n1, #n0.#n2[1]", {"#n0": "m", "#n1": "k", "#n2": "j"}),
        (("a", "a", Attr("a")), "#n0", {"#n0": "a"}),  # duplicates dropped
        (["m", ("m", "k"), Attr("m", "j")], "#n0", {"#n0": "m"}),  # covered by "m"
        ([("m", "k"), "m"], "#n0", {"#n0": "m"}),  # covered, whichever comes first
        ((n for n in ["p", "q"]), "#n0, #n1", {"#n0": "p", "#n1": "q"}),
    ],
    ids=["one", "dotted", "attr", "tuples", "dupes", "covered", "covered later", "generator"],
)
def test_projection(attributes: Any, text: str, names: Names) -> None:
    assert compiled("projection", attributes) == (text, names, None)


@pytest.mark.parametrize(
    "attributes",
    [[], [""], [5], [("a", 0), ("a", "b")], [(0,)], [()]],
    ids=["empty", "empty name", "not a name", "conflict", "starts with index", "empty path"],
)
def test_projection_errors(attributes: Any) -> None:
    with pytest.raises(InvalidExpression):
        compiled("projection", attributes)


def test_raw_projection_string_is_read_into_its_paths() -> None:
    # The caller's #token is kept; every other name goes out as a placeholder too.
    assert compiled("projection", "#s, b.c[2]", names={"#s": "status"}) == (
        "#s, #n0.#n1[2]",
        {"#s": "status", "#n0": "b", "#n1": "c"},
        None,
    )


@pytest.mark.parametrize(
    ("text", "paths"),
    [
        ("data", [("data",)]),
        ("a, c", [("a",), ("c",)]),
        (" a . b [ 0 ] ,c_2", [("a", "b", 0), ("c_2",)]),
        ("#s.x, #s", [("status", "x"), ("status",)]),
    ],
)
def test_projection_paths(text: str, paths: list[Any]) -> None:
    assert projection_paths(text, {"#s": "status"}) == paths


@pytest.mark.parametrize(
    "text", ["a,,b", "a b", "1a", "#undefined", "a[", "a[x]", "a.", "a-b", ",a", "a,", "a[-1]"]
)
def test_projection_paths_refuse_what_dynamodb_refuses(text: str) -> None:
    with pytest.raises(InvalidExpression):
        projection_paths(text)


# --------------------------------------------------------------------------- one request


def test_dedupe_across_condition_update_and_projection() -> None:
    ph = Placeholders()
    update = ph.update(Attr("status").set("SHIPPED") & Attr("views").add(1))
    condition = ph.condition(Attr("status").ne("SHIPPED") & Attr("views").lt(1))
    projection = ph.projection(["status", Attr("views"), "total"])
    assert update == "SET #n0 = :v0 ADD #n1 :v1"
    assert condition == "#n0 <> :v0 AND #n1 < :v1"
    assert projection == "#n0, #n1, #n2"
    request = ph.apply({"TableName": "T"})
    assert request == {
        "TableName": "T",
        "ExpressionAttributeNames": {"#n0": "status", "#n1": "views", "#n2": "total"},
        "ExpressionAttributeValues": {":v0": S("SHIPPED"), ":v1": N("1")},
    }


def test_key_condition_filter_and_projection_in_one_query() -> None:
    ph = Placeholders()
    key = ph.key_condition(Key("PK").eq("C#1") & Key("SK").begins_with("O#"))
    filt = ph.condition(Attr("status").eq("PENDING") & Attr("PK").exists())
    proj = ph.projection(["SK", "status"])
    assert key == "#n0 = :v0 AND begins_with(#n1, :v1)"
    assert filt == "#n2 = :v2 AND attribute_exists(#n0)"
    assert proj == "#n1, #n2"
    assert ph.names == {"#n0": "PK", "#n1": "SK", "#n2": "status"}


def test_raw_strings_with_caller_placeholders_do_not_collide() -> None:
    # The caller took #n0 and :v0 themselves; generated tokens step around them.
    ph = Placeholders(names={"#n0": "x", "#n2": "z"}, values={":v0": 5})
    raw = ph.condition("#n0 > :v0 AND #n2 = :v0")
    built = ph.condition(Attr("y").eq(6) & Attr("w").eq(7) & Attr("q").eq(8))
    assert raw == "#n0 > :v0 AND #n2 = :v0"
    assert built == "#n1 = :v1 AND #n3 = :v2 AND #n4 = :v3"
    assert ph.apply({}) == {
        "ExpressionAttributeNames": {"#n0": "x", "#n2": "z", "#n1": "y", "#n3": "w", "#n4": "q"},
        "ExpressionAttributeValues": {":v0": N("5"), ":v1": N("6"), ":v2": N("7"), ":v3": N("8")},
    }


def test_mixed_raw_filter_and_builder_key_condition() -> None:
    ph = Placeholders(names={"#s": "status"}, values={":s": "PENDING"})
    key = ph.key_condition(Key("PK").eq("C#1"))
    filt = ph.condition("#s = :s")
    assert (key, filt) == ("#n0 = :v0", "#s = :s")
    assert ph.apply({}) == {
        "ExpressionAttributeNames": {"#s": "status", "#n0": "PK"},
        "ExpressionAttributeValues": {":s": S("PENDING"), ":v0": S("C#1")},
    }


def test_builder_reuses_a_caller_placeholder_for_the_same_name_or_value() -> None:
    ph = Placeholders(names={"#s": "status"}, values={":p": "PENDING"})
    assert ph.condition(Attr("status").eq("PENDING")) == "#s = :p"
    assert ph.apply({}) == {
        "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":p": S("PENDING")},
    }


def test_only_used_placeholders_and_no_empty_maps() -> None:
    assert Placeholders().apply({}) == {}
    assert compiled("condition", "attribute_exists(PK)") == ("attribute_exists(PK)", None, None)
    assert compiled("condition", Attr("a").exists()) == (
        "attribute_exists(#n0)",
        {"#n0": "a"},
        None,
    )
    assert compiled("update", Attr("a").remove())[2] is None
    ph = Placeholders(names={}, values={})
    assert ph.apply({"TableName": "T"}) == {"TableName": "T"}
    # A value computed while building another request never leaks into this one.
    cond = Attr("a").eq(1)
    other = Placeholders()
    other.condition(cond)
    ph = Placeholders()
    ph.condition(Attr("b").exists())
    assert ph.apply({}) == {"ExpressionAttributeNames": {"#n0": "b"}}


def test_caller_values_are_encoded_and_emitted_as_given() -> None:
    text, names, values = compiled(
        "update", "SET #a = :v", names={"#a": "tags"}, values={":v": {"x"}, ":u": 1}
    )
    assert text == "SET #a = :v"
    assert names == {"#a": "tags"}
    assert values == {":v": {"SS": ["x"]}, ":u": N("1")}


def test_apply_merges_maps_already_in_the_request() -> None:
    ph = Placeholders()
    ph.condition(Attr("a").eq(1))
    request = ph.apply(
        {"ExpressionAttributeNames": {"#x": "x"}, "ExpressionAttributeValues": {":x": S("1")}}
    )
    assert request["ExpressionAttributeNames"] == {"#x": "x", "#n0": "a"}
    assert request["ExpressionAttributeValues"] == {":x": S("1"), ":v0": N("1")}


@pytest.mark.parametrize(
    ("names", "values"),
    [({"s": "status"}, None), ({"#": "status"}, None), ({"#s": ""}, None), (None, {"v": 1})],
    ids=["no hash", "bare hash", "empty name", "no colon"],
)
def test_bad_caller_placeholders(names: Any, values: Any) -> None:
    with pytest.raises(InvalidExpression):
        Placeholders(names, values)


def test_bad_caller_value_is_invalid_item() -> None:
    with pytest.raises(InvalidItem):
        Placeholders(values={":v": float("nan")})
    with pytest.raises(InvalidItem):
        compiled("condition", Attr("a").eq(float("nan")))


def test_many_placeholders() -> None:
    cond = Attr("a0").eq(0)
    for i in range(1, 80):
        cond = cond | Attr(f"a{i}").eq(i)
    text, names, values = compiled("condition", cond)
    assert text.endswith("#n78 = :v78 OR #n79 = :v79")
    assert names is not None and values is not None
    assert len(names) == len(values) == 80


def test_public_name_and_value_tokens() -> None:
    ph = Placeholders()
    assert ph.name("a") == ph.name("a") == "#n0"
    assert ph.name("b") == "#n1"
    assert ph.value(1) == ph.value(Decimal("1")) == ":v0"
    assert ph.value("1") == ":v1"  # a string is not the number
    assert ph.value({"k": [1, "x"]}) == ph.value({"k": [1, "x"]}) == ":v2"
    with pytest.raises(InvalidExpression):
        ph.name("")


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "path",
    [(), ("",), ("a", ""), (0,), ("a", -1), ("a", True), ("a", 1.5), (None,), ("a",) * 33],
    ids=[
        "empty",
        "empty name",
        "empty nested",
        "index first",
        "negative",
        "bool",
        "float",
        "none",
        "too deep",
    ],
)
def test_bad_paths(path: tuple[Any, ...]) -> None:
    with pytest.raises(InvalidExpression):
        Attr(*path)


def test_path_depth_limit_is_32() -> None:
    deep = Attr("a", *range(31))
    assert len(deep.path) == 32
    assert (
        compiled("condition", deep.exists())[0]
        == "attribute_exists(#n0" + "".join(f"[{i}]" for i in range(31)) + ")"
    )


def test_str_and_int_subclasses_are_normalised() -> None:
    import enum

    class F(enum.StrEnum):
        STATUS = "status"

    class Idx(enum.IntEnum):
        FIRST = 0

    attr = Attr(F.STATUS, Idx.FIRST)
    assert attr.path == ("status", 0)
    assert type(attr.path[0]) is str and type(attr.path[1]) is int
    assert compiled("condition", attr.exists())[1] == {"#n0": "status"}
    assert compiled("key_condition", Key(F.STATUS).eq("x"))[1] == {"#n0": "status"}


def test_is_in_limits() -> None:
    text, _, values = compiled("condition", Attr("a").is_in(range(100)))
    assert text.count(":v") == 100 and values is not None and len(values) == 100
    bads: tuple[Any, ...] = ([], range(101), "abc", b"abc", {"k": 1})
    for bad in bads:
        with pytest.raises(InvalidExpression):
            Attr("a").is_in(bad)


def test_attribute_type_names() -> None:
    for t in ("S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"):
        Attr("a").attribute_type(t)
    for bad in ("s", "STRING", "", "X"):
        with pytest.raises(InvalidExpression):
            Attr("a").attribute_type(bad)


def test_expression_size_limit() -> None:
    limit = 4096
    ok = "a" * limit
    assert compiled("condition", ok)[0] == ok
    for kind in ("condition", "key_condition", "update", "projection"):
        with pytest.raises(InvalidExpression, match="4096"):
            compiled(kind, ok + "a")
    # Counted in UTF-8 bytes, not characters.
    assert compiled("condition", "é" * 2048)[0] == "é" * 2048
    with pytest.raises(InvalidExpression):
        compiled("condition", "é" * 2049)
    with pytest.raises(InvalidExpression):
        compiled("condition", "€" * 1366)  # 3 bytes each: 4098
    # A built expression is measured with its placeholders: names cost nothing, the text does.
    long_name = Attr("x" * 10_000).eq(1)
    assert compiled("condition", long_name)[0] == "#n0 = :v0"
    big = Attr("a0").eq(0)
    for i in range(1, 400):
        big = big | Attr(f"a{i}").eq(i)
    with pytest.raises(InvalidExpression, match="bytes"):
        compiled("condition", big)
    many = [f"attr{i}" for i in range(800)]
    with pytest.raises(InvalidExpression):
        compiled("projection", many)


@pytest.mark.parametrize(
    ("kind", "expr"),
    [
        ("condition", Attr("a").lt([1])),
        ("condition", Attr("a").gte({"x"})),
        ("condition", Attr("a").between(None, None)),
        ("condition", Attr("a").between(1, "2")),
        ("condition", Attr("a").between(2, 1)),
        ("condition", Attr("a").begins_with(5)),
        ("update", Attr("a").add("x")),
        ("update", Attr("a").add(True)),
        ("update", Attr("a").delete(1)),
        ("update", Attr("a").delete("x")),
        ("update", Attr("a").append("x")),
        ("update", Attr("a").prepend({"x"})),
    ],
    ids=[
        "lt list",
        "gte set",
        "between null",
        "between mixed",
        "between inverted",
        "begins_with number",
        "add string",
        "add bool",
        "delete number",
        "delete string",
        "append string",
        "prepend set",
    ],
)
def test_operand_type_errors(kind: str, expr: Any) -> None:
    with pytest.raises(InvalidExpression):
        compiled(kind, expr)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Attr("a").eq(Attr("a")),
        lambda: Attr("a", 0).lt(Attr("a", 0)),
        lambda: Attr("a").contains(Attr("a")),
        lambda: Attr("a").between(Attr("a"), 1),
        lambda: Attr("a").is_in([1, Attr("a")]),
        lambda: Attr("a").set(Attr("b").size()),
        lambda: Attr("a").add(Attr("b")),
        lambda: Attr("a").delete(Attr("b")),
        lambda: Attr("a").append(Attr("b").size()),
    ],
    ids=[
        "eq self",
        "lt self",
        "contains self",
        "between self",
        "in self",
        "set size",
        "add attr",
        "delete attr",
        "append size",
    ],
)
def test_build_time_errors(build: Any) -> None:
    with pytest.raises(InvalidExpression):
        build()


@pytest.mark.parametrize(
    ("kind", "expr"),
    [
        ("condition", Key("PK").eq(1)),
        ("condition", Attr("a").set(1)),
        ("condition", 5),
        ("key_condition", Attr("a").eq(1)),
        ("update", Attr("a").eq(1)),
        ("update", None),
    ],
    ids=["key as filter", "update as condition", "int", "attr as key", "cond as update", "none"],
)
def test_wrong_builder_kind(kind: str, expr: Any) -> None:
    with pytest.raises(InvalidExpression):
        compiled(kind, expr)


# --------------------------------------------------------------------------- object behaviour


def test_builders_have_no_truth_value() -> None:
    cond = Attr("a").eq(1)
    with pytest.raises(TypeError, match="&"):
        bool(cond)
    with pytest.raises(TypeError):
        _ = cond and Attr("b").eq(2)
    with pytest.raises(TypeError):
        bool(Attr("a").set(1))
    with pytest.raises(TypeError):
        bool(Key("PK").eq(1))


def test_mixing_kinds_with_operators_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        _ = Attr("a").eq(1) & Attr("b").set(1)  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = Attr("b").set(1) & Attr("a").eq(1)  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = Key("PK").eq(1) & Attr("a").eq(1)  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = Attr("a").eq(1) | "raw"  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = ~Attr("a").set(1)  # type: ignore[operator]


def test_python_equality_is_not_hijacked() -> None:
    x, y = Attr("a"), Attr("a")
    assert (x == y) is False and (x == x) is True
    assert (x != y) is True
    assert len({x, y}) == 2
    assert (Key("PK") == Key("PK")) is False
    assert x in [x]


def test_builders_are_immutable_and_slotted() -> None:
    objects: list[Any] = [
        Attr("a"),
        Attr("a").size(),
        Attr("a").eq(1),
        Attr("a").eq(1) & Attr("b").eq(2),
        ~Attr("a").exists(),
        Attr("a").set(1),
        Key("PK"),
        Key("PK").eq(1),
    ]
    for obj in objects:
        assert not hasattr(obj, "__dict__")
        with pytest.raises(AttributeError):
            obj._path = ("b",)
        with pytest.raises(AttributeError):
            obj.anything = 1
        slot = type(obj).__slots__[0]
        with pytest.raises(AttributeError):
            delattr(obj, slot)
        assert copy.copy(obj) is obj and copy.deepcopy(obj) is obj
    assert not hasattr(Placeholders(), "__dict__")


def test_builders_are_reusable_across_requests() -> None:
    cond = Attr("status").eq("A") & Attr("n").gt(1)
    first = compiled("condition", cond)
    assert compiled("condition", cond) == first
    ph = Placeholders()
    ph.name("zzz")
    assert ph.condition(cond) == "#n1 = :v0 AND #n2 > :v1"


@pytest.mark.parametrize(
    ("obj", "text"),
    [
        (Attr("a", 0, "b.c"), "Attr('a', 0, 'b.c')"),
        (Attr("a").size(), "Attr('a').size()"),
        (Attr("a").eq(1), "Attr('a').eq(1)"),
        (Attr("a").ne(Attr("b")), "Attr('a').ne(Attr('b'))"),
        (Attr("a").size().gte(2), "Attr('a').size().gte(2)"),
        (Attr("a").between(1, 2), "Attr('a').between(1, 2)"),
        (Attr("a").is_in(["x"]), "Attr('a').is_in(['x'])"),
        (Attr("a").exists(), "Attr('a').exists()"),
        (Attr("a").not_exists(), "Attr('a').not_exists()"),
        (Attr("a").attribute_type("S"), "Attr('a').attribute_type('S')"),
        (Attr("a").begins_with("x"), "Attr('a').begins_with('x')"),
        (
            (Attr("a").eq(1) | Attr("b").eq(2)) & ~Attr("c").exists(),
            "(Attr('a').eq(1) | Attr('b').eq(2)) & ~Attr('c').exists()",
        ),
        (~(Attr("a").eq(1) & Attr("b").eq(2)), "~(Attr('a').eq(1) & Attr('b').eq(2))"),
        (
            Attr("a").set(1) & Attr("b").remove() & Attr("c").set_if_not_exists(0),
            "Attr('a').set(1) & Attr('b').remove() & Attr('c').set_if_not_exists(0)",
        ),
        (Key("PK"), "Key('PK')"),
        (
            Key("SK").between(1, 2) & Key("PK").eq("p"),
            "Key('PK').eq('p') & Key('SK').between(1, 2)",
        ),
    ],
)
def test_repr(obj: object, text: str) -> None:
    assert repr(obj) == text


def test_repr_is_evaluable() -> None:
    cond = (Attr("a").eq(1) | Attr("b", 0).lt(2)) & ~Attr("c").contains("x")
    rebuilt = eval(repr(cond), {"Attr": Attr, "Key": Key})
    assert compiled("condition", rebuilt) == compiled("condition", cond)


def test_size_is_an_operand_not_a_condition() -> None:
    size = Attr("a").size()
    assert isinstance(size, Size)
    assert not isinstance(size, Condition)
    with pytest.raises(InvalidExpression):
        compiled("condition", size)
