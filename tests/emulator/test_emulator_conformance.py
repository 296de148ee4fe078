"""Conformance with the 2026-07-01 spec and the service docs (docs/emulator.md, "Conformance notes"): one test
per divergence the conformance pass fixed."""
from __future__ import annotations

import time

import pytest
from azure.core.exceptions import HttpResponseError

from .helpers import AUTH, RG, SUB, app_body, arm_url, create_app, revisions

APP_PATH = f"/resourceGroups/{RG}/providers/Microsoft.App/containerApps/orders-api"


def _wait_succeeded(http, status_url: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = http.get(status_url, headers=AUTH).json()
        if body["status"] != "InProgress":
            return body
        time.sleep(0.05)
    raise AssertionError(f"operation still InProgress after {timeout}s: {status_url}")


def _wait_location(http, location: str, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        resp = http.get(location, headers=AUTH)
        if resp.status_code != 202:
            return resp
        time.sleep(0.05)
    raise AssertionError(f"operation still running after {timeout}s: {location}")


def test_latest_revision_traffic_waits_until_new_revision_is_ready(emu, client, http):
    """Docs ("revisions", zero downtime): with latestRevision: true, traffic doesn't switch to the latest
    revision until it's ready. Spec TrafficWeight.latestRevision: "the latest stable revision"."""
    create_app(client, suffix="v1", traffic=[{"latestRevision": True, "weight": 100}])
    emu.control.set_provisioning_delay(0.5)
    patch = {"properties": {"template": {"revisionSuffix": "v2", "containers": [
        {"name": "orders-api", "image": "registry.local/orders-api:2.0.0"}]}}}
    resp = http.patch(arm_url(emu, APP_PATH), json=patch, headers=AUTH)
    assert resp.status_code == 202
    app = client.container_apps.get(RG, "orders-api")
    assert app.properties.latest_revision_name == "orders-api--v2"
    assert app.properties.latest_ready_revision_name == "orders-api--v1"
    revs = revisions(client)
    assert revs["orders-api--v2"].properties.provisioning_state == "Provisioning"
    assert revs["orders-api--v2"].properties.traffic_weight == 0
    assert revs["orders-api--v1"].properties.traffic_weight == 100
    ingress = f"https://{app.properties.configuration.ingress.fqdn}/"
    assert {http.get(ingress).json()["revision"] for _ in range(5)} == {"orders-api--v1"}
    assert _wait_location(http, resp.headers["Location"]).status_code == 200
    revs = revisions(client)
    assert revs["orders-api--v2"].properties.traffic_weight == 100
    assert revs["orders-api--v1"].properties.traffic_weight == 0


def test_latest_revision_traffic_stays_when_new_revision_fails(emu, client, http):
    create_app(client, suffix="v1", traffic=[{"latestRevision": True, "weight": 100}])
    emu.control.add_behavior("*:broken", unhealthy=True)
    with pytest.raises(HttpResponseError):
        client.container_apps.begin_update(RG, "orders-api", {"properties": {"template": {
            "revisionSuffix": "v2", "containers": [{"name": "orders-api", "image": "registry.local/x:broken"}]}}}
        ).result()
    revs = revisions(client)
    assert revs["orders-api--v2"].properties.provisioning_state == "Failed"
    assert revs["orders-api--v2"].properties.traffic_weight == 0
    assert revs["orders-api--v1"].properties.traffic_weight == 100
    fqdn = client.container_apps.get(RG, "orders-api").properties.configuration.ingress.fqdn
    assert http.get(f"https://{fqdn}/").json()["revision"] == "orders-api--v1"


@pytest.mark.parametrize("suffix", [
    "1-0-0",           # must start with a letter (docs; azure-cli-extensions#6449)
    "v1--0",           # no "--"
    "v1-",             # ends with a letter or digit
    "V1",              # lower case only
    "v" + "a" * 44,    # app name (10) + suffix (45) > 54
])
def test_invalid_revision_suffix_is_400_invalid_revision_name(client, suffix):
    with pytest.raises(HttpResponseError) as err:
        create_app(client, suffix=suffix)
    assert err.value.status_code == 400
    assert err.value.error.code == "ContainerAppInvalidRevisionName"
    assert "start with an alphabetic character" in err.value.error.message


def test_longest_valid_revision_suffix_is_accepted(client):
    suffix = "v" + "a" * 43  # 10 + 44 == 54
    app = create_app(client, suffix=suffix)
    assert app.properties.latest_revision_name == f"orders-api--{suffix}"


@pytest.mark.parametrize("label", ["1st", "a--b", "b-", "a" * 65])
def test_invalid_label_is_400(client, label):
    create_app(client, suffix="v1")
    with pytest.raises(HttpResponseError) as err:
        client.container_apps.begin_update(RG, "orders-api", {"properties": {"configuration": {"ingress": {
            "traffic": [{"revisionName": "orders-api--v1", "weight": 100, "label": label}]}}}})
    assert err.value.status_code == 400 and err.value.error.code == "ContainerAppInvalidLabel"


def test_label_of_64_characters_is_accepted(client):
    create_app(client, suffix="v1")
    label = "l" * 64
    app = client.container_apps.begin_update(RG, "orders-api", {"properties": {"configuration": {"ingress": {
        "traffic": [{"revisionName": "orders-api--v1", "weight": 100, "label": label}]}}}}).result()
    assert [t["label"] for t in app.properties.configuration.ingress.traffic] == [label]


def test_unchanged_put_answers_200_without_an_operation(emu, http):
    """ContainerApps.json 2025-07-01: PUT 200 "No change performed on the Container App", 201 "create or
    update has been started"."""
    first = http.put(arm_url(emu, APP_PATH), json=app_body(suffix="v1"), headers=AUTH)
    assert first.status_code == 201 and "Azure-AsyncOperation" in first.headers
    _wait_succeeded(http, first.headers["Azure-AsyncOperation"])
    ops_before = len(emu.control.dump()["operations"])
    again = http.put(arm_url(emu, APP_PATH), json=app_body(suffix="v1"), headers=AUTH)
    assert again.status_code == 200
    assert "Azure-AsyncOperation" not in again.headers
    assert again.json()["properties"]["provisioningState"] == "Succeeded"
    assert len(emu.control.dump()["operations"]) == ops_before
    # The GET body sent back unchanged is "no change" too (read-only fields and nulls are ignored).
    got = http.get(arm_url(emu, APP_PATH), headers=AUTH).json()
    assert http.put(arm_url(emu, APP_PATH), json=got, headers=AUTH).status_code == 200
    changed = http.put(arm_url(emu, APP_PATH), json=app_body(suffix="v1", tags={"k": "v"}), headers=AUTH)
    assert changed.status_code == 201 and "Azure-AsyncOperation" in changed.headers


def test_environment_provisioning_state_uses_the_environment_enum(emu, http):
    """EnvironmentProvisioningState (2026-07-01) has no "InProgress"."""
    emu.control.set_provisioning_delay(0.3)
    path = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.App/managedEnvironments/env-new"
    url = f"{emu.base_url}{path}?api-version=2026-07-01"
    resp = http.put(url, json={"location": "westeurope"}, headers=AUTH)
    assert resp.status_code == 201 and "Location" in resp.headers
    assert resp.json()["properties"]["provisioningState"] == "InitializationInProgress"
    _wait_succeeded(http, resp.headers["Azure-AsyncOperation"])
    assert http.get(url, headers=AUTH).json()["properties"]["provisioningState"] == "Succeeded"
