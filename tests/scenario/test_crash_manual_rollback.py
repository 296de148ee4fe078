"""Crashes between an Azure change and its record, in a manual rollback and in the give-up path.

Same harness as test_crash_after_azure_change: `CrashingApps` makes the real SDK call against the
emulator, then "kills the process" once; the driver redelivers the message after its visibility
timeout. Each scenario runs with and without the crash and must end in the same state.

- A manual rollback (kind=rollback) whose target revision was inactive activates it. A worker killed
  right after the activation used to lose the fact (`data["activated"]` was recorded after the call),
  so a rollback failing afterwards left the target active although it was inactive before.
- A message that keeps raising is given up on its last delivery (FAILED, traffic restored). A worker
  killed after restoring the traffic used to lose the decision: the next delivery re-ran the phase
  against the restored app and could carry on as if nothing had been given up.
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.model import Deployment, Phase
from shared.services.rollout import MAX_DEQUEUE
from tests.scenario.conftest import REGISTRY
from tests.scenario.test_crash_after_azure_change import (
    assert_crashed_once, crash_after, revision_names, terminal_events,
)

ROLLBACK_PHASES = ["queued", "waiting_ready", "smoke_testing", "shifting", "verifying", "succeeded"]


def two_pushes(world, prefix: str) -> tuple[str, str, Deployment, Deployment]:
    """An app that served seed, then 1.0.0, now 1.1.0: keep_previous=1 deactivated the seed revision."""
    app = world.seed_app(prefix)
    seed = f"{app}--seed"
    world.push(app, "1.0.0")
    world.run(app)
    world.push(app, "1.1.0")
    world.run(app, count=2)
    first, second = world.deployment(app, "1.0.0"), world.deployment(app, "1.1.0")
    assert world.app_dump(app)["traffic"] == {second.revision: 100}
    assert world.revision(app, seed)["active"] is False  # the rollback target starts inactive
    return app, seed, first, second


def activation_notes(world, d: Deployment) -> list:
    return [e for e in world.store.list_events(d.id) if e.message == f"activated {d.revision}"]


@pytest.mark.parametrize("crash", [False, True], ids=["uninterrupted", "killed-after-activation"])
def test_a_manual_rollback_to_an_inactive_revision_killed_after_activating_it_still_succeeds(world, crash):
    app, seed, first, second = two_pushes(world, "rbact")
    if crash:
        wrapper = crash_after(world, "set_revision_active",
                              lambda _t, name, active: name == seed and active is True)
    rb = world.container.rollout.request_rollback(app, to_revision="seed", requested_by="release-manager")
    assert rb.revision == seed
    world.run(app, count=3, timeout_s=30)
    done = world.store.get_deployment(rb.id, app=app)
    if crash:
        assert_crashed_once(world, wrapper)
    assert done.phase == Phase.SUCCEEDED, world.story(done)
    assert world.phases(done) == ROLLBACK_PHASES, world.story(done)
    assert [e.phase for e in terminal_events(world, done)] == [Phase.SUCCEEDED]
    assert len(activation_notes(world, done)) == 1, world.story(done)
    assert world.app_dump(app)["traffic"] == {seed: 100}
    assert world.revision(app, seed)["active"] is True
    assert world.revision(app, second.revision)["active"] is True  # kept warm: roll forward is instant
    assert world.revision(app, first.revision)["active"] is False  # older than what is kept
    assert revision_names(world, app) == [seed, first.revision, second.revision]
    state = world.store.get_app_state(done.target)
    assert (state.live_revision, state.live_deployment_id, state.active_deployment_id) == (seed, rb.id, "")


@pytest.mark.parametrize("crash", [False, True], ids=["uninterrupted", "killed-after-activation"])
def test_a_failing_manual_rollback_leaves_its_formerly_inactive_target_inactive(world, crash):
    app, seed, _first, second = two_pushes(world, "rbsick")
    if crash:
        wrapper = crash_after(world, "set_revision_active",
                              lambda _t, name, active: name == seed and active is True)
    rb = world.container.rollout.request_rollback(app, to_revision="seed", requested_by="release-manager")
    # the target's health check now fails: it never becomes ready once activated
    world.emulator.control.add_behavior(f"{REGISTRY}/{app}:0.9.0", unhealthy=True)
    world.run(app, count=3, timeout_s=30)
    done = world.store.get_deployment(rb.id, app=app)
    if crash:
        assert_crashed_once(world, wrapper)
    assert done.phase == Phase.FAILED, world.story(done)
    assert world.phases(done) == ["queued", "waiting_ready", "failed"], world.story(done)
    assert f"{seed} failed to start" in done.reason and f"{seed} deactivated" in done.reason, done.reason
    assert [e.phase for e in terminal_events(world, done)] == [Phase.FAILED]
    assert len(activation_notes(world, done)) == 1, world.story(done)
    assert world.revision(app, seed)["active"] is False, world.app_dump(app)  # as before the rollback
    assert world.app_dump(app)["traffic"] == {second.revision: 100}  # never touched
    state = world.store.get_app_state(done.target)
    assert (state.live_revision, state.active_deployment_id) == (second.revision, "")


# ---------------------------------------------------------------------------- give up

class BrokenProbe:
    """The real probe, except that the verify check ("app") or else the smoke checks raise (a bug,
    not a failed check) on their first `times` calls: the step raises on every delivery until the
    last one gives up; a delivery after that would find the probe working again."""

    def __init__(self, real: Any, verify: bool, times: int) -> None:
        self._real = real
        self._verify = verify
        self._left = times

    def probe(self, base_url: str, check: Any) -> Any:
        if (check.name == "app") == self._verify and self._left > 0:
            self._left -= 1
            raise RuntimeError(f"probe bug on {check.name}")
        return self._real.probe(base_url, check)


@pytest.mark.parametrize("crash", [False, True], ids=["uninterrupted", "killed-in-give-up"])
@pytest.mark.parametrize("where", ["after_shift", "before_shift"])
def test_giving_up_on_the_last_delivery_killed_after_its_azure_change_still_fails_once(world, where, crash):
    app = world.seed_app("canary")  # the canary rule: smoke on the revision, verify "app" after 10 %
    seed = f"{app}--seed"
    worker = world.container.rollout
    if where == "after_shift":  # verify at 10 % raises: give-up puts traffic back on the seed
        world.container.rollout = worker.with_ports(probe=BrokenProbe(worker.context.probe, True, MAX_DEQUEUE))
        if crash:
            wrapper = crash_after(world, "set_traffic", lambda _t, weights, *_a, **_k: weights == {seed: 100})
    else:  # the smoke check raises: give-up deactivates the 0 % revision
        world.container.rollout = worker.with_ports(probe=BrokenProbe(worker.context.probe, False, MAX_DEQUEUE))
        if crash:
            wrapper = crash_after(world, "set_revision_active", lambda _t, _name, active: active is False)
    world.push(app, "3.0.0")
    world.run(app, timeout_s=40)
    d = world.deployment(app, "3.0.0")
    if crash:
        assert_crashed_once(world, wrapper)
    assert d.phase == Phase.FAILED, world.story(d)
    assert d.reason.startswith(f"a step kept failing ({MAX_DEQUEUE} deliveries): RuntimeError"), d.reason
    assert [e.phase for e in terminal_events(world, d)] == [Phase.FAILED]
    assert world.app_dump(app)["traffic"] == {seed: 100}
    assert revision_names(world, app) == [seed, d.revision]
    weights = [e.data["traffic"].get(d.revision, 0) for e in world.store.list_events(d.id)
               if "traffic" in e.data]
    if where == "after_shift":
        assert f"traffic back to {seed} 100 %" in d.reason, d.reason
        assert max(weights) == 10, world.story(d)  # never promoted past the step it failed at
        assert world.phases(d)[-3:] == ["shifting", "verifying", "failed"], world.story(d)
    else:
        assert f"{d.revision} deactivated" in d.reason, d.reason
        assert max(weights, default=0) == 0, world.story(d)
        assert world.phases(d)[-2:] == ["smoke_testing", "failed"], world.story(d)
        assert world.revision(app, d.revision)["active"] is False
    state = world.store.get_app_state(d.target)
    assert state.active_deployment_id == "" and state.live_revision != d.revision
