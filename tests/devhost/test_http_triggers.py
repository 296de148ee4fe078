"""HTTP triggers through a real DevHost: routing, route params, keys, responses."""

from __future__ import annotations

import httpx

KEY = {"x-functions-key": "test-key-123"}


def test_function_key_is_required_in_header_or_code_query(client):
    assert client.get("/api/items/1").status_code == 401
    assert client.get("/api/items/1", headers={"x-functions-key": "wrong"}).status_code == 401
    assert client.get("/api/items/1?code=wrong").status_code == 401
    assert client.get("/api/items/1", headers=KEY).status_code == 201
    assert client.get("/api/items/1?code=test-key-123").status_code == 201


def test_anonymous_route_needs_no_key(client):
    response = client.get("/api/public/ping")
    assert response.status_code == 200
    assert response.text == "pong"
    assert response.headers["content-type"].startswith("text/plain")


def test_request_reaches_the_function_as_a_real_http_request(client, http_host):
    response = client.post(
        "/api/items/abc%20def?x=1&y=two", content=b'{"hello": "world"}',
        headers={**KEY, "X-Custom": "custom-value", "Content-Type": "application/json"},
    )
    assert response.status_code == 201
    assert response.headers["x-echo"] == "yes"
    assert response.headers["content-type"].startswith("application/json")
    echoed = response.json()
    assert echoed["method"] == "POST"
    assert echoed["route_params"] == {"id": "abc def"}
    assert echoed["params"] == {"x": "1", "y": "two"}
    assert echoed["body"] == '{"hello": "world"}'
    assert echoed["x_custom"] == "custom-value"
    assert echoed["url"] == f"{http_host.url}/api/items/abc%20def?x=1&y=two"


def test_constraints_and_catch_all_route_params(client):
    response = client.get("/api/items/42/files/docs/read%20me.txt", headers=KEY)
    assert response.status_code == 200
    assert response.json() == {"id": "42", "path": "docs/read me.txt"}
    # {id:int} does not match letters, and no other route does either
    assert client.get("/api/items/abc/files/x", headers=KEY).status_code == 404


def test_routes_are_case_insensitive_and_need_the_prefix(client):
    assert client.get("/API/Public/PING").status_code == 200
    assert client.get("/public/ping").status_code == 404
    assert client.get("/api/nothing-here", headers=KEY).status_code == 404


def test_method_not_in_the_binding_is_405_with_allow(client):
    response = client.delete("/api/items/1", headers=KEY)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}


def test_function_exception_is_a_bare_500(client):
    response = client.get("/api/boom", headers=KEY)
    assert response.status_code == 500
    assert "secret" not in response.text


def test_status_endpoint_needs_the_key(client):
    assert client.get("/admin/host/status").status_code == 401
    assert client.get("/admin/host/status", headers=KEY).json()["state"] == "Running"


def test_keep_alive_connection_serves_many_requests(http_host):
    with httpx.Client(base_url=http_host.url, timeout=10) as c:
        statuses = {c.get(f"/api/items/{i}", headers=KEY).status_code for i in range(20)}
    assert statuses == {201}
