"""The functions of function_app.py, invoked with real azure.functions objects, on Azurite.

Wiring: shared.bootstrap with real settings (zero-config convention, discovery off) and the real
Table store; the rollout queue is the real Storage queue under a test-unique name.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import azure.functions as func
import pytest

import function_app
from shared.adapters.queues import StorageRolloutQueue
from shared.bootstrap import Container, reset_container
from shared.ports import DeploymentQuery
from shared.settings import Settings

SUB = "00000000-0000-0000-0000-000000000000"
HOST = "demo.azurecr.io"
TOPIC = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/demo"


def user_function(name: str):
    """The Python function behind a binding (app.get_functions() may be called once per app only)."""
    return getattr(function_app, name)._function.get_user_function()


@pytest.fixture
def container(storage_connection_string, table_prefix):
    settings = Settings.from_env({
        "AzureWebJobsStorage": storage_connection_string, "ACR_DEPLOY_TABLE_PREFIX": table_prefix,
        "ACR_DEPLOY_REGISTRIES": HOST, "ACR_DEPLOY_SUBSCRIPTION_ID": SUB,
        "ACR_DEPLOY_RESOURCE_GROUP": "rg", "ACR_DEPLOY_DISCOVERY_RESOURCE_GROUPS": "-",
    })
    c = Container(settings)
    c.__dict__["queue"] = StorageRolloutQueue.from_connection_string(
        storage_connection_string, "q" + uuid.uuid4().hex[:12])
    reset_container(c)
    yield c
    # Tag discovery is off ('-'): intake must not have built a Container Apps client.
    assert "container_apps" not in c.__dict__
    reset_container(None)
    c.queue.client.delete_queue()
    c.store.delete_table()


def data(tag: str, digest: str, repository: str = "orders-api") -> dict:
    return {"id": str(uuid.uuid4()), "timestamp": "2024-05-01T12:00:00Z", "action": "push",
            "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1,
                       "digest": digest, "length": 1, "repository": repository, "tag": tag},
            "request": {"id": "r", "host": HOST, "method": "PUT", "useragent": "docker"},
            "actor": {"name": "alice"}}


def eg_event(tag="1.2.3", digest="sha256:" + "a" * 64, event_id=None, event_type=None, topic=TOPIC):
    return func.EventGridEvent(
        id=event_id or str(uuid.uuid4()), data=data(tag, digest), topic=topic, subject=f"orders-api:{tag}",
        event_type=event_type or "Microsoft.ContainerRegistry.ImagePushed",
        event_time=datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc), data_version="1.0")


def test_event_grid_push_is_recorded_and_enqueued(container):
    on_image_pushed = user_function("on_image_pushed")
    event = eg_event()
    on_image_pushed(event)
    on_image_pushed(event)  # redelivered
    page = container.store.list_deployments(DeploymentQuery())
    (d,) = page.items
    assert (d.target.app, d.tag, d.phase.value, d.image) == (
        "orders-api", "1.2.3", "queued", f"{HOST}/orders-api@sha256:{'a' * 64}")
    messages = container.queue.receive()
    assert [m["deployment_id"] for m, _ in messages] == [d.id]
    assert messages[0][0]["deployment"]["digest"] == "sha256:" + "a" * 64


def test_cloud_event_push_is_recorded(container):
    event = func.CloudEvent(
        id=str(uuid.uuid4()), source=TOPIC, type="Microsoft.ContainerRegistry.ImagePushed",
        specversion="1.0", data=data("2.0.0", "sha256:" + "b" * 64),
        time=datetime(2024, 5, 1, 12, 0, 1, tzinfo=timezone.utc), subject="orders-api:2.0.0")
    user_function("on_image_pushed")(event)
    (d,) = container.store.list_deployments(DeploymentQuery()).items
    assert d.tag == "2.0.0"


def test_bad_and_foreign_events_are_acknowledged_and_recorded(container):
    on_image_pushed = user_function("on_image_pushed")
    on_image_pushed(eg_event(tag="not a tag!"))
    on_image_pushed(eg_event(event_type="Microsoft.ContainerRegistry.ImageDeleted"))
    on_image_pushed(eg_event(topic=TOPIC.replace("/demo", "/evil")))
    on_image_pushed(eg_event(tag="latest"))  # convention: semver releases only
    since = datetime(2024, 5, 1, tzinfo=timezone.utc)
    items = container.store.list_ignored(since, datetime(2024, 5, 2, tzinfo=timezone.utc)).items
    assert sorted(i.outcome for i in items) == ["ignored", "ignored", "rejected", "rejected"]
    assert container.queue.receive() == []


def http(method: str, url: str, params=None, route_params=None, body: bytes = b"") -> func.HttpRequest:
    return func.HttpRequest(method=method, url=url, headers={}, params=params or {},
                            route_params=route_params or {}, body=body)


def test_http_reads_back_what_intake_recorded(container):
    user_function("on_image_pushed")(eg_event())
    response = user_function("list_deployments")(http("GET", "/api/deployments", {"app": "orders-api", "code": "k"}))
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = json.loads(response.get_body())
    (item,) = body["items"]
    assert body["continuation"] is None and item["app"] == "orders-api"
    one = user_function("get_deployment")(http("GET", f"/api/deployments/{item['id']}", route_params={"id": item["id"]}))
    story = json.loads(one.get_body())
    assert [e["phase"] for e in story["events"]] == ["queued"]
    apps = json.loads(user_function("list_apps")(http("GET", "/api/apps")).get_body())
    assert [a["app"] for a in apps["items"]] == ["orders-api"]
    app = json.loads(user_function("get_app")(http("GET", "/api/apps/orders-api", route_params={"app": "orders-api"})).get_body())
    assert app["recent"][0]["id"] == item["id"]
    bad = user_function("list_deployments")(http("GET", "/api/deployments", {"limit": "5000"}))
    assert bad.status_code == 400 and "limit" in json.loads(bad.get_body())["error"]
    page = user_function("history_page")(http("GET", "/api/history", {"code": "k"}))
    assert page.status_code == 200 and page.mimetype == "text/html" and b"<table" in page.get_body()
    spec = user_function("openapi")(http("GET", "/api/openapi.json"))
    assert json.loads(spec.get_body())["openapi"].startswith("3.1")
