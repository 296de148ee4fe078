"""The HTTP API: every route of function_app.py is described in shared/openapi.yaml, responses
match its schemas, bad parameters get 400 with a reason. Store: MemoryStore (the Table store runs
the same contract in tests/contract; test_function_app_intake drives the HTTP functions on Azurite)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

import function_app
from shared.adapters.memory import MemoryStore
from shared.domain.model import (
    AppState, Deployment, DeploymentEvent, IgnoredEvent, ImagePush, Phase, PlannedDeployment, Target,
)
from shared.errors import ConflictError, InvalidRequestError, NotFoundError
from shared.http_api import HistoryApi, parse_when
from shared.ports import ConcurrencyError

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "shared" / "openapi.yaml").read_text())
NOW = datetime(2024, 5, 2, 12, 0, tzinfo=timezone.utc)
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def check(schema_name: str, body) -> None:
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": SPEC["components"]}
    Draft202012Validator(schema).validate(body)


def make(app: str, n: int, phase=Phase.QUEUED) -> Deployment:
    push = ImagePush(f"e{app}{n}", "/t", T0 + timedelta(minutes=n), "demo.azurecr.io", app, f"1.0.{n}",
                     "sha256:" + format(n + 1, "064x"), actor="alice")
    d = Deployment.from_plan(PlannedDeployment(push, Target("s", "rg", app), "r1", "rules", "prod"),
                             now=push.event_time)
    return d.evolve(phase=phase)


@pytest.fixture
def store():
    s = MemoryStore()
    for n in range(5):
        d = make("orders-api", n, Phase.SUCCEEDED if n < 4 else Phase.SHIFTING)
        s.create_deployment(d, DeploymentEvent(d.id, d.created_at, Phase.QUEUED, "queued"),
                            s.get_app_state(d.target) or AppState(target=d.target, environment="prod"))
    s.record_ignored(IgnoredEvent(T0, "rejected", "bad tag", event_id="x1"))
    return s


class FakeRollout:
    def __init__(self, error: Exception | None = None):
        self.error, self.calls = error, []

    def request_rollback(self, app, to_revision=None, resource_group=None, requested_by=""):
        self.calls.append((app, to_revision, resource_group, requested_by))
        if self.error:
            raise self.error
        return make(app, 9)


def api(store, rollout=None) -> HistoryApi:
    return HistoryApi(store, rollout, None, clock=lambda: NOW)


def test_the_spec_is_valid_openapi_31_and_describes_every_route():
    validate(SPEC)
    source = (ROOT / "function_app.py").read_text()
    routes = re.findall(r'@app\.route\(route="([^"]+)", methods=\["(\w+)"\][,)]', source)
    assert len(routes) >= 8
    for route, method in routes:
        path = "/" + route
        assert path in SPEC["paths"], f"{path} is not in shared/openapi.yaml"
        assert method.lower() in SPEC["paths"][path], f"{method} {path} is not described"
        operation = SPEC["paths"][path][method.lower()]["operationId"]
        assert f'_http(req, "{operation}")' in source  # operationId = the API's operation name


def test_list_deployments_pages_and_matches_the_schema(store):
    result = api(store).handle("list_deployments", method="GET", params={"app": "orders-api", "limit": "2", "code": "key"})
    assert result.status == 200
    check("DeploymentList", result.body)
    assert [d["tag"] for d in result.body["items"]] == ["1.0.4", "1.0.3"]
    more = api(store).handle("list_deployments", params={"app": "orders-api", "limit": "2",
                                                         "continuation": result.body["continuation"]})
    assert [d["tag"] for d in more.body["items"]] == ["1.0.2", "1.0.1"]
    active = api(store).handle("list_deployments", params={"status": "active"})
    assert [d["tag"] for d in active.body["items"]] == ["1.0.4"]
    window = api(store).handle("list_deployments", params={"since": "2024-05-01T12:01:00 00:00",
                                                           "until": "2024-05-01T12:03:00Z"})
    assert [d["tag"] for d in window.body["items"]] == ["1.0.2", "1.0.1"]


@pytest.mark.parametrize("params, fragment", [
    ({"limit": "0"}, "limit"), ({"limit": "201"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"status": "done"}, "status"), ({"since": "last tuesday"}, "since"),
    ({"since": "2024-05-02T00:00:00Z", "until": "2024-05-01T00:00:00Z"}, "before"),
    ({"app": "bad/app"}, "app"), ({"repository": "UPPER"}, "repository"),
    ({"continuation": "!!"}, "continuation"), ({"continuation": "abc"}, "continuation"),
    ({"colour": "red"}, "unknown parameter"),
])
def test_bad_parameters_get_400_with_a_reason(store, params, fragment):
    result = api(store).handle("list_deployments", params=params)
    assert result.status == 400, result.body
    check("Error", result.body)
    assert fragment in result.body["error"]


def test_get_deployment_tells_its_story(store):
    dep_id = next(iter(store.deployments))
    result = api(store).handle("get_deployment", route_params={"id": dep_id})
    assert result.status == 200
    check("DeploymentWithEvents", result.body)
    assert [e["phase"] for e in result.body["events"]] == ["queued"]
    missing = api(store).handle("get_deployment", route_params={"id": "20240101000000-0000000000"})
    assert missing.status == 404 and "no deployment" in missing.body["error"]
    assert api(store).handle("get_deployment", route_params={"id": "../etc"}).status == 400


def test_apps(store):
    apps = api(store).handle("list_apps")
    assert apps.status == 200
    check("App", apps.body["items"][0])
    one = api(store).handle("get_app", route_params={"app": "orders-api"})
    check("AppDetail", one.body)
    assert len(one.body["recent"]) == 5 and one.body["targets"][0]["resource_group"] == "rg"
    assert api(store).handle("get_app", route_params={"app": "nope"}).status == 404


def test_rejections(store):
    result = api(store).handle("list_rejections", params={"since": "2d"})
    assert result.status == 200
    check("RejectionList", result.body)
    assert [r["reason"] for r in result.body["items"]] == ["bad tag"]
    assert api(store).handle("list_rejections", params={"since": "1h"}).body["items"] == []


def test_rollback_delegates_and_maps_errors(store):
    rollout = FakeRollout()
    result = api(store, rollout).handle("rollback_app", method="POST", route_params={"app": "orders-api"},
                                        body=json.dumps({"to_revision": "orders-api--r1", "requested_by": "bob"}).encode())
    assert result.status == 202
    check("Deployment", result.body)
    assert rollout.calls == [("orders-api", "orders-api--r1", None, "bob")]

    for error, status in [(NotFoundError("no app"), 404), (ConflictError("busy"), 409),
                          (ConcurrencyError("etag"), 409), (InvalidRequestError("bad"), 400),
                          (RuntimeError("secret detail"), 500)]:
        r = api(store, FakeRollout(error)).handle("rollback_app", method="POST", route_params={"app": "orders-api"})
        assert r.status == status and r.body["error"]
        assert "secret detail" not in r.body["error"]  # an unexpected error's text stays in the log
    assert api(store, None).handle("rollback_app", method="POST", route_params={"app": "a"}).status == 501
    assert api(store, rollout).handle("rollback_app", method="POST", route_params={"app": "a"},
                                      body=b"{not json").status == 400
    assert api(store, rollout).handle("rollback_app", method="GET", route_params={"app": "a"}).status == 405


def test_page_and_document(store):
    page = api(store).handle("history_page", params={"code": "k"})
    assert page.status == 200 and page.content_type == "text/html"
    assert "http://" not in page.body and "https://" not in page.body  # no CDN, self-contained
    assert "Content-Security-Policy" in page.headers
    assert SPEC["paths"]["/history"]["get"]["security"] == []  # anonymous: the page holds no data
    assert "auth_level=func.AuthLevel.ANONYMOUS" in (ROOT / "function_app.py").read_text().split('route="history"')[1][:80]
    doc = api(store).handle("openapi")
    assert doc.status == 200 and doc.body["paths"].keys() == SPEC["paths"].keys()


def test_relative_times():
    assert parse_when("since", "24h", NOW) == NOW - timedelta(hours=24)
    assert parse_when("since", "2024-05-01T00:00:00+02:00", NOW) == datetime(2024, 4, 30, 22, tzinfo=timezone.utc)


def test_a_rollback_says_what_it_restores_and_the_app_its_live_tag(store):
    from dataclasses import replace

    from shared.domain.model import DeploymentKind

    pushed = make("orders-api", 2).evolve(phase=Phase.SUCCEEDED, revision="orders-api--v1-0-2")
    seed = make("orders-api", 7)
    rollbacks = {
        "known": seed.evolve(id="20240501130000-aaaaaaaaaa", kind=DeploymentKind.ROLLBACK, tag="", repository="",
                             revision="orders-api--v1-0-2", rollback_to="orders-api--v1-0-2", phase=Phase.SUCCEEDED),
        "first": seed.evolve(id="20240501140000-bbbbbbbbbb", kind=DeploymentKind.ROLLBACK, tag="", repository="",
                             image="demo.azurecr.io/orders-api:0.9.0", revision="orders-api--seed",
                             rollback_to="orders-api--seed", phase=Phase.SUCCEEDED),
    }
    history = [pushed]
    from dataclasses import asdict

    from shared.services.history import restored_by

    assert asdict(restored_by(rollbacks["known"], history)) == {
        "revision": "orders-api--v1-0-2", "tag": "1.0.2", "repository": "orders-api", "deployment_id": pushed.id}
    assert restored_by(rollbacks["first"], history).tag == "0.9.0"  # the app's first image, by tag

    rb = rollbacks["first"]
    state = store.get_app_state(rb.target)
    store.create_deployment(rb, DeploymentEvent(rb.id, rb.created_at, Phase.QUEUED, "rollback"),
                            replace(state, live_deployment_id=rb.id, live_revision=rb.revision, live_tag=""))
    shown = api(store).handle("get_deployment", route_params={"id": rb.id}, params={"app": "orders-api"})
    check("DeploymentWithEvents", shown.body)
    assert shown.body["restores"]["revision"] == "orders-api--seed" and shown.body["restores"]["tag"] == "0.9.0"
    apps = api(store).handle("list_apps").body["items"]
    assert [a["live"]["tag"] for a in apps if a["app"] == "orders-api"] == ["0.9.0"]
