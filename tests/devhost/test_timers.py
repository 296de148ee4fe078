"""NCRONTAB parsing and next-occurrence arithmetic (pure), and a timer firing in a real DevHost."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from devtools.host import DevHost, Schedule, ScheduleError
from tests.devhost.conftest import FIXTURE_APP, fixture_settings


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "expr, after, expected",
    [
        ("0 */1 * * * *", "2024-05-01T10:00:00", "2024-05-01T10:01:00"),  # the app's sweep
        ("0 */1 * * * *", "2024-05-01T10:00:59.900", "2024-05-01T10:01:00"),
        ("*/15 * * * * *", "2024-05-01T10:00:14", "2024-05-01T10:00:15"),
        ("*/15 * * * * *", "2024-05-01T10:00:15", "2024-05-01T10:00:30"),  # strictly after
        ("0 30 9 * * *", "2024-05-01T10:00:00", "2024-05-02T09:30:00"),
        ("0 0 9-17/4 * * *", "2024-05-01T13:00:00", "2024-05-01T17:00:00"),
        ("0 0 0 1,15 * *", "2024-05-02T00:00:00", "2024-05-15T00:00:00"),
        ("0 0 12 * * MON-FRI", "2024-05-03T12:00:00", "2024-05-06T12:00:00"),  # Fri -> Mon
        ("0 0 12 * * 0", "2024-05-01T00:00:00", "2024-05-05T12:00:00"),  # Sunday
        ("0 0 12 * * 7", "2024-05-01T00:00:00", "2024-05-05T12:00:00"),  # 7 is Sunday too
        ("0 0 0 * JAN,jul *", "2024-05-01T00:00:00", "2024-07-01T00:00:00"),
        ("0 0 0 31 * *", "2024-04-01T00:00:00", "2024-05-31T00:00:00"),  # skips 30-day April
        ("0 0 0 29 2 *", "2023-03-01T00:00:00", "2024-02-29T00:00:00"),  # leap day
        ("0 0 0 13 * FRI", "2024-01-01T00:00:00", "2024-09-13T00:00:00"),  # both: day AND weekday
        ("5/20 * * * * *", "2024-05-01T10:00:06", "2024-05-01T10:00:25"),
        ("59 59 23 31 12 *", "2024-12-31T23:59:59", "2025-12-31T23:59:59"),
        ("00:05:00", "2024-05-01T10:00:00", "2024-05-01T10:05:00"),  # TimeSpan schedule
    ],
)
def test_next_occurrence(expr, after, expected):
    assert Schedule.parse(expr).next_after(at(after)) == at(expected)


def test_next_occurrence_is_answered_in_utc():
    local = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert Schedule.parse("0 0 * * * *").next_after(local) == at("2024-05-01T11:00:00")


@pytest.mark.parametrize(
    "expr, message",
    [
        ("* * * * *", "6 fields"),
        ("0 60 * * * *", "outside 0-59"),
        ("0 0 25 * * *", "outside 0-23"),
        ("0 0 0 0 * *", "outside 1-31"),
        ("0 0 0 * 13 *", "outside 1-12"),
        ("*/0 * * * * *", "positive"),
        ("0 5-1 * * * *", "backwards"),
        ("0 x * * * *", "not a number"),
        ("0 1,,2 * * * *", "empty item"),
        ("0 0 0 30 2 *", "never fires"),
    ],
)
def test_bad_schedules_fail_with_a_clear_message(expr, message):
    with pytest.raises(ScheduleError, match=message):
        Schedule.parse(expr).next_after(at("2024-01-01T00:00:00"))


def test_timer_fires_on_schedule_with_a_real_timer_request():
    settings = fixture_settings(FIXTURE_TIMER="*/1 * * * * *")  # every second
    with DevHost(app_dir=FIXTURE_APP, settings=settings, port=0, function_key="k", queues=False) as host:
        deadline = time.monotonic() + 10
        runs: list = []
        while time.monotonic() < deadline and len(runs) < 2:
            time.sleep(0.2)
            runs = httpx.get(f"{host.url}/api/recorded?code=k", timeout=5).json()["timer"]
    assert len(runs) >= 2
    assert runs[0]["class"] == "TimerRequest"
    assert runs[0]["past_due"] is False
    assert runs[0]["next"]  # schedule_status carries the next occurrence


def test_timers_can_be_turned_off():
    settings = fixture_settings(FIXTURE_TIMER="*/1 * * * * *")
    with DevHost(app_dir=FIXTURE_APP, settings=settings, port=0, function_key="k",
                 queues=False, timers=False) as host:
        time.sleep(1.5)
        assert httpx.get(f"{host.url}/api/recorded?code=k", timeout=5).json()["timer"] == []


def test_unset_schedule_setting_fails_at_start():
    settings = fixture_settings()
    del settings["FIXTURE_TIMER"]
    with pytest.raises(Exception, match="FIXTURE_TIMER"):
        DevHost(app_dir=FIXTURE_APP, settings=settings, port=0, queues=False).start()


def test_a_run_that_overruns_the_next_occurrence_makes_it_past_due():
    from devtools.host.functions import TIMER, FunctionSpec
    from devtools.host.invoke import Invoker
    from devtools.host.timers import TimerRunner

    seen: list[bool] = []

    def slow(timer):
        seen.append(timer.past_due)
        if len(seen) == 1:
            time.sleep(2.2)  # straddles two one-second occurrences

    spec = FunctionSpec("slow", TIMER, "timer", {"type": TIMER, "name": "timer"}, (), slow)
    runner = TimerRunner(spec, Schedule.parse("*/1 * * * * *"), Invoker("."))
    runner.start()
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and len(seen) < 3:
        time.sleep(0.05)
    runner.stop()
    assert seen[:3] == [False, True, False]
