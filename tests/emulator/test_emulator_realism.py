"""The service's behaviour beyond the spec, through the unmodified SDK: revision lifecycle states, cold starts,
write-only secrets, env values, unreachable apps (internal ingress, IP restrictions, built-in auth, no
ingress) and not-yet-replicated images. Sources are in docs/emulator.md."""
from __future__ import annotations

import time

import httpx
import pytest
from azure.core.exceptions import HttpResponseError

from .helpers import RG, app_body, create_app, revisions


def _new_revision(client, image: str, suffix: str, wait: bool = True):
    poller = client.container_apps.begin_update(RG, "orders-api", {"properties": {"template": {
        "revisionSuffix": suffix, "containers": [{"name": "orders-api", "image": image}]}}})
    return poller.result() if wait else poller


def _revision(client, name: str):
    return client.container_apps_revisions.get_revision(RG, "orders-api", name).properties


def _wait_for(predicate, what: str, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    for _ in range(1000):
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    raise AssertionError(f"gave up waiting for {what}")


# ------------------------------------------------------------------ revision lifecycle
def test_a_starting_revision_is_activating_with_no_health_then_running(emu, client):
    create_app(client, suffix="v1")
    emu.control.set_provisioning_delay(0.3)
    _new_revision(client, "registry.local/orders-api:2.0.0", "v2", wait=False)
    starting = _revision(client, "orders-api--v2")
    assert (starting.provisioning_state, starting.running_state, starting.health_state) == (
        "Provisioning", "Activating", "None")
    _wait_for(lambda: _revision(client, "orders-api--v2").running_state == "Running", "Running")
    ready = _revision(client, "orders-api--v2")
    assert (ready.provisioning_state, ready.health_state) == ("Provisioned", "Healthy")


def test_a_crash_loop_stays_provisioned_and_fails_activation_after_the_progress_deadline(emu, client, http):
    create_app(client, suffix="v1")
    emu.control.config(progress_deadline=0.3)
    emu.control.add_behavior("*:crash", crash_loop=True)
    app = _new_revision(client, "registry.local/orders-api:crash", "v2")  # the write itself succeeds
    assert app.properties.provisioning_state == "Succeeded"
    assert app.properties.latest_ready_revision_name == "orders-api--v1"
    rev = _revision(client, "orders-api--v2")
    assert (rev.provisioning_state, rev.running_state, rev.health_state) == ("Provisioned", "Activating", "None")
    assert http.get(f"https://{rev.fqdn}/").status_code == 503
    _wait_for(lambda: _revision(client, "orders-api--v2").running_state == "ActivationFailed", "ActivationFailed")
    failed = _revision(client, "orders-api--v2")
    assert failed.provisioning_state == "Provisioned" and failed.health_state == "Unhealthy"
    # not in the SDK model (the spec lacks it), kept as an unknown key as the service sends it
    assert failed["runningStateDetails"].startswith("Deployment Progress Deadline Exceeded")


def test_a_scaled_to_zero_revision_wakes_up_on_its_first_request(emu, client, http):
    create_app(client, suffix="v1")
    emu.control.add_behavior(app="orders-api", cold_start_ms=200)
    _new_revision(client, "registry.local/orders-api:2.0.0", "v2")
    rev = _revision(client, "orders-api--v2")
    assert (rev.running_state, rev.health_state, rev.replicas) == ("ScaledToZero", "Healthy", 0)
    started = time.monotonic()
    assert http.get(f"https://{rev.fqdn}/").status_code == 200
    assert time.monotonic() - started >= 0.2  # the cold start is paid by the first request only
    awake = _revision(client, "orders-api--v2")
    assert (awake.running_state, awake.replicas) == ("Running", 1)


@pytest.mark.parametrize("state,health", [("RunningAtMaxScale", "Healthy"), ("Degraded", "Unhealthy"),
                                          ("Hibernating", "Healthy")])
def test_running_states_beyond_the_enum_are_reported_as_given(emu, client, state, health):
    create_app(client, suffix="v1")
    emu.control.add_behavior("*:2.0.0", running_state=state, health_state=health)
    _new_revision(client, "registry.local/orders-api:2.0.0", "v2")
    rev = _revision(client, "orders-api--v2")
    assert (rev.provisioning_state, rev.running_state, rev.health_state) == ("Provisioned", state, health)


def test_an_image_not_yet_replicated_fails_to_pull_until_it_is(emu, client):
    create_app(client, suffix="v1")
    digest = "registry.local/orders-api@sha256:" + "ab" * 32
    emu.control.add_behavior("*@sha256:abab*", not_replicated_s=0.4)
    with pytest.raises(HttpResponseError) as failed:
        _new_revision(client, digest, "v2")
    assert "MANIFEST_UNKNOWN" in str(failed.value)
    assert _revision(client, "orders-api--v2").provisioning_state == "Failed"
    time.sleep(0.4)
    _new_revision(client, digest, "v3")
    assert _revision(client, "orders-api--v3").running_state == "Running"


# ------------------------------------------------------------------ secrets and env
def _app_with_secret(client, env=None):
    body = app_body(suffix="v1")
    body["properties"]["configuration"]["secrets"] = [{"name": "db", "value": "s3cret"}]
    if env is not None:
        body["properties"]["template"]["containers"][0]["env"] = env
    return client.container_apps.begin_create_or_update(RG, "orders-api", body).result()


def test_get_returns_secret_names_only_and_list_secrets_the_values(client):
    app = _app_with_secret(client)
    assert [s.as_dict() for s in app.properties.configuration.secrets] == [{"name": "db"}]
    listed = client.container_apps.list_secrets(RG, "orders-api")
    assert [(s.name, s.value) for s in listed.value] == [("db", "s3cret")]
    # A GET -> PUT round trip (secrets without values) keeps the value and changes nothing.
    again = client.container_apps.begin_create_or_update(RG, "orders-api", client.container_apps.get(
        RG, "orders-api")).result()
    assert again.properties.latest_revision_name == "orders-api--v1"
    assert client.container_apps.list_secrets(RG, "orders-api").value[0].value == "s3cret"


def test_a_new_secret_without_a_value_is_refused(client):
    _app_with_secret(client)
    with pytest.raises(HttpResponseError) as refused:
        client.container_apps.begin_update(RG, "orders-api", {"properties": {"configuration": {
            "secrets": [{"name": "db"}, {"name": "new"}]}}}).result()
    assert refused.value.status_code == 400


def test_empty_env_values_come_back_without_value_and_are_lost_unless_sent_back_with_one(client, http):
    env = [{"name": "EMPTY", "value": ""}, {"name": "SET", "value": "x"}, {"name": "DB", "secretRef": "db"}]
    app = _app_with_secret(client, env)
    got = [e.as_dict() for e in app.properties.template.containers[0].env]
    assert got == [{"name": "EMPTY"}, {"name": "SET", "value": "x"}, {"name": "DB", "secretRef": "db"}]
    assert http.get(f"https://{_revision(client, 'orders-api--v1').fqdn}/").json()["env"] == {"EMPTY": "", "SET": "x"}
    containers = [c.as_dict() for c in app.properties.template.containers]
    # Written back as read (no value, no secretRef): accepted, and the variable is unset in the new revision.
    client.container_apps.begin_update(RG, "orders-api", {"properties": {"template": {
        "revisionSuffix": "v2", "containers": containers}}}).result()
    assert http.get(f"https://{_revision(client, 'orders-api--v2').fqdn}/").json()["env"] == {"SET": "x"}
    containers[0]["env"][0]["value"] = ""  # what the az CLI does before it writes
    client.container_apps.begin_update(RG, "orders-api", {"properties": {"template": {
        "revisionSuffix": "v3", "containers": containers}}}).result()
    assert http.get(f"https://{_revision(client, 'orders-api--v3').fqdn}/").json()["env"] == {"EMPTY": "", "SET": "x"}


def test_an_unknown_secret_ref_is_refused_with_the_service_code(client):
    with pytest.raises(HttpResponseError) as refused:
        _app_with_secret(client, [{"name": "X", "secretRef": "nope"}])
    assert refused.value.status_code == 400 and "ContainerAppSecretRefNotFound" in str(refused.value)


# ------------------------------------------------------------------ callers outside the environment
def _port(fqdn: str) -> str:
    return fqdn.rsplit(":", 1)[1]


def test_internal_ingress_has_an_internal_fqdn_and_answers_404_outside(client, http):
    body = app_body(suffix="v1")
    body["properties"]["configuration"]["ingress"]["external"] = False
    app = client.container_apps.begin_create_or_update(RG, "orders-api", body).result()
    fqdn = app.properties.configuration.ingress.fqdn
    rev_fqdn = _revision(client, "orders-api--v1").fqdn
    assert ".internal." in fqdn and ".internal." in rev_fqdn
    with pytest.raises(httpx.ConnectError):  # the name does not resolve outside the environment
        http.get(f"https://{fqdn}/")
    for port in (_port(fqdn), _port(rev_fqdn)):  # and its edge answers 404 to a caller that gets there
        assert http.get(f"https://localhost:{port}/").status_code == 404


@pytest.mark.parametrize("rules,status", [
    ([{"name": "office", "action": "Allow", "ipAddressRange": "10.0.0.0/8"}], 403),
    ([{"name": "local", "action": "Allow", "ipAddressRange": "127.0.0.0/8"}], 200),
    ([{"name": "block", "action": "Deny", "ipAddressRange": "127.0.0.1/32"}], 403),
])
def test_ip_restrictions_apply_to_the_caller_address(client, http, rules, status):
    body = app_body(suffix="v1")
    body["properties"]["configuration"]["ingress"]["ipSecurityRestrictions"] = rules
    app = client.container_apps.begin_create_or_update(RG, "orders-api", body).result()
    assert http.get(f"https://{app.properties.configuration.ingress.fqdn}/").status_code == status
    assert http.get(f"https://{_revision(client, 'orders-api--v1').fqdn}/").status_code == status


def test_mixed_allow_and_deny_rules_are_refused(client):
    body = app_body(suffix="v1")
    body["properties"]["configuration"]["ingress"]["ipSecurityRestrictions"] = [
        {"name": "a", "action": "Allow", "ipAddressRange": "10.0.0.0/8"},
        {"name": "d", "action": "Deny", "ipAddressRange": "127.0.0.1/32"}]
    with pytest.raises(HttpResponseError) as refused:
        client.container_apps.begin_create_or_update(RG, "orders-api", body).result()
    assert refused.value.status_code == 400


@pytest.mark.parametrize("action,status", [("RedirectToLoginPage", 302), ("Return401", 401)])
def test_built_in_authentication_turns_away_anonymous_callers(client, http, action, status):
    app = create_app(client, suffix="v1")
    assert client.container_apps_auth_configs.list_by_container_app(RG, "orders-api").next is not None
    client.container_apps_auth_configs.create_or_update(RG, "orders-api", "current", {"properties": {
        "platform": {"enabled": True}, "globalValidation": {"unauthenticatedClientAction": action}}})
    cfg = client.container_apps_auth_configs.get(RG, "orders-api", "current")
    assert cfg.properties.platform.enabled is True
    url = f"https://{app.properties.configuration.ingress.fqdn}/"
    assert http.get(url).status_code == status
    assert http.get(url, headers={"Authorization": "Bearer user-token"}).status_code == 200


def test_an_app_without_ingress_has_no_url(emu, client):
    body = app_body(suffix="v1")
    del body["properties"]["configuration"]["ingress"]
    app = client.container_apps.begin_create_or_update(RG, "orders-api", body).result()
    assert app.properties.configuration.ingress is None and app.properties.latest_revision_fqdn is None
    rev = _revision(client, "orders-api--v1")
    assert rev.fqdn == "" and rev.running_state == "Running"
    assert emu.control.app("orders-api")["ingress"] == "none"


def test_seed_behaviours_and_config_come_back_after_reset(emu, client):
    emu.control.seed({"behaviors": [{"image": "*:crash", "crash_loop": True}], "config": {"progress_deadline": 7}})
    assert emu.control.config()["progress_deadline"] == 7
    assert [b["crash_loop"] for b in emu.control.dump()["behaviors"]] == [True]
    emu.control.reset()  # the start-up seed has neither: both go
    assert emu.control.config()["progress_deadline"] == 600 and emu.control.dump()["behaviors"] == []
