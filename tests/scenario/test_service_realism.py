"""Rollouts against Container Apps as the service really behaves (the emulator's lifecycle, cold-start,
pull-failure and access modes), through intake, Azurite and the SDK: crash loops fail at the first poll
that shows them, cold starts get a warm-up, a not-yet-replicated image is retried with a new revision,
apps the function cannot reach fail before a revision exists (or opt out of HTTP checks), and traffic
labels survive every kind of rollout."""

from __future__ import annotations

import pytest

from shared.domain.model import Phase
from shared.services.rollout import RolloutWorker
from tests.scenario.conftest import ALL_PHASES, assert_live


def _checks(world, d):
    return [e for e in world.store.list_events(d.id) if e.data.get("check")]


def test_a_crash_looping_revision_fails_when_the_service_gives_up_with_its_reason(world):
    app = world.seed_app("crashy")
    world.emulator.control.add_behavior(app=app, crash_loop=True)
    world.emulator.control.config(progress_deadline=1.0)
    try:
        world.push(app, "1.0.0")
        world.run(app)
    finally:
        world.emulator.control.config(progress_deadline=600)
    d = world.deployment(app, "1.0.0")
    assert d.phase == Phase.FAILED, world.story(d)
    assert world.phases(d) == ["queued", "creating_revision", "waiting_ready", "failed"]
    # the service's own words, at the first poll that shows them (not the 300 s ready time-out)
    assert "failed to start: Deployment Progress Deadline Exceeded. 0/1 replicas ready." in d.reason
    assert "running ActivationFailed, health Unhealthy" in d.reason and "not ready within" not in d.reason
    assert world.app_dump(app)["traffic"] == {f"{app}--seed": 100}
    assert world.revision(app, d.revision)["active"] is False


def _cold_start(world, prefix: str):
    """A push to an app scaled to zero whose first request takes 2 s to start a replica; the rules of
    `cold-*` and `nowarm-*` check with a 1 s time-out and no retries (warm-up 5 s and none)."""
    app = world.seed_app(prefix, minReplicas=0)
    world.emulator.control.add_behavior(app=app, cold_start_ms=2000)
    world.push(app, "1.0.0")
    world.run(app)
    return app, world.deployment(app, "1.0.0")


def test_a_cold_start_is_waited_out_by_the_warm_up(world):
    app, d = _cold_start(world, "cold")
    assert_live(world, app, d)
    assert world.phases(d) == ALL_PHASES
    ready = next(e for e in world.store.list_events(d.id) if e.phase == Phase.SMOKE_TESTING)
    assert "is scaled to zero" in ready.message and "warm-up 5 s" in ready.message
    checks = _checks(world, d)
    assert checks[0].data["warming"] is True and checks[0].data["status"] is None, world.story(d)
    assert "warming up" in checks[0].message
    assert checks[-1].data["ok"] is True and not checks[-1].data.get("warming")


def test_without_a_warm_up_the_same_cold_start_fails_the_smoke_check(world):
    _, d = _cold_start(world, "nowarm")
    assert d.phase == Phase.FAILED and "smoke check failed" in d.reason, world.story(d)
    assert [c.data.get("warming") for c in _checks(world, d)] == [None]


def test_an_image_not_yet_replicated_is_retried_as_a_new_revision(world):
    app = world.seed_app("georep")
    world.emulator.control.add_behavior(f"*@{world.digest(app, '1.0.0')}", not_replicated_s=3)
    world.push(app, "1.0.0")
    world.run(app, timeout_s=45)  # the retry waits 15 s: a message with a visibility delay
    d = world.deployment(app, "1.0.0")
    assert_live(world, app, d)
    assert world.phases(d) == ["queued", "creating_revision", "waiting_ready", "creating_revision",
                               "waiting_ready", "smoke_testing", "shifting", "verifying", "succeeded"]
    retry = next(e for e in world.store.list_events(d.id) if e.data.get("pull_retry"))
    first = retry.data["failed_revision"]
    assert first != d.revision and "MANIFEST_UNKNOWN" in retry.message and "retry 1/3" in retry.message
    assert world.revision(app, first)["provisioningState"] == "Failed"


@pytest.mark.parametrize("extra, why", [
    ({"ingress": "internal"}, "its ingress is internal"),
    ({"ingress": "none"}, "it has no ingress"),
    ({"ipSecurityRestrictions": [{"name": "office", "action": "Allow", "ipAddressRange": "10.1.0.0/16"}]},
     "IP allow-list"),
    ({"auth": {"enabled": True, "unauthenticatedClientAction": "Return401"}}, "built-in authentication"),
])
def test_an_app_the_function_cannot_reach_fails_before_a_revision_is_created(world, extra, why):
    app = world.seed_app("hidden", **extra)
    world.push(app, "1.0.0")
    world.run(app)
    d = world.deployment(app, "1.0.0")
    assert d.phase == Phase.FAILED, world.story(d)
    assert world.phases(d) == ["queued", "failed"]
    assert why in d.reason and "checks: none" in d.reason and "acr-deploy.checks=none" in d.reason
    assert [r["name"] for r in world.app_dump(app)["revisions"]] == [f"{app}--seed"]


def test_checks_none_on_the_resource_tag_deploys_an_internal_app_on_its_health_state(world):
    app = world.seed_app("cold", ingress="internal", tags={"acr-deploy.checks": "none"})
    world.push(app, "1.0.0")
    world.run(app)
    d = world.deployment(app, "1.0.0")
    assert_live(world, app, d)
    assert world.phases(d) == ALL_PHASES and _checks(world, d) == []  # no HTTP request at all
    story = world.story(d)
    assert "checks: none" in story and "smoke checks skipped" in story
    assert f"{d.revision} health state: provisioning Provisioned, running Running, health Healthy" in d.reason


def test_checks_none_still_fails_a_revision_the_service_reports_unhealthy(world):
    app = world.seed_app("cold", ingress="none", tags={"acr-deploy.checks": "none"})
    world.push(app, "1.0.0")
    world.run(app)
    # the service reports the new revision degraded and unhealthy, with its reason
    world.emulator.control.add_behavior(world.image(app, "1.1.0"), running_state="Degraded",
                                        health_state="Unhealthy", running_state_details="1/1 replicas crashed")
    world.push(app, "1.1.0")
    world.run(app, count=2)
    d = world.deployment(app, "1.1.0")
    # Degraded/Unhealthy with details is a failure the first time it is seen: before any traffic
    assert d.phase == Phase.FAILED and "1/1 replicas crashed" in d.reason, world.story(d)


def test_traffic_labels_survive_rollouts_canaries_rollbacks_and_manual_rollbacks(world):
    app = world.seed_app("canary", traffic=[{"revisionName": "{app}--seed", "weight": 100, "label": "stable"}])
    seed = f"{app}--seed"

    def labels() -> dict:
        return {label: v["revision"] for label, v in world.app_dump(app)["labels"].items()}

    def serving() -> dict:  # the label's own entry stays in the table at 0 %
        return {name: w for name, w in world.app_dump(app)["traffic"].items() if w}

    assert labels() == {"stable": seed}
    for n, tag in enumerate(("1.0.0", "1.1.0", "1.2.0"), start=1):  # canaries: 10 %, 50 %, 100 %
        world.push(app, tag)
        world.run(app, count=n)
        d = world.deployment(app, tag)
        assert d.phase == Phase.SUCCEEDED and serving() == {d.revision: 100}, world.story(d)
        assert labels() == {"stable": seed}, world.story_of_app(app)
    newest = world.deployment(app, "1.2.0")
    # 1.0.0 was cleaned up; the labelled seed stays active, although it is older than what is kept
    assert world.revision(app, world.deployment(app, "1.0.0").revision)["active"] is False
    assert world.revision(app, seed)["active"] is True
    assert "kept warm for rollback" in newest.reason and seed in newest.reason

    world.emulator.control.add_behavior(world.image(app, "2.0.0"), fail_after=3, status=500)
    world.push(app, "2.0.0")  # rolled back at 50 %
    world.run(app, count=4)
    assert world.deployment(app, "2.0.0").phase == Phase.ROLLED_BACK
    assert labels() == {"stable": seed}

    worker: RolloutWorker = world.container.rollout
    rb = worker.request_rollback(app, to_revision=seed, requested_by="release-manager")
    world.run(app, count=5)
    done = world.store.get_deployment(rb.id)
    assert done.phase == Phase.SUCCEEDED, world.story(done)
    assert serving() == {seed: 100} and labels() == {"stable": seed}


def test_a_failed_revision_a_label_follows_is_left_active_not_deactivated(world):
    app = world.seed_app("latest", traffic=[{"revisionName": "{app}--seed", "weight": 100},
                                            {"latestRevision": True, "weight": 0, "label": "newest"}])
    world.emulator.control.add_behavior(world.image(app, "1.0.0"), status=500)
    world.push(app, "1.0.0")
    world.run(app)
    d = world.deployment(app, "1.0.0")
    assert d.phase == Phase.FAILED and "smoke check failed" in d.reason, world.story(d)
    # the `newest` label now points at the failed revision: deactivating it would break that URL
    assert f"{d.revision} left active: a traffic label points at it" in d.reason
    assert world.revision(app, d.revision)["active"] is True
    assert world.app_dump(app)["labels"]["newest"]["revision"] == d.revision
    assert {n: w for n, w in world.app_dump(app)["traffic"].items() if w} == {f"{app}--seed": 100}
