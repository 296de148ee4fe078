"""One step of a rollout: the deadline and ownership checks, then the handler of the current phase.

QUEUED (claim) -> CREATING_REVISION -> WAITING_READY -> SMOKE_TESTING -> SHIFTING <-> VERIFYING; each
handler reads the world, asks `shared.domain.rollout`, acts, and returns a `Step`: what to record and
what comes next (the loop in `worker.py` records it). Endings (fail, roll back, supersede, expire,
Azure errors) are `Endings`'.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable, Mapping, Sequence

from shared.domain import rollout as plan
from shared.domain import traffic
from shared.domain.labels import describe as describe_labels
from shared.domain.model import AppState, Deployment, DeploymentEvent, DeploymentKind, Phase
from shared.domain.progress import CheckKind, TrafficRequest
from shared.domain.revision_state import Readiness
from shared.ports import ConcurrencyError, PermanentAzureError, TransientAzureError
from shared.services.rollout import analysis, bluegreen, starting
from shared.services.rollout.access import AccessGate, health_verdict, verify_window_s
from shared.services.rollout.checks import CheckRunner, url
from shared.services.rollout.claim import LostClaim
from shared.services.rollout.context import RolloutContext
from shared.services.rollout.controls import Controls
from shared.services.rollout.endings import Endings
from shared.services.rollout.messages import advance_message_of
from shared.services.rollout.records import live_of, remaining
from shared.services.rollout.step import Step, Then, Wait, carried, finish, recorded, to_phase

WAIT_FOR_APP_S = 2.0  # re-check interval while an older rollout holds the app
READY_POLL_S = 2.0  # revision start-up polling once the inline budget is spent
# Traffic PATCH: awaited inline for about two ARM poll ticks (the adapter polls every 0.5 s), then
# confirmed by a delayed message (whole seconds: Storage queue visibility) reading the app.
SHIFT_INLINE_S = 1.0
SHIFT_CONFIRM_S = 1.0


class Phases:
    def __init__(self, ctx: RolloutContext, endings: Endings) -> None:
        self.ctx = ctx
        self.endings = endings
        self.checks = CheckRunner(ctx)
        self.blue_green = endings.blue_green
        self.access = AccessGate(ctx)
        self.analysis = analysis.CanaryAnalysis(ctx, endings)
        self.controls = Controls(ctx, endings)
        self._handlers: dict[Phase, Callable[[Deployment], Step]] = {
            Phase.CREATING_REVISION: self.controls.gate_create(self._create),
            Phase.WAITING_READY: self._wait_ready,
            Phase.SMOKE_TESTING: self._smoke,
            Phase.SHIFTING: self.controls.gate_shift(self._shift),
            Phase.VERIFYING: self._verify,
            **self.controls.handlers(),
        }

    def step(self, d: Deployment) -> Step:
        now = self.ctx.clock()
        if d.deadline is None:
            d = d.evolve(deadline=plan.deadline_for(d))
        # A recorded ending was decided before a crash; its Azure change may already be made.
        # Finish it, whatever the deadline or a newer push says: re-running the phase's checks
        # against the changed app could pass and undo a rollback.
        ending = d.progress.ending if not d.phase.terminal else None
        if ending is None and plan.past_deadline(d, now):
            return self.endings.expire(d)
        try:
            if ending is not None:
                return self.endings.resume(d, ending)
            if d.phase == Phase.QUEUED:
                return self.controls.before_claim(d) or self._claim(d)
            state = self.ctx.store.get_app_state(d.target)
            if state is None or state.active_deployment_id != d.id:
                holder = state.active_deployment_id if state else ""
                return finish(d, Phase.FAILED, f"lost the app to {holder or 'nobody'} while {d.phase}; "
                              "stopped without touching it", now)
            newer = plan.superseded_by(d, state)
            if newer:
                return self.endings.supersede(d, newer)
            return self.controls.pending(d) or self._handlers[d.phase](d)
        except (TransientAzureError, PermanentAzureError) as exc:
            return self.on_azure_error(d, exc)
        except LostClaim as lost:
            return self.lost(d, lost)

    def then(self, d: Deployment, then: Then) -> Step:
        """Carry out what a step recorded as decided (`d` is the saved deployment)."""
        try:
            return then.act(d)
        except LostClaim as lost:
            return self.lost(d, lost)
        except (TransientAzureError, PermanentAzureError) as exc:
            if then.on_error is not None:
                return then.on_error(d, exc)
            return self.on_azure_error(d, exc)

    def lost(self, d: Deployment, lost: LostClaim) -> Step:
        """Another deployment holds the app now: stop without changing it (see claim.py)."""
        return finish(d.with_progress(ending=None), Phase.FAILED,
                      f"lost the app to {lost.holder or 'nobody'} while {d.phase}; stopped before changing it",
                      self.ctx.clock())

    def on_azure_error(self, d: Deployment, exc: TransientAzureError | PermanentAzureError) -> Step:
        if isinstance(exc, TransientAzureError):
            return self.endings.transient(d, exc)
        return self.endings.permanent(d, exc)

    # ------------------------------------------------------------------ QUEUED
    def _claim(self, d: Deployment) -> Step:
        """QUEUED: take the app (or wait for / yield to another deployment), then read the app and
        record what serves now: that is the traffic the new revision is pinned beside."""
        now = self.ctx.clock()
        not_yet = self._take_app(d, now)
        if not_yet is not None:
            return not_yet
        info = self.ctx.apps.get_app(d.target)
        d = d.with_progress(waiting_for="", app_fqdn=info.fqdn)
        d, refused, remark = self.access.admit(d, info)
        if refused is not None:
            return refused
        if bluegreen.applies(d, info):
            d, refusal = self.blue_green.claim(d, info)
            if refusal:
                return finish(d, Phase.FAILED, refusal, now)
        if d.kind == DeploymentKind.ROLLBACK:
            pin = traffic.serving(info.traffic)
            d = d.evolve(previous_traffic=d.previous_traffic or pin).with_progress(
                ready_by=now + timedelta(seconds=d.rollout.ready_timeout_s))
            return to_phase(d, Phase.WAITING_READY, f"took the app; returning to {d.revision} "
                            f"(serving now: {traffic.describe(pin)}){remark}", now)
        switch = False
        if info.revisions_mode.lower() == "single":
            if not d.rollout.allow_single_mode_switch:
                return finish(d, Phase.FAILED, (
                    f"{d.target.app} is in Single revision mode: a new revision would take all traffic "
                    "before its smoke checks; switch the app to Multiple mode or set "
                    "rollout.allow_single_mode_switch in its rule"), now)
            switch = True
        suffix = plan.revision_suffix(d.target.app, d.tag, d.digest or plan.digest_of(d.image))
        name = plan.revision_name(d.target.app, suffix)
        pin = d.previous_traffic or traffic.pinned(info.traffic, name)
        d = d.evolve(revision=name, previous_traffic=pin).with_progress(suffix=suffix, switch_mode=switch)
        message = f"took the app; creating {name} at 0 % beside {traffic.describe(pin)}"
        if switch:
            message += " (switching the app to Multiple revision mode, as its rule allows)"
        if d.progress.blue_green is not None:
            message += (f"; blue/green: smoke checks on label {d.rollout.label}, then label "
                        f"{d.rollout.production_label} moves to it")
        message += remark
        return to_phase(d, Phase.CREATING_REVISION, message, now, traffic=pin)

    def _take_app(self, d: Deployment, now: datetime) -> Step | None:
        """None once `d` holds the app; otherwise what to do instead (yield, wait, try again)."""
        store = self.ctx.store
        for _ in range(5):
            state = store.get_app_state(d.target)
            holder = None
            if state and state.active_deployment_id and state.active_deployment_id != d.id:
                holder = store.get_deployment(state.active_deployment_id, app=d.target.app)
            decision = plan.decide_claim(d, state, holder)
            if decision.claim == plan.Claim.SUPERSEDED:
                return finish(d, Phase.SUPERSEDED,
                              f"superseded by newer deployment {decision.other} before it started", now)
            if decision.claim == plan.Claim.WAIT:
                return self._wait_for(d, decision.other, holder, now)
            if decision.claim == plan.Claim.MINE:
                return None
            base = state or AppState(target=d.target)
            if holder is not None and holder.phase.terminal:  # it ended without freeing the app
                base = plan.released(base, holder, now, live_of(holder))
            try:
                store.save_app_state(plan.claimed(base, d, now))
                return None
            except ConcurrencyError:
                continue
        return carried(d, Wait(0.5))

    def _wait_for(self, d: Deployment, other: str, holder: Deployment | None, now: datetime) -> Step:
        """An older rollout holds the app: say so once per holder, and nudge it if it has not
        shifted traffic yet (it then notices us and yields at once)."""
        if d.progress.waiting_for == other:
            return carried(d, Wait(WAIT_FOR_APP_S))
        d = d.with_progress(waiting_for=other)
        note = plan.note(d, f"waiting for {other} ({holder.phase if holder else '?'}) to finish "
                            "with the app", now)

        def nudge(saved: Deployment) -> Step:
            if holder is not None and holder.phase in plan.PRE_SHIFT:
                self.ctx.queue.send(advance_message_of(holder))
            return carried(saved, Wait(WAIT_FOR_APP_S))

        return recorded(d, note, next=Then(nudge))

    # ------------------------------------------------------------------ the new revision
    def _create(self, d: Deployment) -> Step:
        """CREATING_REVISION: one PATCH (idempotent: an existing revision of that name is reused)."""
        now = self.ctx.clock()
        wait = remaining(d.progress.create_after, now)  # a pull retry's back-off
        if wait is not None:
            return carried(d, Wait(wait))
        label = self.blue_green.target_label(d)
        name = self.ctx.apps.create_revision(
            d.target, d.image, d.progress.suffix or d.revision.split("--", 1)[-1], d.previous_traffic,
            switch_to_multiple=d.progress.switch_mode, **({"target_label": label} if label else {}),
        )
        d = d.evolve(revision=name).with_progress(ready_by=now + timedelta(seconds=d.rollout.ready_timeout_s))
        return to_phase(d, Phase.WAITING_READY, f"created {name} with {d.image} (0 % traffic)", now)

    def _wait_ready(self, d: Deployment) -> Step:
        """WAITING_READY: provisioned, running and healthy by `ready_by`, or the deployment fails."""
        c = self.ctx
        now = c.clock()
        rev = c.apps.get_revision(d.target, d.revision)
        if rev is not None and not rev.active and not rev.failed:
            # A re-push of an old (tag, digest) or a rollback target kept inactive: wake it up.
            # Record that this deployment activates it *before* asking Azure: a worker killed right
            # after the activation would otherwise lose the fact, and a rollback that later fails
            # would leave its (formerly inactive) target active (`Endings._owns_new_revision`). A
            # crash before the call leaves the flag on an inactive revision: the redelivery
            # activates it (deactivating it again on failure is harmless).
            # tests/scenario/test_crash_manual_rollback.py
            def activate(current: Deployment) -> Step:
                c.apps.set_revision_active(current.target, current.revision, True)
                return carried(current, Wait(c.tick_s))

            if not d.progress.activated:
                d = d.with_progress(activated=True)
                return recorded(d, plan.note(d, f"activated {d.revision}", now), next=Then(activate))
            return activate(d)
        readiness = rev.assessment.readiness if rev is not None else Readiness.STARTING
        if (rev is not None and readiness.probe and d.progress.blue_green is not None
                and d.kind == DeploymentKind.PUSH):
            label = d.rollout.label
            host = self.blue_green.label_new(d)
            if not host:
                return self.endings.fail_before_shift(d, f"label {label} on {d.revision} has no URL to check")
            d = d.with_progress(fqdn=host)
            return to_phase(d, Phase.SMOKE_TESTING, f"{d.revision} is ready; label {label} is on it at {host}",
                            now, fqdn=host, label=label)
        if rev is not None and readiness.probe:
            d = d.with_progress(fqdn=rev.fqdn)
            message = f"{d.revision} is ready at {rev.fqdn}"
            if readiness == Readiness.COLD:
                message = (f"{d.revision} is scaled to zero at {rev.fqdn}: the smoke checks' first request "
                           f"starts it (warm-up {d.rollout.warmup_s:g} s)")
            return to_phase(d, Phase.SMOKE_TESTING, message, now, fqdn=rev.fqdn)
        if rev is not None and readiness == Readiness.FAILED:
            return starting.pull_retry(c, d, rev) or self.endings.fail_before_shift(
                d, f"{d.revision} failed to start: {rev.assessment.detail} ({starting.describe(rev, details=False)})")
        ready_by = d.progress.ready_by or now
        if now >= ready_by:
            state = starting.describe(rev) if rev else "the revision does not exist"
            return self.endings.fail_before_shift(
                d, f"{d.revision} was not ready within {d.rollout.ready_timeout_s:g} s ({state})")
        unknown = starting.unknown_state(c, d, rev) if rev is not None else None
        if unknown is not None:
            return unknown
        d = d.with_progress(polls=d.progress.polls + 1)
        inline_ok = d.progress.polls * c.tick_s < c.budget_s
        return carried(d, Wait(c.tick_s if inline_ok else READY_POLL_S))

    def _smoke(self, d: Deployment) -> Step:
        """SMOKE_TESTING: the rule's checks against the revision's own URL, every attempt recorded."""
        if d.progress.no_checks:  # it got here by its health state
            return to_phase(d.evolve(step=0), Phase.SHIFTING, f"smoke checks skipped (checks: none): "
                            f"{d.revision} is ready by its health state", self.ctx.clock())
        return self.checks.run(d, CheckKind.SMOKE, plan.smoke_checks(d.rollout), url(d.progress.fqdn),
                               on_pass=self._smoke_passed, on_fail=self._smoke_failed)

    def _smoke_passed(self, d: Deployment, events: list[DeploymentEvent], summary: str) -> Step:
        d = d.evolve(step=0)
        return to_phase(d, Phase.SHIFTING, f"smoke checks passed ({summary})", self.ctx.clock(), *events)

    def _smoke_failed(self, d: Deployment, events: list[DeploymentEvent], summary: str) -> Step:
        return self.endings.fail_before_shift(
            d, f"smoke check failed: {summary}; it never received traffic", *events)

    # ------------------------------------------------------------------ traffic
    def _shift(self, d: Deployment) -> Step:
        """SHIFTING: set the traffic table of the current step (same table again is harmless).

        The PATCH is awaited inline for at most SHIFT_INLINE_S; an operation still running then is
        recorded as requested (`progress.traffic_requested`, recorded before the step ends) and
        confirmed by a delayed wake-up that reads the app: applied -> VERIFYING, still running ->
        wait again, neither (the operation failed or was lost) -> the PATCH again."""
        c = self.ctx
        now = c.clock()
        steps = plan.shift_steps(d.rollout)
        index = min(d.step, len(steps) - 1)
        table = traffic.canary(d.previous_traffic, d.revision, steps[index])
        labels = {"labels": self.blue_green.promotion(d)} if d.progress.blue_green is not None else {}
        requested = d.progress.traffic_requested
        if not (requested is not None and requested.step == index and dict(requested.table) == table):
            requested = None
        if requested is None:
            applied = c.apps.set_traffic(d.target, table, wait_s=SHIFT_INLINE_S, **labels)
            reissued = False
        else:
            info = c.apps.get_app(d.target)
            busy = info.provisioning_state.lower() == "inprogress"
            if busy:  # a PATCH now would be refused (409): the service serialises app operations
                return self._traffic_pending(d, table, index, steps, now, requested, reissued=False)
            applied = traffic.serving(info.traffic) == traffic.serving(table) and \
                info.provisioning_state.lower() in ("", "succeeded")
            reissued = not applied
            if reissued:
                applied = c.apps.set_traffic(d.target, table, wait_s=SHIFT_INLINE_S, **labels)
        if not applied:
            return self._traffic_pending(d, table, index, steps, now, requested, reissued)
        final = index == len(steps) - 1
        bake = verify_window_s(d, 0.0 if final else max(d.rollout.bake_s, 0.0))
        d = d.with_progress(traffic_requested=None, verify_after=now + timedelta(seconds=bake), verify=None,
                            analysis=analysis.start(d.rollout, now))
        message = f"{_step_label(index, steps)}traffic now {traffic.describe(table)}"
        if labels:
            message += f"; labels {describe_labels(labels['labels'])}"
        if bake:
            message += f"; baking {bake:g} s before verifying"
        return to_phase(d, Phase.VERIFYING, message, now, traffic=table, step=index)

    def _traffic_pending(self, d: Deployment, table: Mapping[str, int], index: int, steps: Sequence[int],
                         now: datetime, requested: TrafficRequest | None, reissued: bool) -> Step:
        """Record that the traffic change is requested (before the step ends: a crash after this
        leaves a record the redelivery confirms instead of guessing), then wake up to confirm it."""
        if requested is None:
            request = TrafficRequest(step=index, table=dict(table), at=now, checks=0, patches=1)
        else:
            request = TrafficRequest(step=index, table=dict(table), at=requested.at, checks=requested.checks + 1,
                                     patches=requested.patches + (1 if reissued else 0))
        d = d.with_progress(traffic_requested=request)
        events = []
        if requested is None or reissued:  # one history line per PATCH, not one per confirmation
            verb = "requested again (the earlier change was not applied)" if reissued else "requested"
            events.append(plan.note(d, f"{_step_label(index, steps)}traffic change to {traffic.describe(table)} "
                                       f"{verb}; Azure is still applying it, confirming in {SHIFT_CONFIRM_S:g} s",
                                    now, requested_traffic=dict(table)))
        return recorded(d, *events, next=Wait(SHIFT_CONFIRM_S))

    def _verify(self, d: Deployment) -> Step:
        """VERIFYING: after the bake, the canary analysis (rules with `rollout.analysis`), then the verify
        checks against the app's URL (which now splits traffic); pass -> next step or done, fail -> roll back."""
        wait = remaining(d.progress.verify_after, self.ctx.clock())
        if wait is not None:
            return carried(d, Wait(wait))
        if analysis.pending(d):  # the request metrics first; the verify checks once they pass
            return self.analysis.step(d)
        if d.progress.no_checks:
            healthy, summary = health_verdict(self.ctx, d)
            return (self._verify_passed if healthy else self._verify_failed)(d, [], summary)
        return self.checks.run(d, CheckKind.VERIFY, plan.verify_checks(d.rollout), url(d.progress.app_fqdn),
                               on_pass=self._verify_passed, on_fail=self._verify_failed)

    def _verify_passed(self, d: Deployment, events: list[DeploymentEvent], summary: str) -> Step:
        steps = plan.shift_steps(d.rollout)
        if d.step + 1 < len(steps):
            d = d.evolve(step=d.step + 1)
            return to_phase(d, Phase.SHIFTING, f"step {d.step}/{len(steps)} verified ({summary})",
                            self.ctx.clock(), *events)
        return self.endings.succeed(d, summary, events)

    def _verify_failed(self, d: Deployment, events: list[DeploymentEvent], summary: str) -> Step:
        steps = plan.shift_steps(d.rollout)
        at = steps[min(d.step, len(steps) - 1)]
        return self.endings.roll_back(d, f"verification failed at {at} %: {summary}", *events)


def _step_label(index: int, steps: Sequence[int]) -> str:
    """'step 2/3: ' for canary histories; nothing for an all-at-once shift."""
    return f"step {index + 1}/{len(steps)}: " if len(steps) > 1 else ""

