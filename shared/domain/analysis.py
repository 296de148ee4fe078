"""Canary analysis: judge a traffic step by the request metrics Azure Monitor publishes. Pure.

Container Apps publishes `Requests` per revision (dimensions `revisionName`, `statusCodeCategory`) at a
one-minute grain, and `ResponseTime` (an *average*, split only by status code: not per revision, and no
percentile). A window of the canary step is judged once it is complete *and* Azure has had time to ingest
it (`ingestion_delay_s`, a minute or more in Azure): earlier, the numbers would be partial and a healthy
canary could look idle or a broken one clean.

One window's verdict (`judge`): FAIL when the new revision's 5xx rate is above `max_error_rate`, or more
than `max_error_rate_increase` points above the baseline's (the revisions that served before, in the same
window), or the app's average response time is above `max_response_time_ms`; INCONCLUSIVE when the new
revision answered fewer than `min_requests` requests (the `inconclusive` policy then waits for the next
window, passes or fails); PASS otherwise. A step passes after `windows` passing windows and is rolled back
after `failed_windows` failing ones (`after_window`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Mapping

GRAIN_S = 60.0  # Azure Monitor's Container Apps metrics grain (PT1M)


class InconclusivePolicy(str, Enum):
    """What a window with too few requests to judge means."""

    WAIT = "wait"  # judge the next window instead (bounded by the rollout's deadline)
    PASS = "pass"  # count it as passed (low-traffic apps)
    FAIL = "fail"  # count it as failed (traffic is expected: none is a problem)

    def __str__(self) -> str:
        return self.value


class WindowVerdict(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"

    def __str__(self) -> str:
        return self.value


class StepDecision(str, Enum):
    NEXT_WINDOW = "next_window"  # judge another window
    PASSED = "passed"  # the traffic step may proceed
    FAILED = "failed"  # roll back

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class AnalysisSettings:
    """A rule's `rollout.analysis` (validated at rules load; docs/rules.md)."""

    window_s: float = 60.0  # length of one judged window
    ingestion_delay_s: float = 150.0  # wait after a window ends before its metrics are complete
    max_error_rate: float = 1.0  # percent of the new revision's requests answered 5xx
    max_error_rate_increase: float | None = None  # points above the baseline's 5xx rate
    max_response_time_ms: float | None = None  # the app's average ResponseTime (Azure: no per-revision split)
    min_requests: int = 20  # fewer requests to the new revision: the window is inconclusive
    inconclusive: InconclusivePolicy = InconclusivePolicy.WAIT
    windows: int = 1  # passing windows needed per traffic step
    failed_windows: int = 1  # failing windows before the rollback

    def to_dict(self) -> dict:
        from dataclasses import asdict

        data = asdict(self)
        data["inconclusive"] = self.inconclusive.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping | None) -> "AnalysisSettings | None":
        if not data:
            return None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "inconclusive" in known:
            known["inconclusive"] = InconclusivePolicy(known["inconclusive"])
        return cls(**known)


@dataclass(frozen=True)
class StatusCounts:
    """Requests one revision (or a group of them) answered in a window, by status class ('2xx', '5xx'...)."""

    by_class: Mapping[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_class.values())

    @property
    def errors(self) -> int:
        return int(self.by_class.get("5xx", 0))

    @property
    def error_rate(self) -> float | None:
        """Percent of requests answered 5xx; None without requests."""
        return 100.0 * self.errors / self.total if self.total else None

    def plus(self, other: "StatusCounts") -> "StatusCounts":
        merged = dict(self.by_class)
        for key, n in other.by_class.items():
            merged[key] = merged.get(key, 0) + n
        return StatusCounts(merged)


@dataclass(frozen=True)
class WindowMetrics:
    """What Azure Monitor said about one window."""

    start: datetime
    end: datetime
    revisions: Mapping[str, StatusCounts]  # by revision name
    response_time_ms: float | None = None  # the app's average, when asked for and published

    def of(self, names) -> StatusCounts:
        out = StatusCounts()
        for name in names:
            out = out.plus(self.revisions.get(name, StatusCounts()))
        return out


@dataclass(frozen=True)
class Judgement:
    verdict: WindowVerdict
    reason: str
    canary: StatusCounts
    baseline: StatusCounts
    response_time_ms: float | None

    def numbers(self) -> dict:
        """The figures behind the verdict, for the history line's fields."""
        out = {"requests": self.canary.total, "errors_5xx": self.canary.errors,
               "error_rate": _round(self.canary.error_rate),
               "baseline_requests": self.baseline.total, "baseline_error_rate": _round(self.baseline.error_rate)}
        if self.response_time_ms is not None:
            out["response_time_ms"] = round(self.response_time_ms, 1)
        return out


def judge(s: AnalysisSettings, m: WindowMetrics, revision: str, baseline: tuple[str, ...]) -> Judgement:
    canary = m.of([revision])
    base = m.of([b for b in baseline if b != revision])
    j = lambda v, why: Judgement(v, why, canary, base, m.response_time_ms)  # noqa: E731
    if canary.total < s.min_requests:
        return j(WindowVerdict.INCONCLUSIVE,
                 f"{canary.total} request(s) to {revision}, fewer than the {s.min_requests} needed to judge")
    rate = canary.error_rate or 0.0
    problems = []
    if rate > s.max_error_rate:
        problems.append(f"5xx rate {rate:.2f} % is above {s.max_error_rate:g} %")
    if s.max_error_rate_increase is not None and base.total >= s.min_requests:
        base_rate = base.error_rate or 0.0
        if rate - base_rate > s.max_error_rate_increase:
            problems.append(f"5xx rate {rate:.2f} % is {rate - base_rate:.2f} points above the baseline's "
                            f"{base_rate:.2f} % (at most {s.max_error_rate_increase:g})")
    if s.max_response_time_ms is not None and m.response_time_ms is not None \
            and m.response_time_ms > s.max_response_time_ms:
        problems.append(f"average response time {m.response_time_ms:.0f} ms is above {s.max_response_time_ms:g} ms")
    if problems:
        return j(WindowVerdict.FAIL, "; ".join(problems))
    return j(WindowVerdict.PASS, f"5xx rate {rate:.2f} % over {canary.total} request(s)")


@dataclass(frozen=True)
class AnalysisRun:
    """Progress of one traffic step's analysis: the window under way and the verdicts so far."""

    window_start: datetime
    passed: int = 0
    failed: int = 0
    inconclusive: int = 0
    done: bool = False  # the step's analysis passed (its verify checks come next)

    def window_end(self, s: AnalysisSettings) -> datetime:
        return self.window_start + timedelta(seconds=s.window_s)

    def ready_at(self, s: AnalysisSettings) -> datetime:
        """When the window's metrics may be read: its end plus the ingestion delay."""
        return self.window_end(s) + timedelta(seconds=s.ingestion_delay_s)

    def to_dict(self) -> dict:
        return {"window_start": self.window_start.isoformat(), "passed": self.passed, "failed": self.failed,
                "inconclusive": self.inconclusive, "done": self.done}

    @classmethod
    def from_dict(cls, data: Mapping | None) -> "AnalysisRun | None":
        if not data or not data.get("window_start"):
            return None
        try:
            return cls(datetime.fromisoformat(str(data["window_start"])), int(data.get("passed", 0)),
                       int(data.get("failed", 0)), int(data.get("inconclusive", 0)), bool(data.get("done")))
        except (TypeError, ValueError):
            return None  # a fact that does not read is absent (as the progress codec treats them)


def first_window(s: AnalysisSettings, traffic_at: datetime) -> AnalysisRun:
    """The first window after the traffic change. Minute-long windows start on a minute boundary, as
    Azure's PT1M points do: a window that began mid-minute would mix in requests from before the change."""
    return AnalysisRun(window_start=align(s, traffic_at))


def align(s: AnalysisSettings, at: datetime) -> datetime:
    if s.window_s % GRAIN_S:
        return at
    floor = at.replace(second=0, microsecond=0)
    return floor if floor == at else floor + timedelta(seconds=GRAIN_S)


def after_window(s: AnalysisSettings, run: AnalysisRun, verdict: WindowVerdict) -> tuple[AnalysisRun, StepDecision]:
    """Count one judged window and decide what the step does next."""
    if verdict == WindowVerdict.INCONCLUSIVE:
        if s.inconclusive == InconclusivePolicy.PASS:
            verdict = WindowVerdict.PASS
        elif s.inconclusive == InconclusivePolicy.FAIL:
            verdict = WindowVerdict.FAIL
    run = replace(run, window_start=run.window_end(s),
                  passed=run.passed + (verdict == WindowVerdict.PASS),
                  failed=run.failed + (verdict == WindowVerdict.FAIL),
                  inconclusive=run.inconclusive + (verdict == WindowVerdict.INCONCLUSIVE))
    if run.failed >= s.failed_windows:
        return run, StepDecision.FAILED
    if run.passed >= s.windows:
        return replace(run, done=True), StepDecision.PASSED
    return run, StepDecision.NEXT_WINDOW


def worst_case_s(s: AnalysisSettings) -> float:
    """How long a step's analysis takes when every window is judged (passed or failed) in turn: the
    windows the step may need plus one minute of alignment plus the ingestion delay."""
    windows = s.windows + s.failed_windows - 1
    return windows * s.window_s + (GRAIN_S if not s.window_s % GRAIN_S else 0.0) + s.ingestion_delay_s


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 2)
