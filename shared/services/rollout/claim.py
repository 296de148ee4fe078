"""One writer per app: every Azure write a rollout step makes re-checks, just before it is sent, that
the step's deployment still holds the app (`AppState.active_deployment_id`).

A deployment loses the app only by ending (superseded, expired, failed, rolled back) or when the
sweeper frees an app held by a deployment it found finished or missing. Before this check, two
invocations of one deployment (a message redelivered while the first was still inside a slow ARM call)
could both write: the second ended the deployment, a newer push took the app and went live, and
then the first one's write landed and undid it. Container Apps offers no precondition on writes (no
ETag / If-Match on `containerApps`), so the guard is ours:

- the claim is read right before each write (create revision, set traffic, (de)activate);
- writes are sent once (the adapter disables the SDK's retries on them and bounds their time), so no
  retry of a write outlives the check; a retry is the step's own and checks again;
- a step that finds the app taken stops at once, records FAILED "lost the app", and changes nothing.

The deployment a step writes for is set by the worker loop (`writing_as`) around each step; writes made
outside a rollout step (the manual-rollback request reads only; tests driving the adapter) are not
checked. docs/rollout.md ("One writer per app") says what this guarantees and what it cannot.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

from shared.domain.model import Deployment, Target
from shared.ports import AppInfo, ContainerAppsPort, DeploymentRepository, RevisionInfo

_writer: ContextVar[str] = ContextVar("acr_deploy_rollout_writer", default="")


class LostClaim(Exception):
    """The step's deployment no longer holds the app: it must not change it."""

    def __init__(self, deployment_id: str, holder: str) -> None:
        super().__init__(f"deployment {deployment_id} no longer holds the app (held by {holder or 'nobody'})")
        self.deployment_id = deployment_id
        self.holder = holder


@contextmanager
def writing_as(d: Deployment) -> Iterator[None]:
    token = _writer.set(d.id)
    try:
        yield
    finally:
        _writer.reset(token)


class ClaimedApps:
    """A ContainerAppsPort whose writes are refused (LostClaim) once the writing deployment has lost
    the app. Reads pass through unchanged."""

    def __init__(self, apps: ContainerAppsPort, store: DeploymentRepository) -> None:
        self.apps = apps
        self.store = store

    @classmethod
    def around(cls, apps: ContainerAppsPort, store: DeploymentRepository) -> "ClaimedApps":
        return apps if isinstance(apps, ClaimedApps) else cls(apps, store)

    def _check(self, target: Target) -> None:
        writer = _writer.get()
        if not writer:
            return
        state = self.store.get_app_state(target)
        holder = state.active_deployment_id if state else ""
        if holder != writer:
            raise LostClaim(writer, holder)

    # ---- reads
    def get_app(self, target: Target) -> AppInfo:
        return self.apps.get_app(target)

    def get_revision(self, target: Target, revision: str) -> RevisionInfo | None:
        return self.apps.get_revision(target, revision)

    # ---- writes
    def create_revision(self, target: Target, image: str, suffix: str, pin_traffic: dict[str, int],
                        switch_to_multiple: bool = False) -> str:
        self._check(target)
        return self.apps.create_revision(target, image, suffix, pin_traffic, switch_to_multiple)

    def set_traffic(self, target: Target, weights: dict[str, int], wait_s: float | None = None) -> bool:
        self._check(target)
        return self.apps.set_traffic(target, weights, wait_s)

    def set_revision_active(self, target: Target, revision: str, active: bool) -> None:
        self._check(target)
        self.apps.set_revision_active(target, revision, active)

    def __getattr__(self, name: str) -> Any:  # anything else the adapter offers (close, discovery)
        return getattr(self.apps, name)
