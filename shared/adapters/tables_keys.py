"""The history table's key scheme: partitions, inverted ids/times, range bounds, continuation tokens,
and the filter that turns a DeploymentQuery into one range query.

Pure string arithmetic, no SDK: the layout itself is explained in `shared.adapters.tables`. Ids
start with the UTC time `YYYYmmddHHMMSS-`; "inverted" replaces each of those digits d by 9-d so
newer sorts first, and day partitions carry the inverted day so partition order is newest first too.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from shared.domain.model import TERMINAL_PHASES, Phase
from shared.ports import DeploymentQuery

APPS_PK = "apps"  # the apps registry partition
INDEX_DAY = "t|"  # cross-app time index: one partition per (inverted) UTC day
IGNORED_DAY = "x|"  # dismissed events: one partition per (inverted) UTC day

_ID_TIME = re.compile(r"(\d{14})(.*)", re.DOTALL)
_BAD_KEY = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")  # not allowed in PartitionKey/RowKey
_INVERT = str.maketrans("0123456789", "9876543210")


def inverted_id(deployment_id: str) -> str:
    """Newest first. Ids without the time prefix (not produced by this code) sort after all others."""
    match = _ID_TIME.fullmatch(deployment_id)
    if not match:
        return "~" + deployment_id
    return match.group(1).translate(_INVERT) + match.group(2)


def inverted_time(at: datetime) -> str:
    return f"{at.astimezone(timezone.utc):%Y%m%d%H%M%S}".translate(_INVERT)


def app_pk(app: str) -> str:
    """The app partition: every row of the Container Apps of that name (the source of truth)."""
    return "a|" + app.lower()


def state_rk(target_key: str) -> str:
    return "s|" + target_key


def deployment_rk(deployment_id: str) -> str:
    return "d|" + inverted_id(deployment_id)


def event_prefix(deployment_id: str) -> str:
    """RowKeys of a deployment's events are this prefix + a 6-digit sequence number."""
    return f"e|{inverted_id(deployment_id)}|"


def valid_key(text: str) -> bool:
    return not _BAD_KEY.search(text) and len(text) <= 255


def day_pk(prefix: str, inverted: str) -> str:
    """The day partition of a row whose RowKey starts with an inverted time (or '~': no time)."""
    return prefix + ("~" if inverted.startswith("~") else inverted[:8])


def index_key(deployment_id: str) -> tuple[str, str]:
    """(PartitionKey, RowKey) of a deployment's row in the cross-app time index."""
    inverted = inverted_id(deployment_id)
    return day_pk(INDEX_DAY, inverted), inverted


def _ceil_second(at: datetime) -> datetime:
    at = at.astimezone(timezone.utc)
    return at if at.microsecond == 0 else at.replace(microsecond=0) + timedelta(seconds=1)


def time_bounds(since: datetime | None, until: datetime | None) -> tuple[str, str]:
    """Bounds [lo, hi) on inverted-time keys for since <= time < until (one-second resolution,
    the resolution of the ids). '-' and '|' (after the time) sort below '~'."""
    lo = inverted_time(_ceil_second(until)) + "~" if until else ""
    hi = inverted_time(since.replace(microsecond=0)) + "~" if since else "~~~~"
    return lo, hi


def day_range(prefix: str, lo: str, hi: str) -> tuple[str, str]:
    """Inclusive PartitionKey bounds of the day partitions that can hold RowKeys in [lo, hi)."""
    first = prefix + (lo[:8] if lo and not lo.startswith("~") else "")
    last = prefix + (hi[:8] if not hi.startswith("~") else "~")
    return first, last


def older_days(prefix: str, before: datetime) -> tuple[str, str]:
    """Exclusive PartitionKey bounds of the day partitions of `prefix` for UTC days before
    `before`'s day (older days sort after it; the no-time partition `prefix~` is left out)."""
    return prefix + inverted_time(before)[:8], prefix + "~"


def encode_continuation(row_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": row_key}).encode()).decode().rstrip("=")


def decode_continuation(token: str) -> str:
    """The RowKey to continue after. ValueError when the token is not one we issued."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        after = json.loads(raw)["after"]
    except Exception as exc:  # noqa: BLE001 - any decoding failure means "not our token"
        raise ValueError("continuation token is not valid") from exc
    if not isinstance(after, str) or not after or len(after) > 1024:
        raise ValueError("continuation token is not valid")
    return after


def deployment_filter(query: DeploymentQuery) -> tuple[str, dict[str, Any]] | None:
    """(OData filter, parameters) of the rows answering `query`: one RowKey range in the app
    partition (`query.app`), or the same range over the day partitions of the cross-app index it
    spans; summary-field filters ride along. None when no row can match (an app name that cannot
    be a key). ValueError for a continuation token that does not belong to this query."""
    lo, hi = time_bounds(query.since, query.until)
    if query.app:
        lo, hi = "d|" + lo, ("d|" + hi if query.since else "d}")
    after = None
    if query.continuation:
        after = decode_continuation(query.continuation)
        if not lo <= after < hi or (not query.app and after.startswith("d|")):
            raise ValueError("continuation token does not belong to this query")
    if query.app:
        pk_clauses, params = ["PartitionKey eq @pk"], {"pk": app_pk(query.app)}
    else:
        first, last = day_range(INDEX_DAY, after or lo, hi)
        pk_clauses, params = ["PartitionKey ge @pklo", "PartitionKey le @pkhi"], {"pklo": first, "pkhi": last}
    clauses = pk_clauses + ["RowKey gt @lo" if after else "RowKey ge @lo", "RowKey lt @hi"]
    params.update(lo=after or lo, hi=hi)
    if query.environment:
        clauses.append("environment eq @env")
        params["env"] = query.environment
    if query.repository:
        clauses.append("repository eq @repo")
        params["repo"] = query.repository
    if query.status == "active":
        for n, phase in enumerate(sorted(p.value for p in TERMINAL_PHASES)):
            clauses.append(f"phase ne @t{n}")
            params[f"t{n}"] = phase
    elif query.status:
        clauses.append("phase eq @phase")
        params["phase"] = Phase(query.status).value
    if query.app and not valid_key(params["pk"]):
        return None
    return " and ".join(clauses), params
