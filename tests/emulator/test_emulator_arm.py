"""ARM surface through the unmodified azure-mgmt-appcontainers client: environments, app CRUD, LRO headers and
status endpoints, paging, tags, ARM-shaped errors."""
from __future__ import annotations

import logging
import time

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.appcontainers import models

from .helpers import AUTH, ENV, LOCATION, RG, SUB, app_body, arm_url, create_app, env_id, make_client

APP_PATH = f"/resourceGroups/{RG}/providers/Microsoft.App/containerApps/orders-api"


def test_managed_environments_get_list_put(client):
    env = client.managed_environments.get(RG, ENV)
    assert env.id.lower() == env_id().lower()
    assert env.properties.default_domain.endswith(".westeurope.azurecontainerapps.io")
    assert env.properties.provisioning_state == "Succeeded"

    new = client.managed_environments.begin_create_or_update(
        "rg2", "env2", models.ManagedEnvironment(location="northeurope", tags={"team": "a"})).result()
    assert new.name == "env2" and new.tags == {"team": "a"}
    assert new.properties.default_domain.endswith(".northeurope.azurecontainerapps.io")
    assert new.properties.provisioning_state == "Succeeded"
    assert [e.name for e in client.managed_environments.list_by_resource_group("rg2")] == ["env2"]
    assert sorted(e.name for e in client.managed_environments.list_by_subscription()) == ["env", "env2"]
    with pytest.raises(ResourceNotFoundError):
        client.managed_environments.get(RG, "nope")


def test_create_get_tags_roundtrip(client):
    tags = {"acr-deploy.repository": "orders-api", "acr-deploy.tags": "1.*"}
    app = create_app(client, tags=tags, suffix="v1")
    assert app.tags == tags
    assert app.properties.provisioning_state == "Succeeded"
    assert app.properties.latest_revision_name == "orders-api--v1"
    assert app.properties.latest_ready_revision_name == "orders-api--v1"
    assert app.properties.configuration.ingress.fqdn.startswith("localhost:")
    assert app.properties.latest_revision_fqdn.startswith("localhost:")
    assert app.properties.managed_environment_id.lower() == env_id().lower()
    got = client.container_apps.get(RG, "orders-api")
    assert got.tags == tags and got.id.endswith("/containerApps/orders-api")
    # Discover by tags, as the pipeline does.
    found = [a.name for a in client.container_apps.list_by_subscription()
             if (a.tags or {}).get("acr-deploy.repository") == "orders-api"]
    assert found == ["orders-api"]


def test_put_lro_headers_and_status_endpoint(emu, http):
    emu.control.set_provisioning_delay(0.3)
    resp = http.put(arm_url(emu, APP_PATH), json=app_body(), headers=AUTH)
    assert resp.status_code == 201
    assert resp.json()["properties"]["provisioningState"] == "InProgress"
    int(resp.headers["Retry-After"])  # whole seconds on the initial answer (the SDK parses it with int())
    status_url = resp.headers["Azure-AsyncOperation"]
    assert "/providers/Microsoft.App/locations/westeurope/containerappOperationStatuses/" in status_url
    first = http.get(status_url, headers=AUTH)
    assert first.json()["status"] == "InProgress" and "Retry-After" in first.headers
    # Conflicting write while the PUT is in flight -> 409.
    conflict = http.put(arm_url(emu, APP_PATH), json=app_body(image="x:2"), headers=AUTH)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "ContainerAppOperationInProgress"
    statuses = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        body = http.get(status_url, headers=AUTH).json()
        statuses.append(body["status"])
        if body["status"] != "InProgress":
            break
        time.sleep(0.05)
    assert statuses[-1] == "Succeeded" and body["endTime"]
    assert http.get(arm_url(emu, APP_PATH), headers=AUTH).json()["properties"]["provisioningState"] == "Succeeded"


def test_patch_and_delete_use_location(emu, client, http):
    create_app(client)
    resp = http.patch(arm_url(emu, APP_PATH), json={"tags": {"a": "b"}}, headers=AUTH)
    assert resp.status_code == 202 and resp.content == b""
    loc = resp.headers["Location"]
    assert "containerappOperationResults" in loc and "Retry-After" in resp.headers
    assert http.get(loc, headers=AUTH).status_code == 202  # always one InProgress answer first
    done = http.get(loc, headers=AUTH)
    assert done.status_code == 200 and done.json()["tags"] == {"a": "b"}

    resp = http.delete(arm_url(emu, APP_PATH), headers=AUTH)
    assert resp.status_code == 202 and "Location" in resp.headers and "Retry-After" in resp.headers
    assert http.get(resp.headers["Location"], headers=AUTH).status_code == 202
    assert http.get(resp.headers["Location"], headers=AUTH).status_code == 204
    assert http.get(arm_url(emu, APP_PATH), headers=AUTH).status_code == 404
    assert http.delete(arm_url(emu, APP_PATH), headers=AUTH).status_code == 204


def test_patch_is_json_merge_patch(client):
    create_app(client, tags={"keep": "1", "drop": "2"}, traffic=[{"latestRevision": True, "weight": 100}])
    updated = client.container_apps.begin_update(RG, "orders-api", {
        "tags": {"drop": None, "new": "3"},
        "properties": {"configuration": {"maxInactiveRevisions": 5}},
    }).result()
    assert updated.tags == {"keep": "1", "new": "3"}
    conf = updated.properties.configuration
    assert conf.max_inactive_revisions == 5
    assert conf.active_revisions_mode == "Multiple"  # untouched siblings survive
    assert conf.ingress.target_port == 8080
    assert len(updated.properties.template.containers) == 1


def test_delete_through_sdk(client):
    create_app(client)
    client.container_apps.begin_delete(RG, "orders-api").result()
    with pytest.raises(ResourceNotFoundError) as err:
        client.container_apps.get(RG, "orders-api")
    assert err.value.error.code == "ResourceNotFound"
    assert list(client.container_apps.list_by_resource_group(RG)) == []


def test_list_paging_by_rg_and_subscription(emu, client, http):
    emu.control.set_page_size(2)
    client.managed_environments.begin_create_or_update("rg-b", "env-b", {"location": LOCATION}).result()
    for i in range(5):
        create_app(client, name=f"app-{i}")
    other = app_body(name="other")
    other["properties"]["environmentId"] = env_id("rg-b", "env-b")
    client.container_apps.begin_create_or_update("rg-b", "other", other).result()
    page = http.get(arm_url(emu, f"/resourceGroups/{RG}/providers/Microsoft.App/containerApps"), headers=AUTH).json()
    assert len(page["value"]) == 2 and page["nextLink"].startswith(emu.base_url)
    assert sorted(a.name for a in client.container_apps.list_by_resource_group(RG)) == [f"app-{i}" for i in range(5)]
    assert len(list(client.container_apps.list_by_subscription())) == 6
    assert [a.name for a in client.container_apps.list_by_resource_group("rg-b")] == ["other"]


def test_arm_errors(emu, client, http):
    # 401 without a bearer token, in ARM's error shape.
    resp = http.get(arm_url(emu, APP_PATH))
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "AuthenticationFailed"
    assert http.get(arm_url(emu, APP_PATH), headers={"Authorization": "Basic abc"}).status_code == 401
    # 404s
    with pytest.raises(ResourceNotFoundError):
        client.container_apps.get(RG, "missing")
    with pytest.raises(ResourceNotFoundError) as err:
        list(client.container_apps.list_by_resource_group("no-such-rg"))
    assert err.value.error.code == "ResourceGroupNotFound"
    with pytest.raises(ResourceNotFoundError):
        client.container_apps.begin_update(RG, "missing", {"tags": {}})
    with pytest.raises(ResourceNotFoundError):
        list(client.container_apps_revisions.list_revisions(RG, "missing"))
    # 400s for invalid bodies
    with pytest.raises(HttpResponseError) as err:
        client.container_apps.begin_create_or_update(RG, "bad", {"location": LOCATION, "properties": {
            "environmentId": env_id(), "template": {"containers": []}}})
    assert err.value.status_code == 400 and err.value.error.code == "ContainerAppInvalidTemplate"
    bad_json = http.put(arm_url(emu, APP_PATH), content=b"{not json", headers=AUTH)
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "InvalidRequestContent"
    assert http.get(f"{emu.base_url}/subscriptions/{SUB}{APP_PATH}", headers=AUTH).status_code == 400  # api-version
    with pytest.raises(ResourceNotFoundError):
        body = app_body()
        body["properties"]["environmentId"] = env_id(env="ghost")
        client.container_apps.begin_create_or_update(RG, "orders-api", body)


def test_concurrent_write_conflict_through_sdk(emu, client):
    create_app(client)
    emu.control.set_provisioning_delay(0.5)
    first = client.container_apps.begin_update(RG, "orders-api", {"tags": {"v": "1"}})
    with pytest.raises(ResourceExistsError) as err:
        client.container_apps.begin_update(RG, "orders-api", {"tags": {"v": "2"}})
    assert err.value.status_code == 409
    with pytest.raises(ResourceExistsError):
        client.container_apps.begin_delete(RG, "orders-api")
    assert first.result().tags == {"v": "1"}
    assert client.container_apps.begin_update(RG, "orders-api", {"tags": {"v": "2"}}).result().tags == {"v": "2"}


def test_sdk_relies_on_retry_after_not_30s_default(emu):
    """A client with the SDK's default polling interval still finishes fast: poll answers carry Retry-After."""
    emu.control.set_provisioning_delay(0.1)
    from .helpers import LocalCredential
    from azure.mgmt.appcontainers import ContainerAppsAPIClient
    with ContainerAppsAPIClient(LocalCredential(), SUB, base_url=emu.base_url,
                                connection_verify=emu.ca_path) as default_client:
        start = time.monotonic()
        app = default_client.container_apps.begin_create_or_update(RG, "orders-api", app_body()).result()
        assert app.properties.provisioning_state == "Succeeded"
        assert time.monotonic() - start < 5


def test_token_is_never_logged(emu, http, caplog):
    caplog.set_level(logging.DEBUG)
    http.get(arm_url(emu, APP_PATH), headers={"Authorization": "Bearer super-secret-token-value"})
    with make_client(emu) as c:
        list(c.container_apps.list_by_subscription(logging_enable=False))
    assert "super-secret-token-value" not in caplog.text
    assert "super-secret-token-value" not in str(emu.control.dump())
