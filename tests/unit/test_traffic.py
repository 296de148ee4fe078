"""Traffic arithmetic: tables always sum to 100, shares follow the old proportions, nothing is lost."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain import traffic

names = st.text(alphabet="abcdefgh", min_size=1, max_size=4).map(lambda s: f"app--{s}")
tables = st.dictionaries(names, st.integers(min_value=0, max_value=100), min_size=0, max_size=6)
NEW = "app--new-revision"


@given(tables, st.integers(min_value=0, max_value=100))
@settings(max_examples=300)
def test_canary_always_sums_to_100_and_gives_the_new_revision_its_share(previous, percent):
    table = traffic.canary(previous, NEW, percent)
    assert sum(table.values()) == 100
    assert all(w > 0 for w in table.values())
    if traffic.serving(previous):
        assert table.get(NEW, 0) == percent
        assert set(table) - {NEW} <= set(traffic.serving(previous))
    else:
        assert table == {NEW: 100}


@given(tables, st.integers(min_value=0, max_value=100))
@settings(max_examples=300)
def test_scale_keeps_proportions_within_one_percent(weights, total):
    table = traffic.scale(weights, total)
    positive = traffic.serving(weights)
    if not positive:
        assert table == {}
        return
    assert sum(table.values()) == total
    whole = sum(positive.values())
    for name, w in positive.items():
        assert abs(table[name] - w * total / whole) < 1


@given(tables)
def test_pinned_table_keeps_the_new_revision_at_zero(current):
    table = traffic.pinned({**current, NEW: 5}, NEW)
    assert NEW not in table
    assert table == {} or sum(table.values()) == 100
    assert set(table) <= set(traffic.serving(current))


@given(tables)
def test_restore_returns_to_what_served_before(previous):
    table = traffic.restore({**previous, NEW: 30}, exclude=NEW)
    assert NEW not in table
    assert table == {} or traffic.is_valid(table)


def test_examples():
    assert traffic.canary({"a": 100}, "n", 10) == {"a": 90, "n": 10}
    assert traffic.canary({"a": 50, "b": 50}, "n", 10) == {"a": 45, "b": 45, "n": 10}
    assert traffic.canary({"a": 1, "b": 1, "c": 1}, "n", 1) == {"a": 33, "b": 33, "c": 33, "n": 1}
    assert traffic.canary({"a": 60, "b": 40}, "n", 100) == {"n": 100}
    assert traffic.canary({"a": 100, "n": 0}, "n", 50) == {"a": 50, "n": 50}
    assert traffic.pinned({"a": 70, "b": 30, "c": 0}, "n") == {"a": 70, "b": 30}
    assert traffic.pinned({}, "n") == {}
    assert traffic.restore({"a": 90, "n": 10}, exclude="n") == {"a": 100}
    assert traffic.describe({"a": 90, "n": 10}) == "a 90 %, n 10 %"
    assert traffic.describe({}) == "no traffic"


def test_bad_percentages_are_refused():
    with pytest.raises(ValueError):
        traffic.canary({"a": 100}, "n", 101)
    with pytest.raises(ValueError):
        traffic.scale({"a": 1}, -1)
