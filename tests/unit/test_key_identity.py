"""Key identity: exact for every number DynamoDB keeps, equal for equal numbers.

Issue 16, defect 1: identity used to round N values to 28 digits, so distinct keys such as
``10**28 + 1`` and ``10**28 + 2`` (DynamoDB keeps 38) were one key to batch_get,
batch_write, the writer, coalesced gets, transactions and the loader.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from asyncdyn.batch import key_identity
from asyncdyn.marshal import encode_key


def ident(value: Any) -> tuple[str, ...]:
    return key_identity(encode_key({"id": value}), ("id",))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (10**28 + 1, 10**28 + 2),
        (10**37 + 1, 10**37 + 2),
        (int("9" * 38), int("9" * 37 + "8")),
        (Decimal("1." + "0" * 36 + "1"), Decimal("1." + "0" * 36 + "2")),
        (Decimal("1" + "0" * 36 + "1E+88"), Decimal("1" + "0" * 36 + "2E+88")),
        (Decimal("1" + "0" * 36 + "1E-167"), Decimal("1" + "0" * 36 + "2E-167")),
        (Decimal("9." + "9" * 37 + "E+125"), Decimal("1E+125")),
        (Decimal("1E-130"), Decimal("2E-130")),
        (Decimal("-1E-130"), Decimal("1E-130")),
    ],
)
def test_distinct_numbers_have_distinct_identities(a: Any, b: Any) -> None:
    assert ident(a) != ident(b)


@pytest.mark.parametrize(
    "same",
    [
        [1, 1.0, Decimal("1.00"), Decimal("1E+0"), Decimal("0.1E+1"), Decimal("100E-2")],
        [0, Decimal("0.000"), Decimal("-0"), Decimal("0E+10"), 0.0],
        [10**28 + 1, Decimal(str(10**28 + 1) + ".000"), Decimal("1" + "0" * 27 + "1E+0")],
        [int("9" * 38), Decimal("9" * 38 + ".0")],
        [Decimal("1.5E+125"), Decimal("15E+124"), Decimal("150E+123")],
        [Decimal("1E-130"), Decimal("10E-131"), Decimal("0.1E-129")],
    ],
)
def test_equal_numbers_share_one_identity(same: list[Any]) -> None:
    assert len({ident(v) for v in same}) == 1


def test_a_string_never_passes_for_a_number() -> None:
    assert ident("1") != ident(1)
