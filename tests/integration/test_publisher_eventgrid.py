"""Outcome CloudEvents through the real azure-eventgrid publisher client to a local HTTPS sink."""

from __future__ import annotations

import json
import ssl
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.adapters.publisher import EventGridOutcomePublisher, NoopPublisher, build_publisher
from shared.domain.model import Deployment, DeploymentKind, Phase, Target
from shared.settings import Settings


class Sink(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def sink(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    Sink.received, Sink.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/api/events", str(ca_path)
    server.shutdown()
    server.server_close()


def deployment(phase=Phase.SUCCEEDED) -> Deployment:
    now = datetime(2025, 5, 1, tzinfo=timezone.utc)
    return Deployment(
        id="20250501120000-abcdef0123", target=Target("sub", "rg", "orders-api"), kind=DeploymentKind.PUSH,
        phase=phase, created_at=now, updated_at=now, image="reg.io/orders@sha256:" + "a" * 64,
        tag="1.4.2", revision="orders-api--v1-4-2-0123abcd", reason="orders-api--v1-4-2-0123abcd serves 100 %",
    )


def settings_for(endpoint: str | None, ca: str | None = None) -> Settings:
    env = {"ACR_DEPLOY_ARM_CREDENTIAL": "emulator", "ACR_DEPLOY_ARM_ENDPOINT": "https://127.0.0.1:1"}
    if endpoint:
        env["ACR_DEPLOY_EVENTS_ENDPOINT"] = endpoint
    if ca:
        env["ACR_DEPLOY_ARM_CA_BUNDLE"] = ca
    return Settings.from_env(env)


def test_outcomes_arrive_as_cloudevents(sink):
    endpoint, ca = sink
    publisher = build_publisher(settings_for(endpoint, ca))
    assert isinstance(publisher, EventGridOutcomePublisher)
    publisher.publish("AcrDeploy.Deployment.Succeeded", deployment())
    ((path, headers, body),) = Sink.received
    assert path.startswith("/api/events")
    assert headers["Authorization"] == "Bearer local-emulator-token"
    assert headers["Content-Type"].startswith("application/cloudevents-batch+json")
    (event,) = body
    assert event["type"] == "AcrDeploy.Deployment.Succeeded"
    assert event["specversion"] == "1.0"
    assert event["id"] == "20250501120000-abcdef0123-succeeded"  # deterministic: subscribers dedupe
    assert event["source"] == "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.App/containerApps/orders-api"
    assert event["subject"] == "deployments/20250501120000-abcdef0123"
    data = event["data"]
    assert (data["app"], data["phase"], data["tag"], data["revision"]) == (
        "orders-api", "succeeded", "1.4.2", "orders-api--v1-4-2-0123abcd")
    assert "etag" not in data and "rollout" not in data


def test_publishing_failures_are_swallowed(sink, caplog):
    endpoint, ca = sink
    Sink.status = 403
    publisher = build_publisher(settings_for(endpoint, ca))
    publisher.publish("AcrDeploy.Deployment.Failed", deployment(Phase.FAILED))  # no raise
    assert any("could not publish" in r.message for r in caplog.records)
    from devtools.netutil import free_port

    dead = build_publisher(settings_for(f"https://127.0.0.1:{free_port()}/api/events", ca))
    dead.publish("AcrDeploy.Deployment.Failed", deployment(Phase.FAILED))  # no raise either


def test_no_endpoint_means_no_publishing():
    publisher = build_publisher(settings_for(None))
    assert isinstance(publisher, NoopPublisher)
    assert publisher.publish("AcrDeploy.Deployment.Succeeded", deployment()) is None
