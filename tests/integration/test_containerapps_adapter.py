"""ContainerAppsAdapter through the real azure-mgmt-appcontainers client against the emulator."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from shared.adapters.containerapps import ContainerAppsAdapter, PermanentAzureError, TransientAzureError
from shared.adapters.credentials import LocalEmulatorCredential, get_arm_credential
from shared.domain.model import Target
from shared.settings import Settings

SUB = "00000000-0000-0000-0000-000000000000"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def rg(emulator):
    name = _name("rg")
    emulator.control.seed({"subscriptionId": SUB, "resourceGroups": [
        {"name": name, "location": "westeurope", "environments": [{"name": "env"}]}]})
    yield name
    emulator.control.clear_faults()


def seed_app(emulator, rg: str, mode: str = "Multiple", containers=None, tags=None, traffic=None,
             app: str | None = None) -> Target:
    app = app or _name("app")
    entry = {"name": app, "environment": "env", "activeRevisionsMode": mode,
             "image": "reg.io/app:1.0.0", "revisionSuffix": "first", "tags": tags or {}}
    if containers:
        entry["containers"] = containers
    if traffic:
        entry["traffic"] = traffic
    emulator.control.seed({"subscriptionId": SUB, "resourceGroups": [
        {"name": rg, "location": "westeurope", "environments": [{"name": "env"}], "apps": [entry]}]})
    return Target(SUB, rg, app)


def app_with_a_ready_second_revision(emulator, rg, adapter) -> tuple[Target, str, str]:
    """A seeded app serving `--first`, plus a new revision `--v2` at 0 % that is ready."""
    target = seed_app(emulator, rg)
    first = f"{target.app}--first"
    name = adapter.create_revision(target, f"reg.io/app@{DIGEST}", "v2", {first: 100})
    for _ in range(50):  # bounded: zero provisioning delay settles on the next request
        if adapter.get_revision(target, name).ready:
            break
    assert adapter.get_revision(target, name).ready
    return target, first, name


class RequestLog:
    """Every request the SDK client sends (method, URL, JSON body), through azure-core's
    `raw_request_hook`: what the adapter really calls, polls included."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, object]] = []

    def __call__(self, request) -> None:
        http = request.http_request
        body = http.body if isinstance(http.body, (str, bytes)) and http.body else None
        self.requests.append((http.method, http.url, json.loads(body) if body else None))

    def bodies(self, method: str) -> list:
        return [body for m, _, body in self.requests if m == method]


def make_adapter(emulator, rg: str, **options) -> ContainerAppsAdapter:
    settings = Settings.from_env({
        "ACR_DEPLOY_ARM_ENDPOINT": emulator.base_url, "ACR_DEPLOY_ARM_CA_BUNDLE": emulator.ca_path,
        "ACR_DEPLOY_ARM_CREDENTIAL": "emulator", "ACR_DEPLOY_SUBSCRIPTION_ID": SUB,
        "ACR_DEPLOY_RESOURCE_GROUP": rg, "ACR_DEPLOY_DISCOVERY_RESOURCE_GROUPS": rg,
    })
    return ContainerAppsAdapter.from_settings(settings, get_arm_credential(settings), poll_interval_s=0.05,
                                              **options)


@pytest.fixture
def request_log() -> RequestLog:
    return RequestLog()


@pytest.fixture
def adapter(emulator, rg, request_log):
    ca = make_adapter(emulator, rg, client_options={"raw_request_hook": request_log})
    yield ca
    ca.close()


DIGEST = "sha256:" + "1" * 64


def test_get_app_resolves_traffic_and_revisions(emulator, rg, adapter):
    target = seed_app(emulator, rg)
    info = adapter.get_app(target)
    assert info.revisions_mode == "Multiple"
    assert info.traffic == {f"{target.app}--first": 100}  # latestRevision resolved to a name
    assert info.fqdn.startswith("localhost:")
    (rev,) = info.revisions
    assert rev.ready and rev.active and rev.image == "reg.io/app:1.0.0" and rev.created is not None


def test_create_revision_pins_traffic_and_is_idempotent(emulator, rg, adapter):
    target = seed_app(emulator, rg)
    first = f"{target.app}--first"
    image = f"reg.io/app@{DIGEST}"
    name = adapter.create_revision(target, image, "v2-abcdef12", {first: 100})
    assert name == f"{target.app}--v2-abcdef12"
    assert adapter.create_revision(target, image, "v2-abcdef12", {first: 100}) == name  # no second PATCH effect
    rev = adapter.get_revision(target, name)
    assert rev is not None and rev.image == image
    dump = emulator.control.app(target.app)
    assert dump["traffic"] == {first: 100}  # the new revision starts at 0 %
    assert [r["name"] for r in dump["revisions"]] == [first, name]
    assert adapter.get_revision(target, f"{target.app}--nope") is None


def test_traffic_and_activation(emulator, rg, adapter):
    """Azure deactivates a revision that still receives traffic (Revisions_Deactivate example,
    azure-container-apps#410/#1345), and so does the emulator: the adapter refuses it itself."""
    target, first, name = app_with_a_ready_second_revision(emulator, rg, adapter)
    adapter.set_traffic(target, {first: 90, name: 10})
    assert emulator.control.app(target.app)["traffic"] == {first: 90, name: 10}
    assert adapter.get_app(target).traffic == {first: 90, name: 10}
    with pytest.raises(PermanentAzureError) as refused:  # it still has traffic
        adapter.set_revision_active(target, first, False)
    assert refused.value.code == "RevisionHasTraffic" and "still receives 90 %" in str(refused.value)
    assert emulator.control.app(target.app)["traffic"] == {first: 90, name: 10}  # nothing was cut
    adapter.set_traffic(target, {name: 100})
    adapter.set_revision_active(target, first, False)
    assert not adapter.get_revision(target, first).active
    adapter.set_revision_active(target, first, True)
    assert adapter.get_revision(target, first).active


def test_multi_container_apps_update_the_named_container_only(emulator, rg, adapter):
    containers = [{"name": "web", "image": "reg.io/web:1"}, {"name": "sidecar", "image": "reg.io/side:1"}]
    target = seed_app(emulator, rg, containers=containers)
    with pytest.raises(PermanentAzureError, match="must name the container"):
        adapter.create_revision(target, f"reg.io/web@{DIGEST}", "v2", {f"{target.app}--first": 100})
    with pytest.raises(PermanentAzureError, match="no container named api"):
        adapter.create_revision(Target(SUB, rg, target.app, "api"), "x", "v2", {})
    named = Target(SUB, rg, target.app, "web")
    name = adapter.create_revision(named, f"reg.io/web@{DIGEST}", "v2", {f"{target.app}--first": 100})
    images = {c["name"]: c["image"] for c in
              adapter._get_raw(named)["properties"]["template"]["containers"]}
    assert images == {"web": f"reg.io/web@{DIGEST}", "sidecar": "reg.io/side:1"}
    assert name.endswith("--v2")


def test_single_mode_switch_in_the_same_patch(emulator, rg, adapter):
    target = seed_app(emulator, rg, mode="Single")
    assert adapter.get_app(target).revisions_mode == "Single"
    first = f"{target.app}--first"
    name = adapter.create_revision(target, f"reg.io/app@{DIGEST}", "v2", {first: 100}, switch_to_multiple=True)
    info = adapter.get_app(target)
    assert info.revisions_mode == "Multiple"
    assert info.traffic == {first: 100}
    assert name in {r.name for r in info.revisions}


def test_errors_map_to_transient_and_permanent(emulator, rg, adapter):
    with pytest.raises(PermanentAzureError) as missing:
        adapter.get_app(Target(SUB, rg, "no-such-app"))
    assert missing.value.status == 404 and missing.value.__cause__ is not None
    target = seed_app(emulator, rg)
    with pytest.raises(PermanentAzureError) as bad:
        adapter.set_traffic(target, {f"{target.app}--first": 60})
    assert bad.value.status == 400 and "100" in str(bad.value)
    emulator.control.add_faults("429", count=10, retry_after=0)
    try:
        with pytest.raises(TransientAzureError) as busy:
            adapter.get_app(target)
        assert "429" in str(busy.value) and busy.value.retry_after_s == 0
    finally:
        emulator.control.clear_faults()
    emulator.control.add_faults("500", every=5)
    try:  # the SDK's short retry absorbs an occasional 500
        for _ in range(6):
            assert adapter.get_app(target).traffic
    finally:
        emulator.control.clear_faults()


def test_list_tagged_apps_finds_only_acr_deploy_tags(emulator, rg, adapter):
    tagged = seed_app(emulator, rg, tags={"acr-deploy.repository": "orders-api", "team": "a"})
    seed_app(emulator, rg, tags={"team": "b"})
    found = adapter.list_tagged_apps()
    assert [a.target.app for a in found] == [tagged.app]
    assert found[0].tags["acr-deploy.repository"] == "orders-api"
    assert found[0].target == Target(SUB, rg, tagged.app)


def test_credentials():
    token = LocalEmulatorCredential().get_token("https://management.azure.com/.default")
    assert token.token == "local-emulator-token"
    assert LocalEmulatorCredential().get_token_info("scope").expires_on > 0
    with pytest.raises(ValueError, match="only with the local emulator"):
        get_arm_credential(Settings.from_env({"ACR_DEPLOY_ARM_CREDENTIAL": "emulator"}))
    assert type(get_arm_credential(Settings.from_env({}))).__name__ == "DefaultAzureCredential"


def test_set_traffic_with_a_short_wait_answers_still_running_then_the_app_shows_it(emulator, rg, adapter):
    target, first, name = app_with_a_ready_second_revision(emulator, rg, adapter)
    assert adapter.set_traffic(target, {first: 90, name: 10}, wait_s=2.0) is True  # done inside the window
    emulator.control.set_provisioning_delay(1.5)
    try:
        assert adapter.set_traffic(target, {name: 100}, wait_s=0.1) is False  # requested, still running
        info = adapter.get_app(target)
        assert info.provisioning_state == "InProgress" and info.traffic == {name: 100}
        with pytest.raises(TransientAzureError):  # the service serialises app operations (409)
            adapter.set_traffic(target, {first: 100}, wait_s=0.1)
        for _ in range(100):  # bounded: 1.5 s of delay polled every 50 ms
            info = adapter.get_app(target)
            if info.provisioning_state == "Succeeded":
                break
            time.sleep(0.05)
        assert info.provisioning_state == "Succeeded" and info.traffic == {name: 100}
    finally:
        emulator.control.set_provisioning_delay(0.0)


def test_traffic_labels_survive_a_new_revision_a_shift_and_a_rollback(emulator, rg, adapter):
    app = _name("app")
    first = f"{app}--first"
    target = seed_app(emulator, rg, app=app, traffic=[
        {"revisionName": first, "weight": 100, "label": "stable"},
        {"latestRevision": True, "weight": 0, "label": "newest"},
    ])
    name = adapter.create_revision(target, f"reg.io/app@{DIGEST}", "v2", {first: 100})
    labels = {r.name: r.labels for r in adapter.get_app(target).revisions}
    assert labels[first] == ("stable",) and labels[name] == ("newest",)
    for _ in range(50):  # bounded: zero provisioning delay settles on the next request
        if adapter.get_revision(target, name).ready:
            break
    assert adapter.set_traffic(target, {first: 80, name: 20}) is True
    assert adapter.set_traffic(target, {name: 100}) is True
    assert adapter.set_traffic(target, {first: 100}) is True  # the rollback
    info = adapter.get_app(target)
    assert info.traffic == {first: 100}
    assert {r.name: r.labels for r in info.revisions} == {first: ("stable",), name: ("newest",)}
    traffic = adapter._get_raw(target)["properties"]["configuration"]["ingress"]["traffic"]
    assert [(e.get("revisionName"), e.get("weight"), e["label"]) for e in traffic] == [
        (first, 100, "stable"), (None, 0, "newest")]


def test_env_entries_without_a_value_go_back_with_an_empty_value(emulator, rg, adapter, request_log):
    env = [{"name": "EMPTY"}, {"name": "SET", "value": "x"}, {"name": "BLANK", "value": ""}]
    target = seed_app(emulator, rg, containers=[{"name": "web", "image": "reg.io/web:1", "env": env}])
    adapter.create_revision(target, f"reg.io/web@{DIGEST}", "v2", {f"{target.app}--first": 100})
    (patch,) = request_log.bodies("PATCH")
    (container,) = patch["properties"]["template"]["containers"]
    assert container["env"] == [{"name": "EMPTY", "value": ""}, {"name": "SET", "value": "x"},
                                {"name": "BLANK", "value": ""}]


def test_writes_are_confirmed_by_reading_the_app_never_an_operation_url(emulator, rg, adapter, request_log):
    target, first, name = app_with_a_ready_second_revision(emulator, rg, adapter)
    emulator.control.set_provisioning_delay(0.3)
    try:
        assert adapter.set_traffic(target, {first: 50, name: 50}) is True  # waited by reading the app
    finally:
        emulator.control.set_provisioning_delay(0.0)
    urls = [url for _, url, _ in request_log.requests]
    assert not [u for u in urls if "containerappOperation" in u]
    assert all(f"/resourceGroups/{rg}/" in u for u in urls)
    reads_after_patch = [m for m, _, _ in request_log.requests[-5:]]
    assert "GET" in reads_after_patch
