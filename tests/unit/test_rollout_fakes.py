"""Fakes (no tests here) for the rollout worker's unit tests: a clock, a delaying queue, a small Container Apps
model with the service's traffic rules, and a probe whose answers come from per-image behaviours.

Only the pure core's unit tests use these; the adapters are tested against the real emulator.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from shared.domain.model import (
    AppState, Deployment, DeploymentEvent, ImagePush, Phase, PlannedDeployment, RolloutSettings,
    SmokeCheck, Strategy, Target,
)
from shared.domain.reachability import AppAccess
from shared.ports import REVISION_HAS_LABEL, AppInfo, PermanentAzureError, ProbeResult, RevisionInfo, TransientAzureError
from shared.services.rollout.messages import start_message

SUB = "00000000-0000-0000-0000-000000000000"
T0 = datetime(2025, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def monotonic(self) -> float:
        return (self.now - T0).total_seconds()


class DelayQueue:
    """RolloutQueue fake: messages become visible `delay_s` after they were sent (fake clock)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._heap: list[tuple[datetime, int, dict[str, Any]]] = []
        self._seq = itertools.count()
        self.sent: list[tuple[dict[str, Any], float]] = []

    def send(self, message: dict[str, Any], delay_s: float = 0.0) -> None:
        self.sent.append((dict(message), delay_s))
        due = self.clock() + timedelta(seconds=delay_s)
        heapq.heappush(self._heap, (due, next(self._seq), dict(message)))

    def pop(self) -> dict[str, Any] | None:
        """Next message; the clock jumps forward to its visibility time if needed."""
        if not self._heap:
            return None
        due, _, message = heapq.heappop(self._heap)
        if due > self.clock.now:
            self.clock.now = due
        return message

    def __len__(self) -> int:
        return len(self._heap)


@dataclass
class FakeRevision:
    name: str
    image: str
    created: datetime
    active: bool = True
    polls_to_ready: int = 0
    fails: bool = False
    labels: tuple[str, ...] = ()
    polls: int = 0

    @property
    def ready(self) -> bool:
        return self.active and not self.fails and self.polls >= self.polls_to_ready


@dataclass
class FakeApp:
    target: Target
    mode: str = "Multiple"
    revisions: list[FakeRevision] = field(default_factory=list)
    traffic: dict[str, int] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    busy_reads: int = 0  # get_app answers InProgress while > 0 (counts down per read)
    access: AppAccess = AppAccess()  # how the function reaches it (get_access)


class FakeApps:
    """ContainerAppsPort with the service's rules that matter here: pinned traffic keeps a new
    revision at 0 %, weights must sum to 100 over active revisions, a revision with traffic cannot be
    deactivated, Single mode sends everything to the newest revision."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.apps: dict[str, FakeApp] = {}
        self.calls: list[tuple] = []
        self.faults: list[Exception] = []  # raised (and consumed) by the next calls, in order
        self.fault_every: tuple[int, Exception] | None = None
        self.polls_to_ready = 0
        self.failing_images: set[str] = set()
        self.failure_text = "container exited with code 1"  # the provisioning error of a failing image
        self.behaviours: dict[str, dict[str, int]] = {}  # image -> {"status": n} | {"fail_after": n}
        self.requests: dict[str, int] = {}
        self.slow_traffic = 0  # set_traffic(wait_s=...) calls that answer "still running"
        self.busy_reads = 0  # get_app reads that say InProgress after such a call
        self.lost_traffic = 0  # of the slow calls, how many are never applied
        self._wrr: dict[str, dict[str, int]] = {}
        self._n = 0

    # ---- test setup
    def add_app(self, app: str, image: str = "reg.io/app@sha256:" + "0" * 64, mode: str = "Multiple",
                rg: str = "rg", extra: int = 0) -> Target:
        target = Target(SUB, rg, app)
        fa = FakeApp(target, mode)
        for i in range(extra):
            fa.revisions.append(FakeRevision(f"{app}--old{i}", f"reg.io/app@sha256:{i:064d}",
                                             self.clock() - timedelta(hours=10 - i), active=True))
        first = FakeRevision(f"{app}--first", image, self.clock() - timedelta(hours=1))
        fa.revisions.append(first)
        fa.traffic = {first.name: 100}
        self.apps[target.key] = fa
        return target

    def app(self, target: Target) -> FakeApp:
        return self.apps[target.key]

    def _maybe_fail(self, op: str) -> None:
        self._n += 1
        self.calls.append((op,))
        if self.faults:
            raise self.faults.pop(0)
        if self.fault_every and self._n % self.fault_every[0] == 0:
            raise self.fault_every[1]

    def _info(self, r: FakeRevision, fa: FakeApp) -> RevisionInfo:
        failed = r.fails and r.active
        return RevisionInfo(
            name=r.name, active=r.active, traffic_weight=self._weights(fa).get(r.name, 0),
            provisioning_state="Failed" if failed else ("Provisioned" if r.ready else "Provisioning"),
            running_state="Failed" if failed else ("Running" if r.ready else ("Stopped" if not r.active else "Processing")),
            health_state="Unhealthy" if failed else ("Healthy" if r.ready else "None"),
            fqdn=f"rev:{r.name}" if r.active else "", image=r.image, created=r.created, labels=r.labels,
            provisioning_error=self.failure_text if failed else "",
        )

    def _weights(self, fa: FakeApp) -> dict[str, int]:
        if fa.mode == "Single":
            ready = [r for r in fa.revisions if r.active]
            return {ready[-1].name: 100} if ready else {}
        return dict(fa.traffic)

    # ---- port
    def get_app(self, target: Target) -> AppInfo:
        self._maybe_fail("get_app")
        fa = self.apps.get(target.key)
        if fa is None:
            raise PermanentAzureError(f"app {target.app} not found", 404, "ResourceNotFound")
        state = "InProgress" if fa.busy_reads > 0 else "Succeeded"
        fa.busy_reads = max(fa.busy_reads - 1, 0)
        return AppInfo(
            target=target, revisions_mode=fa.mode, traffic=self._weights(fa), fqdn=f"app:{target.app}",
            latest_revision=fa.revisions[-1].name, tags=dict(fa.tags),
            images={target.app: fa.revisions[-1].image},
            revisions=tuple(self._info(r, fa) for r in fa.revisions), provisioning_state=state,
        )

    def get_revision(self, target: Target, revision: str) -> RevisionInfo | None:
        self._maybe_fail("get_revision")
        fa = self.app(target)
        for r in fa.revisions:
            if r.name == revision:
                r.polls += 1
                return self._info(r, fa)
        return None

    def create_revision(self, target, image, suffix, pin_traffic, switch_to_multiple=False, precondition=None) -> str:
        if precondition is not None:
            precondition()
        self._maybe_fail("create_revision")
        fa = self.app(target)
        name = f"{target.app}--{suffix}"
        self.calls.append(("create", name, dict(pin_traffic), switch_to_multiple))
        if any(r.name == name for r in fa.revisions):
            return name
        if fa.mode == "Single" and not switch_to_multiple:
            raise AssertionError("the worker must not create a revision in Single mode")
        if switch_to_multiple:
            fa.mode = "Multiple"
        self._check_table(fa, pin_traffic, new=name) if pin_traffic else None
        fa.revisions.append(FakeRevision(name, image, self.clock(), polls_to_ready=self.polls_to_ready,
                                         fails=image in self.failing_images))
        fa.traffic = dict(pin_traffic) if pin_traffic else {name: 100}
        return name

    def _check_table(self, fa: FakeApp, weights: dict[str, int], new: str = "") -> None:
        if sum(weights.values()) != 100:
            raise PermanentAzureError(f"weights sum to {sum(weights.values())}", 400, "InvalidTraffic")
        names = {r.name: r for r in fa.revisions}
        for name in weights:
            if name != new and (name not in names or not names[name].active):
                raise PermanentAzureError(f"revision {name} is not active", 400, "RevisionNotActive")

    def set_traffic(self, target: Target, weights: dict[str, int], wait_s: float | None = None,
                    precondition=None) -> bool:
        if precondition is not None:
            precondition()
        """`slow_traffic` calls with a `wait_s` report the operation still running (False): the
        app then reads InProgress for `busy_reads` get_app calls; `lost_traffic` of them are never
        applied (the operation failed), like a PATCH whose LRO ended badly."""
        self._maybe_fail("set_traffic")
        fa = self.app(target)
        if fa.busy_reads > 0:
            raise TransientAzureError(f"another operation is in progress on {target.app}")
        self._check_table(fa, weights)
        self.calls.append(("traffic", dict(weights)))
        if wait_s is not None and self.slow_traffic > 0:
            self.slow_traffic -= 1
            fa.busy_reads = self.busy_reads
            if self.lost_traffic > 0:
                self.lost_traffic -= 1
                return False
            fa.traffic = dict(weights)
            return False
        fa.traffic = dict(weights)
        return True

    def get_access(self, target: Target) -> AppAccess:
        self._maybe_fail("get_access")
        return self.app(target).access

    def set_revision_active(self, target: Target, revision: str, active: bool, precondition=None) -> None:
        if precondition is not None:
            precondition()
        self._maybe_fail("set_revision_active")
        fa = self.app(target)
        for r in fa.revisions:
            if r.name == revision:
                if not active and self._weights(fa).get(revision, 0) > 0:
                    raise PermanentAzureError(f"{revision} has traffic", 400, "RevisionHasTraffic")
                if not active and r.labels:
                    raise PermanentAzureError(f"{revision} has labels", 409, REVISION_HAS_LABEL)
                r.active = active
                if active:
                    r.polls = 0
                self.calls.append(("active", revision, active))
                return
        raise PermanentAzureError(f"revision {revision} not found", 404, "ResourceNotFound")

    # ---- probe
    def probe(self, base_url: str, check: Any) -> ProbeResult:
        """SmokeProbe: `rev:<name>` answers as its image's behaviour says; `app:<app>` picks a
        revision by weight (deterministic round robin), so a bad canary shows up at its share."""
        host = base_url.split("://", 1)[-1]
        kind, _, name = host.partition(":")
        if kind == "rev":
            rev = self._rev(name)
        else:
            fa = next(a for a in self.apps.values() if a.target.app == name)
            rev = self._pick(fa)
        if rev is None or not rev.active:
            return ProbeResult(check.name, base_url, False, None, 1.0, "connection refused")
        behaviour = self.behaviours.get(rev.image, {})
        rev_count = self.requests[rev.name] = self.requests.get(rev.name, 0) + 1
        status = 200
        if "fail_after" in behaviour and rev_count > behaviour["fail_after"]:
            status = 500
        elif "status" in behaviour:
            status = behaviour["status"]
        ok = status in check.expect_status
        return ProbeResult(check.name, base_url, ok, status, 3.0, "" if ok else f"HTTP {status}: boom")

    def _rev(self, name: str) -> FakeRevision | None:
        for fa in self.apps.values():
            for r in fa.revisions:
                if r.name == name:
                    return r
        return None

    def _pick(self, fa: FakeApp) -> FakeRevision | None:
        weights = self._weights(fa)
        state = self._wrr.setdefault(fa.target.key, {})
        if not weights:
            return None
        total, best = 0, None
        for name, w in weights.items():
            total += w
            state[name] = state.get(name, 0) + w
            if best is None or state[name] > state[best]:
                best = name
        state[best] -= total
        return self._rev(best)


class RecordingPublisher:
    def __init__(self, fail: bool = False) -> None:
        self.events: list[tuple[str, str, str]] = []
        self.fail = fail

    def publish(self, event_type: str, deployment: Deployment) -> None:
        self.events.append((event_type, deployment.id, deployment.phase.value))
        if self.fail:
            raise RuntimeError("event grid is down")


def push_deployment(target: Target, tag: str, digest_seed: str, at: datetime,
                    rollout: RolloutSettings | None = None, event_id: str = "") -> Deployment:
    digest = "sha256:" + (digest_seed * 64)[:64]
    push = ImagePush(
        event_id=event_id or f"evt-{tag}-{digest_seed}", event_source="/registries/reg",
        event_time=at, registry="reg.io", repository="app", tag=tag, digest=digest, actor="dev",
    )
    plan = PlannedDeployment(push, target, rule="test", source="rules",
                             rollout=rollout or RolloutSettings())
    return Deployment.from_plan(plan, at)


def record(store: Any, queue: Any, d: Deployment) -> None:
    """What intake does for an accepted push: state (pending, inflight) + deployment, then enqueue."""
    state = store.get_app_state(d.target) or AppState(target=d.target)
    from dataclasses import replace

    state = replace(state, pending_deployment_id=d.id,
                    inflight_digests=tuple(x for x in state.inflight_digests if x != d.digest) + (d.digest,))
    store.create_deployment(d, DeploymentEvent(d.id, d.created_at, Phase.QUEUED, "queued"), state)
    queue.send(start_message(d))


def fast(**changes: Any) -> RolloutSettings:
    """Settings for tests of other things than the warm-up: a refused connection counts as a failed
    attempt at once (tests/unit/test_revision_state.py and the scenarios cover the warm-up)."""
    base = dict(smoke=(SmokeCheck(backoff_s=1.0, retries=2),), deadline_s=600.0, ready_timeout_s=30.0,
                warmup_s=0.0)
    base.update(changes)
    return RolloutSettings(**base)


CANARY = dict(strategy=Strategy.CANARY, steps=(10, 50, 100), bake_s=30.0,
              verify=(SmokeCheck(name="app", consecutive_passes=10, retries=0),))
