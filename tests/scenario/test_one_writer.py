"""One writer per app: a deployment that lost the app never changes it again (claim.py, docs/rollout.md).

Found against the sandbox: the emulator answered a create-revision PATCH with 503 and Retry-After; the
SDK slept inside the call and retried by itself. Meanwhile the message reappeared, a second invocation
saw a newer push, ended the old deployment and the newer one went live; then the first invocation's SDK
retry landed, pinning the traffic table from before either push: the app served the old version while
the history said the new one was live. Writes are now sent once, and each is preceded by a check of
the claim.
"""

from __future__ import annotations

import threading
import time

from shared.domain.model import Phase
from tests.scenario.conftest import assert_live
from tests.scenario.driver import QueueDriver


def _pump(world, stop: threading.Event) -> threading.Thread:
    driver = QueueDriver(world.container.queue, visibility_timeout=1)
    thread = threading.Thread(target=lambda: driver.run(until=stop.is_set, timeout_s=60), daemon=True)
    thread.start()
    return thread


def test_a_write_answered_503_with_retry_after_never_lands_after_a_newer_rollout(world):
    app = world.seed_app("late")
    world.emulator.control.add_faults("503", count=1, retry_after=3, methods=["PATCH"])
    stop = threading.Event()
    pumps = [_pump(world, stop), _pump(world, stop)]  # a Functions instance runs messages concurrently
    try:
        world.push(app, "1.1.0")
        time.sleep(1.0)
        world.push(app, "1.2.0")
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not world.settled(app, count=2):
            time.sleep(0.2)
        time.sleep(4.0)  # longer than the Retry-After: a late write would have landed by now
    finally:
        stop.set()
        for p in pumps:
            p.join(30)
    new, old = world.deployment(app, "1.2.0"), world.deployment(app, "1.1.0")
    assert_live(world, app, new)
    assert old.phase in (Phase.SUPERSEDED, Phase.FAILED), world.story(old)
    revisions = {r["name"]: r for r in world.app_dump(app)["revisions"]}
    assert all(r["trafficWeight"] == 0 for name, r in revisions.items() if name != new.revision)
    patches = [r for r in world.emulator.control.dump()["armRequests"]
               if r["method"] == "PATCH" and app in r["path"]]
    assert any("503" in str(r["status"]) for r in patches)  # the fault did fire


def test_a_step_that_finds_the_app_taken_stops_before_writing(world):
    """The claim is read right before each write, not only when a step starts: a deployment whose claim
    was taken while it ran its (failing) smoke checks records FAILED "lost the app" and makes no write,
    not even the clean-up of its own revision, which is now the new holder's to decide."""
    from dataclasses import replace

    app = world.seed_app("taken")
    world.push(app, "1.0.0")
    world.run(app)
    store = world.store

    class ClaimTakenDuringChecks:
        def __init__(self, real):
            self.real = real
            self.calls = 0

        def probe(self, base_url, check):
            result = self.real.probe(base_url, check)
            self.calls += 1
            if self.calls < 2:  # the rule allows 2 attempts: the app is taken during the last one
                return result
            d = next(x for x in world.deployments(app) if x.tag == "1.1.0")
            state = store.get_app_state(d.target)
            if state.active_deployment_id == d.id:  # someone else takes the app meanwhile
                store.save_app_state(replace(state, active_deployment_id="20991231000000-someoneelse"))
            return result

    worker = world.container.rollout
    world.container.rollout = worker.with_ports(probe=ClaimTakenDuringChecks(worker.context.probe))
    before = world.app_dump(app)["traffic"]
    world.emulator.control.add_behavior(world.image(app, "1.1.0"), status=500)
    world.push(app, "1.1.0")
    world.driver.run(until=lambda: world.deployment(app, "1.1.0").phase.terminal, timeout_s=20)
    d = world.deployment(app, "1.1.0")
    assert d.phase == Phase.FAILED and "lost the app to 20991231000000-someoneelse" in d.reason, world.story(d)
    assert "stopped before changing it" in d.reason
    assert world.app_dump(app)["traffic"] == before  # nothing shifted
    assert world.revision(app, d.revision)["active"] is True  # not even its own clean-up was sent
    world.emulator.control.clear_behaviors()


def test_the_deadline_passing_while_a_traffic_change_is_still_applied_rolls_back_once_it_lands(world):
    app = world.seed_app("expiry")
    world.emulator.control.set_provisioning_delay(3.0)  # every ARM operation stays InProgress for 3 s
    world.push(app, "1.0.0")
    world.driver.run(until=lambda: world.deployment(app, "1.0.0").progress.traffic_requested is not None,
                     timeout_s=40)
    later = world.container.rollout.context.clock()
    from datetime import timedelta

    world.container.rollout = world.container.rollout.with_ports(clock=lambda: later + timedelta(hours=1))
    world.run(app, timeout_s=60)
    d = world.deployment(app, "1.0.0")
    assert d.phase == Phase.ROLLED_BACK, world.story(d)
    assert "deadline passed" in d.reason and f"traffic back to {app}--seed 100 %" in d.reason
    assert world.app_dump(app)["traffic"] == {f"{app}--seed": 100}
    state = world.store.get_app_state(d.target)
    assert state.active_deployment_id == "" and state.live_revision in ("", f"{app}--seed")
