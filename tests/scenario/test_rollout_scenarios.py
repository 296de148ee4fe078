"""End-to-end rollouts: Event Grid event -> intake -> Azurite queue -> rollout worker -> emulator.

Everything real except the Functions host (tests/scenario/driver.py stands in for the queue
trigger and calls the same entry point). Each scenario asserts the story the history tells.
"""

from __future__ import annotations

import pytest

from shared.domain.model import Phase
from shared.services.rollout import RolloutWorker
from tests.scenario.conftest import ALL_PHASES, assert_live
from tests.scenario.driver import Crash


def test_a_healthy_push_goes_live(world):
    app = world.seed_app("web")
    result = world.push(app, "1.0.0")
    assert result.outcome == "accepted", result
    world.run(app)
    d = world.deployment(app, "1.0.0")
    assert_live(world, app, d)
    assert world.phases(d) == ALL_PHASES
    events = world.store.list_events(d.id)
    created = next(e for e in events if e.phase == Phase.CREATING_REVISION)
    assert f"creating {d.revision} at 0 % beside {app}--seed 100 %" in created.message
    smoke = [e for e in events if e.data.get("check")]
    assert smoke and smoke[0].data["status"] == 200 and smoke[0].data["latency_ms"] >= 0
    assert f"kept warm for rollback: {app}--seed" in d.reason
    assert world.revision(app, f"{app}--seed")["active"]  # kept for an instant rollback


def test_a_revision_failing_smoke_checks_never_gets_traffic(world):
    app = world.seed_app("sick")
    world.emulator.control.add_behavior(world.image(app, "1.0.1"), status=503)
    world.push(app, "1.0.1")
    world.run(app)
    d = world.deployment(app, "1.0.1")
    assert d.phase == Phase.FAILED, world.story(d)
    assert world.phases(d) == ["queued", "creating_revision", "waiting_ready", "smoke_testing", "failed"]
    attempts = [e for e in world.store.list_events(d.id) if e.data.get("check")]
    assert [a.data["status"] for a in attempts] == [503, 503]  # 1 try + 1 retry, both recorded
    assert "HTTP 503" in attempts[0].data["excerpt"]
    assert "never received traffic" in d.reason and f"{d.revision} deactivated" in d.reason
    dump = world.app_dump(app)
    assert dump["traffic"] == {f"{app}--seed": 100}
    rev = world.revision(app, d.revision)
    assert rev["active"] is False and rev["requests"] == 2  # only the smoke checks ever reached it
    assert rev["peakWeight"] == 0
    state = world.store.get_app_state(d.target)
    assert state.live_revision == "" and state.active_deployment_id == "" and state.inflight_digests == ()


def test_a_revision_that_never_starts_fails_and_is_deactivated(world):
    app = world.seed_app("dead")
    world.emulator.control.add_behavior(world.image(app, "1.0.0"), unhealthy=True)
    world.push(app, "1.0.0")
    world.run(app)
    d = world.deployment(app, "1.0.0")
    assert d.phase == Phase.FAILED and "failed to start" in d.reason, world.story(d)
    assert world.app_dump(app)["traffic"] == {f"{app}--seed": 100}


def test_a_canary_failing_at_50_percent_is_rolled_back(world):
    app = world.seed_app("canary")
    # smoke (1 request) + 10 verify requests at 10 % (1 reaches it) stay within 3; at 50 % it breaks
    world.emulator.control.add_behavior(world.image(app, "2.0.0"), fail_after=3, status=500)
    world.push(app, "2.0.0")
    world.run(app)
    d = world.deployment(app, "2.0.0")
    assert d.phase == Phase.ROLLED_BACK, world.story(d)
    assert world.phases(d) == ["queued", "creating_revision", "waiting_ready", "smoke_testing",
                               "shifting", "verifying", "shifting", "verifying", "rolled_back"]
    shifts = [e.data["traffic"] for e in world.store.list_events(d.id)
              if e.phase == Phase.VERIFYING and "traffic" in e.data]
    seed = f"{app}--seed"
    assert shifts == [{seed: 90, d.revision: 10}, {seed: 50, d.revision: 50}]
    assert "verification failed at 50 %" in d.reason and f"traffic back to {seed} 100 %" in d.reason
    assert world.app_dump(app)["traffic"] == {seed: 100}
    assert world.revision(app, d.revision)["active"] is False
    assert world.revision(app, d.revision)["peakWeight"] == 50  # the emulator remembers the most it had


def test_two_quick_pushes_end_with_the_newer_live_and_the_older_superseded(world):
    app = world.seed_app("race")
    world.emulator.control.set_provisioning_delay(2.0)
    # a short budget, so the first rollout is caught waiting for its revision
    world.container.rollout = world.container.rollout.with_ports(budget_s=0.5)
    world.push(app, "1.0.0")
    world.driver.run(until=lambda: world.deployment(app, "1.0.0").phase == Phase.WAITING_READY, timeout_s=10)
    world.push(app, "1.1.0")
    world.emulator.control.set_provisioning_delay(0.0)
    world.run(app, count=2, timeout_s=40)
    old, new = world.deployment(app, "1.0.0"), world.deployment(app, "1.1.0")
    assert old.phase == Phase.SUPERSEDED, world.story(old)
    assert f"superseded by newer deployment {new.id} before its traffic shift" in old.reason
    assert world.phases(old) == ["queued", "creating_revision", "waiting_ready", "superseded"]
    assert_live(world, app, new)
    assert any("waiting for" in e.message for e in world.store.list_events(new.id))
    assert world.revision(app, old.revision)["active"] is False  # never served, cleaned up
    assert world.revision(app, old.revision)["trafficWeight"] == 0


def test_the_same_event_delivered_five_times_deploys_once(world):
    app = world.seed_app("dupe")
    event = world.event(app, "3.0.0")
    outcomes = [world.push(app, "3.0.0", event_id=event["id"], seconds=world.clock_offset).outcome
                for _ in range(5)]
    assert outcomes[0] == "accepted"
    world.run(app)
    (d,) = world.deployments(app)
    assert_live(world, app, d)
    names = [r["name"] for r in world.app_dump(app)["revisions"]]
    assert names == [f"{app}--seed", d.revision]
    assert world.phases(d) == ALL_PHASES


@pytest.mark.parametrize("kind", ["429", "500"])
def test_one_arm_call_in_five_failing_still_ends_with_every_rollout_correct(world, kind):
    apps = [world.seed_app(f"flaky{i}") for i in range(3)]
    world.emulator.control.add_faults(kind, every=5, retry_after=0)
    for app in apps:
        world.push(app, "1.2.3")
    world.run(*apps, timeout_s=60)
    world.emulator.control.clear_faults()
    faults = sum(1 for r in world.emulator.control.dump()["armRequests"] if str(r["status"]).startswith("fault"))
    assert faults > 0
    for app in apps:
        assert_live(world, app, world.deployment(app, "1.2.3"))


class Killed(Crash):
    pass


def test_a_worker_killed_after_each_step_resumes_to_the_same_end_state(world):
    saves = {"n": 0, "at": 0}

    def crash_hook(_d):
        saves["n"] += 1
        if saves["n"] == saves["at"]:
            raise Killed(f"killed after save {saves['at']}")

    world.container.rollout = world.container.rollout.with_ports(budget_s=5.0, on_saved=crash_hook)
    ends = []
    for crash_at in range(1, 7):  # after every recorded step of a push to live (6 saves)
        app = world.seed_app(f"kill{crash_at}")
        saves.update(n=0, at=crash_at)
        world.push(app, "1.0.0")
        world.run(app, timeout_s=30)
        d = world.deployment(app, "1.0.0")
        assert saves["n"] >= crash_at, f"the crash at save {crash_at} never happened"
        assert_live(world, app, d)
        assert world.phases(d)[-1] == "succeeded"
        assert sum(1 for e in world.store.list_events(d.id) if e.phase == Phase.SUCCEEDED) == 1
        revisions = [r["name"] for r in world.app_dump(app)["revisions"]]
        assert revisions == [f"{app}--seed", d.revision]  # one revision, however often it resumed
        ends.append((world.phases(d)[-1], world.app_dump(app)["traffic"] == {d.revision: 100}))
    assert any("Killed" in f for f in world.driver.failures)
    assert set(ends) == {("succeeded", True)}


def test_a_manual_rollback_returns_to_the_previous_revision(world):
    app = world.seed_app("rb")
    world.push(app, "1.0.0")
    world.run(app)
    world.push(app, "1.1.0")
    world.run(app, count=2)
    first, second = world.deployment(app, "1.0.0"), world.deployment(app, "1.1.0")
    assert_live(world, app, second)
    worker: RolloutWorker = world.container.rollout
    rb = worker.request_rollback(app, requested_by="release-manager")
    assert rb.revision == first.revision and rb.tag == "1.0.0"
    world.run(app, count=3)
    done = world.store.get_deployment(rb.id)
    assert done.phase == Phase.SUCCEEDED, world.story(done)
    assert world.phases(done) == ["queued", "waiting_ready", "smoke_testing", "shifting", "verifying",
                                  "succeeded"]
    assert world.app_dump(app)["traffic"] == {first.revision: 100}
    state = world.store.get_app_state(rb.target)
    assert (state.live_revision, state.live_deployment_id) == (first.revision, rb.id)
    assert world.revision(app, second.revision)["active"]  # kept warm: roll forward is instant


def test_the_sweeper_recovers_lost_messages_and_fails_expired_rollouts(world):
    from datetime import timedelta

    from shared.domain.model import utcnow

    worker: RolloutWorker = world.container.rollout
    lost, late = world.seed_app("lost"), world.seed_app("late")
    world.push(lost, "1.0.0")
    world.push(late, "1.0.0")
    for _body, handle in world.driver.queue.receive(max_messages=10):  # both start messages vanish
        world.driver.queue.delete(handle)
    assert worker.sweep() == {"expired": 0, "resent": 0, "released": 0}  # nothing is stale yet
    d_lost = world.deployment(lost, "1.0.0")
    d_late = world.deployment(late, "1.0.0")
    worker = worker.with_ports(clock=lambda: utcnow() + timedelta(minutes=5))  # five quiet minutes later
    world.container.rollout = worker
    assert worker.sweep()["resent"] == 2
    for _body, handle in world.driver.queue.receive(max_messages=10, visibility_timeout=1):
        if _body["deployment_id"] == d_late.id:
            world.driver.queue.delete(handle)  # ... and one of them is lost again
    world.run(lost)
    assert_live(world, lost, world.deployment(lost, "1.0.0"))
    worker = worker.with_ports(clock=lambda: utcnow() + timedelta(hours=1))  # past the 30 min deadline
    assert worker.sweep()["expired"] == 1
    done = world.store.get_deployment(d_late.id)
    assert done.phase == Phase.FAILED and "deadline passed (1800 s) while queued" in done.reason
    assert world.phases(done) == ["queued", "failed"]
    assert world.store.get_app_state(done.target).inflight_digests == ()


def test_the_cli_queues_a_rollback(world, monkeypatch, tmp_path, capsys):
    import json

    from shared.adapters.queues import StorageRolloutQueue
    from shared.cli import main as cli

    app = world.seed_app("clirb")
    world.push(app, "1.0.0")
    world.run(app)
    world.push(app, "1.1.0")
    world.run(app, count=2)
    first = world.deployment(app, "1.0.0")
    env = {
        "AzureWebJobsStorage": world.container.settings.storage_connection_string,
        "ACR_DEPLOY_TABLE_PREFIX": world.container.settings.table_prefix,
        "ACR_DEPLOY_ARM_ENDPOINT": world.emulator.base_url,
        "ACR_DEPLOY_ARM_CA_BUNDLE": world.emulator.ca_path,
        "ACR_DEPLOY_ARM_CREDENTIAL": "emulator",
        "ACR_DEPLOY_SUBSCRIPTION_ID": first.target.subscription_id,
        "ACR_DEPLOY_RESOURCE_GROUP": world.rg,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    assert cli(["rollback", app, "--to", "nope"]) == 3
    assert "has no revision" in capsys.readouterr().err
    assert cli(["rollback", app, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["kind"] == "rollback" and printed["revision"] == first.revision
    # the CLI enqueued on the shared rollout queue: hand its message to this world's queue
    shared_queue = StorageRolloutQueue.from_connection_string(env["AzureWebJobsStorage"])
    moved = 0
    for body, handle in shared_queue.receive(max_messages=32):
        if body.get("deployment_id") == printed["id"]:
            world.driver.queue.send(body)
            shared_queue.delete(handle)
            moved += 1
    assert moved == 1
    world.run(app, count=3)
    done = world.store.get_deployment(printed["id"])
    assert done.phase == Phase.SUCCEEDED, world.story(done)
    assert world.app_dump(app)["traffic"] == {first.revision: 100}
