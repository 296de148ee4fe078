"""The rollout worker: advances one deployment per queue message, one short idempotent step at a time.

Each step reads the world, asks `shared.domain.rollout` what to do, does it, and records the outcome
(`save_deployment` with the deployment's ETag) before anything else happens. Steps that need no wait
run inline in the same invocation (push to live must not pay a queue hop per step); a wait (revision
start-up, smoke back-off, canary bake, Azure back-off) longer than a poll tick becomes a message sent
with a visibility delay. A process killed anywhere resumes from the record when the message
reappears. Two messages for one deployment race on the ETag: the loser drops its message, and a
wake token in the record lets only the newest scheduled message carry on.

This module is the entry point and the step loop; the worker's collaborators read its ports:
  rollout_records  Recorder: save (ETag + crash hook), schedule wake-ups, release the app, publish
  rollout_phases   Phases: one step (deadline, ownership, supersede) and each phase's handler
  rollout_checks   CheckRunner: smoke / verify attempts, retries, back-off
  rollout_endings  Endings: succeed, fail, roll back, supersede, expire, Azure errors, give up
  rollout_sweep    Sweeper: deadlines, lost messages, apps held by finished deployments
  rollout_manual   RollbackRequests: manual rollback requests
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any, Callable

from shared.domain.model import Deployment, deployment_from_dict, utcnow
from shared.ports import ConcurrencyError
from shared.services.rollout_checks import CheckRunner
from shared.services.rollout_endings import MAX_TRANSIENT, Endings
from shared.services.rollout_manual import RollbackRequests
from shared.services.rollout_phases import READY_POLL_S, WAIT_FOR_APP_S, Phases
from shared.services.rollout_records import Recorder, to_int
from shared.services.rollout_sweep import STALE_AFTER_S, SWEEP_LOOKBACK, Sweeper

__all__ = [
    "MAX_DEQUEUE", "MAX_STEPS", "MAX_TRANSIENT", "READY_POLL_S", "STALE_AFTER_S", "SWEEP_LOOKBACK",
    "WAIT_FOR_APP_S", "RolloutWorker",
]

log = logging.getLogger("acr_deploy.rollout")

MAX_DEQUEUE = 5  # host.json queues.maxDequeueCount: the last delivery records FAILED, never poisons
MAX_STEPS = 200  # per invocation (bounds the inline loop even if the budget is generous)


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
        # The collaborators keep this worker as their ports and read it at call time, so a test
        # that swaps `clock` or `probe` on a live worker reaches them all.
        self._recorder = Recorder(self)
        self._endings = Endings(self, self._recorder)
        self._phases = Phases(self, self._recorder, CheckRunner(self, self._recorder), self._endings)
        self._sweeper = Sweeper(self, self._recorder, self._run)
        self._rollbacks = RollbackRequests(self)

    # ================================================================== entry points
    def handle_message(self, message: dict[str, Any], dequeue_count: int = 1) -> None:
        deployment_id = str((message or {}).get("deployment_id") or "")
        if not deployment_id:
            log.warning("rollout message without deployment_id dropped: %s", str(message)[:200])
            return
        # The message names its target: the store then reads the record in the app's own partition
        # (one point read, and no wait for the cross-app index that trails intake).
        app = str((message or {}).get("target_key") or "").rpartition("|")[2] or None
        try:
            self._handle(message, deployment_id, app)
        except ConcurrencyError as exc:
            # Another worker recorded this deployment since we read it: it owns the next step.
            log.info("rollout %s: lost a race (%s); dropping this message", deployment_id, exc)
        except Exception as exc:
            if dequeue_count >= MAX_DEQUEUE:
                self._endings.give_up(deployment_id, exc, dequeue_count, app)
                return
            log.warning("rollout %s: step failed (delivery %d of %d): %s: %s", deployment_id,
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
        healthy revision, and enqueue it: it runs through the same machinery as a push."""
        return self._rollbacks.request(app, to_revision, resource_group, requested_by, why)

    # ================================================================== the loop
    def _handle(self, message: dict[str, Any], deployment_id: str, app: str | None) -> None:
        d = self.store.get_deployment(deployment_id, app=app)
        if d is None:
            d = self._recover(message)
            if d is None:
                return
        wake = message.get("wake")
        if wake is not None and to_int(wake) < to_int(d.data.get("wake")):
            log.info("rollout %s: stale wake-up %s dropped", d.id, wake)
            return
        self._run(d)

    def _run(self, d: Deployment) -> None:
        if d.phase.terminal:
            self._recorder.settle(d)
            return
        started = self.monotonic()
        for _ in range(MAX_STEPS):
            result = self._phases.step(d)
            d = result.d
            if result.done or d.phase.terminal:
                return
            elapsed = self.monotonic() - started
            if result.wait_s is None:
                if elapsed < self.budget_s:
                    continue
                self._recorder.schedule(d, 0.0)  # budget spent: carry on in a fresh invocation
                return
            if result.wait_s <= self.tick_s and elapsed + result.wait_s < self.budget_s:
                self.sleep(max(result.wait_s, 0.0))
                continue
            self._recorder.schedule(d, result.wait_s)
            return
        self._recorder.schedule(d, 0.0)

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
