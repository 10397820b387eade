"""Key templates: render and parse, refusal of forging values, sortable datetimes, proofs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from asyncdyn import ConfigurationError, InvalidItem
from asyncdyn.model.templates import Template, could_overlap, could_start_with


def compiled(text: str, **types: object) -> Template:
    template = Template(text, "#")
    template.compile("Thing", types)
    return template


def test_render_and_parse_round_trip_with_specs() -> None:
    t = compiled("ORDER#{order_id}#ITEM#{seq:05d}", order_id=str, seq=int)
    assert t.render({"order_id": "A-1", "seq": 42}) == "ORDER#A-1#ITEM#00042"
    assert t.parse("ORDER#A-1#ITEM#00042") == {"order_id": "A-1", "seq": 42}
    assert t.parse("ORDER#A-1") is None
    assert t.parse("ORDER#A-1#ITEM#x") is None  # not an int: not this template's key
    assert t.fields == ("order_id", "seq") and t.prefix == "ORDER#"


def test_case_is_never_changed() -> None:
    t = compiled("USER#{name}", name=str)
    assert t.render({"name": "Apple-and-Orange"}) == "USER#Apple-and-Orange"
    assert t.parse("USER#Apple-and-Orange") == {"name": "Apple-and-Orange"}


def test_a_value_with_the_separator_is_refused_so_no_key_is_forged() -> None:
    t = compiled("CUSTOMER#{customer_id}", customer_id=str)
    with pytest.raises(InvalidItem) as caught:
        t.render({"customer_id": "1#ORDER#9"})
    assert caught.value.path == "Thing.customer_id"
    assert "separator" in str(caught.value)
    with pytest.raises(InvalidItem, match="empty"):
        t.render({"customer_id": ""})
    with pytest.raises(InvalidItem, match="a str, not int"):
        t.render({"customer_id": 5})


def test_datetimes_render_fixed_width_utc_and_sort() -> None:
    t = compiled("{at}#E", at=datetime)
    paris = timezone(timedelta(hours=1))
    times = [
        datetime(999, 1, 1, tzinfo=UTC),
        datetime(2024, 1, 3, 9, 30, tzinfo=paris),  # 08:30 UTC
        datetime(2024, 1, 3, 8, 45, 0, 5, tzinfo=UTC),
        datetime(2024, 11, 3, tzinfo=UTC),
    ]
    rendered = [t.render({"at": v}) for v in times]
    assert rendered[1] == "2024-01-03T08:30:00.000000Z#E"
    assert rendered[0].startswith("0999-01-01T")
    assert len({len(r) for r in rendered}) == 1
    assert sorted(rendered) == rendered
    assert [t.parse(r) for r in rendered] == [{"at": v} for v in times]
    with pytest.raises(InvalidItem, match="naive"):
        t.render({"at": datetime(2024, 1, 1)})


def test_datetime_and_date_specs() -> None:
    t = compiled("DAY#{day}#{at:%Y-%m}", day=date, at=datetime)
    key = t.render({"day": date(2024, 2, 1), "at": datetime(2024, 2, 1, tzinfo=UTC)})
    assert key == "DAY#2024-02-01#2024-02"
    assert t.parse(key) == {"day": date(2024, 2, 1), "at": datetime(2024, 2, 1, tzinfo=UTC)}
    with pytest.raises(ConfigurationError, match="separator"):
        compiled("{at:%Y#%m}", at=datetime)


def test_numbers() -> None:
    t = compiled("N#{n}#D#{d}", n=int, d=Decimal)
    assert t.render({"n": 7, "d": Decimal("1.50")}) == "N#7#D#1.50"
    assert t.parse("N#7#D#1.50") == {"n": 7, "d": Decimal("1.50")}
    with pytest.raises(InvalidItem):
        t.render({"n": True, "d": 1})


def test_bad_templates_are_refused_at_declaration() -> None:
    with pytest.raises(ConfigurationError, match="touch"):
        Template("{a}{b}", "#")
    with pytest.raises(ConfigurationError, match="entity field"):
        Template("{a.b}", "#")
    with pytest.raises(ConfigurationError, match="no field"):
        compiled("X#{nope}", a=str)


def test_missing_fields_are_named() -> None:
    t = compiled("A#{a}#B#{b}", a=str, b=str)
    with pytest.raises(InvalidItem, match="needs b"):
        t.render({"a": "x"})


def test_overlap_proofs() -> None:
    order = compiled("ORDER#{order_id}", order_id=str)
    item = compiled("ORDER#{order_id}#ITEM#{item}", order_id=str, item=str)
    anything = compiled("{x}", x=str)
    meta = compiled("METADATA")
    assert not could_overlap(order, item)  # ids hold no separator: "ORDER#1#ITEM#2" is no order
    assert not could_overlap(order, anything)  # "{x}" never holds the separator
    assert could_overlap(order, compiled("{x}#{y}", x=str, y=str))
    assert could_overlap(order, compiled("ORDER#{other}", other=str))
    assert not could_overlap(meta, order)
    assert could_start_with(item, "ORDER#")
    assert could_start_with(item, "ORDER#5#")
    assert not could_start_with(order, "ORDER#5#")
    assert not could_start_with(meta, "ORDER#")
    assert could_start_with(anything, "ORDER")
    assert not could_start_with(anything, "A#")


def test_time_buckets_a_range_spans() -> None:
    t = compiled("S#{s}#{at:%Y-%m}", s=str, at=datetime)
    low, high = datetime(2024, 11, 30, 23, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
    assert t.buckets({"s": "a"}, "at", low, high) == ["S#a#2024-11", "S#a#2024-12", "S#a#2025-01"]
    # The template renders in UTC: 00:30 in Paris on 1 December is still November there.
    paris = timezone(timedelta(hours=1))
    late = datetime(2024, 12, 1, 0, 30, tzinfo=paris)
    assert t.buckets({"s": "a"}, "at", late, late) == ["S#a#2024-11"]
    days = compiled("D#{at:%Y-%m-%d}", at=datetime)
    every_day = days.buckets({}, "at", low, high)
    assert len(every_day) == 33  # 30 November to 1 January, both included
    assert every_day[0] == "D#2024-11-30" and every_day[-1] == "D#2025-01-01"
    with pytest.raises(ConfigurationError, match="finer"):
        compiled("X#{at:%H%M%S}", at=datetime).buckets({}, "at", low, high)
    with pytest.raises(ConfigurationError, match="more than"):
        compiled("X#{at:%Y%m%d%H%M}", at=datetime).buckets({}, "at", low, low + timedelta(days=1))
