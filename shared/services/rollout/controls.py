"""Release controls inside the rollout: approval, freeze windows, pause / resume / promote / abort.

The gates sit in front of two handlers: before CREATING_REVISION (nothing in Azure has changed yet: a
freeze holds the deployment there, or skips it) and before each SHIFTING step (the first waits for
approval once the revision is smoke-checked at 0 %; every step waits while a freeze window holds the
app). Held phases (AWAITING_APPROVAL, FROZEN, PAUSED) only wait: long waits are delayed messages,
and a person's request (recorded by `ControlRequests`, which wakes the worker) is carried out by
`pending` at the next step. Manual rollbacks are never frozen: they are how an emergency is handled.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Callable

from shared.domain import rollout as plan
from shared.domain.approvals import ControlAction, approval_expires_at, judge
from shared.domain.freeze import Freeze, FreezeAction, freeze_at
from shared.domain.model import Deployment, DeploymentKind, Phase
from shared.services.rollout.context import RolloutContext
from shared.services.rollout.endings import Endings
from shared.services.rollout.step import Step, Then, Wait, carried, finish, recorded, to_phase

Handler = Callable[[Deployment], Step]
MAX_HOLD_S = 900.0  # a held deployment re-reads the world at least this often (the sweeper's cue too)
AWAITING_APPROVAL_EVENT = "AcrDeploy.Deployment.AwaitingApproval"
FROZEN_EVENT = "AcrDeploy.Deployment.Frozen"


class Controls:
    def __init__(self, ctx: RolloutContext, endings: Endings) -> None:
        self.ctx = ctx
        self.endings = endings

    def handlers(self) -> dict[Phase, Handler]:
        return {Phase.AWAITING_APPROVAL: self._awaiting_approval, Phase.FROZEN: self._frozen,
                Phase.PAUSED: self._paused}

    # ------------------------------------------------------------------ gates
    def gate_create(self, create: Handler) -> Handler:
        """CREATING_REVISION: a freeze window holds (or skips) the deployment before Azure changes."""
        def gated(d: Deployment) -> Step:
            frozen = self.freeze(d, self.ctx.clock())
            return create(d) if frozen is None else self._hold(d, frozen, skip_allowed=True)
        return gated

    def gate_shift(self, shift: Handler) -> Handler:
        """SHIFTING: approval before the first step, then no traffic change while a window holds."""
        def gated(d: Deployment) -> Step:
            now = self.ctx.clock()
            policy = d.rollout.controls.approval
            cp = d.progress.controls
            if policy.required and cp.approved is None and d.kind == DeploymentKind.PUSH and d.step == 0:
                return self._ask_approval(d, now)
            frozen = self.freeze(d, now)
            return shift(d) if frozen is None else self._hold(d, frozen, skip_allowed=False)
        return gated

    def freeze(self, d: Deployment, now: datetime) -> Freeze | None:
        if d.kind != DeploymentKind.PUSH or d.progress.controls.freeze_override is not None:
            return None
        return freeze_at(d.rollout.controls.freezes, now, rule=d.rule, app=d.target.app,
                         environment=d.environment)

    def _ask_approval(self, d: Deployment, now: datetime) -> Step:
        policy = d.rollout.controls.approval
        expires = now + timedelta(seconds=policy.expires_s)
        d = _extend_deadline(d, expires).with_progress(
            controls=replace(d.progress.controls, approval_requested_at=now))
        who = ", ".join(policy.approvers) or "anyone allowed to call the API"
        step = to_phase(d, Phase.AWAITING_APPROVAL,
                        f"{d.revision} passed its smoke checks at 0 %; waiting for approval by {who} "
                        f"until {expires:%Y-%m-%d %H:%M} UTC", now, approvers=list(policy.approvers),
                        expires_at=expires.isoformat())
        return replace(step, next=Then(self._announce(AWAITING_APPROVAL_EVENT)))

    def _hold(self, d: Deployment, frozen: Freeze, skip_allowed: bool) -> Step:
        now = self.ctx.clock()
        data = {"windows": [w.name for w in frozen.windows], "until": frozen.until.isoformat()}
        if skip_allowed and frozen.action is FreezeAction.SKIP:
            return finish(d, Phase.SKIPPED, f"skipped: {frozen.reason()}; nothing was changed in Azure", now, **data)
        d = _extend_deadline(d, frozen.until).with_progress(
            controls=replace(d.progress.controls, resume_phase=d.phase.value))
        step = to_phase(d, Phase.FROZEN, f"{frozen.reason()}; traffic left as it is until then", now, **data)
        return replace(step, next=Then(self._announce(FROZEN_EVENT)))

    def _announce(self, event_type: str) -> Callable[[Deployment], Step]:
        def act(saved: Deployment) -> Step:
            publisher = self.ctx.publisher
            if publisher is not None:
                publisher.publish(event_type, saved)  # best effort by contract: never raises
            return carried(saved, Wait(self._hold_wait(saved, self.ctx.clock())))
        return act

    def before_claim(self, d: Deployment) -> Step | None:
        """QUEUED promotion: wait out the soak, then go on only while its source still serves."""
        cp = d.progress.controls
        if not cp.promoted_from or cp.not_before is None:
            return None
        now = self.ctx.clock()
        if now < cp.not_before:
            return carried(d, Wait(min((cp.not_before - now).total_seconds(), MAX_HOLD_S)))
        store = self.ctx.store
        source = store.get_deployment(cp.promoted_from)
        state = store.get_app_state(source.target) if source is not None else None
        if source is None or state is None or state.live_deployment_id != source.id:
            where = source.target.app if source is not None else "its app"
            return finish(d, Phase.SKIPPED, f"not promoted: {cp.promoted_from} no longer serves {where} "
                          "after the soak time; nothing was changed in Azure", now)
        d = d.with_progress(controls=replace(cp, not_before=None))
        return recorded(d, plan.note(d, f"soak time over; {cp.promoted_from} still serves {source.target.app}", now))

    # ------------------------------------------------------------------ held phases
    def _awaiting_approval(self, d: Deployment) -> Step:
        now = self.ctx.clock()
        expires = approval_expires_at(d.rollout.controls.approval, d.progress.controls.approval_requested_at)
        if expires is not None and now >= expires:
            return self.endings.fail_before_shift(
                d, f"approval expired at {expires:%Y-%m-%d %H:%M} UTC; {d.revision} never received traffic")
        return carried(d, Wait(self._hold_wait(d, now)))

    def _frozen(self, d: Deployment) -> Step:
        now = self.ctx.clock()
        if self.freeze(d, now) is not None:
            return carried(d, Wait(self._hold_wait(d, now)))
        return self._resume(d, "the freeze window is over; carrying on", now)

    def _paused(self, d: Deployment) -> Step:
        return carried(d, Wait(self._hold_wait(d, self.ctx.clock())))

    def _hold_wait(self, d: Deployment, now: datetime) -> float:
        """Until the next instant something may change by itself (expiry, window end, deadline)."""
        moments = [plan.deadline_for(d)]
        expires = approval_expires_at(d.rollout.controls.approval, d.progress.controls.approval_requested_at)
        if d.phase == Phase.AWAITING_APPROVAL and expires is not None:
            moments.append(expires)
        frozen = self.freeze(d, now) if d.phase == Phase.FROZEN else None
        if frozen is not None:
            moments.append(frozen.until)
        seconds = min((m - now).total_seconds() for m in moments)
        return min(max(seconds, 1.0), MAX_HOLD_S)

    def _resume(self, d: Deployment, message: str, now: datetime, **data: object) -> Step:
        back = Phase(d.progress.controls.resume_phase or Phase.SHIFTING.value)
        d = d.with_progress(controls=replace(d.progress.controls, resume_phase=""))
        return to_phase(d, back, message, now, **data)

    # ------------------------------------------------------------------ a person's request
    def pending(self, d: Deployment) -> Step | None:
        """Carry out the request the API recorded (None: there is none)."""
        cp = d.progress.controls
        request = cp.request
        if request is None:
            return None
        now = self.ctx.clock()
        cleared = replace(cp, request=None)
        d = d.with_progress(controls=cleared)
        verdict = judge(request.action, d.phase.value, d.rollout.controls.approval, cleared, request.by, now,
                        canary=len(plan.shift_steps(d.rollout)) > 1)
        who = {"by": request.by, "reason": request.reason, "action": request.action.value}
        if not verdict.ok:  # the deployment moved on since the API judged it
            return recorded(d, plan.note(d, f"{request.describe()}: refused, {verdict.message}", now, **who))
        said = f"{request.action} by {request.by or 'unknown'}: {request.reason}"
        action = request.action
        if action == ControlAction.APPROVE:
            d = d.with_progress(controls=replace(cleared, approved=request))
            return to_phase(d, Phase.SHIFTING, f"approved by {request.by or 'unknown'}: {request.reason}", now, **who)
        if action == ControlAction.REJECT:
            d = d.with_progress(controls=replace(cleared, approved=request))
            return self.endings.fail_before_shift(
                d, f"rejected by {request.by or 'unknown'}: {request.reason}; {d.revision} never received traffic")
        if action == ControlAction.PAUSE:
            d = d.with_progress(controls=replace(cleared, resume_phase=d.phase.value))
            return to_phase(d, Phase.PAUSED, f"{said}; weights held until resumed or the deadline "
                            f"({plan.deadline_for(d):%Y-%m-%d %H:%M} UTC)", now, **who)
        if action == ControlAction.RESUME:
            return self._resume(d, said, now, **who)
        if action == ControlAction.PROMOTE:
            last = len(plan.shift_steps(d.rollout)) - 1
            d = d.evolve(step=last).with_progress(controls=replace(cleared, resume_phase=""), verify_after=None)
            return to_phase(d, Phase.SHIFTING, f"{said}; all traffic to {d.revision} now", now, **who)
        if action == ControlAction.ABORT:
            if plan.has_shifted(d):
                return self.endings.roll_back(d, said)
            return self.endings.fail_before_shift(d, f"{said}; {d.revision or 'the new revision'} never received traffic")
        if action == ControlAction.OVERRIDE_FREEZE:
            d = d.with_progress(controls=replace(cleared, freeze_override=request))
            if d.phase == Phase.FROZEN:
                return self._resume(d, f"freeze overridden by {request.by or 'unknown'}: {request.reason}", now, **who)
            return recorded(d, plan.note(d, f"freeze overridden by {request.by or 'unknown'}: {request.reason}",
                                         now, **who))
        return recorded(d, plan.note(d, f"{said}: not understood", now, **who))


def _extend_deadline(d: Deployment, until: datetime) -> Deployment:
    """A wait for a person or a calendar gets the rule's whole deadline again after it."""
    wanted = until + timedelta(seconds=d.rollout.deadline_s)
    return d.evolve(deadline=max(plan.deadline_for(d), wanted))

