"""The rules file's `freezes:` section -> `FreezeWindow`s (see shared.domain.freeze, docs/rules.md).

    freezes:
      - name: weekend
        timezone: Europe/Berlin
        days: [fri, sat, sun]
        from: "18:00"          # quoted: YAML reads 18:00 as the number 1080
        to: "08:00"            # before `from`: the window runs overnight
        environments: [production]
        action: wait           # or skip
      - {name: nightly, cron: "0 22 * * *", duration: 8h, timezone: America/New_York}
      - {name: year-end, start: "2026-12-23 00:00", end: "2027-01-02 08:00", apps: [orders-*]}
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from shared.domain.freeze import DAYS, FreezeAction, FreezeError, FreezeScope, FreezeWindow
from shared.domain.rules.fields import BadValue, FieldReader

FREEZE_KEYS = ("name", "timezone", "days", "from", "to", "cron", "duration", "start", "end",
               "rules", "apps", "environments", "action")


def read_freezes(r: FieldReader, value: Any) -> tuple[FreezeWindow, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise r.bad("freezes", "must be a list of windows ({name: ..., days: [...], from: ..., to: ...})")
    out: list[FreezeWindow] = []
    names: set[str] = set()
    for i, item in enumerate(value):
        field = f"freezes[{i}]"
        try:
            window = _window(r, item, field)
        except BadValue:
            continue
        if window.name in names:
            r.problem(f"{field}.name", f"duplicate freeze name {window.name!r}", item)
            continue
        names.add(window.name)
        out.append(window)
    return tuple(out)


def _window(r: FieldReader, item: Any, field: str) -> FreezeWindow:
    data = r.keys(item, field, FREEZE_KEYS, ("name",))
    f = lambda key: f"{field}.{key}"  # noqa: E731
    name = r.text(data["name"], f("name"), data)
    tz = r.attempt(lambda: r.text(data.get("timezone", "UTC"), f("timezone"), data), "UTC")
    action = data.get("action", "wait")
    if action not in ("wait", "skip"):
        raise r.bad(f("action"), f"must be wait or skip, not {action!r}", data)
    scope = FreezeScope(*(
        r.attempt(lambda k=key: r.text_list(data[k], f(k), data), ()) if key in data else ()
        for key in ("rules", "apps", "environments")
    ))
    kwargs: dict[str, Any] = {}
    if "days" in data:
        kwargs["days"] = _days(r, data["days"], f("days"), data)
        if "from" in data:
            kwargs["start"] = _clock(r, data["from"], f("from"), data)
        if "to" in data:
            end = _clock(r, data["to"], f("to"), data)
            kwargs["end"] = None if end == time.max else end
    elif "from" in data or "to" in data:
        raise r.bad(f("from"), "from/to are wall-clock hours of `days:`; a one-off window uses start/end", data)
    if "cron" in data:
        kwargs["cron"] = r.text(data["cron"], f("cron"), data)
        if "duration" not in data:
            raise r.bad(f("duration"), "a cron window needs a duration (e.g. 8h)", data)
    if "duration" in data:
        kwargs["duration_s"] = r.duration(data["duration"], f("duration"), positive=True, hi=366 * 86400, node=data)
    for key, attr in (("start", "begins"), ("end", "ends")):
        if key in data:
            kwargs[attr] = _moment(r, data[key], f(key), data)
    try:
        return FreezeWindow(name=name, timezone=tz, action=FreezeAction(action), scope=scope, **kwargs)
    except FreezeError as exc:
        raise r.bad(field, str(exc), data) from exc


def _days(r: FieldReader, value: Any, field: str, node: Any) -> tuple[int, ...]:
    items = r.text_list(value, field, node)
    out = []
    for text in items:
        key = text.lower()[:3]
        if key not in DAYS or len(text) < 3:
            raise r.bad(field, f"{text!r} is not a day (mon, tue, wed, thu, fri, sat, sun)", node)
        out.append(DAYS.index(key))
    if not out:
        raise r.bad(field, "names no day", node)
    return tuple(sorted(set(out)))


def _clock(r: FieldReader, value: Any, field: str, node: Any) -> time:
    if isinstance(value, int) and not isinstance(value, bool):
        raise r.bad(field, "quote the time (\"18:00\"): YAML reads 18:00 unquoted as a number", node)
    text = r.text(value, field, node)
    if text == "24:00":
        return time.max
    try:
        parsed = time.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or len(text) != 5:
        raise r.bad(field, f"{text!r} is not a time of day (HH:MM, 00:00 to 24:00)", node)
    return parsed


def _moment(r: FieldReader, value: Any, field: str, node: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    text = r.text(value, field, node)
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise r.bad(field, f"{text!r} is not a date and time (e.g. \"2026-12-23 18:00\")", node) from exc
