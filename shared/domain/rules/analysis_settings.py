"""The `analysis:` part of a rule's `rollout:` (docs/rules.md, "Canary analysis").

`analysis: false` turns off an analysis the defaults set; a mapping replaces the defaults' whole (a
rule never inherits half of another rule's thresholds).
"""

from __future__ import annotations

from typing import Any

from shared.domain.analysis import AnalysisSettings, InconclusivePolicy
from shared.domain.rules.fields import BadValue, FieldReader

ANALYSIS_KEYS = ("window", "ingestion_delay", "max_error_rate", "max_error_rate_increase",
                 "max_response_time_ms", "min_requests", "inconclusive", "windows", "failed_windows")


def analysis_settings(r: FieldReader, value: Any, field: str) -> AnalysisSettings | None:
    """One `analysis:` value -> settings (None: off). Every problem is reported before BadValue."""
    if value is False or value is None:
        return None
    if value is True:
        return AnalysisSettings()
    data = r.keys(value, field, ANALYSIS_KEYS)
    f = lambda key: f"{field}.{key}"  # noqa: E731
    get = r.attempt
    kw: dict[str, Any] = {}
    failed = object()
    if "window" in data:
        kw["window_s"] = get(lambda: r.duration(data["window"], f("window"), positive=True, hi=3600, node=data), failed)
    if "ingestion_delay" in data:
        kw["ingestion_delay_s"] = get(lambda: r.duration(data["ingestion_delay"], f("ingestion_delay"), positive=False,
                                                         hi=3600, node=data), failed)
    for key in ("max_error_rate", "max_error_rate_increase"):
        if key in data:
            kw[key] = get(lambda key=key: r.number(data[key], f(key), positive=False, hi=100, node=data), failed)
    if "max_response_time_ms" in data:
        kw["max_response_time_ms"] = get(lambda: r.number(data["max_response_time_ms"], f("max_response_time_ms"),
                                                          positive=True, hi=600_000, node=data), failed)
    if "min_requests" in data:
        kw["min_requests"] = get(lambda: r.integer(data["min_requests"], f("min_requests"), 1, 1_000_000, data), failed)
    for key in ("windows", "failed_windows"):
        if key in data:
            kw[key] = get(lambda key=key: r.integer(data[key], f(key), 1, 60, data), failed)
    if "inconclusive" in data:
        policy = data["inconclusive"]
        choices = [p.value for p in InconclusivePolicy]
        if policy not in choices:
            r.problem(f("inconclusive"), f"must be one of {', '.join(choices)}, not {policy!r}", data)
            kw["inconclusive"] = failed
        else:
            kw["inconclusive"] = InconclusivePolicy(policy)
    if any(v is failed for v in kw.values()):
        raise BadValue()
    return AnalysisSettings(**kw)
