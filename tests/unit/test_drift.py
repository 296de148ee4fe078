"""The drift decision (pure) and the reconciler over the in-memory fakes."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest

from shared.domain.drift import DriftStatus, Remedy, inspect, remedy
from shared.domain.model import AppState, DriftPolicy, Target
from shared.ports import AppInfo, RevisionInfo

T = Target("s", "rg", "web")
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
LIVE = AppState(target=T, live_deployment_id="d1", live_revision="web--v2", live_image="r/web@sha256:2",
                live_tag="2.0.0")


def rev(name: str, active: bool = True, healthy: bool = True) -> RevisionInfo:
    return RevisionInfo(name, active, 0, "Provisioned", "Running" if healthy else "ActivationFailed",
                        "Healthy" if healthy else "Unhealthy", f"{name}.example", image=f"r/web@{name}")


def app(traffic: dict[str, int], *revisions: RevisionInfo, provisioning: str = "Succeeded") -> AppInfo:
    return AppInfo(T, "Multiple", traffic, "web.example", "web--v2", revisions=revisions,
                   provisioning_state=provisioning)


def test_the_live_revision_at_100_is_in_sync():
    assert inspect(LIVE, app({"web--v2": 100, "web--v1": 0}, rev("web--v2"))).status == DriftStatus.IN_SYNC


@pytest.mark.parametrize("traffic", [{"web--v1": 100}, {"web--v1": 50, "web--v2": 50}, {"web--v3": 100}, {}])
def test_anything_else_serving_is_drift_and_says_what_serves(traffic):
    found = inspect(LIVE, app(traffic, rev("web--v1"), rev("web--v2")))
    assert found.status == DriftStatus.DRIFTED
    assert "the history says web--v2 100 %" in found.detail and "(2.0.0)" in found.detail
    assert found.serving == {k: v for k, v in traffic.items() if v}


def test_no_live_record_is_not_compared_and_a_held_or_changing_app_is_busy():
    assert inspect(AppState(target=T), app({"x": 100})).status == DriftStatus.UNMANAGED
    assert inspect(replace(LIVE, active_deployment_id="d2"), app({"web--v1": 100})).status == DriftStatus.BUSY
    assert inspect(replace(LIVE, pending_deployment_id="d3"), app({"web--v1": 100})).status == DriftStatus.BUSY
    assert inspect(LIVE, app({"web--v1": 100}, provisioning="InProgress")).status == DriftStatus.BUSY


def test_one_drift_has_one_signature_and_another_drift_another():
    a = inspect(LIVE, app({"web--v1": 100}))
    assert a.signature == inspect(LIVE, app({"web--v1": 100})).signature
    assert a.signature != inspect(LIVE, app({"web--v3": 100})).signature


def test_repair_only_when_the_rule_asks_and_the_revision_can_serve():
    drifted = inspect(LIVE, app({"web--v1": 100}))
    assert remedy(drifted, DriftPolicy.RECORD, app({}, rev("web--v2")))[0] == Remedy.RECORD
    assert remedy(drifted, DriftPolicy.REPAIR, app({}, rev("web--v2")))[0] == Remedy.REPAIR
    for info, why in ((app({}), "no longer exists"), (app({}, rev("web--v2", active=False)), "not active"),
                      (app({}, rev("web--v2", healthy=False)), "not healthy")):
        action, reason = remedy(drifted, DriftPolicy.REPAIR, info)
        assert action == Remedy.RECORD and why in reason


def test_strays_are_only_unlabelled_zero_percent_revisions_of_deployments_that_did_not_go_live():
    from shared.domain.drift import strays

    labelled = replace(rev("web--l"), labels=("stable",))
    info = app({"web--v2": 100, "web--w": 0}, rev("web--v2"), rev("web--s"), rev("web--w"),
               rev("web--off", active=False), labelled, rev("web--mine"))
    ended = {"web--s", "web--w", "web--off", "web--l", "web--v2"}  # "web--mine" is not ours to clean
    assert strays(info, "web--v2", ended) == ["web--s", "web--w"]
    assert strays(replace(info, traffic={"web--v2": 90, "web--w": 10}), "web--v2", ended) == ["web--s"]
