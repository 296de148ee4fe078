"""Blue/green with traffic labels, end to end (intake -> Azurite queue -> worker -> emulator): apps in the
service's Labels revision mode, and a Multiple-mode app whose rule asks for `strategy: blue-green`."""

from __future__ import annotations

from shared.domain.model import Phase
from shared.services.rollout import RolloutWorker


def labels(world, app: str) -> dict[str, str]:
    return {label: v["revision"] for label, v in world.app_dump(app)["labels"].items()}


def serving(world, app: str) -> dict[str, int]:
    return {rev: w for rev, w in world.app_dump(app)["traffic"].items() if w}


def shift_message(world, d) -> str:
    return next(e.message for e in world.store.list_events(d.id) if e.phase == Phase.SHIFTING)


def test_a_labels_mode_app_is_smoke_checked_on_its_green_url_then_blue_moves_to_it(world):
    app = world.seed_app("lbl", mode="Labels")
    seed = f"{app}--seed"
    assert labels(world, app) == {"blue": seed}
    world.push(app, "1.0.0")
    world.run(app)
    d = world.deployment(app, "1.0.0")
    assert d.phase == Phase.SUCCEEDED, world.story(d)
    dump = world.app_dump(app)
    assert labels(world, app) == {"blue": d.revision, "previous": seed, "green": d.revision}
    assert serving(world, app) == {d.revision: 100}
    green_host = dump["labels"]["green"]["fqdn"]
    assert f"against https://{green_host}" in shift_message(world, d), world.story(d)
    story = world.story(d)
    assert f"label green is on it at {green_host}" in story
    assert f"labels blue → {d.revision}, green → {d.revision}, previous → {seed}" in story, story
    assert world.revision(app, seed)["active"]  # kept under "previous": an instant rollback
    # The next push: green moves to the newer revision, previous to the one blue leaves, the oldest
    # (no label left) is deactivated by the service.
    world.push(app, "1.1.0")
    world.run(app, count=2)
    d2 = world.deployment(app, "1.1.0")
    assert d2.phase == Phase.SUCCEEDED, world.story(d2)
    assert labels(world, app) == {"blue": d2.revision, "previous": d.revision, "green": d2.revision}
    assert world.revision(app, seed)["active"] is False


def test_failing_smoke_checks_remove_green_and_leave_blue_alone(world):
    app = world.seed_app("lblsick", mode="Labels")
    seed = f"{app}--seed"
    world.emulator.control.add_behavior(world.image(app, "1.0.1"), status=503)
    world.push(app, "1.0.1")
    world.run(app)
    d = world.deployment(app, "1.0.1")
    assert d.phase == Phase.FAILED, world.story(d)
    assert f"label green removed from {d.revision}" in d.reason and "never received traffic" in d.reason
    assert labels(world, app) == {"blue": seed}
    assert serving(world, app) == {seed: 100}
    rev = world.revision(app, d.revision)
    assert rev["active"] is False and rev["requests"] == 2  # only the smoke checks (on green) reached it


def test_a_failed_verification_moves_blue_back(world):
    app = world.seed_app("lblback", mode="Labels")
    seed = f"{app}--seed"
    # the smoke check (on green) passes, the verify check on the app URL after the shift does not
    world.emulator.control.add_behavior(world.image(app, "2.0.0"), fail_after=1, status=500)
    world.push(app, "2.0.0")
    world.run(app)
    d = world.deployment(app, "2.0.0")
    assert d.phase == Phase.ROLLED_BACK, world.story(d)
    assert f"traffic back to {seed} 100 %; labels back: blue → {seed}" in d.reason
    assert labels(world, app) == {"blue": seed}
    assert serving(world, app) == {seed: 100}
    assert world.revision(app, d.revision)["active"] is False


def test_a_manual_rollback_moves_blue_to_the_previous_label(world):
    app = world.seed_app("lblrb", mode="Labels")
    world.push(app, "1.0.0")
    world.run(app)
    world.push(app, "1.1.0")
    world.run(app, count=2)
    first, second = world.deployment(app, "1.0.0"), world.deployment(app, "1.1.0")
    assert labels(world, app)["previous"] == first.revision
    worker: RolloutWorker = world.container.rollout
    rb = worker.request_rollback(app, requested_by="release-manager")
    assert rb.revision == first.revision
    world.run(app, count=3)
    done = world.store.get_deployment(rb.id)
    assert done.phase == Phase.SUCCEEDED, world.story(done)
    assert labels(world, app) == {"blue": first.revision, "previous": second.revision, "green": second.revision}
    assert serving(world, app) == {first.revision: 100}
    # and forward again: a second rollback returns to the revision "previous" now names
    rb2 = worker.request_rollback(app, to_revision=second.revision, requested_by="release-manager")
    world.run(app, count=4)
    assert world.store.get_deployment(rb2.id).phase == Phase.SUCCEEDED
    assert labels(world, app)["blue"] == second.revision and labels(world, app)["previous"] == first.revision


def test_a_multiple_mode_app_whose_rule_asks_for_blue_green(world):
    app = world.seed_app("bg")
    seed = f"{app}--seed"
    world.push(app, "1.0.0")
    world.run(app)
    d = world.deployment(app, "1.0.0")
    assert d.phase == Phase.SUCCEEDED, world.story(d)
    dump = world.app_dump(app)
    assert dump["mode"] == "multiple"
    assert labels(world, app) == {"green": d.revision, "blue": d.revision, "previous": seed}
    assert serving(world, app) == {d.revision: 100}
    assert f"against https://{dump['labels']['green']['fqdn']}" in shift_message(world, d)
    assert world.revision(app, seed)["active"]
    # a manual rollback moves blue (and the traffic) back to the revision "previous" names
    rb = world.container.rollout.request_rollback(app, requested_by="release-manager")
    assert rb.revision == seed
    world.run(app, count=2)
    assert world.store.get_deployment(rb.id).phase == Phase.SUCCEEDED
    assert labels(world, app) == {"green": d.revision, "blue": seed, "previous": d.revision}
    assert serving(world, app) == {seed: 100}
