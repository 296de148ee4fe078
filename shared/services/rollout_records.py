"""Rollout plumbing shared by every step: record an outcome, schedule the next wake-up, free the app.

`RolloutPorts` is what the collaborators of `RolloutWorker` read; the worker itself satisfies it, and
they read its attributes at call time (tests swap `clock`, `probe`, `budget_s`, `on_saved` on a live
worker).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Protocol

from shared.domain import rollout as plan
from shared.domain.model import AppState, Deployment, DeploymentEvent, Phase
from shared.ports import ConcurrencyError

log = logging.getLogger("acr_deploy.rollout")


class RolloutPorts(Protocol):
    store: Any
    queue: Any
    apps: Any
    probe: Any
    publisher: Any
    clock: Callable[[], datetime]
    budget_s: float
    tick_s: float
    sleep: Callable[[float], None]
    monotonic: Callable[[], float]
    on_saved: Callable[[Deployment], None] | None


@dataclass
class Next:
    """What a step handler decided: carry on now, wait `wait_s`, or stop (terminal / dropped)."""

    d: Deployment
    wait_s: float | None = None
    done: bool = False


def advance_message(deployment_id: str, target_key: str, wake: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "v": 1, "kind": "advance", "deployment_id": deployment_id, "target_key": target_key,
    }
    if wake is not None:
        message["wake"] = wake
    return message


def advance_message_of(d: Deployment, wake: int | None = None) -> dict[str, Any]:
    return advance_message(d.id, d.target.key, wake)


class Recorder:
    """Saves with the ETag (then the crash hook), schedules wake-ups, releases the app, publishes."""

    def __init__(self, ports: RolloutPorts) -> None:
        self.ports = ports

    def save(self, d: Deployment, *events: DeploymentEvent) -> Deployment:
        p = self.ports
        saved = p.store.save_deployment(d.evolve(updated_at=p.clock()), *events)
        if p.on_saved is not None:
            p.on_saved(saved)
        return saved

    def to(self, d: Deployment, phase: Phase, message: str, *events: DeploymentEvent, **data: Any) -> Next:
        d, event = plan.transition(d, phase, message, self.ports.clock(), **data)
        return Next(self.save(d, *events, event))

    def finish(self, d: Deployment, phase: Phase, reason: str, *events: DeploymentEvent,
               at: datetime | None = None, **data: Any) -> Next:
        """Record a terminal phase (at `at`, default now), free the app and publish the outcome."""
        d, event = plan.transition(d, phase, reason, at or self.ports.clock(), **data)
        d = self.save(d, *events, event)
        self.release(d)
        return Next(d, done=True)

    def schedule(self, d: Deployment, delay_s: float) -> None:
        """Send the delayed message with the next wake number, then record that number: a message
        carrying a lower number than the record is a stale duplicate and drops, so one chain of
        wake-ups survives. Sending first means a crash in between leaves two valid messages (the
        ETag settles them), never none."""
        wake = to_int(d.data.get("wake")) + 1
        # Storage queue visibility has whole-second resolution: round up, or a 0.4 s wait would
        # come back at once and find its time not yet come.
        delay_s = float(math.ceil(delay_s)) if delay_s > 0 else 0.0
        self.ports.queue.send(advance_message_of(d, wake), delay_s=delay_s)
        d.data["wake"] = wake
        d.data["wake_at"] = iso(self.ports.clock() + timedelta(seconds=delay_s))
        self.save(d)

    def release(self, d: Deployment, announce: bool = True) -> None:
        """Free the app (and update what is live), kick the newest waiting deployment, publish."""
        store = self.ports.store
        now = self.ports.clock()
        pending = ""
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
                break
            except ConcurrencyError:
                continue
        if pending and pending != d.id:
            self.ports.queue.send(advance_message(pending, d.target.key))
        if announce:
            self._publish(d)

    def settle(self, d: Deployment) -> None:
        """A message for a finished deployment: make sure it let go of the app (a crash may have
        come between recording the end and freeing the app)."""
        state = self.ports.store.get_app_state(d.target)
        if state and (state.active_deployment_id == d.id or state.pending_deployment_id == d.id
                      or (d.digest and d.digest in state.inflight_digests)):
            self.release(d)

    def _publish(self, d: Deployment) -> None:
        event_type = plan.outcome_event(d)
        publisher = self.ports.publisher
        if not event_type or publisher is None:
            return
        try:
            publisher.publish(event_type, d)
        except Exception as exc:  # noqa: BLE001 - publishing never fails a deployment
            log.warning("publishing %s for %s failed: %s", event_type, d.id, type(exc).__name__)


def _holding(s: AppState) -> tuple:
    return (s.active_deployment_id, s.pending_deployment_id, s.inflight_digests, s.live_deployment_id)


def live_of(d: Deployment) -> dict[str, str] | None:
    if d.phase != Phase.SUCCEEDED or not d.revision:
        return None
    return {"revision": d.revision, "image": d.image, "digest": d.digest or plan.digest_of(d.image),
            "tag": d.tag}


def to_int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def iso(value: datetime) -> str:
    return value.isoformat()


def parse(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def remaining(until: datetime | None, now: datetime) -> float | None:
    """Seconds left before `until` (a recorded not-before time), or None when it has come."""
    if until and now < until:
        return (until - now).total_seconds()
    return None
