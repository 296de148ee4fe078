"""The adapter reads what the service reports beyond the spec, through the real SDK against the emulator:
revision states with `runningStateDetails`, how an app is exposed (ingress, IP allow-list, built-in
authentication, the role refusing authConfigs), and it never deactivates a labelled revision."""

from __future__ import annotations

import time

import pytest

from shared.adapters.containerapps import PermanentAzureError
from shared.domain.reachability import AppAccess, AuthState
from shared.domain.revision_state import Readiness
from shared.ports import REVISION_HAS_LABEL

from test_containerapps_adapter import DIGEST, SUB, _name, make_adapter, rg, seed_app  # noqa: F401


@pytest.fixture
def adapter(emulator, rg):
    a = make_adapter(emulator, rg)
    yield a
    a.close()


def _poll(adapter, target, name, until, timeout_s: float = 5.0):
    deadline = time.monotonic() + timeout_s
    for _ in range(500):  # bounded in count and time
        rev = adapter.get_revision(target, name)
        if rev is not None and until(rev):
            return rev
        assert time.monotonic() < deadline, f"{name}: {rev}"
        time.sleep(0.02)
    raise AssertionError(name)


def test_a_crash_loop_reads_as_failed_with_the_services_details(emulator, rg, adapter):
    target = seed_app(emulator, rg)
    emulator.control.add_behavior(app=target.app, crash_loop=True)
    emulator.control.config(progress_deadline=0.3)
    try:
        name = adapter.create_revision(target, f"reg.io/app@{DIGEST}", "v2", {f"{target.app}--first": 100})
        starting = adapter.get_revision(target, name)
        assert starting.assessment.readiness == Readiness.STARTING, starting
        failed = _poll(adapter, target, name, lambda r: r.running_state == "ActivationFailed")
    finally:
        emulator.control.config(progress_deadline=600)
    assert failed.failed and failed.health_state == "Unhealthy"
    assert failed.running_state_details.startswith("Deployment Progress Deadline Exceeded")
    assert failed.assessment.detail == failed.running_state_details


def test_a_scaled_to_zero_revision_is_to_be_probed(emulator, rg, adapter):
    target = seed_app(emulator, rg)
    emulator.control.add_behavior(app=target.app, cold_start_ms=100)
    name = adapter.create_revision(target, f"reg.io/app@{DIGEST}", "v2", {f"{target.app}--first": 100})
    rev = _poll(adapter, target, name, lambda r: r.running_state == "ScaledToZero")
    assert rev.assessment.readiness == Readiness.COLD and not rev.ready and not rev.failed


def test_an_image_not_yet_replicated_reads_as_a_pull_failure(emulator, rg, adapter):
    from shared.domain.revision_state import is_pull_failure

    target = seed_app(emulator, rg)
    emulator.control.add_behavior(app=target.app, not_replicated_s=30)
    name = adapter.create_revision(target, f"reg.io/app@{DIGEST}", "v2", {f"{target.app}--first": 100})
    rev = _poll(adapter, target, name, lambda r: r.failed)
    assert is_pull_failure(rev.assessment.detail), rev


@pytest.mark.parametrize("entry, expected", [
    ({}, AppAccess()),
    ({"ingress": "internal"}, AppAccess(ingress="internal")),
    ({"ingress": "none"}, AppAccess(ingress="none")),
    ({"ipSecurityRestrictions": [{"name": "office", "action": "Allow", "ipAddressRange": "10.0.0.0/8"}]},
     AppAccess(ip_allow_list=True)),
    ({"ipSecurityRestrictions": [{"name": "bad", "action": "Deny", "ipAddressRange": "10.0.0.0/8"}]}, AppAccess()),
    ({"auth": {"enabled": True, "unauthenticatedClientAction": "Return401"}}, AppAccess(auth=AuthState.ON)),
    ({"auth": {"enabled": True, "unauthenticatedClientAction": "AllowAnonymous"}}, AppAccess()),
])
def test_get_access_reads_how_the_app_is_exposed(emulator, rg, adapter, entry, expected):
    app = _name("app")
    emulator.control.seed({"subscriptionId": SUB, "resourceGroups": [{
        "name": rg, "location": "westeurope", "environments": [{"name": "env"}],
        "apps": [{"name": app, "environment": "env", "image": "reg.io/app:1", **entry}]}]})
    from shared.domain.model import Target

    assert adapter.get_access(Target(SUB, rg, app)) == expected


def test_a_labelled_revision_is_never_deactivated(emulator, rg, adapter):
    app = _name("app")
    first = f"{app}--first"
    target = seed_app(emulator, rg, app=app, traffic=[{"revisionName": first, "weight": 100, "label": "stable"}])
    name = adapter.create_revision(target, f"reg.io/app@{DIGEST}", "v2", {first: 100})
    _poll(adapter, target, name, lambda r: r.ready)
    assert adapter.set_traffic(target, {name: 100}) is True  # `first` keeps its label at 0 %
    with pytest.raises(PermanentAzureError) as refused:
        adapter.set_revision_active(target, first, False)
    assert refused.value.code == REVISION_HAS_LABEL and "stable" in str(refused.value)
    assert next(r for r in adapter.get_app(target).revisions if r.name == first).active
