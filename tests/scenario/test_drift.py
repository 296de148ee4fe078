"""Drift: the app changed behind the history's back (by hand, by IaC), seen and recorded or repaired.

Real SDK + emulator + Azurite. The change "by hand" is a traffic PATCH through the same SDK, as
`az containerapp ingress traffic set` sends it.
"""

from __future__ import annotations

from shared.domain.model import DeploymentKind, Phase
from tests.scenario.conftest import assert_live


def _move_traffic_by_hand(world, app: str, weights: dict[str, int]) -> None:
    d = world.deployments(app)[0]
    assert world.container.container_apps.set_traffic(d.target, weights) is True


def test_traffic_moved_by_hand_is_recorded_once_and_cleared_when_it_is_put_back(world):
    app = world.seed_app("drift")
    world.push(app, "1.0.0")
    world.run(app)
    d = world.deployment(app, "1.0.0")
    assert_live(world, app, d)
    reconciler = world.container.drift

    assert reconciler.reconcile_app(d.target).status == "in_sync"
    _move_traffic_by_hand(world, app, {f"{app}--seed": 100})
    found = reconciler.reconcile_app(d.target)
    assert found.status == "drifted" and found.serving == {f"{app}--seed": 100}
    state = world.store.get_app_state(d.target)
    assert state.drift == found.signature and f"serves {app}--seed 100 %" in state.drift_detail
    assert any(e.message.startswith("drift: ") and "records drift only" in e.message
               for e in world.store.list_events(d.id))
    report = reconciler.reconcile()  # the same drift again: not recorded twice, nothing repaired
    assert report.drifted >= 1 and report.recorded == 0 and report.repairs == 0
    assert world.app_dump(app)["traffic"] == {f"{app}--seed": 100}  # record only: left alone

    _move_traffic_by_hand(world, app, {d.revision: 100})
    assert reconciler.reconcile_app(d.target).status == "in_sync"
    assert world.store.get_app_state(d.target).drift == ""
    assert any(e.message.startswith("drift resolved") for e in world.store.list_events(d.id))


def test_a_rule_that_repairs_puts_the_live_revision_back_through_a_recorded_deployment(world):
    app = world.seed_app("heal")
    world.push(app, "1.0.0")
    world.run(app)
    d = world.deployment(app, "1.0.0")
    _move_traffic_by_hand(world, app, {f"{app}--seed": 60, d.revision: 40})
    report = world.container.drift.reconcile()
    assert report.repairs == 1, report
    world.run(app, count=2)
    repair = next(x for x in world.deployments(app) if x.kind == DeploymentKind.ROLLBACK)
    assert repair.phase == Phase.SUCCEEDED and repair.source == "drift" and repair.rule == "drift-repair"
    assert world.app_dump(app)["traffic"] == {d.revision: 100}
    state = world.store.get_app_state(d.target)
    assert state.live_revision == d.revision and state.live_version_key == d.version_key  # rank kept
    assert world.container.drift.reconcile_app(d.target).status == "in_sync"
    assert world.store.get_app_state(d.target).drift == ""
    late = world.push(app, "0.9.5")  # the repaired app still ranks 1.0.0: an older push stays out
    assert late.outcome == "skipped", late


def test_a_repair_is_not_attempted_when_the_live_revision_is_gone(world):
    app = world.seed_app("heal")
    world.push(app, "1.0.0")
    world.run(app)
    d = world.deployment(app, "1.0.0")
    _move_traffic_by_hand(world, app, {f"{app}--seed": 100})
    world.container.container_apps.set_revision_active(d.target, d.revision, False)
    report = world.container.drift.reconcile()
    assert report.recorded == 1 and report.repairs == 0
    assert any("not active" in e.message for e in world.store.list_events(d.id))


def test_every_ending_schedules_a_drift_check_that_the_queue_trigger_routes_to_the_reconciler(world):
    import json

    from shared import entrypoints
    from shared.services.rollout.messages import DRIFT_RECHECK_S, drift_message

    app = world.seed_app("late-drift")
    sent: list[tuple[dict, float]] = []
    queue = world.container.queue
    real_send = queue.send

    def recording_send(message, delay_s=0.0):
        sent.append((message, delay_s))
        return real_send(message, delay_s)

    queue.send = recording_send
    try:
        world.push(app, "1.0.0")
        world.run(app)
    finally:
        queue.send = real_send
    d = world.deployment(app, "1.0.0")
    assert (drift_message(d.target.key), DRIFT_RECHECK_S) in sent  # scheduled once the rollout ended
    _move_traffic_by_hand(world, app, {f"{app}--seed": 100})  # a write that landed late
    entrypoints.handle_rollout_message(json.dumps(drift_message(d.target.key)))  # what the trigger does
    assert "serves" in world.store.get_app_state(d.target).drift_detail


def test_a_revision_an_ended_deployment_left_active_is_deactivated_once_the_app_is_in_sync(world):
    app = world.seed_app("strays")
    world.push(app, "1.0.0")
    world.run(app)
    world.emulator.control.add_behavior(world.image(app, "1.0.1"), status=500)
    world.push(app, "1.0.1")
    world.run(app, count=2)
    failed = world.deployment(app, "1.0.1")
    assert failed.phase == Phase.FAILED and world.revision(app, failed.revision)["active"] is False
    # As if Azure had finished creating it after its deployment ended (a create still in flight when
    # the deployment was superseded): active at 0 %.
    world.container.container_apps.set_revision_active(failed.target, failed.revision, True)
    report = world.container.drift.reconcile()
    assert report.cleaned == 1, report
    assert world.revision(app, failed.revision)["active"] is False
    assert any(e.message.startswith(f"clean-up: {failed.revision} was still active") for e in
               world.store.list_events(failed.id))
    live = world.deployment(app, "1.0.0")
    assert world.revision(app, live.revision)["active"] and world.revision(app, f"{app}--seed")["active"]
    world.emulator.control.clear_behaviors()
