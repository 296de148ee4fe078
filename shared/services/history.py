"""The release manager's questions over the history, and the manual rollback request (use cases).

Answers are domain values; problems are the errors of `shared.errors` (a caller's mistake,
something missing, a state that forbids it now). Turning requests and answers into HTTP is the
edge's job (`shared.http_api`), as it is the CLI's for `acr-deploy history`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Protocol, Union

from shared.domain.approvals import ControlAction
from shared.domain.model import AppState, Deployment, DeploymentEvent, DeploymentKind, utcnow
from shared.errors import InvalidRequestError, NotFoundError, UnavailableError
from shared.ports import DeploymentQuery, HistoryReader, Page

RECENT = 20  # deployments shown with one app
MAX_LIMIT = 200  # the most deployments one read returns (the API's page limit)
REJECTIONS_WINDOW = timedelta(days=7)


class HistoryStore(HistoryReader, Protocol):
    def get_deployment(self, deployment_id: str, app: str | None = None) -> Deployment | None: ...


class RollbackRequester(Protocol):
    """The rollout worker's manual-rollback entry (errors: NotFoundError, ConflictError, InvalidRequestError)."""

    def request_rollback(self, app: str, to_revision: str | None = None, resource_group: str | None = None,
                         requested_by: str = "") -> Deployment: ...

    def request_control(self, deployment_id: str, action: ControlAction, by: str, reason: str,
                        app: str | None = None) -> Deployment: ...


# The rollout worker may be handed over lazily (a zero-argument provider) so that reading the
# history never depends on the rollout's wiring (ARM credentials and so on).
RollbackSource = Union[RollbackRequester, Callable[[], RollbackRequester], None]


@dataclass(frozen=True)
class DeploymentHistory:
    deployment: Deployment
    events: list[DeploymentEvent]


@dataclass(frozen=True)
class AppHistory:
    app: str  # lowercased
    targets: list[AppState]  # one per (subscription, resource group, container) deployed to
    recent: list[Deployment]


@dataclass(frozen=True)
class Rejections:
    page: Page  # of IgnoredEvent
    since: datetime
    until: datetime


@dataclass(frozen=True)
class Restored:
    """What a rollback puts back: the revision, and the tag and push that created it."""

    revision: str
    tag: str
    repository: str = ""
    deployment_id: str = ""


def restored_by(rollback: Deployment, history: list[Deployment]) -> Restored:
    revision = rollback.rollback_to or rollback.revision
    origin = next((d for d in history if d.kind == DeploymentKind.PUSH and d.revision == revision), None)
    # A revision acr-deploy did not create (the app's first) runs an image by tag: that tag is it.
    name = rollback.image.rpartition("/")[2]
    by_tag = name.partition(":")[2] if "@" not in name else ""
    return Restored(revision, rollback.tag or (origin.tag if origin else by_tag),
                    origin.repository if origin else "", origin.id if origin else "")


class HistoryService:
    def __init__(self, store: HistoryStore, rollout: RollbackSource = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self._rollout = rollout
        self.clock = clock

    def list_deployments(self, query: DeploymentQuery) -> Page:
        if query.since and query.until and query.since >= query.until:
            raise InvalidRequestError("since must be before until")
        try:
            return self.store.list_deployments(query)
        except ValueError as exc:  # a continuation token that is not ours / not for this query
            reason = str(exc) if "continuation" in str(exc) else "continuation token is not valid"
            raise InvalidRequestError(reason) from exc

    def get_deployment(self, deployment_id: str, app: str | None = None) -> DeploymentHistory:
        # With an app, read straight from the app's partition (also finds a deployment the
        # cross-app index does not list yet, in the moments after intake).
        found = self.store.get_deployment(deployment_id, app=app)
        if found is None:
            raise NotFoundError(f"no deployment {deployment_id}")
        return DeploymentHistory(found, self.store.list_events(deployment_id, app=found.target.app))

    def list_apps(self, environment: str | None = None) -> list[AppState]:
        return [s for s in self.store.list_apps() if not environment or s.environment == environment]

    def get_app(self, app: str) -> AppHistory:
        app = app.lower()
        targets = [s for s in self.store.list_apps() if s.target.app.lower() == app]
        recent = self.store.list_deployments(DeploymentQuery(app=app, limit=RECENT)).items
        if not targets and not recent:
            raise NotFoundError(f"acr-deploy has no record of app {app}")
        return AppHistory(app, targets, recent)

    def list_rejections(self, since: datetime | None, until: datetime | None, limit: int) -> Rejections:
        """Rejected and ignored events; the window defaults to the last 7 days."""
        until = until or self.clock()
        since = since or until - REJECTIONS_WINDOW
        if since >= until:
            raise InvalidRequestError("since must be before until")
        return Rejections(self.store.list_ignored(since, until, limit), since, until)

    def restores(self, deployments: list[Deployment]) -> dict[str, Restored]:
        """For each rollback among `deployments` (by id): what it puts back. One read per app, and
        only when a rollback is listed."""
        pushes: dict[str, list[Deployment]] = {}
        out: dict[str, Restored] = {}
        for d in deployments:
            if d.kind != DeploymentKind.ROLLBACK:
                continue
            key = d.target.key
            if key not in pushes:
                pushes[key] = [p for p in self.store.list_deployments(
                    DeploymentQuery(app=d.target.app, limit=MAX_LIMIT)).items if p.target.key == key]
            out[d.id] = restored_by(d, pushes[key])
        return out

    def live_tag(self, state: AppState) -> str:
        """The live tag; when a rollback made the live revision and its record has no tag, the tag of
        the push that first brought that revision (or of its image)."""
        if state.live_tag or not state.live_deployment_id:
            return state.live_tag
        live = self.store.get_deployment(state.live_deployment_id, app=state.target.app)
        if live is None or live.kind != DeploymentKind.ROLLBACK:
            return state.live_tag
        return self.restores([live])[live.id].tag

    def request_rollback(self, app: str, to_revision: str | None = None, resource_group: str | None = None,
                         requested_by: str = "api") -> Deployment:
        rollout = self._rollback_requester()
        if rollout is None:
            raise UnavailableError("rollback is not available in this build")
        return rollout.request_rollback(app.lower(), to_revision=to_revision, resource_group=resource_group,
                                        requested_by=requested_by)

    def request_control(self, deployment_id: str, action: ControlAction, by: str, reason: str,
                        app: str | None = None) -> Deployment:
        """Approve, reject, pause, resume, promote, abort, override a freeze (the worker carries it out)."""
        rollout = self._rollback_requester()
        if rollout is None:
            raise UnavailableError("release controls are not available in this build")
        return rollout.request_control(deployment_id, action, by, reason, app=app)

    def _rollback_requester(self) -> RollbackRequester | None:
        if callable(self._rollout) and not hasattr(self._rollout, "request_rollback"):
            try:
                self._rollout = self._rollout()
            except ModuleNotFoundError:  # a build without the rollout's SDKs still serves the history
                self._rollout = None
        return self._rollout if hasattr(self._rollout, "request_rollback") else None
