"""In-memory fakes of the ports, for the pure core's unit tests (never for integration tests).

They keep the same contract as the Table/queue adapters (ETags, ConcurrencyError, idempotent
appends); `tests/contract` runs the same assertions against both.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from shared.domain.analysis import StatusCounts, WindowMetrics
from shared.domain.model import AppState, Deployment, DeploymentEvent, IgnoredEvent, Phase, Target
from shared.ports import ConcurrencyError, DeploymentQuery, Page


class MemoryStore:
    """DeploymentRepository + HistoryReader over dicts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._etags = itertools.count(1)
        self.states: dict[str, AppState] = {}
        self.deployments: dict[str, Deployment] = {}
        self.events: dict[str, list[DeploymentEvent]] = {}
        self.ignored: dict[str, IgnoredEvent] = {}

    # ---- write side
    def get_app_state(self, target: Target) -> AppState | None:
        with self._lock:
            state = self.states.get(target.key)
            return replace(state) if state else None

    def _put_state(self, state: AppState) -> AppState:
        current = self.states.get(state.target.key)
        if state.etag is None and current is not None:
            raise ConcurrencyError(f"app state for {state.target.app} already exists")
        if state.etag is not None and (current is None or current.etag != state.etag):
            raise ConcurrencyError(f"app state for {state.target.app} changed")
        stored = replace(state, etag=f'W/"{next(self._etags)}"')
        self.states[state.target.key] = stored
        return replace(stored)

    def save_app_state(self, state: AppState) -> AppState:
        with self._lock:
            return self._put_state(state)

    def create_deployment(
        self, deployment: Deployment, event: DeploymentEvent, state: AppState
    ) -> AppState:
        with self._lock:
            if deployment.id in self.deployments:
                raise ConcurrencyError(f"deployment {deployment.id} exists")
            stored = self._put_state(state)
            self.deployments[deployment.id] = replace(deployment, etag=f'W/"{next(self._etags)}"')
            self.events[deployment.id] = [replace(event, seq=1)]
            return stored

    def save_deployment(self, deployment: Deployment, *events: DeploymentEvent) -> Deployment:
        with self._lock:
            current = self.deployments.get(deployment.id)
            if deployment.etag is not None and (current is None or current.etag != deployment.etag):
                raise ConcurrencyError(f"deployment {deployment.id} changed")
            stored = replace(deployment, etag=f'W/"{next(self._etags)}"')
            self.deployments[deployment.id] = stored
            log = self.events.setdefault(deployment.id, [])
            for event in events:
                log.append(replace(event, seq=len(log) + 1))
            return replace(stored)

    def get_deployment(self, deployment_id: str, app: str | None = None) -> Deployment | None:
        with self._lock:
            found = self.deployments.get(deployment_id)
            return replace(found) if found else None

    def record_ignored(self, item: IgnoredEvent) -> None:
        with self._lock:
            self.ignored.setdefault(item.key, item)

    # ---- read side
    def list_deployments(self, query: DeploymentQuery) -> Page[Deployment]:
        with self._lock:
            items = sorted(self.deployments.values(), key=lambda d: (d.created_at, d.id), reverse=True)
        def keep(d: Deployment) -> bool:
            if query.app and d.target.app != query.app:
                return False
            if query.environment and d.environment != query.environment:
                return False
            if query.repository and d.repository != query.repository:
                return False
            if query.status == "active" and d.phase.terminal:
                return False
            if query.status and query.status != "active" and d.phase != Phase(query.status):
                return False
            if query.since and d.created_at < query.since:
                return False
            if query.until and d.created_at >= query.until:
                return False
            return True
        start = int(query.continuation or 0)
        kept = [d for d in items if keep(d)]
        page = kept[start : start + query.limit]
        more = start + query.limit < len(kept)
        return Page(page, str(start + query.limit) if more else None, round_trips=1)

    def list_events(self, deployment_id: str, app: str | None = None) -> list[DeploymentEvent]:
        with self._lock:
            return list(self.events.get(deployment_id, []))

    def list_apps(self) -> list[AppState]:
        with self._lock:
            return sorted((replace(s) for s in self.states.values()), key=lambda s: s.target.key)

    def purge_records(self, before: datetime, limit: int = 1000) -> int:
        """RecordRetention: dismissed events of days before `before`'s (no cross-app index here)."""
        day = before.astimezone(timezone.utc).date()
        with self._lock:
            old = [k for k, i in self.ignored.items() if i.at.astimezone(timezone.utc).date() < day][:limit]
            for key in old:
                del self.ignored[key]
        return len(old)

    def list_ignored(self, since: datetime, until: datetime, limit: int = 100) -> Page[IgnoredEvent]:
        with self._lock:
            items = sorted(
                (i for i in self.ignored.values() if since <= i.at < until),
                key=lambda i: i.at, reverse=True,
            )
        return Page(items[:limit], None, round_trips=1)


class MemoryQueue:
    """RolloutQueue fake: records messages with their delay; tests pop them in order."""

    def __init__(self) -> None:
        self.messages: list[tuple[dict[str, Any], float]] = []

    def send(self, message: dict[str, Any], delay_s: float = 0.0) -> None:
        self.messages.append((dict(message), delay_s))

    def pop(self) -> dict[str, Any] | None:
        return self.messages.pop(0)[0] if self.messages else None


class MemoryRequestMetrics:
    """RequestMetrics for the pure core's tests: each revision answers a steady number of requests per
    minute (some of them 5xx); a window's counts are that rate over the window. Records every read as
    (start, end) so a test can check that no window was read before it was complete."""

    def __init__(self) -> None:
        self.rates: dict[str, tuple[float, float]] = {}  # revision -> (requests/min, of which 5xx/min)
        self.response_time_ms: float | None = None
        self.reads: list[tuple[datetime, datetime]] = []

    def serve(self, revision: str, per_minute: float, errors_per_minute: float = 0.0) -> None:
        self.rates[revision] = (per_minute, errors_per_minute)

    def get_window_metrics(self, target: Target, start: datetime, end: datetime,
                           response_time: bool = False) -> WindowMetrics:
        self.reads.append((start, end))
        minutes = (end - start).total_seconds() / 60.0
        counts = {}
        for revision, (total, errors) in self.rates.items():
            bad = round(errors * minutes)
            counts[revision] = StatusCounts({"2xx": round(total * minutes) - bad, "5xx": bad})
        return WindowMetrics(start, end, counts, self.response_time_ms if response_time else None)
