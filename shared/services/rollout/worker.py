"""The rollout worker: advances one deployment per queue message, one short idempotent step at a time.

A message (`messages.py`) names a deployment; the worker reads its record and runs the step loop:
`Phases.step` (phases.py) decides one step and returns it as a `Step` (step.py); the loop records it
(`Recorder.save`, with the deployment's ETag), frees the app when the recorded phase is terminal, then
carries on inline, sleeps a tick, or schedules a delayed wake-up (`Recorder.schedule`). Steps that need
no wait run inline in the same invocation (push to live must not pay a queue hop per step). A process
killed anywhere resumes from the record when the message reappears. Two messages for one deployment
race on the ETag: the loser drops its message, and a wake number in the record lets only the newest
scheduled message carry on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import fields, replace
from datetime import datetime
from typing import Any, Callable, Mapping

from shared import telemetry
from shared.domain.approvals import ControlAction
from shared.domain.model import Deployment, Phase, utcnow
from shared.ports import (
    ConcurrencyError, ContainerAppsPort, DeploymentStore, OutcomePublisher, RequestMetrics, RolloutQueue,
    SmokeProbe,
)
from shared.services.rollout.claim import ClaimedApps, writing_as
from shared.services.rollout.context import Recover, RolloutContext
from shared.services.rollout.control_requests import ControlRequests
from shared.services.rollout.endings import Endings
from shared.services.rollout.manual_rollback import RollbackRequests
from shared.services.rollout.messages import RolloutMessage
from shared.services.rollout.phases import Phases
from shared.services.rollout.records import Recorder
from shared.services.rollout.step import Done, Next, Step, Then, Wait
from shared.services.rollout.sweep import Sweeper

log = logging.getLogger("acr_deploy.rollout")

MAX_DEQUEUE = 5  # host.json queues.maxDequeueCount: the last delivery records FAILED, never poisons
MAX_STEPS = 200  # per invocation (bounds the inline loop even if the budget is generous)
MAX_FOLLOW_UPS = 8  # recorded decisions carried out in a row by one step (an ending takes two)


class RolloutWorker:
    def __init__(
        self,
        store: DeploymentStore,
        queue: RolloutQueue,
        apps: ContainerAppsPort,
        probe: SmokeProbe,
        publisher: OutcomePublisher | None = None,
        clock: Callable[[], datetime] = utcnow,
        budget_s: float = 8.0,
        *,
        tick_s: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        on_saved: Callable[[Deployment], None] | None = None,
        recover: Recover | None = None,
        metrics: RequestMetrics | None = None,
    ) -> None:
        ctx = RolloutContext(
            store=store, queue=queue, apps=ClaimedApps.around(apps, store), probe=probe, publisher=publisher, clock=clock,
            budget_s=budget_s, tick_s=tick_s, sleep=sleep, monotonic=monotonic, on_saved=on_saved,
            recover=recover, metrics=metrics,
        )
        self.context = ctx
        self._recorder = Recorder(ctx)
        self._endings = Endings(ctx)
        self._phases = Phases(ctx, self._endings)
        self._sweeper = Sweeper(ctx, self._recorder, self._run)
        self._rollbacks = RollbackRequests(ctx)
        self._controls = ControlRequests(ctx)

    def with_ports(self, **changes: Any) -> "RolloutWorker":
        """A worker like this one with some context fields replaced (tests: a clock five minutes
        on, a probe that breaks). An unknown name raises TypeError."""
        ctx = replace(self.context, **changes)
        return RolloutWorker(**{f.name: getattr(ctx, f.name) for f in fields(ctx)})

    # ================================================================== entry points
    def handle_message(self, message: Mapping[str, Any] | None, dequeue_count: int = 1) -> None:
        parsed = RolloutMessage.parse(message)
        if not parsed.deployment_id:
            log.warning("rollout message without deployment_id dropped: %s", str(message)[:200])
            return
        try:
            with telemetry.current().resume((message or {}).get(telemetry.TRACE_KEY)):  # the push's trace
                self._handle(parsed)
        except ConcurrencyError as exc:
            # Another worker recorded this deployment since we read it: it owns the next step.
            log.info("rollout %s: lost a race (%s); dropping this message", parsed.deployment_id, exc)
        except Exception as exc:
            if dequeue_count >= MAX_DEQUEUE:
                self._give_up(parsed, exc, dequeue_count)
                return
            log.warning("rollout %s: step failed (delivery %d of %d): %s: %s", parsed.deployment_id,
                        dequeue_count, MAX_DEQUEUE, type(exc).__name__, str(exc)[:300])
            raise

    def sweep(self) -> dict[str, int]:
        """Timer: fail/finish rollouts past their deadline, re-send lost messages, free apps held
        by finished deployments. Returns counts (for logs and tests)."""
        return self._sweeper.sweep()

    def request_rollback(
        self, app: str, to_revision: str | None = None, resource_group: str | None = None,
        requested_by: str = "", why: str = "",
    ) -> Deployment:
        """Record a kind=rollback deployment that moves `app` back to its previous (or the named)
        healthy revision, and enqueue it: it runs through the same machinery as a push (`why`: a
        drift repair, see shared.services.drift)."""
        return self._rollbacks.request(app, to_revision, resource_group, requested_by, why)

    def request_control(self, deployment_id: str, action: ControlAction, by: str, reason: str,
                        app: str | None = None) -> Deployment:
        """Approve, reject, pause, resume, promote, abort or override a freeze: recorded with who and
        why, carried out by the worker's next step (errors: NotFound, Conflict, InvalidRequest)."""
        return self._controls.request(deployment_id, action, by, reason, app)

    # ================================================================== the loop
    def _handle(self, message: RolloutMessage) -> None:
        d = self.context.store.get_deployment(message.deployment_id, app=message.app)
        if d is None:
            d = self._recover(message)
            if d is None:
                return
        if message.wake is not None and message.wake < d.progress.wake:
            log.info("rollout %s: stale wake-up %s dropped", d.id, message.wake)
            return
        self._run(d)

    def _run(self, d: Deployment) -> None:
        """Step until a wait longer than a tick, the end, or the budget; schedule what follows."""
        if d.phase.terminal:
            self._recorder.settle(d)
            return
        with writing_as(d):  # every Azure write below re-checks that `d` still holds the app
            self._steps(d)

    def _steps(self, d: Deployment) -> None:
        c = self.context
        started = c.monotonic()
        t = telemetry.current()
        for _ in range(MAX_STEPS):
            with t.span(f"acr_deploy.rollout.{d.phase}", telemetry.deployment_attributes(d)):
                d, next_ = self._apply(self._phases.step(d))
            if isinstance(next_, Done) or d.phase.terminal:
                return
            elapsed = c.monotonic() - started
            if not isinstance(next_, Wait):  # carry on now
                if elapsed < c.budget_s:
                    continue
                self._recorder.schedule(d, 0.0)  # budget spent: carry on in a fresh invocation
                return
            if next_.seconds <= c.tick_s and elapsed + next_.seconds < c.budget_s:
                c.sleep(max(next_.seconds, 0.0))
                continue
            self._recorder.schedule(d, next_.seconds)
            return
        self._recorder.schedule(d, 0.0)

    def _apply(self, step: Step) -> tuple[Deployment, Next]:
        """Record `step` (ETag), free the app once it is finished, and carry out what it decided
        after the record; returns the deployment as recorded and what comes next."""
        for _ in range(MAX_FOLLOW_UPS):
            d = step.deployment
            if step.record:
                d = self._recorder.save(d, *step.events)
                if d.phase.terminal:
                    self._recorder.release(d)
                    live_s = (d.updated_at - d.created_at).total_seconds() if d.phase == Phase.SUCCEEDED else None
                    telemetry.current().deployment_finished(str(d.phase), d.target.app, live_s)
            if not isinstance(step.next, Then):
                return d, step.next
            step = self._phases.then(d, step.next)
        raise RuntimeError(f"rollout {step.deployment.id}: more than {MAX_FOLLOW_UPS} follow-ups in one step")

    def _give_up(self, message: RolloutMessage, exc: BaseException, dequeue_count: int) -> None:
        """The last delivery of a message that kept failing: record the failure (see
        `Endings.give_up`) rather than let the message vanish into the poison queue."""
        log.error("rollout %s: giving up after %d deliveries: %s: %s", message.deployment_id, dequeue_count,
                  type(exc).__name__, str(exc)[:300])
        d = self.context.store.get_deployment(message.deployment_id, app=message.app)
        if d is None or d.phase.terminal:
            if d is not None:
                self._recorder.settle(d)
            return
        with writing_as(d):
            self._apply(self._endings.give_up(d, exc, dequeue_count))

    def _recover(self, message: RolloutMessage) -> Deployment | None:
        """A start message for a deployment the store lacks: intake died after enqueueing."""
        try:
            deployment = message.start_deployment()
        except ValueError as exc:
            log.warning("rollout: malformed start message dropped: %s", exc)
            return None
        if deployment is None:
            log.warning("rollout %s: unknown deployment, message dropped", message.deployment_id)
            return None
        if self.context.recover is None:
            return None
        return self.context.recover(deployment)
