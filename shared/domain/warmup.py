"""The smoke checks' warm-up: time for a revision's first answer, apart from per-check retries (pure).

A revision with `minReplicas: 0` (or one the service scaled to zero) starts a replica on its first
request, which then takes 20-30 s; a check with a 5 s time-out and 3 retries failed a healthy app.
The first attempts of a smoke run that get no answer (time-out, refused or dropped connection) or the
edge's 504 while the replica starts are "warming up" until the rule's `warmup` has passed or the first
answer came: the service holds a request to a scaled-to-zero app until a replica is ready (its
readiness probe gates routing), so a cold start shows as a slow answer, not as an error status. Any
other answer (a 500, a 503 from the app's own health endpoint, a wrong body) is the app's, and counts
as a failed attempt at once.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from shared.domain.model import SmokeCheck
from shared.domain.progress import CheckProgress

COLD_START_STATUSES = frozenset({504})
MIN_DELAY_S, MAX_DELAY_S = 1.0, 5.0


def looks_cold(status: int | None) -> bool:
    return status is None or status in COLD_START_STATUSES


def begin(progress: CheckProgress, warmup_s: float, now: datetime) -> CheckProgress:
    """A smoke run's progress with its warm-up started (once: at the run's first attempt)."""
    if warmup_s <= 0 or progress.warmed or progress.warm_until is not None or progress.run.attempts:
        return progress
    return replace(progress, warm_until=now + timedelta(seconds=warmup_s))


def warming(progress: CheckProgress, ok: bool, status: int | None, now: datetime) -> bool:
    """Whether a failed attempt is the warm-up's (not counted against the check's retries)."""
    return (not ok and not progress.warmed and progress.warm_until is not None
            and now < progress.warm_until and looks_cold(status))


def after(progress: CheckProgress, ok: bool, status: int | None, now: datetime) -> CheckProgress:
    """The progress after one attempt, as far as the warm-up goes (the run is the caller's)."""
    if warming(progress, ok, status, now):
        return replace(progress, warming=progress.warming + 1)
    if not progress.warmed and not looks_cold(status):
        return replace(progress, warmed=True)  # an answer, good or bad: the revision is up
    return progress


def delay_s(check: SmokeCheck, progress: CheckProgress, now: datetime) -> float:
    """The wait before the next warm-up attempt: the check's back-off, within 1-5 s, never past the warm-up."""
    left = (progress.warm_until - now).total_seconds() if progress.warm_until else 0.0
    return max(min(max(check.backoff_s, MIN_DELAY_S), MAX_DELAY_S, left), 0.0)
