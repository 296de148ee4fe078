"""One step of a rollout: the deadline and ownership checks, then the handler of the current phase.

QUEUED (claim) -> CREATING_REVISION -> WAITING_READY -> SMOKE_TESTING -> SHIFTING <-> VERIFYING; each
handler reads the world, asks `shared.domain.rollout`, acts, and records the outcome through the
`Recorder`. Endings (fail, roll back, supersede, expire, Azure errors) are `Endings`'.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.domain import rollout as plan
from shared.domain import traffic
from shared.domain.model import AppState, Deployment, DeploymentEvent, DeploymentKind, Phase
from shared.ports import ConcurrencyError, PermanentAzureError, TransientAzureError
from shared.services.rollout_checks import CheckRunner, url
from shared.services.rollout_endings import Endings
from shared.services.rollout_records import (
    Next, Recorder, RolloutPorts, advance_message_of, iso, live_of, parse, remaining,
)

WAIT_FOR_APP_S = 2.0  # re-check interval while an older rollout holds the app
READY_POLL_S = 2.0  # revision start-up polling once the inline budget is spent
# Traffic PATCH: awaited inline for about two ARM poll ticks (the adapter polls every 0.5 s), then
# confirmed by a delayed message (whole seconds: Storage queue visibility) reading the app.
SHIFT_INLINE_S = 1.0
SHIFT_CONFIRM_S = 1.0


class Phases:
    def __init__(self, ports: RolloutPorts, recorder: Recorder, checks: CheckRunner, endings: Endings) -> None:
        self.ports = ports
        self.recorder = recorder
        self.checks = checks
        self.endings = endings
        self._handlers = {
            Phase.CREATING_REVISION: self._create,
            Phase.WAITING_READY: self._wait_ready,
            Phase.SMOKE_TESTING: self._smoke,
            Phase.SHIFTING: self._shift,
            Phase.VERIFYING: self._verify,
        }

    def step(self, d: Deployment) -> Next:
        now = self.ports.clock()
        if d.deadline is None:
            d = d.evolve(deadline=plan.deadline_for(d))
        # A recorded ending (see Endings._decide) was decided before a crash; its Azure change may
        # already be made. Finish it, whatever the deadline or a newer push says: re-running the
        # phase's checks against the changed app could pass and undo a rollback.
        ending = d.data.get("ending") and not d.phase.terminal
        if not ending and plan.past_deadline(d, now):
            return self.endings.expire(d)
        try:
            if ending:
                return self.endings.resume(d)
            if d.phase == Phase.QUEUED:
                return self._claim(d)
            state = self.ports.store.get_app_state(d.target)
            if state is None or state.active_deployment_id != d.id:
                holder = state.active_deployment_id if state else ""
                return self.recorder.finish(d, Phase.FAILED, f"lost the app to {holder or 'nobody'} while "
                                            f"{d.phase}; stopped without touching it")
            newer = plan.superseded_by(d, state)
            if newer:
                return self.endings.supersede(d, newer)
            return self._handlers[d.phase](d)
        except TransientAzureError as exc:
            return self.endings.transient(d, exc)
        except PermanentAzureError as exc:
            return self.endings.permanent(d, exc)

    # ------------------------------------------------------------------ QUEUED
    def _claim(self, d: Deployment) -> Next:
        """QUEUED: take the app (or wait for / yield to another deployment), then read the app and
        record what serves now: that is the traffic the new revision is pinned beside."""
        now = self.ports.clock()
        not_yet = self._take_app(d, now)
        if not_yet is not None:
            return not_yet
        d.data.pop("waiting_for", None)
        info = self.ports.apps.get_app(d.target)
        d.data["app_fqdn"] = info.fqdn
        if d.kind == DeploymentKind.ROLLBACK:
            pin = traffic.serving(info.traffic)
            d = d.evolve(previous_traffic=d.previous_traffic or pin)
            d.data["ready_by"] = iso(now + timedelta(seconds=d.rollout.ready_timeout_s))
            return self.recorder.to(d, Phase.WAITING_READY, f"took the app; returning to {d.revision} "
                                    f"(serving now: {traffic.describe(pin)})")
        switch = False
        if info.revisions_mode.lower() == "single":
            if not d.rollout.allow_single_mode_switch:
                return self.recorder.finish(d, Phase.FAILED, (
                    f"{d.target.app} is in Single revision mode: a new revision would take all traffic "
                    "before its smoke checks; switch the app to Multiple mode or set "
                    "rollout.allow_single_mode_switch in its rule"))
            switch = True
        suffix = plan.revision_suffix(d.target.app, d.tag, d.digest or plan.digest_of(d.image))
        name = plan.revision_name(d.target.app, suffix)
        pin = d.previous_traffic or traffic.pinned(info.traffic, name)
        d = d.evolve(revision=name, previous_traffic=pin)
        d.data.update(suffix=suffix, switch_mode=switch)
        message = f"took the app; creating {name} at 0 % beside {traffic.describe(pin)}"
        if switch:
            message += " (switching the app to Multiple revision mode, as its rule allows)"
        return self.recorder.to(d, Phase.CREATING_REVISION, message, traffic=pin)

    def _take_app(self, d: Deployment, now: datetime) -> Next | None:
        """None once `d` holds the app; otherwise what to do instead (yield, wait, try again)."""
        store = self.ports.store
        for _ in range(5):
            state = store.get_app_state(d.target)
            holder = None
            if state and state.active_deployment_id and state.active_deployment_id != d.id:
                holder = store.get_deployment(state.active_deployment_id, app=d.target.app)
            decision = plan.decide_claim(d, state, holder)
            if decision.claim == plan.Claim.SUPERSEDED:
                return self.recorder.finish(d, Phase.SUPERSEDED,
                                            f"superseded by newer deployment {decision.other} before it started")
            if decision.claim == plan.Claim.WAIT:
                if d.data.get("waiting_for") != decision.other:
                    d.data["waiting_for"] = decision.other
                    d = self.recorder.save(d, plan.note(
                        d, f"waiting for {decision.other} ({holder.phase if holder else '?'}) to finish "
                           "with the app", now))
                    if holder is not None and holder.phase in plan.PRE_SHIFT:
                        self.ports.queue.send(advance_message_of(holder))  # so it notices us and yields now
                return Next(d, WAIT_FOR_APP_S)
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
        return Next(d, 0.5)

    # ------------------------------------------------------------------ the new revision
    def _create(self, d: Deployment) -> Next:
        """CREATING_REVISION: one PATCH (idempotent: an existing revision of that name is reused)."""
        now = self.ports.clock()
        name = self.ports.apps.create_revision(
            d.target, d.image, d.data.get("suffix") or d.revision.split("--", 1)[-1], d.previous_traffic,
            switch_to_multiple=bool(d.data.get("switch_mode")),
        )
        d = d.evolve(revision=name)
        d.data["ready_by"] = iso(now + timedelta(seconds=d.rollout.ready_timeout_s))
        return self.recorder.to(d, Phase.WAITING_READY, f"created {name} with {d.image} (0 % traffic)")

    def _wait_ready(self, d: Deployment) -> Next:
        """WAITING_READY: provisioned, running and healthy by `ready_by`, or the deployment fails."""
        p = self.ports
        now = p.clock()
        rev = p.apps.get_revision(d.target, d.revision)
        if rev is not None and not rev.active and not rev.failed:
            # A re-push of an old (tag, digest) or a rollback target kept inactive: wake it up.
            # Record that this deployment activates it *before* asking Azure: a worker killed right
            # after the activation would otherwise lose the fact, and a rollback that later fails
            # would leave its (formerly inactive) target active (`Endings._owns_new_revision`). A
            # crash before the call leaves the flag on an inactive revision: the redelivery
            # activates it (deactivating it again on failure is harmless).
            # tests/scenario/test_crash_manual_rollback.py
            if not d.data.get("activated"):
                d.data["activated"] = True
                d = self.recorder.save(d, plan.note(d, f"activated {d.revision}", now))
            p.apps.set_revision_active(d.target, d.revision, True)
            return Next(d, p.tick_s)
        if rev is not None and rev.ready:
            d.data["fqdn"] = rev.fqdn
            return self.recorder.to(d, Phase.SMOKE_TESTING, f"{d.revision} is ready at {rev.fqdn}",
                                    fqdn=rev.fqdn)
        if rev is not None and rev.failed:
            detail = rev.provisioning_error or f"provisioning {rev.provisioning_state}, running {rev.running_state}"
            return self.endings.fail_before_shift(d, f"{d.revision} failed to start: {detail}")
        ready_by = parse(d.data.get("ready_by")) or now
        if now >= ready_by:
            state = (f"provisioning {rev.provisioning_state}, running {rev.running_state}, health "
                     f"{rev.health_state}" if rev else "the revision does not exist")
            return self.endings.fail_before_shift(
                d, f"{d.revision} was not ready within {d.rollout.ready_timeout_s:g} s ({state})")
        d.data["polls"] = int(d.data.get("polls", 0)) + 1
        inline_ok = int(d.data.get("polls", 0)) * p.tick_s < p.budget_s
        return Next(d, p.tick_s if inline_ok else READY_POLL_S)

    def _smoke(self, d: Deployment) -> Next:
        """SMOKE_TESTING: the rule's checks against the revision's own URL, every attempt recorded."""
        return self.checks.run(d, "smoke", plan.smoke_checks(d.rollout), url(d.data.get("fqdn", "")),
                               on_pass=self._smoke_passed, on_fail=self._smoke_failed)

    def _smoke_passed(self, d: Deployment, events: list[DeploymentEvent], summary: str) -> Next:
        d = d.evolve(step=0)
        return self.recorder.to(d, Phase.SHIFTING, f"smoke checks passed ({summary})", *events)

    def _smoke_failed(self, d: Deployment, events: list[DeploymentEvent], summary: str) -> Next:
        return self.endings.fail_before_shift(
            d, f"smoke check failed: {summary}; it never received traffic", *events)

    # ------------------------------------------------------------------ traffic
    def _shift(self, d: Deployment) -> Next:
        """SHIFTING: set the traffic table of the current step (same table again is harmless).

        The PATCH is awaited inline for at most SHIFT_INLINE_S; an operation still running then is
        recorded as requested (`data["traffic_requested"]`, saved before the step returns) and
        confirmed by a delayed wake-up that reads the app: applied -> VERIFYING, still running ->
        wait again, neither (the operation failed or was lost) -> the PATCH again."""
        p = self.ports
        now = p.clock()
        steps = plan.shift_steps(d.rollout)
        index = min(d.step, len(steps) - 1)
        table = traffic.canary(d.previous_traffic, d.revision, steps[index])
        requested = d.data.get("traffic_requested")
        if not (isinstance(requested, dict) and requested.get("step") == index
                and requested.get("table") == table):
            requested = None
        if requested is None:
            applied = p.apps.set_traffic(d.target, table, wait_s=SHIFT_INLINE_S)
            reissued = False
        else:
            info = p.apps.get_app(d.target)
            busy = info.provisioning_state.lower() == "inprogress"
            if busy:  # a PATCH now would be refused (409): the service serialises app operations
                return self._traffic_pending(d, table, index, steps, now, requested, reissued=False)
            applied = traffic.serving(info.traffic) == traffic.serving(table) and \
                info.provisioning_state.lower() in ("", "succeeded")
            reissued = not applied
            if reissued:
                applied = p.apps.set_traffic(d.target, table, wait_s=SHIFT_INLINE_S)
        if not applied:
            return self._traffic_pending(d, table, index, steps, now, requested, reissued)
        d.data.pop("traffic_requested", None)
        final = index == len(steps) - 1
        bake = 0.0 if final else max(d.rollout.bake_s, 0.0)
        d.data["verify_after"] = iso(now + timedelta(seconds=bake))
        d.data.pop("verify", None)
        d.data.pop("verify_retry_at", None)
        message = f"{_step_label(index, steps)}traffic now {traffic.describe(table)}"
        if bake:
            message += f"; baking {bake:g} s before verifying"
        return self.recorder.to(d, Phase.VERIFYING, message, traffic=table, step=index)

    def _traffic_pending(self, d: Deployment, table: dict, index: int, steps: list[int],
                         now: datetime, requested: dict | None, reissued: bool) -> Next:
        """Record that the traffic change is requested (before the step returns: a crash after this
        leaves a record the redelivery confirms instead of guessing), then wake up to confirm it."""
        first = requested is None
        checks = 0 if first else int(requested.get("checks", 0)) + 1
        patches = (0 if first else int(requested.get("patches", 1))) + (1 if first or reissued else 0)
        d.data["traffic_requested"] = {
            "step": index, "table": table, "at": iso(now) if first else requested.get("at", iso(now)),
            "checks": checks, "patches": patches,
        }
        events = []
        if first or reissued:  # one history line per PATCH, not one per confirmation
            verb = "requested again (the earlier change was not applied)" if reissued else "requested"
            events.append(plan.note(d, f"{_step_label(index, steps)}traffic change to {traffic.describe(table)} {verb}; Azure is "
                                       f"still applying it, confirming in {SHIFT_CONFIRM_S:g} s", now,
                                    requested_traffic=table))
        d = self.recorder.save(d, *events)
        return Next(d, SHIFT_CONFIRM_S)

    def _verify(self, d: Deployment) -> Next:
        """VERIFYING: after the bake, the verify checks against the app's URL (which now splits
        traffic); pass -> next step or done, fail -> roll back."""
        wait = remaining(parse(d.data.get("verify_after")), self.ports.clock())
        if wait is not None:
            return Next(d, wait)
        return self.checks.run(d, "verify", plan.verify_checks(d.rollout), url(d.data.get("app_fqdn", "")),
                               on_pass=self._verify_passed, on_fail=self._verify_failed)

    def _verify_passed(self, d: Deployment, events: list[DeploymentEvent], summary: str) -> Next:
        steps = plan.shift_steps(d.rollout)
        if d.step + 1 < len(steps):
            d = d.evolve(step=d.step + 1)
            return self.recorder.to(d, Phase.SHIFTING, f"step {d.step}/{len(steps)} verified ({summary})",
                                    *events)
        return self.endings.succeed(d, summary, events)

    def _verify_failed(self, d: Deployment, events: list[DeploymentEvent], summary: str) -> Next:
        steps = plan.shift_steps(d.rollout)
        at = steps[min(d.step, len(steps) - 1)]
        return self.endings.roll_back(d, f"verification failed at {at} %: {summary}", *events)


def _step_label(index: int, steps) -> str:
    """'step 2/3: ' for canary histories; nothing for an all-at-once shift."""
    return f"step {index + 1}/{len(steps)}: " if len(steps) > 1 else ""
