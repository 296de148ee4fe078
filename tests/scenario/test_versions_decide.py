"""Versions decide, in intake and rollout alike (shared.domain.precedence), whatever the delivery order.

Each case was found against the sandbox before the order was one rule: a lower version delivered late
replaced a higher one, two pushes in one second were ordered by a hash, an event dated 2099 froze an
app, and a failed version blocked the last good one from being pushed again.
"""

from __future__ import annotations

import threading

from shared.domain.model import Phase
from tests.scenario.conftest import assert_live


def test_two_versions_pushed_in_the_same_second_the_higher_wins_in_either_delivery_order(world):
    for first, second in (("2.0.0", "2.1.0"), ("2.1.0", "2.0.0")):
        app = world.seed_app("same-second")
        events = {tag: world.event(app, tag, seconds=100) for tag in ("2.0.0", "2.1.0")}
        world.push_raw(events[first])
        world.push_raw(events[second])
        world.run(app, count=1, timeout_s=30)
        world.driver.run(timeout_s=20)  # anything still queued for the other one
        assert_live(world, app, world.deployment(app, "2.1.0"))
        lower = [d for d in world.deployments(app) if d.tag == "2.0.0"]
        assert all(d.phase in (Phase.SUPERSEDED, Phase.SKIPPED) for d in lower), [d.reason for d in lower]


def test_a_newer_version_pushed_first_and_delivered_last_still_deploys(world):
    app = world.seed_app("late-newer")
    newer = world.event(app, "1.4.0", seconds=10)
    older = world.event(app, "1.3.0", seconds=20)  # pushed after 1.4.0 ...
    assert world.push_raw(older).outcome == "accepted"
    world.run(app)
    assert world.push_raw(newer).outcome == "accepted"  # ... 1.4.0 delivered after it: still deploys
    world.run(app, count=2)
    assert_live(world, app, world.deployment(app, "1.4.0"))


def test_an_older_version_delivered_late_never_replaces_a_newer_one(world):
    app = world.seed_app("late-older")
    world.push_raw(world.event(app, "1.4.0", seconds=10))
    world.run(app)
    late = world.push_raw(world.event(app, "1.3.0", seconds=5))
    assert late.outcome == "skipped" and "older than 1.4.0, live on" in late.reason, late
    assert_live(world, app, world.deployment(app, "1.4.0"))


def test_concurrent_deliveries_never_end_on_the_lower_version(world):
    app = world.seed_app("concurrent")
    events = [world.event(app, "1.3.0", seconds=30), world.event(app, "1.4.0", seconds=31)]
    threads = [threading.Thread(target=world.push_raw, args=(e,)) for e in reversed(events)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    world.driver.run(timeout_s=40)
    assert_live(world, app, world.deployment(app, "1.4.0"))


def test_an_event_dated_far_in_the_future_is_rejected_and_freezes_nothing(world):
    app = world.seed_app("future")
    event = world.event(app, "9.9.9")
    event["eventTime"] = "2099-01-01T00:00:00Z"
    result = world.push_raw(event)
    assert result.outcome == "rejected" and "after the time it arrived" in result.reason, result
    world.push(app, "1.0.0")
    world.run(app)
    assert_live(world, app, world.deployment(app, "1.0.0"))


def test_a_failed_version_does_not_block_the_last_good_one_from_being_pushed_again(world):
    app = world.seed_app("retry-good")
    world.push(app, "1.5.0")
    world.run(app)
    good = world.deployment(app, "1.5.0")
    assert_live(world, app, good)
    world.emulator.control.add_behavior(world.image(app, "1.5.1"), status=500)
    world.push(app, "1.5.1")
    world.run(app, count=2)
    assert world.deployment(app, "1.5.1").phase == Phase.FAILED
    again = world.push(app, "1.5.0")  # the same digest again: already live, a recorded no-op
    assert again.outcome == "skipped" and "already live" in again.reason, again
    world.digests[(app, "1.4.9")] = world.digest(app, "1.4.9")
    lower = world.push(app, "1.4.9")  # a lower version than the failed 1.5.1 but not than live 1.5.0
    assert lower.outcome == "skipped" and "older than 1.5.0, live on" in lower.reason, lower
    world.emulator.control.clear_behaviors()


def test_an_older_good_version_deploys_after_a_newer_one_failed_and_nothing_newer_is_live(world):
    app = world.seed_app("after-fail")
    world.emulator.control.add_behavior(world.image(app, "2.0.0"), status=500)
    world.push(app, "2.0.0")
    world.run(app)
    assert world.deployment(app, "2.0.0").phase == Phase.FAILED
    result = world.push(app, "1.9.0")  # 2.0.0 failed: it ranks nothing any more
    assert result.outcome == "accepted", result
    world.run(app, count=2)
    assert_live(world, app, world.deployment(app, "1.9.0"))
    world.emulator.control.clear_behaviors()
