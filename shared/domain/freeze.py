"""Freeze windows: when no deployment may change what an app serves (pure).

A window is recurring (days of the week and wall-clock hours), cron plus a duration, or one-off
(a start and an end), always in an IANA time zone: "Friday 18:00 to Monday 08:00 Europe/Berlin"
means Berlin wall-clock time, summer and winter alike. A window applies to the rules, apps and
environments its scope names (an empty list matches all). During a window a push either waits for
the freeze to end (`wait`) or is skipped (`skip`); an emergency override lifts it for one
deployment (recorded by the rollout, not here).

All comparisons are made in UTC: aware datetimes sharing one tzinfo compare on wall time, which is
wrong across a daylight-saving change.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from enum import Enum
from typing import Any, Iterable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_CHAIN = 64  # overlapping windows followed to find when a freeze ends (bounds the loop)


class FreezeAction(str, Enum):
    WAIT = "wait"  # hold the deployment until the window ends
    SKIP = "skip"  # record the push as skipped

    def __str__(self) -> str:
        return self.value


class FreezeError(ValueError):
    """A window that cannot be built (bad zone, cron, times); the rules parser reports it."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise FreezeError(f"{name!r} is not an IANA time zone (e.g. Europe/Berlin, UTC)") from exc


def check_cron(expression: str) -> None:
    from croniter import croniter

    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise FreezeError(f"{expression!r} is not a 5-field cron expression (minute hour day month weekday)")


@dataclass(frozen=True)
class FreezeScope:
    """Which deployments a window holds. Apps and environments may be globs."""

    rules: tuple[str, ...] = ()
    apps: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()

    def applies(self, rule: str, app: str, environment: str) -> bool:
        return (_any(self.rules, rule) and _any(self.apps, app) and _any(self.environments, environment))

    def applies_to_rule(self, rule: str, environment: str) -> bool:
        """Could hold a deployment of this rule (apps are known only once a push is planned)."""
        return _any(self.rules, rule) and _any(self.environments, environment)


def _any(patterns: tuple[str, ...], value: str) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(value, p) for p in patterns)


@dataclass(frozen=True)
class FreezeWindow:
    """One window. Exactly one form is set: `days` (+ `start`/`end` wall times), `cron` +
    `duration_s`, or `begins`/`ends` (one-off, wall time in the zone)."""

    name: str
    timezone: str = "UTC"
    action: FreezeAction = FreezeAction.WAIT
    scope: FreezeScope = field(default_factory=FreezeScope)
    days: tuple[int, ...] = ()  # 0 = Monday
    start: time = time(0, 0)
    end: time | None = None  # None = midnight at the end of the day; end <= start = overnight
    cron: str = ""
    duration_s: float = 0.0
    begins: datetime | None = None  # naive: wall time in `timezone`
    ends: datetime | None = None

    def __post_init__(self) -> None:
        zone(self.timezone)
        forms = [bool(self.days), bool(self.cron), self.begins is not None or self.ends is not None]
        if sum(forms) != 1:
            raise FreezeError("a window needs exactly one of: days (with from/to), cron (with duration), start/end")
        if self.cron:
            check_cron(self.cron)
            if self.duration_s <= 0:
                raise FreezeError("a cron window needs a duration > 0")
        if forms[2]:
            if self.begins is None or self.ends is None:
                raise FreezeError("a one-off window needs both start and end")
            if self._local(self.ends) <= self._local(self.begins):
                raise FreezeError("a one-off window must end after it starts")

    # ---- occurrences
    def occurrence_at(self, at: datetime) -> tuple[datetime, datetime] | None:
        """(start, end) in UTC of this window's occurrence that contains `at`, or None."""
        at = at.astimezone(timezone.utc)
        for begin, end in self._candidates(at):
            if begin <= at < end:
                return begin, end
        return None

    def _candidates(self, at: datetime) -> Iterable[tuple[datetime, datetime]]:
        tz = zone(self.timezone)
        if self.begins is not None and self.ends is not None:
            yield self._local(self.begins), self._local(self.ends)
        elif self.cron:
            yield from self._cron_occurrence(at, tz)
        else:
            today = at.astimezone(tz).date()
            for day in (today - timedelta(days=1), today):  # yesterday's may run overnight
                if day.weekday() in self.days:
                    yield self._daily(day, tz)

    def _daily(self, day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
        begin = datetime.combine(day, self.start, tz)
        if self.end is None or self.end <= self.start:
            end_day = day + timedelta(days=1)
            end = datetime.combine(end_day, self.end or time(0, 0), tz)
        else:
            end = datetime.combine(day, self.end, tz)
        return begin.astimezone(timezone.utc), end.astimezone(timezone.utc)

    def _cron_occurrence(self, at: datetime, tz: ZoneInfo) -> Iterable[tuple[datetime, datetime]]:
        from croniter import croniter

        # The latest firing at or before `at`: with a fixed duration it ends last of all earlier ones.
        itr = croniter(self.cron, (at + timedelta(minutes=1)).astimezone(tz))
        for _ in range(3):
            fired = itr.get_prev(datetime).astimezone(timezone.utc)
            if fired <= at:
                yield fired, fired + timedelta(seconds=self.duration_s)
                return

    def _local(self, wall: datetime) -> datetime:
        if wall.tzinfo is None:
            wall = wall.replace(tzinfo=zone(self.timezone))
        return wall.astimezone(timezone.utc)

    # ---- words and wire shape
    def describe(self) -> str:
        if self.days:
            days = ",".join(DAYS[d] for d in sorted(self.days))
            end = self.end.strftime("%H:%M") if self.end else "24:00"
            when = f"{days} {self.start:%H:%M}-{end}"
        elif self.cron:
            when = f"cron '{self.cron}' for {_span(self.duration_s)}"
        else:
            when = f"{self.begins:%Y-%m-%d %H:%M} to {self.ends:%Y-%m-%d %H:%M}"
        return f"{self.name} ({when} {self.timezone}, {self.action})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "timezone": self.timezone, "action": self.action.value,
            "rules": list(self.scope.rules), "apps": list(self.scope.apps),
            "environments": list(self.scope.environments),
            "days": list(self.days), "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M") if self.end else None,
            "cron": self.cron, "duration_s": self.duration_s,
            "begins": self.begins.isoformat() if self.begins else None,
            "ends": self.ends.isoformat() if self.ends else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FreezeWindow":
        def when(key: str) -> datetime | None:
            return datetime.fromisoformat(data[key]) if data.get(key) else None

        return cls(
            name=data["name"], timezone=data.get("timezone", "UTC"),
            action=FreezeAction(data.get("action", "wait")),
            scope=FreezeScope(tuple(data.get("rules") or ()), tuple(data.get("apps") or ()),
                              tuple(data.get("environments") or ())),
            days=tuple(int(x) for x in data.get("days") or ()),
            start=time.fromisoformat(data.get("start") or "00:00"),
            end=time.fromisoformat(data["end"]) if data.get("end") else None,
            cron=data.get("cron") or "", duration_s=float(data.get("duration_s") or 0),
            begins=when("begins"), ends=when("ends"),
        )


def _span(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m"


@dataclass(frozen=True)
class Freeze:
    """The windows holding a deployment at one instant, and when they all have ended."""

    windows: tuple[FreezeWindow, ...]
    until: datetime  # UTC; the first instant no applicable window holds
    action: FreezeAction  # skip when any holding window says skip

    @property
    def names(self) -> str:
        return ", ".join(w.name for w in self.windows)

    def reason(self) -> str:
        return f"frozen by {', '.join(w.describe() for w in self.windows)} until {self.until:%Y-%m-%d %H:%M} UTC"


def applicable(windows: Iterable[FreezeWindow], rule: str, app: str, environment: str) -> tuple[FreezeWindow, ...]:
    return tuple(w for w in windows if w.scope.applies(rule, app, environment))


def freeze_at(windows: Iterable[FreezeWindow], at: datetime, *, rule: str = "", app: str = "",
              environment: str = "") -> Freeze | None:
    """The freeze holding a deployment of (rule, app, environment) at `at`, or None when it may go.
    `until` follows overlapping and back-to-back windows (bounded by MAX_CHAIN)."""
    mine = applicable(windows, rule, app, environment)
    at = at.astimezone(timezone.utc)
    holding = [w for w in mine if w.occurrence_at(at)]
    if not holding:
        return None
    seen: dict[str, FreezeWindow] = {w.name: w for w in holding}
    until = at
    for _ in range(MAX_CHAIN):
        ends = [occ[1] for w in mine if (occ := w.occurrence_at(until))]
        if not ends:
            break
        for w in mine:
            if w.occurrence_at(until):
                seen.setdefault(w.name, w)
        until = max(ends)
    action = FreezeAction.SKIP if any(w.action is FreezeAction.SKIP for w in holding) else FreezeAction.WAIT
    return Freeze(tuple(seen.values()), until, action)
