"""The rollout's pure decisions: names, claims, supersede, check runs, clean-up and rollback targets."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain import rollout as plan
from shared.domain.progress import CheckProgress, RolloutProgress
from shared.domain.progress_codec import progress_from_dict, progress_to_dict
from shared.domain.model import (
    AppState, Deployment, DeploymentKind, Phase, RolloutSettings, SmokeCheck, Strategy, Target,
)
from shared.errors import ConflictError, InvalidRequestError, NotFoundError
from shared.ports import RevisionInfo

T = Target("sub", "rg", "orders-api")
NOW = datetime(2025, 5, 1, 12, tzinfo=timezone.utc)
DIGEST = "sha256:" + "ab" * 32


def dep(id_: str, phase: Phase = Phase.QUEUED, kind=DeploymentKind.PUSH, **kw) -> Deployment:
    return Deployment(id=id_, target=T, kind=kind, phase=phase, created_at=NOW, updated_at=NOW,
                      image=f"reg.io/orders@{DIGEST}", digest=DIGEST, **kw)


def rev(name, active=True, weight=0, created_h=0, failed=False, labels=(), health="Healthy"):
    return RevisionInfo(
        name=name, active=active, traffic_weight=weight,
        provisioning_state="Failed" if failed else "Provisioned",
        running_state="Failed" if failed else ("Running" if active else "Stopped"),
        health_state=health, fqdn=f"{name}.example", image=f"img:{name}",
        created=NOW + timedelta(hours=created_h), labels=labels,
    )


# ------------------------------------------------------------------------ revision names
def test_revision_suffix_is_readable_valid_and_deterministic():
    suffix = plan.revision_suffix("orders-api", "1.4.2", DIGEST)
    assert re.fullmatch(r"v1-4-2-[0-9a-f]{8}", suffix)
    assert suffix == plan.revision_suffix("orders-api", "1.4.2", DIGEST)
    assert plan.is_valid_suffix("orders-api", suffix)


def test_revision_suffix_differs_per_tag_and_per_digest():
    a = plan.revision_suffix("app", "1.4.2", DIGEST)
    assert a != plan.revision_suffix("app", "1-4-2", DIGEST)  # same slug, different tag
    assert a != plan.revision_suffix("app", "1.4.2", "sha256:" + "cd" * 32)


def test_long_names_fit_the_service_limit():
    app = "a" * 32  # the longest app name Container Apps allows
    suffix = plan.revision_suffix(app, "release-candidate-2025-05-01-build-12345", DIGEST)
    assert len(plan.revision_name(app, suffix)) <= plan.MAX_REVISION_NAME
    assert plan.is_valid_suffix(app, suffix)
    assert plan.revision_suffix("app", "___", DIGEST).startswith("r")
    with pytest.raises(ValueError):
        plan.revision_suffix("app", "v1", "")


@given(
    app=st.from_regex(r"[a-z][a-z0-9]{0,15}(-[a-z0-9]{1,15})?", fullmatch=True).filter(lambda s: len(s) <= 32),
    tag=st.text(min_size=1, max_size=128),
    digest=st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True),
)
def test_any_tag_gives_a_valid_suffix(app, tag, digest):
    assert plan.is_valid_suffix(app, plan.revision_suffix(app, tag, digest))


# ------------------------------------------------------------------------ phases
def test_transitions_follow_the_table():
    d = dep("20250501120000-aaaaaaaaaa")
    d2, event = plan.transition(d, Phase.CREATING_REVISION, "took the app", NOW, traffic={"a": 100})
    assert d2.phase == Phase.CREATING_REVISION and event.data == {"traffic": {"a": 100}}
    assert d2.reason == ""
    with pytest.raises(ValueError):
        plan.transition(d2, Phase.SHIFTING, "skip ahead", NOW)
    done, _ = plan.transition(d2.evolve(phase=Phase.SMOKE_TESTING), Phase.FAILED, "smoke failed", NOW)
    assert done.reason == "smoke failed" and done.phase.terminal
    with pytest.raises(ValueError):  # terminal is terminal
        plan.transition(done, Phase.SHIFTING, "again", NOW)
    with pytest.raises(ValueError):  # traffic moved: too late to be superseded
        plan.transition(d2.evolve(phase=Phase.SHIFTING), Phase.SUPERSEDED, "x", NOW)


def test_deadline_and_outcome_events():
    d = dep("20250501120000-aaaaaaaaaa", rollout=RolloutSettings(deadline_s=60))
    assert not plan.past_deadline(d, NOW + timedelta(seconds=59))
    assert plan.past_deadline(d, NOW + timedelta(seconds=60))
    assert plan.outcome_event(d.evolve(phase=Phase.SUCCEEDED)) == "AcrDeploy.Deployment.Succeeded"
    assert plan.outcome_event(d.evolve(phase=Phase.ROLLED_BACK)) == "AcrDeploy.Deployment.RolledBack"
    assert plan.outcome_event(d.evolve(phase=Phase.FAILED)) == "AcrDeploy.Deployment.Failed"
    assert plan.outcome_event(d.evolve(phase=Phase.SUPERSEDED)) is None
    rb = d.evolve(phase=Phase.SUCCEEDED, kind=DeploymentKind.ROLLBACK)
    assert plan.outcome_event(rb) == "AcrDeploy.Deployment.RolledBack"


# ------------------------------------------------------------------------ claims
OLD, MID, NEW = "20250501120000-aaaaaaaaaa", "20250501120005-bbbbbbbbbb", "20250501120010-cccccccccc"


def state(**kw) -> AppState:
    return AppState(target=T, **kw)


def test_claims():
    d = dep(MID)
    assert plan.decide_claim(d, None, None).claim == plan.Claim.TAKE
    assert plan.decide_claim(d, state(pending_deployment_id=MID), None).claim == plan.Claim.TAKE
    assert plan.decide_claim(d, state(active_deployment_id=MID), None).claim == plan.Claim.MINE
    older = dep(OLD, Phase.SMOKE_TESTING)
    assert plan.decide_claim(d, state(active_deployment_id=OLD), older) == plan.ClaimDecision(plan.Claim.WAIT, OLD)
    finished = dep(OLD, Phase.FAILED)
    assert plan.decide_claim(d, state(active_deployment_id=OLD), finished).claim == plan.Claim.TAKE
    newer = dep(NEW, Phase.SHIFTING)
    assert plan.decide_claim(d, state(active_deployment_id=NEW), newer) == plan.ClaimDecision(plan.Claim.SUPERSEDED, NEW)
    assert plan.decide_claim(d, state(pending_deployment_id=NEW), None) == plan.ClaimDecision(plan.Claim.SUPERSEDED, NEW)
    assert plan.decide_claim(d, state(live_deployment_id=NEW), None) == plan.ClaimDecision(plan.Claim.SUPERSEDED, NEW)
    assert plan.decide_claim(d, state(live_deployment_id=OLD), None).claim == plan.Claim.TAKE
    manual = dep(MID, kind=DeploymentKind.ROLLBACK)
    assert plan.decide_claim(manual, state(live_deployment_id=NEW), None).claim == plan.Claim.TAKE


def test_supersede_only_before_the_traffic_shift():
    s = state(active_deployment_id=MID, pending_deployment_id=NEW)
    for phase in (Phase.CREATING_REVISION, Phase.WAITING_READY, Phase.SMOKE_TESTING):
        assert plan.superseded_by(dep(MID, phase), s) == NEW
    for phase in (Phase.SHIFTING, Phase.VERIFYING):
        assert plan.superseded_by(dep(MID, phase), s) == ""
    assert plan.superseded_by(dep(MID, Phase.WAITING_READY), state(active_deployment_id=MID,
                                                                   pending_deployment_id=OLD)) == ""


def test_claimed_and_released_state():
    d = dep(MID)
    s = plan.claimed(state(pending_deployment_id=MID, inflight_digests=(DIGEST, "sha256:x")), d, NOW)
    assert (s.active_deployment_id, s.pending_deployment_id) == (MID, "")
    s2 = plan.claimed(state(pending_deployment_id=NEW), d, NOW)
    assert s2.pending_deployment_id == NEW  # the newer one keeps its place in line
    done = d.evolve(phase=Phase.SUCCEEDED, revision="orders-api--v1-x", tag="v1")
    r = plan.released(s, done, NOW, plan.Live(done.revision, done.image, DIGEST, "v1"))
    assert r.active_deployment_id == "" and r.inflight_digests == ("sha256:x",)
    assert (r.live_revision, r.live_tag, r.live_digest, r.live_deployment_id) == (done.revision, "v1", DIGEST, MID)
    assert (r.last_deployment_id, r.last_phase) == (MID, "succeeded")
    other = plan.released(state(active_deployment_id=NEW, inflight_digests=(DIGEST,)), done.evolve(phase=Phase.FAILED), NOW)
    assert other.active_deployment_id == NEW and other.inflight_digests == ()
    assert other.live_revision == ""


# ------------------------------------------------------------------------ steps and checks
def test_shift_steps():
    assert plan.shift_steps(RolloutSettings()) == (100,)
    assert plan.shift_steps(RolloutSettings(strategy=Strategy.CANARY, steps=(10, 50))) == (10, 50, 100)
    assert plan.shift_steps(RolloutSettings(strategy=Strategy.CANARY, steps=(50, 10, 100, 0))) == (10, 50, 100)
    checks = (SmokeCheck(name="s"),)
    assert plan.verify_checks(RolloutSettings(smoke=checks)) == checks
    v = (SmokeCheck(name="v"),)
    assert plan.verify_checks(RolloutSettings(smoke=checks, verify=v)) == v
    assert plan.smoke_checks(RolloutSettings(smoke=())) == (SmokeCheck(),)


def test_check_run_needs_consecutive_passes_and_bounded_retries():
    checks = (SmokeCheck(name="a", consecutive_passes=2, retries=1), SmokeCheck(name="b"))
    run = plan.CheckRun()
    run, v = plan.after_attempt(run, checks, True)
    assert v == plan.Verdict.AGAIN and run.passes == 1
    run, v = plan.after_attempt(run, checks, False)  # a failure resets the streak
    assert v == plan.Verdict.RETRY and (run.passes, run.failures) == (0, 1)
    run, v = plan.after_attempt(run, checks, True)
    run, v = plan.after_attempt(run, checks, True)
    assert v == plan.Verdict.AGAIN and run.index == 1 and run.failures == 0
    run, v = plan.after_attempt(run, checks, True)
    assert v == plan.Verdict.PASSED and run.attempts == 5
    stored = progress_to_dict(RolloutProgress(smoke=CheckProgress(run)))
    assert progress_from_dict(stored)[0].smoke == CheckProgress(run)  # survives the record
    run, v = plan.after_attempt(plan.CheckRun(), checks, False)
    run, v = plan.after_attempt(run, checks, False)
    assert v == plan.Verdict.FAILED and run.failures == 2


def test_backoff_grows_and_is_capped():
    c = SmokeCheck(backoff_s=1.0)
    assert [plan.backoff_s(c, n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert plan.backoff_s(c, 20) == 60.0


# ------------------------------------------------------------------------ clean-up
def test_deactivation_plan_keeps_the_previous_revision_warm():
    revisions = [rev("a--1", created_h=1), rev("a--2", created_h=2), rev("a--3", created_h=3),
                 rev("a--new", weight=100, created_h=4), rev("a--0", active=False)]
    assert plan.deactivation_plan(revisions, "a--new", {"a--3": 100}, keep_previous=1) == ["a--1", "a--2"]
    assert plan.deactivation_plan(revisions, "a--new", {"a--3": 100}, keep_previous=0) == ["a--1", "a--2", "a--3"]
    assert plan.deactivation_plan(revisions, "a--new", {"a--3": 100}, keep_previous=2) == ["a--1"]


def test_deactivation_plan_prefers_the_heaviest_previous_and_spares_labels_and_traffic():
    revisions = [rev("a--1", created_h=1), rev("a--2", created_h=2), rev("a--blue", labels=("blue",)),
                 rev("a--busy", weight=10), rev("a--new", weight=90, created_h=5)]
    assert plan.deactivation_plan(revisions, "a--new", {"a--1": 70, "a--2": 30}, 1) == ["a--2"]


# ------------------------------------------------------------------------ rollback targets
REVS = [rev("app--v1", active=False, created_h=1), rev("app--v2", created_h=2),
        rev("app--bad", failed=True, created_h=3), rev("app--v3", weight=100, created_h=4)]


def test_rollback_goes_to_the_newest_earlier_healthy_revision():
    assert plan.rollback_target("app", REVS, {"app--v3": 100}).name == "app--v2"
    revs = [rev("app--v1", active=False, created_h=1), rev("app--v3", weight=100, created_h=4)]
    assert plan.rollback_target("app", revs, {"app--v3": 100}).name == "app--v1"


def test_rollback_to_a_named_revision_accepts_its_suffix():
    assert plan.rollback_target("app", REVS, {"app--v3": 100}, "v1").name == "app--v1"
    assert plan.rollback_target("app", REVS, {"app--v3": 100}, "app--v1").name == "app--v1"


def test_rollback_refusals():
    with pytest.raises(NotFoundError):
        plan.rollback_target("app", REVS, {"app--v3": 100}, "v9")
    with pytest.raises(ConflictError, match="not healthy"):
        plan.rollback_target("app", REVS, {"app--v3": 100}, "bad")
    with pytest.raises(ConflictError, match="already serves"):
        plan.rollback_target("app", REVS, {"app--v3": 100}, "v3")
    with pytest.raises(InvalidRequestError):
        plan.rollback_target("app", REVS, {"app--v3": 100}, "V3; drop")
    with pytest.raises(ConflictError, match="no earlier healthy revision"):
        plan.rollback_target("app", [rev("app--v3", weight=100)], {"app--v3": 100})


def test_rollback_table_excludes_the_new_revision():
    d = dep(MID, Phase.VERIFYING, revision="app--new", previous_traffic={"app--a": 60, "app--b": 40})
    assert plan.rollback_table(d) == {"app--a": 60, "app--b": 40}
    assert plan.rollback_table(d.evolve(previous_traffic={})) == {}
