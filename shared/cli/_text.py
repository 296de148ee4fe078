"""Text the CLI shows people: stored strings made safe for a terminal, times, short ids and digests.

Stored text (`requested_by`, reasons, tags from events) comes from outside; printed raw, an escape
sequence in it would drive the reader's terminal. Every cell and line goes through `printable`.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

# C0/C1 controls, DEL, and the invisible format characters that reorder or hide text (bidi
# overrides, zero-width), which a terminal or a spreadsheet would act on.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_KEEP_IN_CSV = frozenset("\n\t")  # CSV quotes them; a reader's tools expect them


def printable(value: object, *, csv: bool = False) -> str:
    """`value` as text, every control character spelled out (`\\x1b`, `\\n`, `\\u202e`)."""
    text = "" if value is None else str(value)

    def spell(m: re.Match) -> str:
        ch = m.group(0)
        if csv and ch in _KEEP_IN_CSV:
            return ch
        return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch) or (
            f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")

    return _CONTROL.sub(spell, text)


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def zone_label(moment: datetime, utc: bool) -> str:
    """`UTC`, or the local offset at that moment (`+02:00`)."""
    if utc:
        return "UTC"
    offset = moment.astimezone().strftime("%z")
    return "UTC" if offset in ("+0000", "-0000") else f"{offset[:3]}:{offset[3:]}"


def when(value: str | None, utc: bool = False, *, seconds: bool = True, zone: bool = True) -> str:
    """An API time for people: local time with its offset (`2024-05-01 14:00:03 +02:00`), or
    UTC marked as such (`--utc`). zone=False leaves the zone to a column header."""
    moment = parse_iso(value)
    if moment is None:
        return printable(value or "")
    shown = moment.astimezone(timezone.utc) if utc else moment.astimezone()
    text = shown.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return f"{text} {zone_label(moment, utc)}" if zone else text


def short_id(deployment_id: str) -> str:
    """The hash part's first 8 characters: what `acr-deploy show` takes back (unique prefix)."""
    head, _, tail = (deployment_id or "").partition("-")
    return tail[:8] if tail else head[:8]


def short_digest(digest: str) -> str:
    """`sha256:0123456789ab…`: enough to tell images apart in a table."""
    return f"{digest[:19]}…" if len(digest or "") > 19 else (digest or "")


def duration(start: str | None, end: str | None) -> str:
    a, b = parse_iso(start), parse_iso(end)
    if a is None or b is None:
        return ""
    seconds = max(0, round((b - a).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def version_of(d: dict) -> str:
    """What a deployment brings: its tag, or for a rollback the revision (and tag) it restores."""
    if d.get("kind") == "rollback":
        restores = d.get("restores") or {"revision": d.get("rollback_to") or d.get("revision"), "tag": d.get("tag")}
        tag = restores.get("tag")
        return f"rollback to {restores.get('revision') or '?'}" + (f" ({tag})" if tag else "")
    return d.get("tag") or short_digest(d.get("digest") or "")
