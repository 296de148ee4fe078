"""The domain's nouns: what was pushed, where it goes, and a deployment's life.

Plain dataclasses so the pure core, the adapters and the tests share one vocabulary. Events in the
history are past-tense facts (`DeploymentEvent`); phases are typed (`Phase`, a `str` Enum so it
serialises as itself).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from shared.domain.analysis import AnalysisSettings
from shared.domain.controls import ReleaseControls
from shared.domain.credentials import redact_headers, redact_path
from shared.domain.progress import RolloutProgress
from shared.domain.progress_codec import progress_from_dict, progress_to_dict


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Phase(str, Enum):
    QUEUED = "queued"
    CREATING_REVISION = "creating_revision"
    WAITING_READY = "waiting_ready"
    SMOKE_TESTING = "smoke_testing"
    AWAITING_APPROVAL = "awaiting_approval"  # smoke-checked at 0 %; a person approves or rejects
    FROZEN = "frozen"  # a freeze window holds it; goes on when the window ends
    PAUSED = "paused"  # a person paused it; weights held until resumed or the deadline
    SHIFTING = "shifting"
    VERIFYING = "verifying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    SUPERSEDED = "superseded"
    SKIPPED = "skipped"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_PHASES

    def __str__(self) -> str:  # so f-strings print "queued", not "Phase.QUEUED"
        return self.value


TERMINAL_PHASES = frozenset(
    {Phase.SUCCEEDED, Phase.FAILED, Phase.ROLLED_BACK, Phase.SUPERSEDED, Phase.SKIPPED}
)


@dataclass(frozen=True)
class Target:
    """One Container App (and, for multi-container apps, the container to update)."""

    subscription_id: str
    resource_group: str
    app: str
    container: str | None = None

    @property
    def key(self) -> str:
        """Stable identity of the app, usable as a Table partition key ('/' is not allowed there)."""
        return f"{self.subscription_id}|{self.resource_group}|{self.app}".lower()

    @classmethod
    def from_key(cls, key: str, container: str | None = None) -> "Target":
        sub, rg, app = key.split("|")
        return cls(sub, rg, app, container)


@dataclass(frozen=True)
class ImagePush:
    """A validated `ImagePushed` event: what was pushed, by whom, through which event."""

    event_id: str
    event_source: str  # Event Grid `topic` / CloudEvents `source`: the registry's resource id
    event_time: datetime
    registry: str  # login server, e.g. myregistry.azurecr.io
    repository: str
    tag: str
    digest: str
    media_type: str = ""
    actor: str = ""
    schema: str = "eventgrid"  # or "cloudevents"

    @property
    def image(self) -> str:
        """What gets deployed: pinned by digest, immune to the tag moving later."""
        return f"{self.registry}/{self.repository}@{self.digest}"


@dataclass(frozen=True)
class SmokeCheck:
    """One HTTP check against a revision's (or the app's) own URL."""

    name: str = "default"
    method: str = "GET"
    path: str = "/"
    expect_status: tuple[int, ...] = (200,)
    body_contains: str | None = None
    json_field: str | None = None  # dotted path, e.g. "status" or "build.version"
    json_equals: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    timeout_s: float = 5.0
    max_latency_ms: float | None = None
    retries: int = 3
    backoff_s: float = 1.0
    consecutive_passes: int = 1


class Strategy(str, Enum):
    ALL_AT_ONCE = "all-at-once"
    CANARY = "canary"
    BLUE_GREEN = "blue-green"  # labels: tested on its candidate label's URL, then the production label moves

    def __str__(self) -> str:
        return self.value


class DriftPolicy(str, Enum):
    """What the reconciler does when the app serves something other than the live record."""

    RECORD = "record"  # record the drift (history, API, CLI, page) and leave the app alone
    REPAIR = "repair"  # also put the recorded live revision back, when it is healthy

    def __str__(self) -> str:
        return self.value


class CheckMode(str, Enum):
    """Whether a rollout checks its revision over HTTP (`shared.domain.reachability`)."""

    AUTO = "auto"  # HTTP checks; an app they cannot reach fails before a revision is created
    HTTP = "http"  # HTTP checks, even when the app looks unreachable from the function
    NONE = "none"  # no HTTP checks: the revision's health state and the verify window decide

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class RolloutSettings:
    """How a rule wants its targets rolled out (validated at rules load, consumed by the rollout)."""

    strategy: Strategy = Strategy.ALL_AT_ONCE
    steps: tuple[int, ...] = (100,)  # traffic % to the new revision at each step; ends at 100
    bake_s: float = 0.0  # wait between canary steps
    ready_timeout_s: float = 300.0  # revision must be provisioned/running/healthy by then
    keep_previous: int = 1  # previous revisions kept active for instant rollback
    allow_single_mode_switch: bool = False  # may switch a Single-mode app to Multiple
    smoke: tuple[SmokeCheck, ...] = (SmokeCheck(),)  # against the revision's own URL
    verify: tuple[SmokeCheck, ...] = ()  # against the app URL at each step / after the shift; empty: the smoke checks again
    deadline_s: float = 1800.0  # a rollout not finished by then is failed by the sweeper
    drift: DriftPolicy = DriftPolicy.RECORD  # once live: what the drift reconciler does
    analysis: AnalysisSettings | None = None  # judge each traffic step by Azure Monitor's request metrics
    controls: ReleaseControls = field(default_factory=ReleaseControls)  # approval, freezes, promotion, chat
    # Smoke checks wait this long for a revision's first answer (a scale-from-zero start takes
    # 20-30 s); failures that look like a cold start within it are recorded as warming up.
    warmup_s: float = 45.0
    checks: CheckMode = CheckMode.AUTO
    # Blue/green (strategy blue-green, or any app in the service's Labels revision mode): the labels used.
    label: str = "green"  # the candidate: on the new revision while its smoke checks run on the label's URL
    production_label: str = "blue"  # moves to the new revision once it passed (Labels mode: carries the traffic)
    previous_label: str = "previous"  # stays on the revision production left, for an instant rollback

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        data = asdict(replace(self, controls=ReleaseControls()))
        data["strategy"] = self.strategy.value
        data["drift"] = self.drift.value
        data["analysis"] = self.analysis.to_dict() if self.analysis else None
        data["controls"] = self.controls.to_dict()
        data["checks"] = self.checks.value
        # Every record carries this: a credential that got past the rules loader is masked here.
        for key in ("smoke", "verify"):
            for check in data[key]:
                check["path"] = redact_path(check["path"])
                check["headers"] = redact_headers(check["headers"])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "RolloutSettings":
        if not data:
            return cls()
        data = dict(data)
        data["strategy"] = Strategy(data.get("strategy", Strategy.ALL_AT_ONCE.value))
        data["steps"] = tuple(data.get("steps", (100,)))
        data["drift"] = DriftPolicy(data.get("drift") or DriftPolicy.RECORD.value)
        data["analysis"] = AnalysisSettings.from_dict(data.get("analysis"))
        data["controls"] = ReleaseControls.from_dict(data.get("controls"))
        data["checks"] = CheckMode(data.get("checks") or CheckMode.AUTO.value)
        for key in ("smoke", "verify"):
            if key in data:
                data[key] = tuple(_smoke_from_dict(item) for item in data[key])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def _smoke_from_dict(item: dict[str, Any] | SmokeCheck) -> SmokeCheck:
    if isinstance(item, SmokeCheck):
        return item
    item = dict(item)
    item["expect_status"] = tuple(item.get("expect_status", (200,)))
    item["headers"] = tuple(tuple(pair) for pair in item.get("headers", ()))
    known = {f for f in SmokeCheck.__dataclass_fields__}
    return SmokeCheck(**{k: v for k, v in item.items() if k in known})


class DeploymentKind(str, Enum):
    PUSH = "push"  # from an ImagePushed event
    ROLLBACK = "rollback"  # manual rollback through the API/CLI

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class PlannedDeployment:
    """Output of planning: one push going to one target under one rule."""

    push: ImagePush
    target: Target
    rule: str  # rule name ("convention" for zero-config, "tags:<app>" for resource tags)
    source: str  # "rules" | "tags" | "convention"
    environment: str = ""
    version_key: str = ""  # sortable key of the tag's version under the rule's policy ("" = none)
    allow_downgrade: bool = False
    rollout: RolloutSettings = field(default_factory=RolloutSettings)

    @property
    def deployment_id(self) -> str:
        """Deterministic: the same event for the same target always names the same deployment,
        so redeliveries (at-least-once) collapse into one. Time-prefixed so ids sort by push time
        and the history index's day partition can be derived from the id alone."""
        basis = f"{self.target.key}|{self.push.registry}|{self.push.repository}|{self.push.digest}|{self.push.tag}|{self.push.event_id}"
        digest = hashlib.sha256(basis.encode()).hexdigest()[:10]
        return f"{self.push.event_time.astimezone(timezone.utc):%Y%m%d%H%M%S}-{digest}"


@dataclass
class Deployment:
    """A deployment record: mutable through the rollout, persisted after every step."""

    id: str
    target: Target
    kind: DeploymentKind
    phase: Phase
    created_at: datetime
    updated_at: datetime
    image: str  # registry/repository@digest
    repository: str = ""
    tag: str = ""
    digest: str = ""
    registry: str = ""
    environment: str = ""
    rule: str = ""
    source: str = ""
    version_key: str = ""
    pushed_by: str = ""
    event_id: str = ""
    reason: str = ""  # why it ended as it did (or why it is waiting)
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
    revision: str = ""  # the new revision's name, known before it is created
    previous_traffic: dict[str, int] = field(default_factory=dict)  # what served before
    rollback_to: str = ""  # for kind=rollback: the revision to return to
    step: int = 0  # index into rollout.steps / smoke pass counter, as the phase needs
    attempts: int = 0  # transient-error retries spent in the current phase
    deadline: datetime | None = None
    progress: RolloutProgress = field(default_factory=RolloutProgress)  # what the steps recorded
    allow_downgrade: bool = False  # the rule accepts an older version than the app's newest
    # Keys of the stored `data` document that this release does not read (a newer release's):
    # written back as they were. The rollout never reads them; its facts are `progress`.
    data: dict[str, Any] = field(default_factory=dict)
    etag: str | None = None  # set by the store; a save with an etag is conditional (If-Match)

    @classmethod
    def from_plan(cls, plan: PlannedDeployment, now: datetime | None = None) -> "Deployment":
        now = now or utcnow()
        return cls(
            id=plan.deployment_id,
            target=plan.target,
            kind=DeploymentKind.PUSH,
            phase=Phase.QUEUED,
            created_at=now,
            updated_at=now,
            image=plan.push.image,
            repository=plan.push.repository,
            tag=plan.push.tag,
            digest=plan.push.digest,
            registry=plan.push.registry,
            environment=plan.environment,
            rule=plan.rule,
            source=plan.source,
            version_key=plan.version_key,
            pushed_by=plan.push.actor,
            event_id=plan.push.event_id,
            rollout=plan.rollout,
            allow_downgrade=plan.allow_downgrade,
        )

    def evolve(self, **changes: Any) -> "Deployment":
        return replace(self, **changes)

    def with_progress(self, **changes: Any) -> "Deployment":
        """This deployment with some progress facts changed (an unknown name raises TypeError)."""
        return replace(self, progress=replace(self.progress, **changes))


@dataclass(frozen=True)
class DeploymentEvent:
    """One line of a deployment's story: a phase change or an observation, with time and reason."""

    deployment_id: str
    at: datetime
    phase: Phase
    message: str
    data: dict[str, Any] = field(default_factory=dict)  # e.g. smoke attempt: status, latency_ms
    seq: int = 0  # assigned by the store, in order of recording


@dataclass
class AppState:
    """Per-app coordination and 'what is live' record. Written with ETags (optimistic concurrency)."""

    target: Target
    live_deployment_id: str = ""
    live_revision: str = ""
    live_image: str = ""
    live_digest: str = ""
    live_tag: str = ""
    live_since: datetime | None = None
    environment: str = ""
    active_deployment_id: str = ""  # holds the app: the rollout allowed to change it now
    pending_deployment_id: str = ""  # newest queued push waiting for the app
    inflight_digests: tuple[str, ...] = ()  # digests queued or rolling out (for dedupe)
    # The version keys of the live, pending and active deployments: with their ids they rank pushes
    # (shared.domain.precedence) without reading those deployments.
    live_version_key: str = ""
    pending_version_key: str = ""
    active_version_key: str = ""
    latest_version_key: str = ""  # the newest version accepted (shown; decisions use the ranks)
    drift: str = ""  # signature of the drift seen now ("" = serving what the history says)
    drift_detail: str = ""  # what serves and what was expected, for people
    drift_since: datetime | None = None
    last_deployment_id: str = ""
    last_phase: str = ""
    updated_at: datetime | None = None
    etag: str | None = None  # set by the store; None = not stored yet


@dataclass(frozen=True)
class IgnoredEvent:
    """An event acknowledged but not deployed: ignored (not for us) or rejected (bad/untrusted)."""

    at: datetime
    outcome: str  # "ignored" | "rejected" | "skipped"
    reason: str
    event_id: str = ""
    event_type: str = ""
    registry: str = ""
    repository: str = ""
    tag: str = ""
    digest: str = ""
    app: str = ""

    @property
    def key(self) -> str:
        """Deterministic, so a redelivered bad event is recorded once, not once per delivery."""
        basis = f"{self.event_id}|{self.outcome}|{self.app}|{self.reason}"
        return hashlib.sha256(basis.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- serialisation
# One JSON-safe shape for a Deployment, shared by the Table adapter, queue messages and the API.


def _dt(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value else None


def _parse_dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def deployment_to_dict(d: Deployment) -> dict[str, Any]:
    return {
        "id": d.id,
        "subscription_id": d.target.subscription_id,
        "resource_group": d.target.resource_group,
        "app": d.target.app,
        "container": d.target.container,
        "kind": d.kind.value,
        "phase": d.phase.value,
        "created_at": _dt(d.created_at),
        "updated_at": _dt(d.updated_at),
        "image": d.image,
        "repository": d.repository,
        "tag": d.tag,
        "digest": d.digest,
        "registry": d.registry,
        "environment": d.environment,
        "rule": d.rule,
        "source": d.source,
        "version_key": d.version_key,
        "pushed_by": d.pushed_by,
        "event_id": d.event_id,
        "reason": d.reason,
        "rollout": d.rollout.to_dict(),
        "revision": d.revision,
        "previous_traffic": dict(d.previous_traffic),
        "rollback_to": d.rollback_to,
        "step": d.step,
        "attempts": d.attempts,
        "deadline": _dt(d.deadline),
        "data": progress_to_dict(d.progress, d.allow_downgrade, d.data),
    }


def deployment_from_dict(data: dict[str, Any], etag: str | None = None) -> Deployment:
    progress, allow_downgrade, extra = progress_from_dict(data.get("data"))
    return Deployment(
        id=data["id"],
        target=Target(
            data["subscription_id"], data["resource_group"], data["app"], data.get("container")
        ),
        kind=DeploymentKind(data.get("kind", "push")),
        phase=Phase(data["phase"]),
        created_at=_parse_dt(data["created_at"]) or utcnow(),
        updated_at=_parse_dt(data.get("updated_at")) or utcnow(),
        image=data.get("image", ""),
        repository=data.get("repository", ""),
        tag=data.get("tag", ""),
        digest=data.get("digest", ""),
        registry=data.get("registry", ""),
        environment=data.get("environment", ""),
        rule=data.get("rule", ""),
        source=data.get("source", ""),
        version_key=data.get("version_key", ""),
        pushed_by=data.get("pushed_by", ""),
        event_id=data.get("event_id", ""),
        reason=data.get("reason", ""),
        rollout=RolloutSettings.from_dict(data.get("rollout")),
        revision=data.get("revision", ""),
        previous_traffic={k: int(v) for k, v in (data.get("previous_traffic") or {}).items()},
        rollback_to=data.get("rollback_to", ""),
        step=int(data.get("step", 0)),
        attempts=int(data.get("attempts", 0)),
        deadline=_parse_dt(data.get("deadline")),
        progress=progress,
        allow_downgrade=allow_downgrade,
        data=extra,
        etag=etag,
    )


def event_to_dict(e: DeploymentEvent) -> dict[str, Any]:
    return {
        "deployment_id": e.deployment_id,
        "seq": e.seq,
        "at": _dt(e.at),
        "phase": e.phase.value,
        "message": e.message,
        "data": dict(e.data),
    }

