"""Release controls in the rollout worker (in-memory fakes, virtual clock): approval, freeze windows,
pause / resume / promote / abort, told by the history. The same paths on Azurite and the emulator:
tests/scenario/test_release_controls_scenarios.py."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.domain.approvals import ControlAction, ControlProgress, ControlRequest
from shared.domain.controls import ApprovalPolicy, ReleaseControls
from shared.domain.freeze import FreezeAction, FreezeWindow, freeze_at
from shared.domain.model import Phase, deployment_from_dict, deployment_to_dict
from shared.errors import ConflictError, InvalidRequestError
from shared.services.rollout.controls import AWAITING_APPROVAL_EVENT, FROZEN_EVENT
from tests.unit.test_rollout_fakes import CANARY, T0, fast
from tests.unit.test_rollout_worker import Harness


def controls(**kw) -> ReleaseControls:
    return ReleaseControls(**kw)


def run_until(h: Harness, d, phase: Phase, limit: int = 200):
    """Deliver messages until `d` is in `phase` (held phases never drain the queue by themselves)."""
    for _ in range(limit):
        if h.get(d).phase == phase:
            return h.get(d)
        message = h.queue.pop()
        assert message is not None, h.story(d)
        h.worker.handle_message(message, 1)
    raise AssertionError(f"never reached {phase}:\n{h.story(d)}")


def traffic(h: Harness) -> list[dict]:
    return [c[1] for c in h.apps.calls if c[0] == "traffic"]


# ------------------------------------------------------------------------ approval
APPROVAL = controls(approval=ApprovalPolicy(True, ("ann@contoso.com",), 3600.0))


def test_a_smoke_checked_revision_waits_at_zero_for_approval_then_goes_live_when_approved():
    h = Harness()
    target = h.apps.add_app("orders")
    d = h.push(target, "1.5.0", "a", fast(controls=APPROVAL))
    waiting = run_until(h, d, Phase.AWAITING_APPROVAL)
    assert h.phases(d)[-2:] == ["shifting", "awaiting_approval"]
    assert traffic(h) == [] and h.apps.app(target).traffic == {"orders--first": 100}
    assert (AWAITING_APPROVAL_EVENT, d.id, "awaiting_approval") in h.publisher.events
    assert "waiting for approval by ann@contoso.com" in h.story(d)
    assert waiting.deadline >= h.clock() + timedelta(seconds=3600)  # the wait does not eat the deadline
    with pytest.raises(ConflictError, match="not one of the approvers"):
        h.worker.request_control(d.id, ControlAction.APPROVE, "bob@contoso.com", "looks fine")
    h.worker.request_control(d.id, ControlAction.APPROVE, "ANN@contoso.com", "release notes checked")
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.SUCCEEDED, h.story(d)
    story = h.story(d)
    assert "approve by bob@contoso.com: refused, bob@contoso.com is not one of the approvers" in story
    assert "approved by ANN@contoso.com: release notes checked" in story
    assert done.progress.controls.approved.by == "ANN@contoso.com"


def test_a_rejected_deployment_never_gets_traffic_and_its_revision_is_deactivated():
    h = Harness()
    target = h.apps.add_app("orders")
    d = h.push(target, "1.5.0", "a", fast(controls=APPROVAL))
    run_until(h, d, Phase.AWAITING_APPROVAL)
    h.worker.request_control(d.id, ControlAction.REJECT, "ann@contoso.com", "wrong build")
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.FAILED and "rejected by ann@contoso.com: wrong build" in done.reason
    assert traffic(h) == [] and not next(r for r in h.apps.app(target).revisions if r.name == done.revision).active


def test_an_expired_approval_ends_the_deployment_and_a_late_approve_changes_nothing():
    h = Harness()
    target = h.apps.add_app("orders")
    d = h.push(target, "1.5.0", "a", fast(controls=APPROVAL))
    run_until(h, d, Phase.AWAITING_APPROVAL)
    h.drain()  # the held deployment re-reads at its expiry (virtual clock) and ends
    done = h.get(d)
    assert done.phase == Phase.FAILED and done.reason.startswith("approval expired at"), h.story(d)
    with pytest.raises(ConflictError, match="failed: approve changes nothing"):
        h.worker.request_control(d.id, ControlAction.APPROVE, "ann@contoso.com", "sorry, late")
    assert "approve by ann@contoso.com: refused, the deployment is failed" in h.story(d)
    assert traffic(h) == []


def test_a_newer_push_supersedes_a_deployment_waiting_for_approval():
    h = Harness()
    target = h.apps.add_app("orders")
    old = h.push(target, "1.5.0", "a", fast(controls=APPROVAL))
    run_until(h, old, Phase.AWAITING_APPROVAL)
    new = h.push(target, "1.5.1", "b", fast(controls=APPROVAL))
    run_until(h, new, Phase.AWAITING_APPROVAL)
    assert h.get(old).phase == Phase.SUPERSEDED, h.story(old)
    with pytest.raises(ConflictError, match="superseded"):
        h.worker.request_control(old.id, ControlAction.APPROVE, "ann@contoso.com", "ship it")


def test_a_request_needs_a_reason():
    h = Harness()
    d = h.push(h.apps.add_app("orders"), "1.5.0", "a", fast(controls=APPROVAL))
    with pytest.raises(InvalidRequestError, match="needs a reason"):
        h.worker.request_control(d.id, ControlAction.APPROVE, "ann@contoso.com", "  ")


# ------------------------------------------------------------------------ canary control
def test_pause_holds_the_weights_resume_carries_on_and_promote_takes_all_traffic_now():
    h = Harness()
    target = h.apps.add_app("pay")
    d = h.push(target, "2.0.0", "c", fast(**CANARY, deadline_s=7200.0))
    run_until(h, d, Phase.VERIFYING)  # 10 %, baking 30 s
    h.worker.request_control(d.id, ControlAction.PAUSE, "ops", "watching the dashboards")
    paused = run_until(h, d, Phase.PAUSED)
    weights = dict(h.apps.app(target).traffic)
    assert weights[paused.revision] == 10
    for _ in range(3):  # held: a stale bake wake-up, then one every 15 min; nothing moves
        h.worker.handle_message(h.queue.pop(), 1)
    assert h.clock() >= T0 + timedelta(minutes=30)
    assert h.apps.app(target).traffic == weights and h.get(d).phase == Phase.PAUSED
    h.worker.request_control(d.id, ControlAction.PROMOTE, "ops", "good enough")
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.SUCCEEDED, h.story(d)
    assert [t[done.revision] for t in traffic(h)] == [10, 100]  # 50 % skipped
    story = h.story(d)
    for line in ("pause by ops: watching the dashboards", "promote by ops: good enough; all traffic to"):
        assert line in story


def test_a_resumed_rollout_carries_on_where_it_was_paused():
    h = Harness()
    target = h.apps.add_app("pay")
    d = h.push(target, "2.0.0", "c", fast(**CANARY, deadline_s=7200.0))
    run_until(h, d, Phase.VERIFYING)
    h.worker.request_control(d.id, ControlAction.PAUSE, "ops", "hold on")
    run_until(h, d, Phase.PAUSED)
    h.worker.request_control(d.id, ControlAction.RESUME, "ops", "dashboards are fine")
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.SUCCEEDED, h.story(d)
    assert [t[done.revision] for t in traffic(h)] == [10, 50, 100]
    assert "resume by ops: dashboards are fine" in h.story(d)
    assert h.phases(d)[-7:] == ["paused", "verifying", "shifting", "verifying", "shifting", "verifying", "succeeded"]


def test_abort_rolls_a_canary_back_and_a_paused_rollout_expires_at_its_deadline():
    h = Harness()
    target = h.apps.add_app("pay")
    d = h.push(target, "2.0.0", "c", fast(**CANARY))
    run_until(h, d, Phase.VERIFYING)
    h.worker.request_control(d.id, ControlAction.ABORT, "ops", "error budget burning")
    h.drain()
    assert h.get(d).phase == Phase.ROLLED_BACK, h.story(d)
    assert h.apps.app(target).traffic == {"pay--first": 100}
    assert "abort by ops: error budget burning" in h.get(d).reason

    other = h.apps.add_app("pay2")
    e = h.push(other, "2.0.0", "d", fast(**CANARY))
    run_until(h, e, Phase.VERIFYING)
    h.worker.request_control(e.id, ControlAction.PAUSE, "ops", "hold on")
    run_until(h, e, Phase.PAUSED)
    h.drain()  # nobody resumes: the deadline ends it, traffic restored
    ended = h.get(e)
    assert ended.phase == Phase.ROLLED_BACK and "deadline passed" in ended.reason, h.story(e)
    assert h.apps.app(other).traffic == {"pay2--first": 100}


def test_requests_that_do_not_fit_the_phase_are_refused_and_recorded():
    h = Harness()
    d = h.push(h.apps.add_app("web"), "1.0.0", "e")
    h.drain()
    with pytest.raises(ConflictError, match="succeeded: pause changes nothing"):
        h.worker.request_control(d.id, ControlAction.PAUSE, "ops", "too late")
    with pytest.raises(ConflictError):
        h.worker.request_control(d.id, ControlAction.PROMOTE, "ops", "too late")


# ------------------------------------------------------------------------ freeze windows
def window_around(now: datetime, hours: float, action: FreezeAction = FreezeAction.WAIT) -> FreezeWindow:
    """A one-off window (UTC wall time) that began an hour ago and ends `hours` from now."""
    return FreezeWindow("change-freeze", "UTC", action=action, begins=(now - timedelta(hours=1)).replace(tzinfo=None),
                        ends=(now + timedelta(hours=hours)).replace(tzinfo=None))


def test_a_push_during_a_freeze_waits_untouched_and_goes_out_when_the_window_ends():
    h = Harness()
    target = h.apps.add_app("orders")
    freeze = window_around(h.clock(), 3)
    d = h.push(target, "1.5.0", "a", fast(controls=controls(freezes=(freeze,))))
    held = run_until(h, d, Phase.FROZEN)
    assert [c for c in h.apps.calls if c[0] in ("create", "traffic")] == []  # nothing in Azure changed
    assert (FROZEN_EVENT, d.id, "frozen") in h.publisher.events
    assert "frozen by change-freeze" in h.story(d)
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.SUCCEEDED, h.story(d)
    assert h.phases(d)[:4] == ["queued", "creating_revision", "frozen", "creating_revision"]
    first_change = next(c for c in h.apps.calls if c[0] == "create")
    assert first_change and h.clock() >= freeze.ends.replace(tzinfo=timezone.utc)
    assert held.deadline > freeze.ends.replace(tzinfo=timezone.utc)


def test_a_skip_window_records_the_push_as_skipped():
    h = Harness()
    target = h.apps.add_app("orders")
    d = h.push(target, "1.5.0", "a", fast(controls=controls(freezes=(window_around(h.clock(), 3, FreezeAction.SKIP),))))
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.SKIPPED and done.reason.startswith("skipped: frozen by change-freeze")
    assert all(c[0] not in ("create", "traffic") for c in h.apps.calls)
    assert h.store.get_app_state(target).active_deployment_id == ""


def test_an_emergency_override_lifts_the_freeze_for_that_deployment_only():
    h = Harness()
    target = h.apps.add_app("orders")
    d = h.push(target, "1.5.1", "f", fast(controls=controls(freezes=(window_around(h.clock(), 48),))))
    run_until(h, d, Phase.FROZEN)
    h.worker.request_control(d.id, ControlAction.OVERRIDE_FREEZE, "oncall", "hotfix for the outage")
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.SUCCEEDED, h.story(d)
    assert "freeze overridden by oncall: hotfix for the outage" in h.story(d)
    assert h.clock() < T0 + timedelta(hours=2)


def test_control_progress_round_trips_through_the_record():
    h = Harness()
    d = h.push(h.apps.add_app("orders"), "1.5.0", "a", fast(controls=APPROVAL))
    req = ControlRequest(ControlAction.PAUSE, "ann", "why", T0)
    cp = ControlProgress(request=req, approval_requested_at=T0, approved=req, resume_phase="verifying",
                         freeze_override=req, promoted_from="x", not_before=T0, promoted_to=("y", "z"))
    d = d.with_progress(controls=cp)
    back = deployment_from_dict(deployment_to_dict(d))
    assert back.progress.controls == cp and back.rollout == d.rollout
    assert ControlProgress.read({"request": {"action": "nonsense"}}) == ControlProgress()


# ------------------------------------------------------------------------ property: no shift inside a freeze
daily = st.builds(
    lambda days, start, hours: FreezeWindow("w", "UTC", days=days, start=time(start), end=time((start + hours) % 24)),
    days=st.sets(st.integers(0, 6), min_size=1, max_size=5).map(lambda s: tuple(sorted(s))),
    start=st.integers(0, 23), hours=st.integers(1, 10),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(window=daily, offset_h=st.floats(0, 24 * 7), canary=st.booleans(), bake=st.sampled_from([0.0, 600.0, 3600.0]))
def test_property_nothing_shifts_traffic_towards_a_new_revision_inside_a_freeze(window, offset_h, canary, bake):
    h = Harness()
    shifts: list[tuple[datetime, dict]] = []
    original = h.apps.set_traffic

    def watched(target, weights, wait_s=None):
        shifts.append((h.clock(), dict(weights)))
        return original(target, weights, wait_s)

    h.apps.set_traffic = watched
    h.clock.advance(offset_h * 3600)
    target = h.apps.add_app("orders")
    settings_ = dict(CANARY, bake_s=bake) if canary else {}
    d = h.push(target, "1.5.0", "a", fast(controls=controls(freezes=(window,)), **settings_))
    h.drain(limit=2000)
    done = h.get(d)
    assert done.phase.terminal, h.story(d)
    towards_new = [(at, w) for at, w in shifts if w.get(done.revision, 0) > 0]
    for at, weights in towards_new:
        assert freeze_at([window], at) is None, f"shifted {weights} at {at} inside {window.describe()}"
    if done.phase == Phase.SUCCEEDED:
        assert towards_new and towards_new[-1][1] == {done.revision: 100}


# ------------------------------------------------------------------------ approval from resource tags
@pytest.mark.parametrize("value, required, approvers", [
    ("true", True, ()), ("required", True, ()), ("false", False, ()),
    ("ann@contoso.com, bob@contoso.com", True, ("ann@contoso.com", "bob@contoso.com")),
])
def test_the_approval_resource_tag_asks_for_approval(value, required, approvers):
    from shared.domain.rules.resource_tags import tag_rule_from_app
    from tests.unit.rules_support import app

    rule = tag_rule_from_app(app("orders-api", {"acr-deploy.repository": "orders-api", "acr-deploy.approval": value}))
    assert (rule.rollout.controls.approval.required, rule.rollout.controls.approval.approvers) == (required, approvers)


def test_a_broken_approval_tag_deploys_nothing_and_says_why():
    from shared.domain.rules.resource_tags import tag_rule_from_app
    from tests.unit.rules_support import app

    rule = tag_rule_from_app(app("orders-api", {"acr-deploy.repository": "orders-api", "acr-deploy.approval": ",,,"}))
    assert "acr-deploy.approval=',,,': expected true, false or approvers" in rule.policy.problem


# ------------------------------------------------------------------------ promotion soak
def test_a_promotion_soaks_then_goes_on_only_while_its_source_still_serves():
    from shared.domain.approvals import ControlProgress as CP
    from tests.unit.test_rollout_fakes import push_deployment, record

    h = Harness()
    staging, production = h.apps.add_app("stg"), h.apps.add_app("prd")
    source = h.push(staging, "1.0.0", "a")
    h.drain()
    assert h.get(source).phase == Phase.SUCCEEDED

    def promoted(seed: str, tag: str):
        d = push_deployment(production, tag, seed, h.clock(), fast())
        d = d.evolve(deadline=h.clock() + timedelta(hours=1)).with_progress(
            controls=CP(promoted_from=source.id, not_before=h.clock() + timedelta(minutes=30)))
        record(h.store, h.queue, d)
        return d

    ok = promoted("b", "1.0.0")
    h.drain()
    assert h.get(ok).phase == Phase.SUCCEEDED, h.story(ok)
    assert h.clock() >= ok.progress.controls.not_before and "soak time over" in h.story(ok)

    late = promoted("c", "1.0.1")
    newer = h.push(staging, "1.1.0", "d")  # staging moves on during the soak
    h.drain()
    assert h.get(newer).phase == Phase.SUCCEEDED
    skipped = h.get(late)
    assert skipped.phase == Phase.SKIPPED and f"{source.id} no longer serves stg" in skipped.reason, h.story(late)
    assert h.apps.app(production).traffic == {h.get(ok).revision: 100}
