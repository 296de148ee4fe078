"""Small interfaces between the pure core and the outside world.

Each has an Azure adapter in `shared.adapters` and an in-memory fake in `shared.adapters.memory`
for the pure core's unit tests. Integration tests run the real adapters against Azurite and the
Container Apps emulator; the `tests/contract` suite runs both the fake and the real store through
the same assertions so the fake cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Generic, Mapping, Protocol, TypeVar

from shared.domain.analysis import WindowMetrics
from shared.domain.model import AppState, Deployment, DeploymentEvent, IgnoredEvent, SmokeCheck, Target
from shared.domain.reachability import AppAccess
from shared.domain.revision_state import Assessment, Readiness, assess

T = TypeVar("T")


class ConcurrencyError(Exception):
    """A conditional write lost a race (ETag mismatch or the row exists). Callers re-read and decide again."""


# The two ways a Container Apps call fails that the worker treats differently. Adapters raise them
# `from` the SDK's exception; the worker never imports an SDK.
class TransientAzureError(Exception):
    """Worth retrying later (429, 5xx, 409 operation in progress, dropped connection)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentAzureError(Exception):
    """Retrying cannot help (400, 403, 404): the deployment fails with the service's message."""

    def __init__(self, message: str, status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


# `PermanentAzureError.code` of a deactivation the adapter refuses because a traffic label points at
# the revision: the rollout leaves such a revision active (a label survives every rollout).
REVISION_HAS_LABEL = "RevisionHasLabel"


# --------------------------------------------------------------------------- history (Tables)


class DeploymentRepository(Protocol):
    """Write side of the history. Every method is idempotent under redelivery."""

    def get_app_state(self, target: Target) -> AppState | None: ...

    def create_deployment(
        self, deployment: Deployment, event: DeploymentEvent, state: AppState
    ) -> AppState:
        """Atomically (one Table transaction): insert the deployment and its first event and write
        the app state (If-Match `state.etag`, or insert when `state.etag` is None).
        Returns the stored state with its new etag. Raises ConcurrencyError when the state changed
        or the deployment id already exists."""
        ...

    def save_app_state(self, state: AppState) -> AppState:
        """Conditional write (If-Match etag / insert). Raises ConcurrencyError on a lost race."""
        ...

    def save_deployment(self, deployment: Deployment, *events: DeploymentEvent) -> Deployment:
        """Write the deployment and append `events` (seq assigned in order) in one transaction,
        then refresh its index rows. When `deployment.etag` is set the write is conditional
        (If-Match) and raises ConcurrencyError if the row changed since it was read (two workers
        on one deployment: the loser drops its message). Returns the deployment with its new etag."""
        ...

    # `app`: the Container App name when the caller knows it (from the message's target, the app
    # state...). The Table store then reads the record with one point read, and finds a deployment
    # its cross-app index does not list yet (see tables.py).
    def get_deployment(self, deployment_id: str, app: str | None = None) -> Deployment | None: ...

    def record_ignored(self, item: IgnoredEvent) -> None:
        """Record an ignored/rejected/skipped event (idempotent on `item.key`)."""
        ...


@dataclass(frozen=True)
class DeploymentQuery:
    app: str | None = None
    environment: str | None = None
    status: str | None = None  # a Phase value, or "active" (non-terminal)
    repository: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    continuation: str | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    continuation: str | None = None
    round_trips: int = 0  # storage round trips spent (benchmarks read it)


class HistoryReader(Protocol):
    """Read side: the questions release managers ask, each without scanning the table."""

    def list_deployments(self, query: DeploymentQuery) -> Page[Deployment]: ...

    def list_events(self, deployment_id: str, app: str | None = None) -> list[DeploymentEvent]: ...

    def list_apps(self) -> list[AppState]: ...

    def list_ignored(self, since: datetime, until: datetime, limit: int = 100) -> Page[IgnoredEvent]: ...


class DeploymentStore(DeploymentRepository, HistoryReader, Protocol):
    """Both sides of the history: what the rollout worker needs (its sweeper and manual rollback
    list deployments and apps; its steps write)."""


class RecordRetention(Protocol):
    """Purging what only records (dismissed events, the cross-app index): never a deployment's own rows."""

    def purge_records(self, before: datetime, limit: int = 1000) -> int:
        """Delete up to `limit` record-only rows of days before `before`; returns how many."""
        ...


# --------------------------------------------------------------------------- rollout queue


class RolloutQueue(Protocol):
    def send(self, message: dict[str, Any], delay_s: float = 0.0) -> None:
        """Enqueue a JSON message, invisible for `delay_s` (waits are messages, not sleeps)."""
        ...


# --------------------------------------------------------------------------- Container Apps


@dataclass(frozen=True)
class RevisionInfo:
    name: str
    active: bool
    traffic_weight: int
    provisioning_state: str  # Provisioning | Provisioned | Failed | Deprovisioning ...
    running_state: str  # open string: Running | RunningAtMaxScale | ScaledToZero | Activating | ActivationFailed ...
    health_state: str  # Healthy | Unhealthy | None
    fqdn: str
    image: str = ""
    created: datetime | None = None
    labels: tuple[str, ...] = ()
    provisioning_error: str = ""  # why it failed, as the service said
    running_state_details: str = ""  # e.g. "Deployment Progress Deadline Exceeded. 0/1 replicas ready."

    @property
    def assessment(self) -> Assessment:
        return assess(self.provisioning_state, self.running_state, self.health_state,
                      self.running_state_details, self.provisioning_error)

    @property
    def ready(self) -> bool:
        return self.assessment.readiness == Readiness.READY

    @property
    def failed(self) -> bool:
        return self.assessment.readiness == Readiness.FAILED


@dataclass(frozen=True)
class AppInfo:
    target: Target
    revisions_mode: str  # "Single" | "Multiple"
    traffic: dict[str, int]  # revision name -> weight, latestRevision entries resolved to names
    fqdn: str  # the app's ingress URL host (routes by traffic)
    latest_revision: str
    images: dict[str, str] = field(default_factory=dict)  # container name -> image
    tags: dict[str, str] = field(default_factory=dict)
    revisions: tuple[RevisionInfo, ...] = ()
    # The app's own provisioningState: "InProgress" while an ARM operation on it (e.g. a traffic
    # PATCH) still runs; "" when the adapter cannot tell.
    provisioning_state: str = ""
    labels: dict[str, str] = field(default_factory=dict)  # traffic label -> revision name
    label_fqdns: dict[str, str] = field(default_factory=dict)  # traffic label -> its own host


Precondition = Callable[[], None]


class ContainerAppsPort(Protocol):
    """What the rollout needs from Container Apps (adapter: azure-mgmt-appcontainers)."""

    def get_app(self, target: Target) -> AppInfo: ...

    # One cheap read per readiness poll instead of the whole app.
    def get_revision(self, target: Target, revision: str) -> RevisionInfo | None: ...

    # Every write takes an optional `precondition`, called right before the request is sent (after
    # the reads a write needs): it raises to stop the write (shared/services/rollout/claim.py).

    def create_revision(
        self, target: Target, image: str, suffix: str, pin_traffic: dict[str, int],
        switch_to_multiple: bool = False, target_label: str = "", precondition: Precondition | None = None,
    ) -> str:
        """One PATCH: new template image + revisionSuffix, traffic pinned to `pin_traffic` so the
        new revision starts at 0 %. Returns the revision name `<app>--<suffix>`. Idempotent:
        when that revision already exists it is returned as is. `target_label` (Labels mode): the
        label the service puts on the new revision (`configuration.targetLabel`)."""
        ...

    def set_traffic(self, target: Target, weights: dict[str, int], wait_s: float | None = None,
                    labels: Mapping[str, str] | None = None, precondition: Precondition | None = None) -> bool:
        """PATCH the traffic table (pinned by name). With `wait_s=None`, wait for the operation
        (up to the adapter's LRO timeout; still running then -> TransientAzureError) and return
        True. With `wait_s`, wait at most that long: True when the operation finished, False when it
        still runs (the change is requested; confirm it later with `get_app`). `labels` None: the
        app's labels are kept as they are; else exactly these labels ({label: revision}; a revision's
        weight goes on its first label in this order)."""
        ...

    def set_revision_active(self, target: Target, revision: str, active: bool,
                            precondition: Precondition | None = None) -> None:
        """Refuses (PermanentAzureError, code REVISION_HAS_LABEL) to deactivate a labelled revision."""
        ...

    def get_access(self, target: Target) -> AppAccess:
        """How a caller outside the app's environment reaches it (ingress, IP allow-list, client
        certificates, built-in authentication): read before a revision is created."""
        ...


class AppDirectory(Protocol):
    """Discovery of apps annotated with `acr-deploy.*` resource tags (Keel-style rules)."""

    def list_tagged_apps(self) -> list[AppInfo]: ...


# --------------------------------------------------------------------------- smoke checks, outcomes


@dataclass(frozen=True)
class ProbeResult:
    check: str
    url: str
    ok: bool
    status: int | None
    latency_ms: float
    detail: str = ""  # short excerpt / reason on failure, never headers or secrets


class SmokeProbe(Protocol):
    def probe(self, base_url: str, check: SmokeCheck) -> ProbeResult:
        """One attempt of one SmokeCheck against `base_url` (retries are the caller's)."""
        ...


class OutcomePublisher(Protocol):
    def publish(self, event_type: str, deployment: Deployment) -> None:
        """Best effort: never raises (publishing failures never fail a deployment)."""
        ...



# --------------------------------------------------------------------------- canary analysis (Azure Monitor)


class RequestMetrics(Protocol):
    def get_window_metrics(self, target: Target, start: datetime, end: datetime,
                           response_time: bool = False) -> WindowMetrics:
        """The app's `Requests` in [start, end) by revision and status class; with `response_time`, also
        the app's average `ResponseTime` (None when Azure published none). Raises Transient/PermanentAzureError."""
        ...
