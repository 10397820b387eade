"""mypy --strict reads entity classes as a type checker user would: the typed example
passes, and a wrong constructor call or result use in user code is reported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "tests" / "typecheck" / "example_shop.py"


def mypy(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_typed_example_passes_mypy_strict() -> None:
    result = mypy(EXAMPLE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_reports_misuse(tmp_path: Path) -> None:
    bad = tmp_path / "bad_shop.py"
    bad.write_text(
        "from tests.typecheck.example_shop import Customer, Order, shop\n"
        "from asyncdyn import Client\n"
        "Customer(customer_id=1, email='e')\n"
        "Order(customer_id='1')\n"
        "async def f(db: Client) -> None:\n"
        "    got = await shop.bind(db).get(Customer, customer_id='1')\n"
        "    got.email\n"
    )
    result = mypy(bad)
    out = result.stdout
    assert result.returncode == 1, out
    assert 'Argument "customer_id" to "Customer" has incompatible type "int"' in out
    assert 'Missing named argument "order_id" for "Order"' in out
    assert 'Item "None" of "Customer | None" has no attribute "email"' in out


def test_a_transaction_action_is_typed_with_its_entity(tmp_path: Path) -> None:
    typed = tmp_path / "typed_action.py"
    typed.write_text(
        "from tests.typecheck.example_shop import Customer, shop\n"
        "from asyncdyn import Client\n"
        "async def f(db: Client) -> None:\n"
        "    action = shop.bind(db).tx_put(Customer(customer_id='1', email='e'))\n"
        "    await db.transact_write([action])\n"
        "    reveal_type(action.entity)\n"
        "    action.entity.nickname\n"
    )
    out = mypy(typed).stdout
    assert 'Revealed type is "tests.typecheck.example_shop.Customer"' in out, out
    assert '"Customer" has no attribute "nickname"' in out, out
    assert "Found 1 error" in out, out  # the misuse only: the transaction takes the action
