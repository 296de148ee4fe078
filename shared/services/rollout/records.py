"""Recording a rollout: save with the ETag, schedule the next wake-up, free the app, announce the outcome.

Only the loop (`worker.py`) and the sweeper call these; step handlers return what to record instead.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta

from shared.domain import rollout as plan
from shared.domain.model import AppState, Deployment, DeploymentEvent, Phase
from shared.ports import ConcurrencyError
from shared.services.rollout.context import RolloutContext
from shared.services.rollout import claim
from shared.services.rollout.messages import DRIFT_RECHECK_S, advance_message, advance_message_of, drift_message

log = logging.getLogger("acr_deploy.rollout")


class Recorder:
    def __init__(self, ctx: RolloutContext) -> None:
        self.ctx = ctx

    def save(self, d: Deployment, *events: DeploymentEvent) -> Deployment:
        """Conditional on `d.etag` (ConcurrencyError: another worker recorded it first), then the
        crash hook."""
        saved = self.ctx.store.save_deployment(d.evolve(updated_at=self.ctx.clock()), *events)
        claim.saw(saved)  # this invocation's writes are fenced by the record it just saved
        if self.ctx.on_saved is not None:
            self.ctx.on_saved(saved)
        return saved

    def schedule(self, d: Deployment, delay_s: float) -> None:
        """Send the delayed message with the next wake number, then record that number: a message
        carrying a lower number than the record is a stale duplicate and drops, so one chain of
        wake-ups survives. Sending first means a crash in between leaves two valid messages (the
        ETag settles them), never none."""
        wake = d.progress.wake + 1
        # Storage queue visibility has whole-second resolution: round up, or a 0.4 s wait would
        # come back at once and find its time not yet come.
        delay_s = float(math.ceil(delay_s)) if delay_s > 0 else 0.0
        self.ctx.queue.send(advance_message_of(d, wake), delay_s=delay_s)
        self.save(d.with_progress(wake=wake, wake_at=self.ctx.clock() + timedelta(seconds=delay_s)))

    def release(self, d: Deployment) -> None:
        """Free the app (and update what is live), kick the newest waiting deployment, publish."""
        store = self.ctx.store
        now = self.ctx.clock()
        pending, released = "", False
        for _ in range(5):
            state = store.get_app_state(d.target)
            if state is None:
                break
            new_state = plan.released(state, d, now, live_of(d))
            if _holding(new_state) == _holding(state):
                break  # nothing of ours left in it (a redelivered terminal message)
            try:
                store.save_app_state(new_state)
                pending = new_state.pending_deployment_id
                released = True
                break
            except ConcurrencyError:
                continue
        if pending and pending != d.id:
            self.ctx.queue.send(advance_message(pending, d.target.key))
        if released:  # once per ending: does the app serve what the history now says?
            self.ctx.queue.send(drift_message(d.target.key), delay_s=DRIFT_RECHECK_S)
        self._publish(d)

    def settle(self, d: Deployment) -> None:
        """A message for a finished deployment: make sure it let go of the app (a crash may have
        come between recording the end and freeing the app)."""
        state = self.ctx.store.get_app_state(d.target)
        if state and (state.active_deployment_id == d.id or state.pending_deployment_id == d.id
                      or (d.digest and d.digest in state.inflight_digests)):
            self.release(d)

    def _publish(self, d: Deployment) -> None:
        event_type = plan.outcome_event(d)
        publisher = self.ctx.publisher
        if not event_type or publisher is None:
            return
        try:
            publisher.publish(event_type, d)
        except Exception as exc:  # noqa: BLE001 - publishing never fails a deployment
            log.warning("publishing %s for %s failed: %s", event_type, d.id, type(exc).__name__)


def _holding(s: AppState) -> tuple[str, str, tuple[str, ...], str]:
    return (s.active_deployment_id, s.pending_deployment_id, s.inflight_digests, s.live_deployment_id)


def live_of(d: Deployment) -> plan.Live | None:
    if d.phase != Phase.SUCCEEDED or not d.revision:
        return None
    return plan.Live(revision=d.revision, image=d.image, digest=d.digest or plan.digest_of(d.image), tag=d.tag)


def remaining(until: datetime | None, now: datetime) -> float | None:
    """Seconds left before `until` (a recorded not-before time), or None when it has come."""
    if until and now < until:
        return (until - now).total_seconds()
    return None
