"""Freeze windows (shared.domain.freeze) and their rules-file syntax (`freezes:`)."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.freeze import FreezeAction, FreezeError, FreezeScope, FreezeWindow, freeze_at
from shared.domain.rules import RulesError, parse_rules

UTC = timezone.utc
SUB = "00000000-0000-0000-0000-000000000000"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_overnight_weekend_window_in_berlin_wall_time_across_the_dst_change():
    # Fri 18:00 -> Mon 08:00 Berlin; the last Sunday of October 2026 (the 25th) ends summer time.
    w = FreezeWindow("weekend", "Europe/Berlin", days=(4, 5, 6), start=time(18), end=time(8))
    # Friday 23 Oct 17:59 Berlin (CEST, UTC+2) is open, 18:00 is frozen.
    assert freeze_at([w], at("2026-10-23T15:59:00+00:00")) is None
    frozen = freeze_at([w], at("2026-10-23T16:00:00+00:00"))
    assert frozen is not None and frozen.names == "weekend"
    # Saturday noon is open: each day's window is 18:00 -> 08:00 the next morning.
    assert freeze_at([w], at("2026-10-24T10:00:00+00:00")) is None
    # Sunday evening (CET now, UTC+1): ends Monday 08:00 Berlin = 07:00 UTC, not 06:00.
    frozen = freeze_at([w], at("2026-10-25T20:00:00+00:00"))
    assert frozen.until == at("2026-10-26T07:00:00+00:00")
    assert freeze_at([w], at("2026-10-26T07:00:00+00:00")) is None


def test_whole_days_and_chained_windows_give_the_first_open_instant():
    sat_sun = FreezeWindow("weekend", days=(5, 6))  # whole days, UTC
    monday_morning = FreezeWindow("monday", days=(0,), start=time(0), end=time(6))
    frozen = freeze_at([sat_sun, monday_morning], at("2026-12-05T12:00:00+00:00"))
    assert frozen.until == at("2026-12-07T06:00:00+00:00")
    assert {w.name for w in frozen.windows} == {"weekend", "monday"}


def test_cron_window_with_duration_in_new_york():
    w = FreezeWindow("nightly", "America/New_York", cron="0 22 * * *", duration_s=8 * 3600)
    # 22:00 EST = 03:00 UTC; lasts until 06:00 EST = 11:00 UTC.
    assert freeze_at([w], at("2026-12-10T02:59:00+00:00")) is None
    frozen = freeze_at([w], at("2026-12-10T03:00:00+00:00"))
    assert frozen.until == at("2026-12-10T11:00:00+00:00")
    assert freeze_at([w], at("2026-12-10T11:00:00+00:00")) is None


def test_one_off_window_scope_and_skip_action():
    w = FreezeWindow("year-end", "Europe/London", action=FreezeAction.SKIP,
                     scope=FreezeScope(apps=("orders-*",), environments=("production",)),
                     begins=datetime(2026, 12, 23), ends=datetime(2027, 1, 2, 8))
    inside = at("2026-12-24T09:00:00+00:00")
    assert freeze_at([w], inside, app="orders-api", environment="production").action is FreezeAction.SKIP
    assert freeze_at([w], inside, app="payments-api", environment="production") is None
    assert freeze_at([w], inside, app="orders-api", environment="staging") is None
    assert freeze_at([w], at("2027-01-02T08:00:00+00:00"), app="orders-api", environment="production") is None


def test_round_trip_through_the_deployment_record():
    for w in (FreezeWindow("a", "Asia/Tokyo", days=(1,), start=time(9), end=time(17), scope=FreezeScope(rules=("r",))),
              FreezeWindow("b", cron="*/30 * * * *", duration_s=600, action=FreezeAction.SKIP),
              FreezeWindow("c", begins=datetime(2026, 1, 1), ends=datetime(2026, 1, 2))):
        assert FreezeWindow.from_dict(w.to_dict()) == w


@pytest.mark.parametrize("kwargs, message", [
    ({"timezone": "Mars/Olympus", "days": (1,)}, "IANA"),
    ({"cron": "0 22 * *", "duration_s": 60}, "5-field cron"),
    ({"cron": "0 22 * * *"}, "duration"),
    ({"begins": datetime(2026, 1, 2), "ends": datetime(2026, 1, 1)}, "end after"),
    ({"begins": datetime(2026, 1, 2)}, "both start and end"),
    ({}, "exactly one of"),
    ({"days": (1,), "cron": "0 22 * * *", "duration_s": 60}, "exactly one of"),
])
def test_broken_windows_are_refused(kwargs, message):
    with pytest.raises(FreezeError, match=message):
        FreezeWindow("w", **kwargs)


# ---------------------------------------------------------------- property: the calendar against wall clocks

def _wall_clock_oracle(w: FreezeWindow, instant: datetime) -> bool:
    """Independent of the implementation: the local wall clock, read directly."""
    local = instant.astimezone(ZoneInfo(w.timezone))
    t, day = local.time().replace(tzinfo=None), local.weekday()
    overnight = w.end is not None and w.end <= w.start
    today = day in w.days and t >= w.start and (w.end is None or overnight or t < w.end)
    from_yesterday = overnight and (day - 1) % 7 in w.days and t < w.end
    return today or from_yesterday


windows = st.builds(
    lambda name, tz, days, start, end: FreezeWindow(name, tz, days=days, start=start, end=end),
    name=st.sampled_from(["a", "b", "c"]),
    tz=st.sampled_from(["UTC", "Asia/Kolkata", "Asia/Tokyo"]),  # no DST: wall clocks are unambiguous
    days=st.sets(st.integers(0, 6), min_size=1).map(lambda s: tuple(sorted(s))),
    start=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    end=st.none() | st.times().map(lambda t: t.replace(second=0, microsecond=0)),
)
instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(w=windows, instant=instants)
def test_property_a_window_holds_exactly_when_its_wall_clock_says_so(w, instant):
    assert (freeze_at([w], instant) is not None) == _wall_clock_oracle(w, instant)


@settings(max_examples=200, deadline=None)
@given(ws=st.lists(windows, min_size=1, max_size=3, unique_by=lambda w: w.name), instant=instants)
def test_property_a_freeze_ends_at_an_open_instant_after_it_started(ws, instant):
    frozen = freeze_at(ws, instant)
    if frozen is None:
        assert not any(_wall_clock_oracle(w, instant) for w in ws)
        return
    assert frozen.until > instant
    if frozen.until - instant < timedelta(days=30):  # else frozen for ever: the bounded chain gave up
        assert freeze_at(ws, frozen.until) is None
        assert not any(_wall_clock_oracle(w, frozen.until) for w in ws)


# ---------------------------------------------------------------- the rules file

RULES = f"""
freezes:
  - {{name: weekend, timezone: Europe/Berlin, days: [fri, sat, sun], from: "18:00", to: "08:00", environments: [production]}}
  - {{name: orders-only, cron: "0 22 * * *", duration: 8h, rules: [orders], action: skip}}
rules:
  - {{name: orders, repository: orders-api, environment: production, targets: [{{app: orders-api, subscription: {SUB}, resource_group: rg}}]}}
  - {{name: staging, repository: orders-api, targets: [{{app: orders-api-staging, subscription: {SUB}, resource_group: rg}}]}}
"""


def test_rules_file_freezes_are_attached_to_the_rules_they_hold():
    f = parse_rules(RULES, "rules.yaml")
    by_name = {r.name: [w.name for w in r.rollout.controls.freezes] for r in f.rules}
    assert by_name == {"orders": ["weekend", "orders-only"], "staging": []}
    assert [w.name for w in f.defaults_rollout.controls.freezes] == ["weekend"]  # for resource-tag rules


def test_rules_file_freeze_problems_name_the_field():
    text = f"""
freezes:
  - {{name: a, days: [fri], from: 18:00}}
  - {{name: b, days: [fry]}}
  - {{name: c, start: "2026-12-23", end: "2026-12-22"}}
  - {{name: d, days: [mon], rules: [nope], action: hold}}
rules:
  - {{name: x, repository: a, targets: [{{app: aa, subscription: {SUB}, resource_group: rg}}]}}
"""
    with pytest.raises(RulesError) as info:
        parse_rules(text, "rules.yaml")
    fields = [(p.field, p.message) for p in info.value.problems]
    assert ("freezes[0].from", 'quote the time ("18:00"): YAML reads 18:00 unquoted as a number') in fields
    assert any(f == "freezes[1].days" and "'fry' is not a day" in m for f, m in fields)
    assert any(f == "freezes[2]" and "end after it starts" in m for f, m in fields)
    assert any(f == "freezes[3].action" for f, _ in fields)


def test_rules_file_unknown_rule_in_a_freeze_scope():
    text = RULES.replace("rules: [orders]", "rules: [ordres]")
    with pytest.raises(RulesError) as info:
        parse_rules(text, "rules.yaml")
    assert [(p.field, p.message) for p in info.value.problems] == [
        ("freezes[1].rules", "'ordres' names no rule in this file")]


def test_every_applicable_window_is_in_the_deployment_copy():
    f = parse_rules(RULES, "rules.yaml")
    rollout = f.rules[0].rollout
    from shared.domain.model import RolloutSettings

    assert RolloutSettings.from_dict(rollout.to_dict()) == rollout
    assert timedelta(hours=8).total_seconds() == rollout.controls.freezes[1].duration_s
