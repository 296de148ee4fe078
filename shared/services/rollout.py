"""The rollout worker: advances one deployment per queue message, one short idempotent step at a time.

Each step reads the world, asks `shared.domain.rollout` what to do, does it, and records the outcome
(`save_deployment` with the deployment's ETag) before anything else happens. Steps that need no wait
run inline in the same invocation (push to live must not pay a queue hop per step); a wait (revision
start-up, smoke back-off, canary bake, Azure back-off) longer than a poll tick becomes a message sent
with a visibility delay. A process killed anywhere resumes from the record when the message
reappears. Two messages for one deployment race on the ETag: the loser drops its message, and a
wake token in the record lets only the newest scheduled message carry on.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Callable

from shared.domain import rollout as plan
from shared.domain import traffic
from shared.domain.model import (
    AppState,
    Deployment,
    DeploymentEvent,
    DeploymentKind,
    Phase,
    RolloutSettings,
    SmokeCheck,
    Target,
    deployment_from_dict,
    start_message,
    utcnow,
)
from shared.errors import ConflictError, InvalidRequestError, NotFoundError
from shared.ports import (
    ConcurrencyError,
    DeploymentQuery,
    PermanentAzureError,
    ProbeResult,
    TransientAzureError,
)

log = logging.getLogger("acr_deploy.rollout")

MAX_DEQUEUE = 5  # host.json queues.maxDequeueCount: the last delivery records FAILED, never poisons
MAX_STEPS = 200  # per invocation (bounds the inline loop even if the budget is generous)
MAX_TRANSIENT = 8  # Azure back-offs per phase before the deployment gives up
WAIT_FOR_APP_S = 2.0  # re-check interval while an older rollout holds the app
READY_POLL_S = 2.0  # revision start-up polling once the inline budget is spent
STALE_AFTER_S = 120.0  # sweeper: no progress and no wake due for this long -> re-send a message
SWEEP_LOOKBACK = timedelta(days=2)


@dataclass
class _Next:
    """What a step handler decided: carry on now, wait `wait_s`, or stop (terminal / dropped)."""

    d: Deployment
    wait_s: float | None = None
    done: bool = False


def _advance_message(d: Deployment, wake: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "v": 1, "kind": "advance", "deployment_id": d.id, "target_key": d.target.key,
    }
    if wake is not None:
        message["wake"] = wake
    return message


class RolloutWorker:
    def __init__(
        self,
        store: Any,
        queue: Any,
        apps: Any,
        probe: Any,
        publisher: Any = None,
        clock: Callable[[], datetime] = utcnow,
        budget_s: float = 8.0,
        *,
        tick_s: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        on_saved: Callable[[Deployment], None] | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.apps = apps
        self.probe = probe
        self.publisher = publisher
        self.clock = clock
        self.budget_s = budget_s
        self.tick_s = tick_s
        self.sleep = sleep
        self.monotonic = monotonic
        self.on_saved = on_saved  # tests: a crash hook called after every recorded step

    # ================================================================== entry points
    def handle_message(self, message: dict[str, Any], dequeue_count: int = 1) -> None:
        deployment_id = str((message or {}).get("deployment_id") or "")
        if not deployment_id:
            log.warning("rollout message without deployment_id dropped: %s", str(message)[:200])
            return
        try:
            self._handle(message, deployment_id)
        except ConcurrencyError as exc:
            # Another worker recorded this deployment since we read it: it owns the next step.
            log.info("rollout %s: lost a race (%s); dropping this message", deployment_id, exc)
        except Exception as exc:
            if dequeue_count >= MAX_DEQUEUE:
                self._give_up(deployment_id, exc, dequeue_count)
                return
            log.warning("rollout %s: step failed (delivery %d of %d): %s: %s", deployment_id,
                        dequeue_count, MAX_DEQUEUE, type(exc).__name__, str(exc)[:300])
            raise

    def sweep(self) -> dict[str, int]:
        """Timer: fail/finish rollouts past their deadline, re-send lost messages, free apps held
        by finished deployments. Returns counts (for logs and tests)."""
        now = self.clock()
        counts = {"expired": 0, "resent": 0, "released": 0}
        continuation = None
        seen: set[str] = set()
        for _ in range(20):  # bounded: 20 pages of active deployments
            page = self.store.list_deployments(DeploymentQuery(
                status="active", since=now - SWEEP_LOOKBACK, limit=100, continuation=continuation))
            for d in page.items:
                seen.add(d.id)
                try:
                    outcome = self._sweep_one(d, now)
                    if outcome in counts:
                        counts[outcome] += 1
                except Exception as exc:  # noqa: BLE001 - one bad record must not stop the sweep
                    log.warning("sweep %s: %s: %s", d.id, type(exc).__name__, str(exc)[:300])
            continuation = page.continuation
            if not continuation:
                break
        for state in self.store.list_apps():
            holder_id = state.active_deployment_id
            if not holder_id or holder_id in seen:
                continue
            try:
                holder = self.store.get_deployment(holder_id)
                if holder is None:
                    self.store.save_app_state(replace(state, active_deployment_id="", updated_at=now))
                    counts["released"] += 1
                elif holder.phase.terminal:
                    self._settle(holder)
                    counts["released"] += 1
                elif plan.past_deadline(holder, now):
                    self._sweep_one(holder, now)
                    counts["expired"] += 1
            except Exception as exc:  # noqa: BLE001
                log.warning("sweep app %s: %s: %s", state.target.app, type(exc).__name__, str(exc)[:300])
        return counts

    def _sweep_one(self, d: Deployment, now: datetime) -> str:
        if plan.past_deadline(d, now):
            self._run(d)  # the step handler sees the deadline and fails / rolls back
            return "expired"
        wake_at = _parse(d.data.get("wake_at"))
        due = wake_at is None or now >= wake_at + timedelta(seconds=STALE_AFTER_S)
        if due and now - d.updated_at >= timedelta(seconds=STALE_AFTER_S):
            self.queue.send(_advance_message(d))
            return "resent"
        return "none"

    def request_rollback(
        self, app: str, to_revision: str | None = None, resource_group: str | None = None,
        requested_by: str = "",
    ) -> Deployment:
        """Record a kind=rollback deployment that moves `app` back to its previous (or the named)
        healthy revision, and enqueue it: it runs through the same machinery as a push."""
        if not app or not isinstance(app, str):
            raise InvalidRequestError("an app name is required")
        target = self._find_target(app.strip().lower(), (resource_group or "").strip().lower())
        info = self._call(lambda: self.apps.get_app(target), not_found=f"app {app} was not found in Azure")
        if info.revisions_mode.lower() == "single":
            raise ConflictError(f"app {target.app} is in Single revision mode: it has only one active "
                                "revision, so there is nothing to move traffic back to")
        chosen = plan.rollback_target(target.app, info.revisions, info.traffic, to_revision or "")
        now = self.clock()
        d = Deployment(
            id=plan.rollback_deployment_id(target.key, chosen.name, now, requested_by),
            target=target, kind=DeploymentKind.ROLLBACK, phase=Phase.QUEUED,
            created_at=now, updated_at=now, image=chosen.image or "",
            digest=plan.digest_of(chosen.image or ""), pushed_by=requested_by[:200],
            rule="manual-rollback", source="manual", revision=chosen.name, rollback_to=chosen.name,
            rollout=RolloutSettings(ready_timeout_s=300.0, keep_previous=1),
        )
        d.tag = self._tag_of(target, chosen.name)
        first = DeploymentEvent(
            d.id, now, Phase.QUEUED,
            f"rollback of {target.app} to {chosen.name} requested by {requested_by or 'unknown'} "
            f"(serving now: {traffic.describe(traffic.serving(info.traffic))})",
            {"requested_by": requested_by[:200], "to": chosen.name},
        )
        for _ in range(5):
            state = self.store.get_app_state(target) or AppState(target=target)
            new_state = replace(state, pending_deployment_id=d.id, last_deployment_id=d.id,
                                last_phase=Phase.QUEUED.value, updated_at=now)
            try:
                self.store.create_deployment(d, first, new_state)
                break
            except ConcurrencyError:
                if self.store.get_deployment(d.id) is not None:
                    break
        else:
            raise ConflictError(f"app {target.app} is busy; try the rollback again")
        self.queue.send(start_message(d))
        return self.store.get_deployment(d.id) or d

    # ================================================================== the loop
    def _handle(self, message: dict[str, Any], deployment_id: str) -> None:
        d = self.store.get_deployment(deployment_id)
        if d is None:
            d = self._recover(message)
            if d is None:
                return
        wake = message.get("wake")
        if wake is not None and _int(wake) < _int(d.data.get("wake")):
            log.info("rollout %s: stale wake-up %s dropped", d.id, wake)
            return
        self._run(d)

    def _run(self, d: Deployment) -> None:
        if d.phase.terminal:
            self._settle(d)
            return
        started = self.monotonic()
        for _ in range(MAX_STEPS):
            result = self._step(d)
            d = result.d
            if result.done or d.phase.terminal:
                return
            elapsed = self.monotonic() - started
            if result.wait_s is None:
                if elapsed < self.budget_s:
                    continue
                self._schedule(d, 0.0)  # budget spent: carry on in a fresh invocation
                return
            if result.wait_s <= self.tick_s and elapsed + result.wait_s < self.budget_s:
                self.sleep(max(result.wait_s, 0.0))
                continue
            self._schedule(d, result.wait_s)
            return
        self._schedule(d, 0.0)

    def _step(self, d: Deployment) -> _Next:
        now = self.clock()
        if d.deadline is None:
            d = d.evolve(deadline=plan.deadline_for(d))
        if plan.past_deadline(d, now):
            return self._expire(d)
        try:
            if d.phase == Phase.QUEUED:
                return self._claim(d)
            state = self.store.get_app_state(d.target)
            if state is None or state.active_deployment_id != d.id:
                holder = state.active_deployment_id if state else ""
                return self._finish(d, Phase.FAILED, f"lost the app to {holder or 'nobody'} while {d.phase}; "
                                    "stopped without touching it")
            newer = plan.superseded_by(d, state)
            if newer:
                return self._supersede(d, newer)
            handler = {
                Phase.CREATING_REVISION: self._create,
                Phase.WAITING_READY: self._wait_ready,
                Phase.SMOKE_TESTING: self._smoke,
                Phase.SHIFTING: self._shift,
                Phase.VERIFYING: self._verify,
            }[d.phase]
            return handler(d)
        except TransientAzureError as exc:
            return self._transient(d, exc)
        except PermanentAzureError as exc:
            return self._permanent(d, exc)

    # ================================================================== phases
    def _claim(self, d: Deployment) -> _Next:
        """QUEUED: take the app (or wait for / yield to another deployment), then read the app and
        record what serves now: that is the traffic the new revision is pinned beside."""
        now = self.clock()
        for _ in range(5):
            state = self.store.get_app_state(d.target)
            holder = None
            if state and state.active_deployment_id and state.active_deployment_id != d.id:
                holder = self.store.get_deployment(state.active_deployment_id)
            decision = plan.decide_claim(d, state, holder)
            if decision.claim == plan.Claim.SUPERSEDED:
                return self._finish(d, Phase.SUPERSEDED,
                                    f"superseded by newer deployment {decision.other} before it started")
            if decision.claim == plan.Claim.WAIT:
                if d.data.get("waiting_for") != decision.other:
                    d.data["waiting_for"] = decision.other
                    d = self._save(d, plan.note(d, f"waiting for {decision.other} "
                                                   f"({holder.phase if holder else '?'}) to finish with the app", now))
                    if holder is not None and holder.phase in plan.PRE_SHIFT:
                        self.queue.send(_advance_message(holder))  # so it notices us and yields now
                return _Next(d, WAIT_FOR_APP_S)
            if decision.claim == plan.Claim.MINE:
                break
            base = state or AppState(target=d.target)
            if holder is not None and holder.phase.terminal:  # it ended without freeing the app
                base = plan.released(base, holder, now, _live_of(holder))
            try:
                self.store.save_app_state(plan.claimed(base, d, now))
                break
            except ConcurrencyError:
                continue
        else:
            return _Next(d, 0.5)
        d.data.pop("waiting_for", None)
        info = self.apps.get_app(d.target)
        d.data["app_fqdn"] = info.fqdn
        if d.kind == DeploymentKind.ROLLBACK:
            pin = traffic.serving(info.traffic)
            d = d.evolve(previous_traffic=d.previous_traffic or pin)
            d.data["ready_by"] = _iso(now + timedelta(seconds=d.rollout.ready_timeout_s))
            return self._to(d, Phase.WAITING_READY,
                            f"took the app; returning to {d.revision} (serving now: {traffic.describe(pin)})")
        switch = False
        if info.revisions_mode.lower() == "single":
            if not d.rollout.allow_single_mode_switch:
                return self._finish(d, Phase.FAILED, (
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
        return self._to(d, Phase.CREATING_REVISION, message, traffic=pin)

    def _create(self, d: Deployment) -> _Next:
        """CREATING_REVISION: one PATCH (idempotent: an existing revision of that name is reused)."""
        now = self.clock()
        name = self.apps.create_revision(
            d.target, d.image, d.data.get("suffix") or d.revision.split("--", 1)[-1], d.previous_traffic,
            switch_to_multiple=bool(d.data.get("switch_mode")),
        )
        d = d.evolve(revision=name)
        d.data["ready_by"] = _iso(now + timedelta(seconds=d.rollout.ready_timeout_s))
        return self._to(d, Phase.WAITING_READY, f"created {name} with {d.image} (0 % traffic)")

    def _wait_ready(self, d: Deployment) -> _Next:
        """WAITING_READY: provisioned, running and healthy by `ready_by`, or the deployment fails."""
        now = self.clock()
        rev = self.apps.get_revision(d.target, d.revision)
        if rev is not None and not rev.active and not rev.failed:
            # A re-push of an old (tag, digest) or a rollback target kept inactive: wake it up.
            self.apps.set_revision_active(d.target, d.revision, True)
            d.data["activated"] = True
            d = self._save(d, plan.note(d, f"activated {d.revision}", now))
            return _Next(d, self.tick_s)
        if rev is not None and rev.ready:
            d.data["fqdn"] = rev.fqdn
            return self._to(d, Phase.SMOKE_TESTING, f"{d.revision} is ready at {rev.fqdn}",
                            fqdn=rev.fqdn)
        if rev is not None and rev.failed:
            detail = rev.provisioning_error or f"provisioning {rev.provisioning_state}, running {rev.running_state}"
            return self._fail_before_shift(d, f"{d.revision} failed to start: {detail}")
        ready_by = _parse(d.data.get("ready_by")) or now
        if now >= ready_by:
            state = (f"provisioning {rev.provisioning_state}, running {rev.running_state}, health "
                     f"{rev.health_state}" if rev else "the revision does not exist")
            return self._fail_before_shift(
                d, f"{d.revision} was not ready within {d.rollout.ready_timeout_s:g} s ({state})")
        d.data["polls"] = int(d.data.get("polls", 0)) + 1
        return _Next(d, self.tick_s if self._inline_ok(d) else READY_POLL_S)

    def _smoke(self, d: Deployment) -> _Next:
        """SMOKE_TESTING: the rule's checks against the revision's own URL, every attempt recorded."""
        checks = plan.smoke_checks(d.rollout)
        base = _url(d.data.get("fqdn", ""))
        return self._checks(d, "smoke", checks, base, on_pass=self._smoke_passed, on_fail=self._smoke_failed)

    def _smoke_passed(self, d: Deployment, events: list[DeploymentEvent], summary: str) -> _Next:
        d = d.evolve(step=0)
        return self._to(d, Phase.SHIFTING, f"smoke checks passed ({summary})", *events)

    def _smoke_failed(self, d: Deployment, events: list[DeploymentEvent], summary: str) -> _Next:
        return self._fail_before_shift(d, f"smoke check failed: {summary}; it never received traffic", *events)

    def _shift(self, d: Deployment) -> _Next:
        """SHIFTING: set the traffic table of the current step (same table again is harmless)."""
        now = self.clock()
        steps = plan.shift_steps(d.rollout)
        index = min(d.step, len(steps) - 1)
        table = traffic.canary(d.previous_traffic, d.revision, steps[index])
        self.apps.set_traffic(d.target, table)
        final = index == len(steps) - 1
        bake = 0.0 if final else max(d.rollout.bake_s, 0.0)
        d.data["verify_after"] = _iso(now + timedelta(seconds=bake))
        d.data.pop("verify", None)
        d.data.pop("verify_retry_at", None)
        label = f"step {index + 1}/{len(steps)}: " if len(steps) > 1 else ""
        message = f"{label}traffic now {traffic.describe(table)}"
        if bake:
            message += f"; baking {bake:g} s before verifying"
        return self._to(d, Phase.VERIFYING, message, traffic=table, step=index)

    def _verify(self, d: Deployment) -> _Next:
        """VERIFYING: after the bake, the verify checks against the app's URL (which now splits
        traffic); pass -> next step or done, fail -> roll back."""
        now = self.clock()
        after = _parse(d.data.get("verify_after"))
        if after and now < after:
            return _Next(d, (after - now).total_seconds())
        checks = plan.verify_checks(d.rollout)
        return self._checks(d, "verify", checks, _url(d.data.get("app_fqdn", "")),
                            on_pass=self._verify_passed, on_fail=self._verify_failed)

    def _verify_passed(self, d: Deployment, events: list[DeploymentEvent], summary: str) -> _Next:
        steps = plan.shift_steps(d.rollout)
        if d.step + 1 < len(steps):
            d = d.evolve(step=d.step + 1)
            return self._to(d, Phase.SHIFTING, f"step {d.step}/{len(steps)} verified ({summary})", *events)
        return self._succeed(d, summary, events)

    def _verify_failed(self, d: Deployment, events: list[DeploymentEvent], summary: str) -> _Next:
        steps = plan.shift_steps(d.rollout)
        at = steps[min(d.step, len(steps) - 1)]
        return self._roll_back(d, f"verification failed at {at} %: {summary}", *events)

    # ================================================================== checks
    def _checks(self, d: Deployment, key: str, checks: tuple[SmokeCheck, ...], base_url: str,
                on_pass: Callable, on_fail: Callable) -> _Next:
        now = self.clock()
        retry_at = _parse(d.data.get(f"{key}_retry_at"))
        if retry_at and now < retry_at:
            return _Next(d, (retry_at - now).total_seconds())
        run = plan.CheckRun.from_dict(d.data.get(key))
        events: list[DeploymentEvent] = []
        started = self.monotonic()
        for _ in range(100):  # bounded: consecutive passes x checks, within the budget
            check = checks[run.index]
            result: ProbeResult = self.probe.probe(base_url, check)
            run, verdict = plan.after_attempt(run, checks, result.ok)
            events.append(plan.note(
                d, _attempt_text(key, result), self.clock(), check=result.check, ok=result.ok,
                status=result.status, latency_ms=round(result.latency_ms, 1),
                **({"excerpt": result.detail[:300]} if result.detail and not result.ok else {}),
            ))
            summary = f"{check.name}: {result.detail or result.status}" if not result.ok else \
                f"{run.attempts} attempt(s) against {base_url}"
            if verdict == plan.Verdict.PASSED:
                d.data.pop(key, None)
                d.data.pop(f"{key}_retry_at", None)
                return on_pass(d, events, summary)
            if verdict == plan.Verdict.FAILED:
                return on_fail(d, events, f"{check.name} {check.method} {check.path}: "
                                          f"{result.detail or result.status} after {run.failures} failed attempt(s)")
            d.data[key] = run.to_dict()
            if verdict == plan.Verdict.RETRY:
                delay = plan.backoff_s(check, run.failures)
                if delay > self.tick_s or self.monotonic() - started + delay >= self.budget_s:
                    d.data[f"{key}_retry_at"] = _iso(self.clock() + timedelta(seconds=delay))
                    d = self._save(d, *events)
                    return _Next(d, delay)
                self.sleep(delay)
            if self.monotonic() - started >= self.budget_s:
                break
        d = self._save(d, *events)
        return _Next(d, 0.0)

    # ================================================================== endings
    def _succeed(self, d: Deployment, summary: str, events: list[DeploymentEvent]) -> _Next:
        now = self.clock()
        kept, removed, problems = self._clean_up(d)
        parts = [f"{d.revision} serves 100 % ({summary})"]
        if kept:
            parts.append(f"kept warm for rollback: {', '.join(kept)}")
        if removed:
            parts.append(f"deactivated: {', '.join(removed)}")
        if problems:
            parts.append(f"could not deactivate: {', '.join(problems)}")
        d, event = plan.transition(d, Phase.SUCCEEDED, "; ".join(parts), now,
                                   kept=kept, deactivated=removed)
        d = self._save(d, *events, event)
        self._release(d)
        return _Next(d, done=True)

    def _clean_up(self, d: Deployment) -> tuple[list[str], list[str], list[str]]:
        """Keep `keep_previous` earlier revisions warm, deactivate older ones. Best effort: a failure
        here is recorded but never fails a deployment that already serves."""
        try:
            info = self.apps.get_app(d.target)
        except (TransientAzureError, PermanentAzureError) as exc:
            return [], [], [f"(could not list revisions: {exc})"]
        doomed = plan.deactivation_plan(info.revisions, d.revision, d.previous_traffic,
                                        d.rollout.keep_previous)
        active = [r.name for r in info.revisions if r.active and r.name != d.revision]
        removed, problems = [], []
        for name in doomed:
            try:
                self.apps.set_revision_active(d.target, name, False)
                removed.append(name)
            except (TransientAzureError, PermanentAzureError) as exc:
                problems.append(f"{name} ({str(exc)[:120]})")
        kept = [n for n in active if n not in doomed]
        return kept, removed, problems

    def _fail_before_shift(self, d: Deployment, reason: str, *events: DeploymentEvent) -> _Next:
        """Nothing was shifted: the new revision (0 %) is deactivated, traffic was never touched."""
        reason = reason + self._deactivate_new(d)
        return self._finish(d, Phase.FAILED, reason, *events)

    def _deactivate_new(self, d: Deployment) -> str:
        if not d.revision or (d.kind == DeploymentKind.ROLLBACK and not d.data.get("activated")):
            return ""  # a rollback target that was already active stays as it was
        if d.phase == Phase.QUEUED:
            return ""
        try:
            self.apps.set_revision_active(d.target, d.revision, False)
            return f"; {d.revision} deactivated"
        except PermanentAzureError as exc:
            if exc.status == 404:
                return ""
            return f"; could not deactivate {d.revision}: {str(exc)[:200]}"
        except TransientAzureError as exc:
            return f"; could not deactivate {d.revision} now ({str(exc)[:120]}); the next clean-up will"

    def _roll_back(self, d: Deployment, reason: str, *events: DeploymentEvent) -> _Next:
        """Traffic returns to what served before; the new revision is deactivated."""
        table = plan.rollback_table(d)
        if not table:
            return self._finish(d, Phase.FAILED, f"{reason}; nothing served before {d.revision}, so it "
                                "keeps the traffic", *events)
        self.apps.set_traffic(d.target, table)
        suffix = self._deactivate_new(d)
        return self._finish(d, Phase.ROLLED_BACK,
                            f"{reason}; traffic back to {traffic.describe(table)}{suffix}", *events,
                            traffic=table)

    def _supersede(self, d: Deployment, newer: str) -> _Next:
        reason = f"superseded by newer deployment {newer} before its traffic shift" + self._deactivate_new(d)
        return self._finish(d, Phase.SUPERSEDED, reason)

    def _expire(self, d: Deployment) -> _Next:
        reason = f"deadline passed ({d.rollout.deadline_s:g} s) while {d.phase}"
        try:
            if d.phase in plan.SHIFTED:
                return self._roll_back(d, reason)
            return self._fail_before_shift(d, reason)
        except (TransientAzureError, PermanentAzureError) as exc:
            return self._finish(d, Phase.FAILED, f"{reason}; clean-up failed: {str(exc)[:200]}")

    def _transient(self, d: Deployment, exc: TransientAzureError) -> _Next:
        attempts = d.attempts + 1
        if attempts > MAX_TRANSIENT:
            return self._permanent(d, PermanentAzureError(f"Azure kept failing: {exc}"))
        delay = max(exc.retry_after_s or 0.0, min(0.5 * 2 ** (attempts - 1), 30.0))
        d = d.evolve(attempts=attempts)
        d = self._save(d, plan.note(d, f"Azure is busy ({str(exc)[:200]}); retry {attempts} in {delay:g} s",
                                    self.clock(), retry_after_s=delay))
        return _Next(d, delay)

    def _permanent(self, d: Deployment, exc: PermanentAzureError) -> _Next:
        reason = f"Azure refused: {str(exc)[:500]}"
        if d.phase in plan.SHIFTED:
            try:
                return self._roll_back(d, reason)
            except (TransientAzureError, PermanentAzureError) as again:
                reason += f"; rolling back failed too: {str(again)[:200]}"
                return self._finish(d, Phase.FAILED, reason)
        if d.phase == Phase.QUEUED:
            return self._finish(d, Phase.FAILED, reason)
        return self._fail_before_shift(d, reason)

    def _finish(self, d: Deployment, phase: Phase, reason: str, *events: DeploymentEvent, **data: Any) -> _Next:
        d, event = plan.transition(d, phase, reason, self.clock(), **data)
        d = self._save(d, *events, event)
        self._release(d)
        return _Next(d, done=True)

    def _give_up(self, deployment_id: str, exc: BaseException, dequeue_count: int) -> None:
        """The last delivery of a message that kept failing: record FAILED with the error (never let
        it vanish into the poison queue), put traffic back if it had moved, free the app."""
        log.error("rollout %s: giving up after %d deliveries: %s: %s", deployment_id, dequeue_count,
                  type(exc).__name__, str(exc)[:300])
        d = self.store.get_deployment(deployment_id)
        if d is None or d.phase.terminal:
            if d is not None:
                self._settle(d)
            return
        reason = f"a step kept failing ({dequeue_count} deliveries): {type(exc).__name__}: {str(exc)[:400]}"
        try:
            if d.phase in plan.SHIFTED and plan.rollback_table(d):
                self.apps.set_traffic(d.target, plan.rollback_table(d))
                reason += f"; traffic back to {traffic.describe(plan.rollback_table(d))}"
            if d.phase not in plan.SHIFTED:
                reason += self._deactivate_new(d)
        except Exception as again:  # noqa: BLE001 - recording the failure matters more
            reason += f"; could not restore the app: {type(again).__name__}"
        d, event = plan.transition(d, Phase.FAILED, reason, self.clock())
        d = self._save(d, event)
        self._release(d)

    # ================================================================== records, messages
    def _to(self, d: Deployment, phase: Phase, message: str, *events: DeploymentEvent, **data: Any) -> _Next:
        d, event = plan.transition(d, phase, message, self.clock(), **data)
        return _Next(self._save(d, *events, event))

    def _save(self, d: Deployment, *events: DeploymentEvent) -> Deployment:
        saved = self.store.save_deployment(d.evolve(updated_at=self.clock()), *events)
        if self.on_saved is not None:
            self.on_saved(saved)
        return saved

    def _schedule(self, d: Deployment, delay_s: float) -> None:
        """Send the delayed message with the next wake number, then record that number: a message
        carrying a lower number than the record is a stale duplicate and drops, so one chain of
        wake-ups survives. Sending first means a crash in between leaves two valid messages (the
        ETag settles them), never none."""
        wake = _int(d.data.get("wake")) + 1
        # Storage queue visibility has whole-second resolution: round up, or a 0.4 s wait would
        # come back at once and find its time not yet come.
        delay_s = float(math.ceil(delay_s)) if delay_s > 0 else 0.0
        self.queue.send(_advance_message(d, wake), delay_s=delay_s)
        d.data["wake"] = wake
        d.data["wake_at"] = _iso(self.clock() + timedelta(seconds=delay_s))
        self._save(d)

    def _release(self, d: Deployment, announce: bool = True) -> None:
        """Free the app (and update what is live), kick the newest waiting deployment, publish."""
        now = self.clock()
        pending = ""
        for _ in range(5):
            state = self.store.get_app_state(d.target)
            if state is None:
                break
            new_state = plan.released(state, d, now, _live_of(d))
            if _holding(new_state) == _holding(state):
                break  # nothing of ours left in it (a redelivered terminal message)
            try:
                self.store.save_app_state(new_state)
                pending = new_state.pending_deployment_id
                break
            except ConcurrencyError:
                continue
        if pending and pending != d.id:
            self.queue.send(_advance_message_for(pending, d.target))
        if announce:
            self._publish(d)

    def _settle(self, d: Deployment) -> None:
        """A message for a finished deployment: make sure it let go of the app (a crash may have
        come between recording the end and freeing the app)."""
        state = self.store.get_app_state(d.target)
        if state and (state.active_deployment_id == d.id or state.pending_deployment_id == d.id
                      or (d.digest and d.digest in state.inflight_digests)):
            self._release(d)

    def _publish(self, d: Deployment) -> None:
        event_type = plan.outcome_event(d)
        if not event_type or self.publisher is None:
            return
        try:
            self.publisher.publish(event_type, d)
        except Exception as exc:  # noqa: BLE001 - publishing never fails a deployment
            log.warning("publishing %s for %s failed: %s", event_type, d.id, type(exc).__name__)

    def _recover(self, message: dict[str, Any]) -> Deployment | None:
        """A start message for a deployment the store lacks: intake died after enqueueing."""
        payload = message.get("deployment")
        if not isinstance(payload, dict):
            log.warning("rollout %s: unknown deployment, message dropped", message.get("deployment_id"))
            return None
        try:
            deployment = deployment_from_dict(payload)
        except (KeyError, ValueError, TypeError) as exc:
            log.warning("rollout: malformed start message dropped: %s", exc)
            return None
        try:
            from shared.services.intake import ensure_recorded
        except ImportError:  # intake not installed (unit tests of the worker alone)
            return None
        return ensure_recorded(self.store, deployment)

    # ================================================================== helpers
    def _inline_ok(self, d: Deployment) -> bool:
        return int(d.data.get("polls", 0)) * self.tick_s < self.budget_s

    def _find_target(self, app: str, resource_group: str) -> Target:
        matches = [s.target for s in self.store.list_apps()
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
            page = self.store.list_deployments(DeploymentQuery(app=target.app, limit=100))
        except Exception:  # noqa: BLE001 - the tag is a nicety
            return ""
        for item in page.items:
            if item.target.key == target.key and item.revision == revision and item.tag:
                return item.tag
        return ""

    def _call(self, fn: Callable[[], Any], not_found: str) -> Any:
        try:
            return fn()
        except PermanentAzureError as exc:
            if exc.status == 404:
                raise NotFoundError(not_found) from exc
            raise ConflictError(f"Azure refused: {exc}") from exc
        except TransientAzureError as exc:
            raise ConflictError(f"Azure is busy, try again: {exc}") from exc


def _advance_message_for(deployment_id: str, target: Target) -> dict[str, Any]:
    return {"v": 1, "kind": "advance", "deployment_id": deployment_id, "target_key": target.key}


def _holding(s: AppState) -> tuple:
    return (s.active_deployment_id, s.pending_deployment_id, s.inflight_digests, s.live_deployment_id)


def _live_of(d: Deployment) -> dict[str, str] | None:
    if d.phase != Phase.SUCCEEDED or not d.revision:
        return None
    return {"revision": d.revision, "image": d.image, "digest": d.digest or plan.digest_of(d.image),
            "tag": d.tag}


def _attempt_text(key: str, r: ProbeResult) -> str:
    verdict = "passed" if r.ok else "failed"
    status = r.status if r.status is not None else "no answer"
    text = f"{key} {r.check} {verdict}: {status} in {r.latency_ms:.0f} ms"
    return text + (f" ({r.detail[:200]})" if r.detail and not r.ok else "")


def _url(fqdn: str) -> str:
    if not fqdn:
        return ""
    return fqdn if fqdn.startswith(("http://", "https://")) else f"https://{fqdn}"


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _iso(value: datetime) -> str:
    return value.isoformat()


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None
