"""Behaviours by image pattern (status, latency, fail_after, never healthy) and injected ARM faults
(429 with Retry-After, 500, dropped connections, every-Nth ratio), plus the control API itself."""
from __future__ import annotations

import time

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from devtools.aca_emulator import EmulatorControlError

from .helpers import RG, SUB, app_body, create_app, make_client, revisions


def test_behaviour_status_latency_fail_after(emu, client, http):
    emu.control.add_behavior("*:teapot-*", status=418)
    emu.control.add_behavior("*:slow-*", latency_ms=200)
    emu.control.add_behavior("*:flaky-*", fail_after=2)
    urls = {}
    for kind in ("teapot", "slow", "flaky"):
        app = create_app(client, name=kind, image=f"registry.local/{kind}:{kind}-1")
        urls[kind] = f"https://{app.properties.latest_revision_fqdn}"
    assert http.get(urls["teapot"] + "/").status_code == 418
    assert http.get(urls["teapot"] + "/healthz").status_code == 418
    start = time.monotonic()
    assert http.get(urls["slow"] + "/").status_code == 200
    assert time.monotonic() - start >= 0.2
    assert [http.get(urls["flaky"] + "/").status_code for _ in range(4)] == [200, 200, 500, 500]
    # restart resets the request counter
    client.container_apps_revisions.restart_revision(RG, "flaky", revisions(client, "flaky").popitem()[0])
    assert http.get(urls["flaky"] + "/healthz").status_code == 200


def test_never_healthy_revision_fails_lro_and_single_mode_keeps_old(emu, client, http):
    app = create_app(client, mode="Single", suffix="v1")
    emu.control.add_behavior("registry.local/orders-api:bad*", unhealthy=True)
    body = app_body(image="registry.local/orders-api:bad", mode="Single", suffix="v2")
    with pytest.raises(HttpResponseError) as err:
        client.container_apps.begin_create_or_update(RG, "orders-api", body).result()
    assert "ContainerAppOperationError" in str(err.value) or "never became healthy" in str(err.value)
    revs = revisions(client)
    bad = revs["orders-api--v2"].properties
    assert bad.provisioning_state == "Failed" and bad.running_state == "Failed" and bad.health_state == "Unhealthy"
    assert revs["orders-api--v1"].properties.active and revs["orders-api--v1"].properties.traffic_weight == 100
    got = client.container_apps.get(RG, "orders-api")
    assert got.properties.provisioning_state == "Failed"
    assert got.properties.latest_revision_name == "orders-api--v2"
    assert got.properties.latest_ready_revision_name == "orders-api--v1"
    assert http.get(f"https://{bad.fqdn}/healthz").status_code == 503
    ingress = f"https://{app.properties.configuration.ingress.fqdn}/"
    assert http.get(ingress).json()["revision"] == "orders-api--v1"  # old one keeps serving


def test_patch_failure_surfaces_through_location_polling(emu, client):
    create_app(client, suffix="v1")
    emu.control.add_behavior("*:broken", unhealthy=True)
    with pytest.raises(HttpResponseError):
        client.container_apps.begin_update(RG, "orders-api", {"properties": {"template": {
            "containers": [{"name": "orders-api", "image": "registry.local/orders-api:broken"}]}}}).result()


def test_fault_429_with_retry_after_is_retried_by_sdk(emu, client):
    create_app(client)
    emu.control.add_faults("429", count=2, retry_after=0.05)
    start = time.monotonic()
    assert client.container_apps.get(RG, "orders-api").name == "orders-api"
    assert time.monotonic() - start >= 0.1  # the SDK honoured Retry-After twice
    fault = emu.control.faults()[0]
    assert fault["fired"] == 2 and fault["remaining"] == 0
    statuses = [r["status"] for r in emu.control.dump()["armRequests"]][-3:]
    assert statuses == ["fault:429", "fault:429", 200]


def test_fault_500_and_no_retry_client_sees_it(emu):
    emu.control.add_faults("500", count=1)
    with make_client(emu, retry_total=0) as strict:
        with pytest.raises(HttpResponseError) as err:
            strict.container_apps.get(RG, "anything")
        assert err.value.status_code == 500 and err.value.error.code == "InternalServerError"
        with pytest.raises(HttpResponseError) as err:
            strict.container_apps.get(RG, "anything")
        assert err.value.status_code == 404  # only one fault was queued


def test_fault_drop_connection(emu, client):
    create_app(client)
    emu.control.add_faults("drop", count=1)
    with make_client(emu, retry_total=0) as strict:
        with pytest.raises((ServiceResponseError, ServiceRequestError)):
            strict.container_apps.get(RG, "orders-api")
        assert strict.container_apps.get(RG, "orders-api").name == "orders-api"
    emu.control.add_faults("drop", count=1)
    assert client.container_apps.get(RG, "orders-api").name == "orders-api"  # default client retries GETs


def test_fault_every_nth_call_until_cleared(emu, client):
    """The pipeline's '20 % of ARM calls fail' mode: every 5th call answers 429, the SDK retries through."""
    create_app(client)
    emu.control.add_faults("429", every=5, retry_after=0.01)
    for i in range(3):  # full LROs, polls included, succeed despite the faults
        client.container_apps.begin_update(RG, "orders-api", {"tags": {"i": str(i)}}).result()
    for _ in range(8):
        client.container_apps.get(RG, "orders-api")
    fault = emu.control.faults()[0]
    assert fault["fired"] == fault["seen"] // 5 and fault["fired"] >= 3
    emu.control.clear_faults()
    before = emu.control.dump()["armCalls"]
    for _ in range(5):
        client.container_apps.get(RG, "orders-api")
    assert emu.control.dump()["armCalls"] - before == 5  # no retries once cleared


def test_fault_methods_filter(emu, client):
    create_app(client)
    emu.control.add_faults("500", count=1, methods=["PATCH"])
    assert client.container_apps.get(RG, "orders-api").name == "orders-api"  # GET not affected
    assert emu.control.faults()[0]["remaining"] == 1


def test_control_api_reset_seed_dump_config(emu, client):
    emu.control.seed({"subscriptionId": SUB, "resourceGroups": [{"name": "seeded", "location": "westeurope",
        "environments": [{"name": "e1", "defaultDomain": "custom.example"}],
        "apps": [{"name": "orders-api", "environment": "e1", "activeRevisionsMode": "Multiple",
                  "image": "registry/orders-api:1.0.0", "tags": {"acr-deploy.repository": "orders-api"},
                  "revisionSuffix": "seed"}]}]})
    app = client.container_apps.get("seeded", "orders-api")
    assert app.tags == {"acr-deploy.repository": "orders-api"}
    assert app.properties.configuration.active_revisions_mode == "Multiple"
    assert client.managed_environments.get("seeded", "e1").properties.default_domain == "custom.example"
    rev = revisions(client, "orders-api", rg="seeded")["orders-api--seed"].properties
    assert rev.active and rev.traffic_weight == 100 and rev.provisioning_state == "Provisioned"
    dump = emu.control.app("orders-api")
    assert dump["traffic"] == {"orders-api--seed": 100} and dump["url"].startswith("https://localhost:")
    assert emu.control.config(page_size=7)["page_size"] == 7
    with pytest.raises(EmulatorControlError):
        emu.control.config(bogus=1)
    with pytest.raises(EmulatorControlError):
        emu.control.add_faults("418", count=1)
    with pytest.raises(EmulatorControlError):
        emu.control.seed({"resourceGroups": [{"name": "x", "apps": [{"name": "a", "image": "i",
                                                                     "environment": "missing"}]}]})
    emu.control.add_behavior("*", status=500)
    emu.control.reset()
    state = emu.control.dump()
    assert state["apps"] == [] and state["behaviors"] == [] and state["config"]["page_size"] == 20
    assert [e["name"] for e in state["environments"]] == ["env"]  # start-up seed re-applied
    emu.control.reset(seed=False)
    assert emu.control.dump()["environments"] == []
