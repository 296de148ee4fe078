"""Timer triggers: NCRONTAB schedules and the loop that fires them.

NCRONTAB as Azure Functions uses it: six fields, `second minute hour day month day-of-week`,
in UTC. Each field takes `*`, a value, a range `a-b`, a step `*/n`, `a-b/n` or `a/n`, and
comma-separated lists of those; months and weekdays also take names (JAN, MON). Day-of-week
0 and 7 are Sunday. When both day and day-of-week are restricted a time must match both (as
NCrontab does, unlike Vixie cron). A TimeSpan (`00:05:00`) means "every 5 minutes", and
`%NAME%` is read from the app settings, as the host does.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from azure.functions import meta

from devtools.host.config import ConfigError, parse_timespan
from devtools.host.functions import FunctionSpec
from devtools.host.invoke import Invoker

log = logging.getLogger("devtools.host")

_MONTHS = {m: i for i, m in enumerate(
    "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), start=1)}
_DAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}
_FIELDS = (  # name, low, high, names
    ("second", 0, 59, {}),
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _DAYS),
)
_SEARCH_DAYS = 366 * 8  # Feb 29 on a given weekday can take years; beyond this, it never fires


class ScheduleError(ConfigError):
    pass


def _value(text: str, low: int, high: int, names: dict[str, int], field: str, expr: str) -> int:
    token = text.strip().upper()
    number = names.get(token[:3]) if token.isalpha() else None
    if number is None:
        if not token.isdigit():
            raise ScheduleError(f"schedule {expr!r}: {field} value {text!r} is not a number")
        number = int(token)
    if not low <= number <= high:
        raise ScheduleError(f"schedule {expr!r}: {field} value {number} is outside {low}-{high}")
    return number


def _parse_field(text: str, low: int, high: int, names: dict[str, int], field: str, expr: str) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        if not part:
            raise ScheduleError(f"schedule {expr!r}: empty item in the {field} field")
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"schedule {expr!r}: {field} step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            start = _value(a, low, high, names, field, expr)
            end = _value(b, low, high, names, field, expr)
            if start > end:
                raise ScheduleError(f"schedule {expr!r}: {field} range {base!r} runs backwards")
        else:
            start = _value(base, low, high, names, field, expr)
            end = high if step_text else start  # `5/15` = from 5 every 15
        out.update(range(start, end + 1, step))
    return frozenset(out)


@dataclass(frozen=True)
class Schedule:
    expression: str
    seconds: tuple[int, ...] = ()
    minutes: tuple[int, ...] = ()
    hours: tuple[int, ...] = ()
    days: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()  # 0 = Sunday
    interval: timedelta | None = None  # TimeSpan schedules

    @classmethod
    def parse(cls, expression: str) -> "Schedule":
        expr = expression.strip()
        if re.fullmatch(r"(\d+\.)?\d{1,2}:\d{1,2}:\d{1,2}", expr):
            seconds = parse_timespan(expr, name="schedule")
            if seconds <= 0:
                raise ScheduleError(f"schedule {expression!r}: a TimeSpan schedule must be positive")
            return cls(expr, interval=timedelta(seconds=seconds))
        parts = expr.split()
        if len(parts) != 6:
            raise ScheduleError(
                f"schedule {expression!r}: NCRONTAB needs 6 fields (second minute hour day month "
                f"day-of-week), got {len(parts)}"
            )
        parsed = [_parse_field(p, low, high, names, name, expression)
                  for p, (name, low, high, names) in zip(parts, _FIELDS)]
        weekdays = frozenset(d % 7 for d in parsed[5])
        return cls(
            expr,
            seconds=tuple(sorted(parsed[0])),
            minutes=tuple(sorted(parsed[1])),
            hours=tuple(sorted(parsed[2])),
            days=parsed[3],
            months=parsed[4],
            weekdays=weekdays,
        )

    def _day_matches(self, day: datetime) -> bool:
        return (day.month in self.months and day.day in self.days
                and (day.weekday() + 1) % 7 in self.weekdays)

    def next_after(self, after: datetime) -> datetime:
        """The first occurrence strictly after `after` (an aware datetime; answered in UTC)."""
        after = after.astimezone(timezone.utc)
        if self.interval is not None:
            return after + self.interval
        start = after.replace(microsecond=0) + timedelta(seconds=1)
        day = start.replace(hour=0, minute=0, second=0)
        for offset in range(_SEARCH_DAYS):
            candidate_day = day + timedelta(days=offset)
            if not self._day_matches(candidate_day):
                continue
            same_day = offset == 0
            for h in self.hours:
                if same_day and h < start.hour:
                    continue
                for m in self.minutes:
                    if same_day and h == start.hour and m < start.minute:
                        continue
                    for s in self.seconds:
                        if same_day and h == start.hour and m == start.minute and s < start.second:
                            continue
                        return candidate_day.replace(hour=h, minute=m, second=s)
        raise ScheduleError(f"schedule {self.expression!r} never fires")


def timer_datum(*, past_due: bool, last: datetime | None, next_: datetime) -> meta.Datum:
    """The timer trigger's data as the host sends it: its TimerInfo JSON."""
    info = {
        "Schedule": {"AdjustForDST": True},
        "ScheduleStatus": {
            "Last": (last or datetime.min.replace(tzinfo=timezone.utc)).isoformat(),
            "Next": next_.isoformat(),
            "LastUpdated": datetime.now(timezone.utc).isoformat(),
        },
        "IsPastDue": past_due,
    }
    return meta.Datum(json.dumps(info), "json")


class TimerRunner:
    """One thread per timer function; invocations of one function never overlap (the host holds a
    singleton lock per timer). A run that overruns the next occurrence makes the next invocation
    `past_due`, then the schedule continues from now (missed occurrences are not replayed)."""

    LATE_S = 1.0  # fired this much after its time: past due

    def __init__(self, spec: FunctionSpec, schedule: Schedule, invoker: Invoker,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.spec = spec
        self.schedule = schedule
        self.invoker = invoker
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: datetime | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"devhost-timer-{self.spec.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout_s)

    def _fire(self, scheduled: datetime, past_due: bool) -> None:
        next_ = self.schedule.next_after(max(scheduled, self.clock()))
        try:
            self.invoker.invoke(self.spec, timer_datum(past_due=past_due, last=self.last, next_=next_), None,
                                detail=f"schedule {self.schedule.expression}" + (", past due" if past_due else ""))
        except Exception:
            pass  # logged by the invoker; a timer simply waits for its next occurrence
        self.last = scheduled

    def _loop(self) -> None:
        if self.spec.run_on_startup and not self._stop.is_set():
            self._fire(self.clock(), past_due=False)
        due = self.schedule.next_after(self.clock())
        while not self._stop.is_set():
            remaining = (due - self.clock()).total_seconds()
            if remaining > 0:
                self._stop.wait(min(remaining, 1.0))  # re-check the clock at least every second
                continue
            late = -remaining > self.LATE_S
            self._fire(due, past_due=late)
            following = self.schedule.next_after(due)
            if following <= self.clock() and not late:
                due = following  # overran: the missed occurrence fires now, past due
            else:
                due = self.schedule.next_after(self.clock())
