"""``asyncdyn design check`` without a server: output formats and exit statuses."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from asyncdyn.cli import EXIT_DESIGN, EXIT_OK, EXIT_USAGE, main

BROKEN = """
from asyncdyn.model import Design, Entity

design = Design("Broken", indexes={"GSI1": ("GSI1PK", "GSI1SK")})


@design.entity("Order")
class Order(Entity):
    customer_id: str
    order_id: str
    key = design.key(pk="CUSTOMER#{customer_id}", sk="ORDER#{order_id}")


@design.entity("Item")
class Item(Entity):
    order_id: str
    item_id: str
    key = design.key(pk="ORDER#{order_id}", sk="ITEM#{item_id}")


design.pattern("order with its items", (Order, Item), by=("order_id",))
"""


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"broken_design_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(BROKEN))
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"{name}:design"


def test_a_clean_design_exits_0_in_every_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["design", "check", "tests.model_shop:shop", "--format", "json"]) == EXIT_OK
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["design"] == "Shop" and data["live"] is False
    assert [f["code"] for f in data["allowed"]] == ["hot-key-enum"]
    assert main(["design", "check", "tests.model_shop:shop", "--format", "md"]) == EXIT_OK
    md = capsys.readouterr().out
    assert md.startswith("# Design check: Shop") and "## GSI2" in md
    assert main(["design", "check", "tests.model_shop:shop"]) == EXIT_OK
    assert capsys.readouterr().out.startswith("design Shop: 0 errors, 0 warnings")


def test_errors_exit_6_and_name_the_pattern(
    broken: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["design", "check", broken, "--format", "markdown"]) == EXIT_DESIGN
    out = capsys.readouterr().out
    assert "| error | unservable | order with its items | Order, Item |" in out


def test_a_bad_design_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    for spec in ("tests.model_shop", "tests.model_shop:nope", "no_such_module_x:d"):
        assert main(["design", "check", spec]) == EXIT_USAGE
        assert "error:" in capsys.readouterr().err
    assert main(["design", "check", "tests.model_shop:Order"]) == EXIT_USAGE
    assert "not a Design" in capsys.readouterr().err
