"""Revision semantics and real serving: new revisions on template change only, Single vs Multiple mode,
latestRevision vs pinned traffic, labels, maxInactiveRevisions, activate/deactivate/restart, $filter and paging,
and the loopback HTTPS ports (revision, app ingress with weighted round-robin, labels)."""
from __future__ import annotations

import re
from collections import Counter

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from .helpers import RG, app_body, create_app, revisions


def set_image(client, image, suffix=None, name="orders-api"):
    template = {"containers": [{"name": name, "image": image}]}
    if suffix:
        template["revisionSuffix"] = suffix
    return client.container_apps.begin_update(RG, name, {"properties": {"template": template}}).result()


def set_traffic(client, traffic, name="orders-api"):
    return client.container_apps.begin_update(
        RG, name, {"properties": {"configuration": {"ingress": {"traffic": traffic}}}}).result()


def test_template_change_creates_revision_config_change_does_not(client):
    app = create_app(client)  # no suffix: generated
    first = app.properties.latest_revision_name
    assert re.fullmatch(r"orders-api--[a-z0-9]{7}", first)
    client.container_apps.begin_update(RG, "orders-api", {
        "properties": {"configuration": {"maxInactiveRevisions": 3}}, "tags": {"x": "y"}}).result()
    assert list(revisions(client)) == [first]
    app = set_image(client, "registry.local/orders-api:2.0.0", suffix="v2")
    assert app.properties.latest_revision_name == "orders-api--v2"
    revs = revisions(client)
    assert list(revs) == [first, "orders-api--v2"]
    assert revs["orders-api--v2"].properties.template.containers[0].image == "registry.local/orders-api:2.0.0"
    assert revs["orders-api--v2"].properties.template.revision_suffix == "v2"
    # Replacing with the same template (GET -> PUT round trip) creates nothing.
    got = client.container_apps.get(RG, "orders-api")
    client.container_apps.begin_create_or_update(RG, "orders-api", got).result()
    assert len(revisions(client)) == 2


def test_revision_object_fields(client):
    create_app(client, suffix="v1")
    rev = client.container_apps_revisions.get_revision(RG, "orders-api", "orders-api--v1")
    p = rev.properties
    assert rev.type == "Microsoft.App/containerApps/revisions"
    assert p.active is True and p.traffic_weight == 100 and p.replicas >= 1
    assert p.provisioning_state == "Provisioned" and p.running_state == "Running" and p.health_state == "Healthy"
    assert p.created_time is not None and p.fqdn.startswith("localhost:")
    assert p.template.containers[0].image == "registry.local/orders-api:1.0.0"
    with pytest.raises(ResourceNotFoundError):
        client.container_apps_revisions.get_revision(RG, "orders-api", "orders-api--nope")


def test_single_mode_new_revision_takes_all_and_old_deactivates(client, http):
    create_app(client, mode="Single", suffix="v1")
    old_fqdn = revisions(client)["orders-api--v1"].properties.fqdn
    assert http.get(f"https://{old_fqdn}/").json()["revision"] == "orders-api--v1"
    app = set_image(client, "registry.local/orders-api:2.0.0", suffix="v2")
    revs = revisions(client)
    assert revs["orders-api--v2"].properties.traffic_weight == 100 and revs["orders-api--v2"].properties.active
    assert revs["orders-api--v1"].properties.active is False
    assert revs["orders-api--v1"].properties.traffic_weight == 0
    assert revs["orders-api--v1"].properties.running_state == "Stopped"
    with pytest.raises(httpx.TransportError):
        http.get(f"https://{old_fqdn}/")  # deactivated revisions stop serving
    body = http.get(f"https://{app.properties.configuration.ingress.fqdn}/").json()
    assert body["revision"] == "orders-api--v2" and body["image"] == "registry.local/orders-api:2.0.0"


def test_multiple_mode_latest_follows_pinned_stays(client):
    create_app(client, suffix="v1", traffic=[{"latestRevision": True, "weight": 100}])
    set_image(client, "registry.local/orders-api:2.0.0", suffix="v2")
    revs = revisions(client)
    assert revs["orders-api--v2"].properties.traffic_weight == 100
    assert revs["orders-api--v1"].properties.traffic_weight == 0
    assert revs["orders-api--v1"].properties.active is True  # Multiple mode keeps old revisions active
    # Pin v2, then a new revision stays at 0 %.
    set_traffic(client, [{"revisionName": "orders-api--v2", "weight": 100}])
    app = set_image(client, "registry.local/orders-api:3.0.0", suffix="v3")
    revs = revisions(client)
    assert app.properties.latest_revision_name == "orders-api--v3"
    assert revs["orders-api--v3"].properties.traffic_weight == 0 and revs["orders-api--v3"].properties.active
    assert revs["orders-api--v2"].properties.traffic_weight == 100


def test_new_revision_can_be_pinned_in_same_request(client):
    """With a known suffix the new revision's name can be used in the same PUT (azure-container-apps#23)."""
    create_app(client, suffix="v1", traffic=[{"revisionName": "orders-api--v1", "weight": 100}])
    body = app_body(image="registry.local/orders-api:2.0.0", suffix="v2", traffic=[
        {"revisionName": "orders-api--v1", "weight": 90}, {"revisionName": "orders-api--v2", "weight": 10}])
    client.container_apps.begin_create_or_update(RG, "orders-api", body).result()
    revs = revisions(client)
    assert revs["orders-api--v1"].properties.traffic_weight == 90
    assert revs["orders-api--v2"].properties.traffic_weight == 10


def test_invalid_traffic_and_duplicate_suffix_are_400(client):
    create_app(client, suffix="v1")
    cases = [
        ([{"revisionName": "orders-api--v1", "weight": 90}], "ContainerAppInvalidTrafficWeight"),
        ([{"revisionName": "orders-api--ghost", "weight": 100}], "ContainerAppRevisionNotFound"),
        ([{"latestRevision": True, "weight": 50, "label": "a"}, {"revisionName": "orders-api--v1", "weight": 50,
                                                                 "label": "a"}], "ContainerAppDuplicateLabel"),
    ]
    for traffic, code in cases:
        with pytest.raises(HttpResponseError) as err:
            client.container_apps.begin_update(RG, "orders-api", {
                "properties": {"configuration": {"ingress": {"traffic": traffic}}}})
        assert err.value.status_code == 400 and err.value.error.code == code, traffic
    set_image(client, "registry.local/orders-api:2.0.0", suffix="v2")
    with pytest.raises(HttpResponseError) as err:
        set_image(client, "registry.local/orders-api:3.0.0", suffix="v1")
    assert err.value.status_code == 400 and err.value.error.code == "ContainerAppRevisionSuffixAlreadyExists"
    # Nothing was committed by the rejected requests.
    assert list(revisions(client)) == ["orders-api--v1", "orders-api--v2"]


def test_weighted_round_robin_and_labels(client, http):
    create_app(client, suffix="v1")
    set_image(client, "registry.local/orders-api:2.0.0", suffix="v2")
    app = set_traffic(client, [{"revisionName": "orders-api--v1", "weight": 80},
                               {"revisionName": "orders-api--v2", "weight": 20, "label": "canary"},
                               {"revisionName": "orders-api--v1", "weight": 0, "label": "stable"}])
    ingress = app.properties.configuration.ingress
    counts = Counter(http.get(f"https://{ingress.fqdn}/").json()["revision"] for _ in range(50))
    assert counts == {"orders-api--v1": 40, "orders-api--v2": 10}
    label_fqdn = {t["label"]: t["fqdn"] for t in ingress.traffic if t.get("label")}
    canary = http.get(f"https://{label_fqdn['canary']}/").json()
    assert canary["revision"] == "orders-api--v2" and canary["label"] == "canary"
    assert http.get(f"https://{label_fqdn['stable']}/").json()["revision"] == "orders-api--v1"
    assert http.get(f"https://{label_fqdn['canary']}/healthz").status_code == 200
    # Moving all traffic changes the router at once.
    app = set_traffic(client, [{"revisionName": "orders-api--v2", "weight": 100}])
    assert {http.get(f"https://{ingress.fqdn}/").json()["revision"] for _ in range(5)} == {"orders-api--v2"}
    with pytest.raises(httpx.TransportError):
        http.get(f"https://{label_fqdn['canary']}/")  # label removed -> its port is closed


def test_activate_deactivate_restart(emu, client, http):
    create_app(client, suffix="v1", traffic=[{"revisionName": "orders-api--v1", "weight": 100}])
    set_image(client, "registry.local/orders-api:2.0.0", suffix="v2")
    ops = client.container_apps_revisions
    # The service deactivates a revision that still takes traffic (Revisions_Deactivate example): its share
    # is then served by nobody until traffic changes.
    ops.deactivate_revision(RG, "orders-api", "orders-api--v1")  # still takes 100 %
    app_fqdn = client.container_apps.get(RG, "orders-api").properties.configuration.ingress.fqdn
    assert http.get(f"https://{app_fqdn}/").status_code == 503
    ops.activate_revision(RG, "orders-api", "orders-api--v1")
    assert http.get(f"https://{app_fqdn}/").json()["revision"] == "orders-api--v1"
    fqdn = ops.get_revision(RG, "orders-api", "orders-api--v2").properties.fqdn
    assert http.get(f"https://{fqdn}/healthz").status_code == 200
    ops.deactivate_revision(RG, "orders-api", "orders-api--v2")
    rev = ops.get_revision(RG, "orders-api", "orders-api--v2").properties
    assert rev.active is False and rev.running_state == "Stopped" and rev.replicas == 0
    with pytest.raises(httpx.TransportError):
        http.get(f"https://{fqdn}/")
    with pytest.raises(HttpResponseError) as err:
        ops.restart_revision(RG, "orders-api", "orders-api--v2")
    assert err.value.status_code == 400
    ops.activate_revision(RG, "orders-api", "orders-api--v2")
    rev = ops.get_revision(RG, "orders-api", "orders-api--v2").properties
    assert rev.active is True and rev.running_state == "Running"
    assert http.get(f"https://{rev.fqdn}/").json()["revision"] == "orders-api--v2"
    ops.restart_revision(RG, "orders-api", "orders-api--v2")
    state = emu.control.app("orders-api")
    assert {r["name"]: r["restarts"] for r in state["revisions"]}["orders-api--v2"] == 1
    with pytest.raises(ResourceNotFoundError):
        ops.activate_revision(RG, "orders-api", "orders-api--ghost")


def test_max_inactive_revisions(client):
    create_app(client, mode="Single", suffix="v1", max_inactive=1)
    for n in (2, 3, 4):
        set_image(client, f"registry.local/orders-api:{n}.0.0", suffix=f"v{n}")
    revs = revisions(client)
    assert list(revs) == ["orders-api--v3", "orders-api--v4"]  # v1, v2 pruned; one inactive kept
    assert revs["orders-api--v3"].properties.active is False


def test_list_revisions_filter_and_paging(emu, client):
    emu.control.set_page_size(2)
    create_app(client, suffix="v1")
    for n in (2, 3, 4):
        set_image(client, f"registry.local/orders-api:{n}.0.0", suffix=f"v{n}")
    client.container_apps_revisions.deactivate_revision(RG, "orders-api", "orders-api--v1")
    client.container_apps_revisions.deactivate_revision(RG, "orders-api", "orders-api--v2")
    assert len(revisions(client)) == 4
    active = revisions(client, filter="properties/active eq true")
    assert list(active) == ["orders-api--v3", "orders-api--v4"]
    assert list(revisions(client, filter="properties/active eq false")) == ["orders-api--v1", "orders-api--v2"]
    assert list(revisions(client, filter="name eq 'orders-api--v3' and properties/active eq true")) == [
        "orders-api--v3"]
    with pytest.raises(HttpResponseError) as err:
        revisions(client, filter="startswith(name, 'x')")
    assert err.value.status_code == 400


def test_patch_revision_suffix_null_generates_new_and_labels_mode(client):
    create_app(client, suffix="v1")
    # Keeping the old suffix while changing the image collides (arrays/objects merge; suffix survives).
    with pytest.raises(HttpResponseError) as err:
        set_image(client, "registry.local/orders-api:2.0.0", suffix="v1")
    assert err.value.status_code == 400
    app = client.container_apps.begin_update(RG, "orders-api", {"properties": {"template": {
        "revisionSuffix": None, "containers": [{"name": "orders-api", "image": "registry.local/orders-api:2"}]}}}
    ).result()
    assert re.fullmatch(r"orders-api--[a-z]{7}", app.properties.latest_revision_name)
    assert app.properties.template.revision_suffix is None


def test_environment_delete_guarded_by_apps(client):
    create_app(client)
    with pytest.raises(HttpResponseError) as err:
        client.managed_environments.begin_delete(RG, "env").result()
    assert err.value.status_code == 409
    client.container_apps.begin_delete(RG, "orders-api").result()
    client.managed_environments.begin_delete(RG, "env").result()
    with pytest.raises(ResourceNotFoundError):
        client.managed_environments.get(RG, "env")
