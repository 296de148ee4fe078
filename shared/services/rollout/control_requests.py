"""A person's requests to a deployment: approve, reject, pause, resume, promote, abort, override a freeze.

`POST /api/deployments/{id}/{action}`, `acr-deploy approve|reject|... ID --reason`, the page's buttons.
The request is judged (`shared.domain.approvals.judge`) against the deployment as recorded; accepted,
it is recorded in the deployment's progress (conditional on its ETag) with a history line naming who
and why, and the worker is woken to carry it out (`Controls.pending`): the worker stays the one
writer of phases and the one caller of Azure. Refused, it changes nothing in Azure: the refusal is
recorded in the deployment's history and the caller gets a ConflictError (409).
"""

from __future__ import annotations

from dataclasses import replace

from shared.domain import rollout as plan
from shared.domain.approvals import ControlAction, ControlRequest, judge
from shared.domain.model import Deployment
from shared.errors import ConflictError, InvalidRequestError, NotFoundError
from shared.ports import ConcurrencyError
from shared.services.rollout.context import RolloutContext
from shared.services.rollout.messages import advance_message_of

MAX_REASON = 500
MAX_BY = 200


class ControlRequests:
    def __init__(self, ctx: RolloutContext) -> None:
        self.ctx = ctx

    def request(self, deployment_id: str, action: ControlAction, by: str, reason: str,
                app: str | None = None) -> Deployment:
        reason = (reason or "").strip()
        if not reason:
            raise InvalidRequestError(f"{action} needs a reason (it is recorded in the history)")
        reason, by = reason[:MAX_REASON], (by or "unknown").strip()[:MAX_BY]
        store = self.ctx.store
        for _ in range(5):
            d = store.get_deployment(deployment_id, app=app)
            if d is None:
                raise NotFoundError(f"deployment {deployment_id} was not found")
            now = self.ctx.clock()
            cp = d.progress.controls
            verdict = judge(action, d.phase.value, d.rollout.controls.approval, cp, by, now,
                            canary=len(plan.shift_steps(d.rollout)) > 1)
            data = {"by": by, "reason": reason, "action": action.value}
            if not verdict.ok:
                note = plan.note(d, f"{action} by {by}: refused, {verdict.message}", now, **data)
                try:
                    saved = store.save_deployment(d, note)  # the refusal is part of the story
                    if not saved.phase.terminal:
                        # The note took the ETag a running step may hold: wake the worker, or it would
                        # wait for the sweeper.
                        self.ctx.queue.send(advance_message_of(saved))
                except ConcurrencyError:
                    pass  # the deployment moved on; the caller is told either way
                raise ConflictError(verdict.message)
            request = ControlRequest(action, by, reason, now)
            asked = d.with_progress(controls=replace(cp, request=request))
            note = plan.note(d, f"{action} requested by {by}: {reason}", now, **data)
            try:
                saved = store.save_deployment(asked, note)
            except ConcurrencyError:
                continue  # the worker recorded a step meanwhile: judge again against it
            self.ctx.queue.send(advance_message_of(saved))
            return saved
        raise ConflictError(f"deployment {deployment_id} is busy; try {action} again")
