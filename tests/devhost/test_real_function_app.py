"""The repo's own function_app.py, as the dev host sees it: its bindings, then every trigger kind
invoked through the Python worker's converters against Azurite."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import httpx
import pytest
from azure.functions import meta
from azure.storage.queue import QueueClient

from devtools.host import DevHost
from devtools.host.functions import describe_functions, load_app
from devtools.host.host import REPO_ROOT
from devtools.host.timers import timer_datum


def test_real_app_functions_and_bindings():
    specs = {s.name: s for s in describe_functions(load_app(REPO_ROOT))}
    pushed = specs["on_image_pushed"]
    assert (pushed.trigger_type, pushed.arg_name) == ("eventGridTrigger", "event")
    step = specs["rollout_step"]
    assert (step.trigger_type, step.queue_name, step.connection, step.arg_name) == (
        "queueTrigger", "acr-deploy-rollouts", "AzureWebJobsStorage", "msg")
    sweep = specs["sweep_rollouts"]
    assert (sweep.trigger_type, sweep.schedule, sweep.run_on_startup) == ("timerTrigger", "0 */1 * * * *", False)
    http = {s.name: (s.methods, s.route, s.auth_level) for s in specs.values() if s.trigger_type == "httpTrigger"}
    assert http["list_deployments"] == (("GET",), "deployments", "FUNCTION")
    assert http["get_deployment"] == (("GET",), "deployments/{id}", "FUNCTION")
    assert http["rollback_app"] == (("POST",), "apps/{app}/rollback", "FUNCTION")
    assert {"list_apps", "get_app", "list_rejections", "history_page", "openapi"} <= set(http)
    assert all(not s.unsupported_bindings for s in specs.values())


# ---- the real app served by the dev host: every trigger kind through the worker's converters ----

HOST = "demo.azurecr.io"
TOPIC = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/" \
        "Microsoft.ContainerRegistry/registries/demo"


def _push_data(tag: str, digest: str) -> dict:
    return {"id": str(uuid.uuid4()), "timestamp": "2024-05-01T12:00:00Z", "action": "push",
            "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": digest,
                       "length": 1, "repository": "orders-api", "tag": tag},
            "request": {"id": "r", "host": HOST, "method": "PUT", "useragent": "docker"}}


@pytest.fixture
def real_host(storage_connection_string, table_prefix):
    from shared.bootstrap import reset_container

    reset_container(None)
    host = DevHost(app_dir=REPO_ROOT, port=0, function_key="real-app-key", queues=False, timers=False, settings={
        "FUNCTIONS_WORKER_RUNTIME": "python", "AzureWebJobsStorage": storage_connection_string,
        "ACR_DEPLOY_TABLE_PREFIX": table_prefix, "ACR_DEPLOY_REGISTRIES": HOST, "ACR_DEPLOY_RULES_FILE": "",
        "ACR_DEPLOY_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
        "ACR_DEPLOY_RESOURCE_GROUP": "rg", "ACR_DEPLOY_DISCOVERY_RESOURCE_GROUPS": "-",
    })
    host.start()
    try:
        yield host
    finally:
        host.stop()
        reset_container(None)
        QueueClient.from_connection_string(storage_connection_string, "acr-deploy-rollouts").clear_messages()


def test_the_real_app_round_trips_every_trigger_kind(real_host):
    key = {"x-functions-key": real_host.function_key}
    eventgrid = [{"id": str(uuid.uuid4()), "topic": TOPIC, "subject": "orders-api:1.2.3",
                  "eventType": "Microsoft.ContainerRegistry.ImagePushed", "eventTime": "2024-05-01T12:00:00Z",
                  "dataVersion": "1.0", "data": _push_data("1.2.3", "sha256:" + "a" * 64)}]
    cloudevent = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": TOPIC, "subject": "orders-api:2.0.0",
                  "type": "Microsoft.ContainerRegistry.ImagePushed", "time": "2024-05-01T12:00:01Z",
                  "data": _push_data("2.0.0", "sha256:" + "b" * 64)}
    with httpx.Client(base_url=real_host.url, timeout=30) as client:
        notify = {"aeg-event-type": "Notification"}
        assert client.post(real_host.eventgrid_url("on_image_pushed"), json=eventgrid, headers=notify).status_code == 200
        response = client.post(real_host.eventgrid_url("on_image_pushed"), content=json.dumps(cloudevent),
                               headers={**notify, "Content-Type": "application/cloudevents+json"})
        assert response.status_code == 200
        listed = client.get("/api/deployments", params={"app": "orders-api"}, headers=key)  # HTTP in and out
        assert listed.status_code == 200 and listed.headers["content-type"].startswith("application/json")
        assert sorted(d["tag"] for d in listed.json()["items"]) == ["1.2.3", "2.0.0"]
    # Queue and timer: the data and metadata the host sends, through the same invoker.
    step = real_host.function("rollout_step")
    real_host.invoker.invoke(step, meta.Datum("not json", "string"), {
        "Id": meta.Datum("m-1", "string"), "DequeueCount": meta.Datum(1, "int"),
        "InsertionTime": meta.Datum(datetime.now(timezone.utc).isoformat(), "string")})
    sweep = real_host.function("sweep_rollouts")
    now = datetime.now(timezone.utc)
    real_host.invoker.invoke(sweep, timer_datum(past_due=False, last=None, next_=now))
