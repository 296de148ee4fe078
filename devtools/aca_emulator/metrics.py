"""Azure Monitor metrics of the emulated apps: ``GET {app id}/providers/Microsoft.Insights/metrics``.

Computed from the requests the revision servers really answered (``record``, called by serving.py): count
by revision and status class, and response time. The answer has the shape ARM gives and azure-mgmt-monitor
parses: ``timespan``, ``interval`` (PT1M), one ``value`` entry per metric with ``timeseries`` (one per
combination of split dimensions, ``metadatavalues`` naming them in lower case as the service does) and a
data point per minute.

What the service does that the emulator keeps: ``Requests`` splits by ``revisionName``,
``statusCodeCategory`` and ``statusCode``; ``ResponseTime`` only by the status ones (a ``revisionName``
filter on it is refused); a split returns at most ``top`` series (default 10); only PT1M (or FULL) is
served. Unlike the service, a timespan finer than a minute is honoured exactly (Azure rounds to whole
minutes), so tests can judge windows of seconds; ``metrics_delay`` (config, seconds) holds back requests
answered more recently, as Azure's ingestion does (a minute or more there).
"""
from __future__ import annotations

import re
import time
from collections import deque
from datetime import datetime, timezone

from .errors import ArmError, bad_request

DIMENSIONS = {"Requests": ("revisionname", "podname", "statuscodecategory", "statuscode"),
              "ResponseTime": ("statuscodecategory", "statuscode")}
DISPLAY = {"Requests": ("Requests", "Count", "Requests processed"),
           "ResponseTime": ("Average Response Time (Preview)", "Milliseconds", "Average Response Time per Status Code")}
_TERM = re.compile(r"^\s*(?P<dim>\w+)\s+eq\s+'(?P<value>[^']*)'\s*$", re.IGNORECASE)


class RequestRecorder:
    """The answered requests, newest last (bounded: the oldest are forgotten first)."""

    def __init__(self, limit: int = 200_000):
        self.items: deque = deque(maxlen=limit)

    def record(self, app_key: str, revision: str, status: int, latency_ms: float) -> None:
        self.items.append((time.time(), app_key, revision, int(status), float(latency_ms)))

    def clear(self) -> None:
        self.items.clear()


def _parse_time(text: str) -> float:
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise bad_request("BadRequest", f"Invalid timespan: {text!r}") from None


def _filter(expr: str | None, metric: str) -> dict[str, str]:
    """``dim eq 'v'`` terms joined by ``and``: {dimension (lower case): value or '*'}."""
    if not expr:
        return {}
    out = {}
    for part in re.split(r"\s+and\s+", expr.strip(), flags=re.IGNORECASE):
        m = _TERM.match(part)
        if not m:
            raise bad_request("BadRequest", f"Invalid $filter: {expr!r}")
        dim = m["dim"].lower()
        if dim not in DIMENSIONS[metric]:
            raise bad_request("BadRequest", f"Metric: {metric} does not support requested dimension combination: "
                                            f"{dim}, supported ones are: {', '.join(DIMENSIONS[metric])}")
        out[dim] = m["value"]
    return out


def metrics_answer(svc, app: dict, app_key: str, resource_id: str, query: dict) -> dict:
    now = time.time()
    interval = (query.get("interval") or "PT1M").upper()
    if interval not in ("PT1M", "FULL"):
        raise bad_request("BadRequest", f"Invalid interval {interval}: the emulator serves PT1M (and FULL) only")
    span = query.get("timespan") or ""
    if "/" in span:
        start_text, end_text = span.split("/", 1)
        start, end = _parse_time(start_text), _parse_time(end_text)
    else:
        start, end = now - 3600, now
    if end <= start:
        raise bad_request("BadRequest", "Invalid timespan: its end must be after its start")
    names = [n.strip() for n in (query.get("metricnames") or "Requests").split(",") if n.strip()]
    for name in names:
        if name not in DIMENSIONS:
            raise ArmError(400, "BadRequest", f"Failed to find metric configuration for provider: Microsoft.App, "
                                              f"resource Type: containerApps, metric: {name}")
    try:
        top = int(query.get("top") or 10)
    except ValueError:
        raise bad_request("BadRequest", "top must be a number") from None
    visible_before = now - float(svc.config.get("metrics_delay") or 0.0)
    rows = [r for r in svc.request_metrics.items
            if r[1] == app_key and start <= r[0] < min(end, visible_before)]
    aggregations = [a.strip().lower() for a in (query.get("aggregation") or "").split(",") if a.strip()]
    value = []
    for name in names:
        dims = _filter(query.get("$filter"), name)
        value.append(_metric(resource_id, name, dims, rows, start, end, interval, top, aggregations))
    return {"cost": 0, "timespan": f"{_iso(start)}/{_iso(end)}", "interval": interval, "value": value,
            "namespace": "Microsoft.App/containerApps", "resourceregion": app.get("location") or "eastus"}


def _dims_of(row: tuple) -> dict[str, str]:
    _t, _app, revision, status, _lat = row
    return {"revisionname": revision, "podname": f"{revision}-replica", "statuscodecategory": f"{status // 100}xx",
            "statuscode": str(status)}


def _metric(resource_id: str, name: str, dims: dict, rows: list, start: float, end: float, interval: str,
            top: int, aggregations: list[str]) -> dict:
    split = [d for d, v in dims.items() if v == "*"]
    fixed = {d: v for d, v in dims.items() if v != "*"}
    groups: dict[tuple, list] = {}
    for row in rows:
        row_dims = _dims_of(row)
        if any(row_dims[d].lower() != v.lower() for d, v in fixed.items()):
            continue
        groups.setdefault(tuple(row_dims[d] for d in split), []).append(row)
    if not split and not groups:
        groups[()] = []
    # The service keeps the `top` series with the largest values.
    ordered = sorted(groups.items(), key=lambda kv: -len(kv[1]))[:max(top, 1)]
    display, unit, description = DISPLAY[name]
    return {
        "id": f"{resource_id}/providers/Microsoft.Insights/metrics/{name}", "type": "Microsoft.Insights/metrics",
        "name": {"value": name, "localizedValue": display}, "displayDescription": description, "unit": unit,
        "errorCode": "Success",
        "timeseries": [{"metadatavalues": [{"name": {"value": d, "localizedValue": d}, "value": v}
                                           for d, v in zip(split, key)],
                        "data": _points(name, group, start, end, interval, aggregations)}
                       for key, group in ordered],
    }


def _points(name: str, rows: list, start: float, end: float, interval: str, aggregations: list[str]) -> list:
    if interval == "FULL":
        buckets = [(start, rows)]
    else:
        first = start - start % 60
        buckets = [(t, [r for r in rows if t <= r[0] < t + 60]) for t in _minutes(first, end)]
    wanted = aggregations or (["total"] if name == "Requests" else ["average"])
    points = []
    for t, group in buckets:
        values = [1.0 for _ in group] if name == "Requests" else [r[4] for r in group]
        point: dict = {"timeStamp": _iso(t)}
        for agg in wanted:
            if agg == "count":
                point["count"] = float(len(group))
            elif agg == "total":
                point["total"] = float(sum(values))
            elif values and agg in ("average", "minimum", "maximum"):
                point[agg] = {"average": sum(values) / len(values), "minimum": min(values),
                              "maximum": max(values)}[agg]
        points.append(point)
    return points


def _minutes(first: float, end: float):
    t = first
    for _ in range(24 * 60):  # bounded: one day of minutes at most
        if t >= end:
            return
        yield t
        t += 60


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
