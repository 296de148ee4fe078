"""Manual rollback requests (`POST /api/apps/{app}/rollback`, `acr-deploy rollback`).

A request is recorded as a kind=rollback deployment and enqueued like a push: the worker's phases run
it (QUEUED -> WAITING_READY -> ...), so it takes the app, is superseded and is announced the same way.
Errors here are the caller's to show: NotFoundError (404), ConflictError (409), InvalidRequestError (400).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from shared.domain import rollout as plan
from shared.domain import traffic
from shared.domain.model import (
    AppState, Deployment, DeploymentEvent, DeploymentKind, Phase, RolloutSettings, Target,
)
from shared.errors import ConflictError, InvalidRequestError, NotFoundError
from shared.ports import (
    AppInfo, ConcurrencyError, DeploymentQuery, PermanentAzureError, TransientAzureError,
)
from shared.services.rollout.context import RolloutContext
from shared.services.rollout.messages import start_message


class RollbackRequests:
    def __init__(self, ctx: RolloutContext) -> None:
        self.ctx = ctx

    def request(
        self, app: str, to_revision: str | None = None, resource_group: str | None = None,
        requested_by: str = "", why: str = "",
    ) -> Deployment:
        """Record a kind=rollback deployment that moves `app` back to its previous (or the named)
        healthy revision, and enqueue it: it runs through the same machinery as a push. `why` marks
        a repair of drift (rule `drift-repair`, source `drift`) and goes into its story."""
        c = self.ctx
        if not app or not isinstance(app, str):
            raise InvalidRequestError("an app name is required")
        target = self._find_target(app.strip().lower(), (resource_group or "").strip().lower())
        info = _get_app(lambda: c.apps.get_app(target), not_found=f"app {app} was not found in Azure")
        if info.revisions_mode.lower() == "single":
            raise ConflictError(f"app {target.app} is in Single revision mode: it has only one active "
                                "revision, so there is nothing to move traffic back to")
        chosen = plan.rollback_target(target.app, info.revisions, info.traffic, to_revision or "")
        now = c.clock()
        d = Deployment(
            id=plan.rollback_deployment_id(target.key, chosen.name, now, requested_by),
            target=target, kind=DeploymentKind.ROLLBACK, phase=Phase.QUEUED,
            created_at=now, updated_at=now, image=chosen.image or "",
            digest=plan.digest_of(chosen.image or ""), pushed_by=requested_by[:200],
            rule="drift-repair" if why else "manual-rollback", source="drift" if why else "manual",
            revision=chosen.name, rollback_to=chosen.name,
            rollout=RolloutSettings(ready_timeout_s=300.0, keep_previous=1),
        )
        d.tag = self._tag_of(target, chosen.name)
        first = DeploymentEvent(
            d.id, now, Phase.QUEUED,
            f"rollback of {target.app} to {chosen.name} requested by {requested_by or 'unknown'} "
            f"(serving now: {traffic.describe(traffic.serving(info.traffic))})" + (f"; {why}" if why else ""),
            {"requested_by": requested_by[:200], "to": chosen.name},
        )
        for _ in range(5):
            state = c.store.get_app_state(target) or AppState(target=target)
            new_state = replace(state, pending_deployment_id=d.id, last_deployment_id=d.id,
                                last_phase=Phase.QUEUED.value, updated_at=now)
            try:
                c.store.create_deployment(d, first, new_state)
                break
            except ConcurrencyError:
                if c.store.get_deployment(d.id, app=target.app) is not None:
                    break
        else:
            raise ConflictError(f"app {target.app} is busy; try the rollback again")
        c.queue.send(start_message(d))
        return c.store.get_deployment(d.id, app=target.app) or d

    def _find_target(self, app: str, resource_group: str) -> Target:
        matches = [s.target for s in self.ctx.store.list_apps()
                   if s.target.app.lower() == app and (not resource_group or
                                                       s.target.resource_group.lower() == resource_group)]
        if not matches:
            raise NotFoundError(f"acr-deploy has not deployed an app named {app}"
                                + (f" in resource group {resource_group}" if resource_group else ""))
        if len(matches) > 1:
            groups = ", ".join(sorted(t.resource_group for t in matches))
            raise InvalidRequestError(f"app {app} exists in several resource groups ({groups}); name one")
        return matches[0]

    def _tag_of(self, target: Target, revision: str) -> str:
        """The tag that revision was deployed from, when our history knows it."""
        try:
            page = self.ctx.store.list_deployments(DeploymentQuery(app=target.app, limit=100))
        except Exception:  # noqa: BLE001 - the tag is a nicety
            return ""
        for item in page.items:
            if item.target.key == target.key and item.revision == revision and item.tag:
                return item.tag
        return ""


def _get_app(fn: Callable[[], AppInfo], not_found: str) -> AppInfo:
    """Azure's answer to a request made on a caller's behalf, as the error the API maps to a status."""
    try:
        return fn()
    except PermanentAzureError as exc:
        if exc.status == 404:
            raise NotFoundError(not_found) from exc
        raise ConflictError(f"Azure refused: {exc}") from exc
    except TransientAzureError as exc:
        raise ConflictError(f"Azure is busy, try again: {exc}") from exc
