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
- a step that finds the app taken stops at once, records FAILED "lost the app", and changes nothing;
- two invocations of one deployment (a message that reappeared while the first still ran) are fenced
  by the record's ETag: a write is sent only while the record is as this invocation last saw it, so
  a stale invocation (a canary step behind) cannot put an older traffic table back.

The deployment a step writes for is set by the worker loop (`writing_as`) around each step; writes made
outside a rollout step (the manual-rollback request reads only; tests driving the adapter) are not
checked. docs/rollout.md ("One writer per app") says what this guarantees and what it cannot.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from shared.domain.model import Deployment, Target
from shared.ports import (
    AppInfo, ConcurrencyError, ContainerAppsPort, DeploymentRepository, Precondition, RevisionInfo,
)

@dataclass
class _Writer:
    deployment_id: str
    etag: str | None  # of the deployment record as this invocation last read or saved it


_writer: ContextVar[_Writer | None] = ContextVar("acr_deploy_rollout_writer", default=None)


class LostClaim(Exception):
    """The step's deployment no longer holds the app: it must not change it."""

    def __init__(self, deployment_id: str, holder: str) -> None:
        super().__init__(f"deployment {deployment_id} no longer holds the app (held by {holder or 'nobody'})")
        self.deployment_id = deployment_id
        self.holder = holder


@contextmanager
def writing_as(d: Deployment) -> Iterator[None]:
    token = _writer.set(_Writer(d.id, d.etag))
    try:
        yield
    finally:
        _writer.reset(token)


def saw(d: Deployment) -> None:
    """The loop saved `d`: its new ETag is the one this invocation's writes must still find."""
    writer = _writer.get()
    if writer is not None and writer.deployment_id == d.id:
        writer.etag = d.etag


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
        if writer is None:
            return
        state = self.store.get_app_state(target)
        holder = state.active_deployment_id if state else ""
        if holder != writer.deployment_id:
            raise LostClaim(writer.deployment_id, holder)
        # Two invocations of one deployment (a message that reappeared while the first still ran):
        # only the one whose record is current may write; the other drops its message.
        current = self.store.get_deployment(writer.deployment_id, app=target.app)
        if writer.etag and current is not None and current.etag != writer.etag:
            raise ConcurrencyError(f"deployment {writer.deployment_id} moved on in another invocation")

    # ---- reads
    def get_app(self, target: Target) -> AppInfo:
        return self.apps.get_app(target)

    def get_revision(self, target: Target, revision: str) -> RevisionInfo | None:
        return self.apps.get_revision(target, revision)

    # ---- writes: the adapter calls the check right before it sends the request, after the reads a
    # write needs (they may wait on a Retry-After); a check before those reads would leave a window.
    # Blue/green's options (`target_label`, `labels`) are passed on only when set: ports without them
    # (the unit tests' fakes) keep working for every other rollout.
    def create_revision(self, target: Target, image: str, suffix: str, pin_traffic: dict[str, int],
                        switch_to_multiple: bool = False, target_label: str = "",
                        precondition: Precondition | None = None) -> str:
        extra = {"target_label": target_label} if target_label else {}
        return self.apps.create_revision(target, image, suffix, pin_traffic, switch_to_multiple,
                                         precondition=self._guard(target, precondition), **extra)

    def set_traffic(self, target: Target, weights: dict[str, int], wait_s: float | None = None,
                    labels: Mapping[str, str] | None = None, precondition: Precondition | None = None) -> bool:
        extra = {"labels": labels} if labels is not None else {}
        return self.apps.set_traffic(target, weights, wait_s, precondition=self._guard(target, precondition),
                                     **extra)

    def set_revision_active(self, target: Target, revision: str, active: bool,
                            precondition: Precondition | None = None) -> None:
        self.apps.set_revision_active(target, revision, active, precondition=self._guard(target, precondition))

    def _guard(self, target: Target, also: Precondition | None) -> Precondition:
        def check() -> None:  # called by the adapter, in this step's call stack
            self._check(target)
            if also is not None:
                also()

        return check

    def __getattr__(self, name: str) -> Any:  # anything else the adapter offers (close, discovery)
        return getattr(self.apps, name)
