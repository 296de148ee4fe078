"""Malformed, out-of-range and overflowing input to the HTTP API: a clear 400, never a 500, and
nothing stored. Driven through `HistoryApi` over the real Table store on Azurite, because some
overflows (a time one second before year 10000) only surface where the store builds its keys."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.adapters.tables import TableStore
from shared.domain.model import (
    AppState, Deployment, DeploymentEvent, IgnoredEvent, ImagePush, Phase, PlannedDeployment, RolloutSettings,
    SmokeCheck, Target,
)
from shared.http_api import HistoryApi

NOW = datetime(2024, 5, 2, 12, 0, tzinfo=timezone.utc)

# operation -> (method, route parameters, query parameters it accepts)
ROUTES = {
    "list_deployments": ("GET", (), ("app", "environment", "status", "repository", "since", "until",
                                     "limit", "continuation")),
    "get_deployment": ("GET", ("id",), ("app",)),
    "list_apps": ("GET", (), ("environment",)),
    "get_app": ("GET", ("app",), ()),
    "rollback_app": ("POST", ("app",), ()),
    "list_rejections": ("GET", (), ("since", "until", "limit")),
    "history_page": ("GET", (), ()),
    "openapi": ("GET", (), ()),
}


class RefusingRollout:
    """Stands in for the rollout worker: the edge must have refused bad input before reaching it."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def request_rollback(self, app, to_revision=None, resource_group=None, requested_by=""):
        self.calls.append((app, to_revision, resource_group, requested_by))
        from shared.errors import NotFoundError

        raise NotFoundError(f"no app {app}")


@pytest.fixture(scope="module")
def table_store(azurite):
    store = TableStore.from_connection_string(azurite.connection_string, "badinput")
    store.record_ignored(IgnoredEvent(NOW, "rejected", "bad tag", event_id="x1"))
    yield store
    store.delete_table()


def api(store, rollout=None) -> HistoryApi:
    return HistoryApi(store, rollout, None, clock=lambda: NOW)


@pytest.mark.parametrize("operation, params, fragment", [
    ("list_deployments", {"limit": "²"}, "limit"),
    ("list_deployments", {"limit": "٣"}, "limit"),
    ("list_rejections", {"limit": "１０"}, "limit"),
    ("list_deployments", {"since": "999999d"}, "since"),
    ("list_deployments", {"since": "٣d"}, "since"),
    ("list_rejections", {"until": "9999-12-31T23:59:59.5Z"}, "until"),
    ("list_deployments", {"until": "9999-12-31T23:59:59Z"}, "until"),
    ("list_deployments", {"since": "0001-01-01T00:00:00+01:00"}, "since"),
    ("list_rejections", {"since": "0001-01-01T00:00:00Z"}, "since"),
])
def test_overflowing_or_foreign_digits_are_a_400(table_store, operation, params, fragment):
    result = api(table_store).handle(operation, params=params)
    assert result.status == 400, result.body
    assert fragment in result.body["error"]


def test_a_deeply_nested_rollback_body_is_a_400_and_reaches_nobody(table_store):
    rollout = RefusingRollout()
    for body in (b"[" * 5000 + b"]" * 5000, b'{"requested_by": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                 b"\xff\xfe{", json.dumps({"requested_by": {"a": 1}}).encode()):
        result = api(table_store, rollout).handle("rollback_app", method="POST", route_params={"app": "a"},
                                                  body=body)
        assert result.status == 400, (body[:40], result.body)
    assert rollout.calls == []


TEXT = st.one_of(
    st.text(max_size=80),
    st.from_regex(r"[0-9]{1,7}[smhd]", fullmatch=True),
    st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})?",
                  fullmatch=True),
    st.sampled_from(["9999-12-31T23:59:59.999999Z", "0001-01-01", "1970-01-01T00:00:00-00:01", "", " ",
                     "²", "NaN", "-1", "00", "0" * 30, "active", "queued", "orders-api", "a/b", "e30"]),
)


@st.composite
def requests(draw):
    operation = draw(st.sampled_from(sorted(ROUTES)))
    method, route_names, names = ROUTES[operation]
    extra = st.sampled_from(["code", "x", "LIMIT"]) | st.text(max_size=10)
    chosen = draw(st.lists(st.sampled_from(names) | extra, max_size=4, unique=True)) if names else \
        draw(st.lists(extra, max_size=1))
    params = {name: draw(TEXT) for name in chosen}
    route = {name: draw(TEXT) for name in route_names}
    body = draw(st.one_of(st.just(b""), st.binary(max_size=64),
                          st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                                       lambda kids: st.lists(kids, max_size=3)
                                       | st.dictionaries(st.sampled_from(["to_revision", "resource_group",
                                                                          "requested_by", "x"]), kids,
                                                         max_size=3),
                                       max_leaves=8).map(lambda v: json.dumps(v).encode())))
    return operation, method, params, route, body


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=requests())
def test_no_query_parameter_of_any_route_ever_gets_a_500(table_store, request):
    operation, method, params, route, body = request
    rollout = RefusingRollout()
    result = api(table_store, rollout).handle(operation, method=method, params=params, route_params=route,
                                              body=body)
    assert result.status != 500, (operation, params, route, body, result.body)
    assert result.status in (200, 202, 400, 404, 405, 409, 501)
    if result.status == 400:
        assert result.body["error"]
    for app, to_revision, resource_group, requested_by in rollout.calls:  # what did get through is valid
        assert isinstance(requested_by, str) and 0 < len(requested_by) <= 128


def test_no_record_path_stores_a_smoke_check_credential(table_store):
    """Settings built in code (not through the rules loader) with credentials: the stored record
    and every answer of the API carry them masked."""
    rollout = RolloutSettings(smoke=(SmokeCheck(path="/h?code=hunter2", headers=(("X-Functions-Key", "hunter2"),)),),
                              verify=(SmokeCheck(path="/v?sv=1&sig=hunter2"),))
    push = ImagePush("cred1", "/t", NOW, "demo.azurecr.io", "creds-api", "1.0.0", "sha256:" + "a" * 64)
    d = Deployment.from_plan(PlannedDeployment(push, Target("s", "rg", "creds-api"), "r1", "rules", "prod",
                                               rollout=rollout), now=NOW).evolve(phase=Phase.QUEUED)
    table_store.create_deployment(d, DeploymentEvent(d.id, NOW, Phase.QUEUED, "queued"),
                                  AppState(target=d.target, environment="prod"))
    table_store.flush_index()
    answers = [api(table_store).handle("list_deployments", params={"app": "creds-api"}),
               api(table_store).handle("list_deployments", params={"since": "2024-05-01T00:00:00Z"}),
               api(table_store).handle("get_deployment", route_params={"id": d.id}),
               api(table_store).handle("get_app", route_params={"app": "creds-api"})]
    for answer in answers:
        assert answer.status == 200 and "creds-api" in json.dumps(answer.body)
        assert "hunter2" not in json.dumps(answer.body)
    stored = table_store.get_deployment(d.id, app="creds-api")
    assert "hunter2" not in repr(stored.rollout)
