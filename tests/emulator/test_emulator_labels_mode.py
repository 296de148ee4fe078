"""The `Labels` revision mode through the unmodified SDK: the target label on a new revision, traffic on labels,
a label moved from one revision to another, `az containerapp revision label swap` (a read-modify-PATCH of the
traffic array), unlabelled revisions deactivated, and each label's own URL `<app>---<label>`."""
from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from .helpers import RG, app_body, revisions


def _labels_app(client, **kw):
    body = app_body(mode="Labels", suffix="v1",
                    traffic=[{"latestRevision": True, "label": "blue", "weight": 100}], **kw)
    body["properties"]["configuration"]["targetLabel"] = "blue"
    return client.container_apps.begin_create_or_update(RG, "orders-api", body).result()


def _patch(client, configuration=None, template=None):
    props = {}
    if configuration is not None:
        props["configuration"] = configuration
    if template is not None:
        props["template"] = template
    return client.container_apps.begin_update(RG, "orders-api", {"properties": props}).result()


def _traffic(client) -> list[dict]:
    app = client.container_apps.get(RG, "orders-api").as_dict()
    return app["properties"]["configuration"]["ingress"]["traffic"]


def _label_map(client) -> dict[str, str]:
    return {e["label"]: e["revisionName"] for e in _traffic(client) if e.get("label")}


def _label_url(emu, label) -> str:
    return emu.control.app("orders-api")["labels"][label]["url"]


def _new_revision(client, suffix, label):
    template = {"containers": [{"name": "orders-api", "image": f"registry.local/orders-api:{suffix}"}],
                "revisionSuffix": suffix}
    return _patch(client, {"targetLabel": label}, template)


def test_target_label_goes_to_the_new_revision_with_its_weight(client, emu, http):
    app = _labels_app(client)
    assert app.properties.configuration.active_revisions_mode == "Labels"
    assert _label_map(client) == {"blue": "orders-api--v1"}
    # A new revision under a fresh label: 0 %, its own URL, production untouched.
    _new_revision(client, "v2", "green")
    assert _label_map(client) == {"blue": "orders-api--v1", "green": "orders-api--v2"}
    revs = revisions(client)
    assert revs["orders-api--v2"].properties.traffic_weight == 0 and revs["orders-api--v2"].properties.active
    assert http.get(_label_url(emu, "green")).json()["revision"] == "orders-api--v2"
    assert http.get(_label_url(emu, "blue")).json()["revision"] == "orders-api--v1"
    app_fqdn = client.container_apps.get(RG, "orders-api").properties.configuration.ingress.fqdn
    assert http.get(f"https://{app_fqdn}/").json()["revision"] == "orders-api--v1"
    # The label entry as GET returns it names its own host (emulator extension; on the service the host is
    # <app>---<label>.<environment domain>).
    green = next(e for e in _traffic(client) if e.get("label") == "green")
    assert green["fqdn"] == _label_url(emu, "green").removeprefix("https://")


def test_new_revision_on_the_production_label_takes_its_traffic_and_the_old_one_stops(client, emu):
    _labels_app(client)
    _new_revision(client, "v2", "blue")
    assert _label_map(client) == {"blue": "orders-api--v2"}
    revs = revisions(client)
    assert revs["orders-api--v2"].properties.traffic_weight == 100
    # "Only revisions with labels are active": v1 lost its only label.
    assert revs["orders-api--v1"].properties.active is False


def test_moving_and_swapping_labels_moves_their_urls_and_traffic(client, emu, http):
    _labels_app(client)
    _new_revision(client, "v2", "green")
    # Move the production label to v2 and keep v1 under "previous" (one PATCH of the traffic array).
    _patch(client, {"ingress": {"traffic": [
        {"revisionName": "orders-api--v2", "label": "blue", "weight": 100},
        {"revisionName": "orders-api--v1", "label": "previous", "weight": 0},
        {"revisionName": "orders-api--v2", "label": "green", "weight": 0}]}})
    assert _label_map(client) == {"blue": "orders-api--v2", "previous": "orders-api--v1", "green": "orders-api--v2"}
    assert http.get(_label_url(emu, "blue")).json()["revision"] == "orders-api--v2"
    assert http.get(_label_url(emu, "previous")).json()["revision"] == "orders-api--v1"
    assert revisions(client)["orders-api--v1"].properties.active  # still labelled: kept for rollback
    # Swap as the az CLI does: read the traffic array, exchange the two labels, PATCH it back.
    table = _traffic(client)
    for entry in table:
        entry.pop("fqdn", None)
        if entry.get("label") in ("blue", "previous"):
            entry["label"] = "previous" if entry["label"] == "blue" else "blue"
            entry["weight"] = 100 if entry["label"] == "blue" else 0
    _patch(client, {"ingress": {"traffic": table}})
    assert _label_map(client)["blue"] == "orders-api--v1" and _label_map(client)["previous"] == "orders-api--v2"
    assert http.get(_label_url(emu, "blue")).json()["revision"] == "orders-api--v1"
    assert revisions(client)["orders-api--v1"].properties.traffic_weight == 100


def test_removing_the_last_label_of_a_revision_deactivates_it(client, emu):
    _labels_app(client)
    _new_revision(client, "v2", "green")
    _patch(client, {"ingress": {"traffic": [{"revisionName": "orders-api--v1", "label": "blue", "weight": 100}]}})
    assert revisions(client)["orders-api--v2"].properties.active is False
    assert "green" not in emu.control.app("orders-api")["labels"]


def test_labels_mode_refuses_unlabelled_traffic_and_a_revision_without_target_label(client):
    _labels_app(client)
    with pytest.raises(HttpResponseError) as unlabelled:
        _patch(client, {"ingress": {"traffic": [{"revisionName": "orders-api--v1", "weight": 100}]}})
    assert unlabelled.value.status_code == 400
    assert unlabelled.value.error.code == "ContainerAppInvalidTrafficConfiguration"
    with pytest.raises(HttpResponseError) as no_target:
        _patch(client, {"targetLabel": None}, {"containers": [
            {"name": "orders-api", "image": "registry.local/orders-api:v3"}], "revisionSuffix": "v3"})
    assert no_target.value.error.code == "ContainerAppTargetLabelRequired"
    assert set(revisions(client)) == {"orders-api--v1"}  # a refused write changes nothing
