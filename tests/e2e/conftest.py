"""End-to-end fixtures: the sandbox (every server a real child process on free loopback ports, in
a temp directory of its own), a real docker-registry notifying an in-process bridge, and a small
HTTP subscriber that records what Event Grid-style deliveries it receives.

Every fixture stops what it started, also when the test failed.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.conftest import require_tool

# Fast Event Grid retries for tests (the sandbox's defaults are meant for people watching).
FAST_RETRIES = {"max_attempts": 3, "initial_backoff_s": 0.1, "max_backoff_s": 0.5, "ttl_s": 30.0, "timeout_s": 5.0}


@pytest.fixture(scope="session")
def azurite_tool() -> str:
    """Azurite from node_modules (make setup): skipped locally when missing, a failure in CI."""
    from devtools.azurite import azurite_binary

    try:
        return azurite_binary()
    except FileNotFoundError as exc:
        if os.environ.get("ACR_DEPLOY_REQUIRE_E2E"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def e2e_tools(azurite_tool) -> dict[str, str]:
    return {"registry": require_tool("docker-registry"), "skopeo": require_tool("skopeo"),
            "azurite": azurite_tool}


def start_sandbox(directory: Path, **options: Any):
    from devtools.sandbox import Sandbox

    sandbox = Sandbox(directory, echo=lambda line: None, **options)
    try:
        endpoints = sandbox.up()
    except BaseException:
        sandbox.down()
        raise
    return sandbox, endpoints


@pytest.fixture(scope="module")
def sandbox(e2e_tools, tmp_path_factory):
    """One sandbox for a test module: default rules, Event Grid schema, through the registry."""
    sb, endpoints = start_sandbox(tmp_path_factory.mktemp("sandbox"))
    try:
        yield sb, endpoints
    finally:
        sb.down()


@pytest.fixture
def client(sandbox):
    from devtools.sandbox.observe import SandboxClient

    with SandboxClient(sandbox[1]) as c:
        yield c


# --------------------------------------------------------------------------- a recording subscriber


@dataclass
class Delivery:
    headers: dict[str, str]
    body: Any
    at: float


@dataclass
class Subscriber:
    """An HTTP endpoint that answers with the scripted statuses (then 200) and records requests."""

    script: list[int] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    url: str = ""

    def wait_for(self, count: int, timeout_s: float = 15.0) -> list[Delivery]:
        deadline = time.monotonic() + timeout_s
        while len(self.deliveries) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.deliveries)


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    sub = Subscriber()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                status = sub.script.pop(0) if sub.script else 200
                sub.deliveries.append(Delivery({k.lower(): v for k, v in self.headers.items()},
                                               json.loads(raw), time.monotonic()))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    sub.url = f"http://127.0.0.1:{server.server_address[1]}/api/events?code=not-a-real-key"
    try:
        yield sub
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- registry + bridge


@dataclass
class RegistryBridge:
    registry: str  # host:port
    bridge: Any  # devtools.sandbox.bridge.Bridge
    deadletter_dir: Path
    images_dir: Path
    skopeo: str

    def push(self, ref: str, variant: str = "ok"):
        from devtools.sandbox.oci import build_image, parse_reference, skopeo_push

        repository, tag = parse_reference(ref)
        image = build_image(self.images_dir, repository, tag, variant)
        skopeo_push(image, self.registry, self.skopeo)
        return image

    def dead_letters(self, count: int = 1, timeout_s: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            files = sorted(self.deadletter_dir.glob("*.json"))
            if len(files) >= count:
                return [json.loads(p.read_text()) for p in files]
            time.sleep(0.05)
        return [json.loads(p.read_text()) for p in sorted(self.deadletter_dir.glob("*.json"))]


@pytest.fixture
def registry_bridge(e2e_tools, tmp_path):
    """Factory: a real docker-registry whose notifications go to an in-process bridge delivering
    to `webhook_url`. Everything stops at the end of the test."""
    from devtools.netutil import free_port
    from devtools.sandbox.bridge import Bridge, BridgeConfig
    from devtools.sandbox.procs import ProcessTable
    from devtools.sandbox.sandbox import REGISTRY_RESOURCE_ID, Sandbox

    procs = ProcessTable(tmp_path)
    bridges: list[Bridge] = []

    def make(webhook_url: str, schema: str = "eventgrid", **options: Any) -> RegistryBridge:
        port = free_port()
        registry = f"127.0.0.1:{port}"
        config = BridgeConfig(webhook_url=webhook_url, registry=registry, topic=REGISTRY_RESOURCE_ID,
                              deadletter_dir=str(tmp_path / "deadletter"), schema=schema,
                              **{**FAST_RETRIES, **options})
        bridge = Bridge(config).start()
        bridges.append(bridge)
        registry_config = Sandbox(tmp_path)._write_registry_config(port, bridge.notify_url)
        procs.spawn("registry", [e2e_tools["registry"], "serve", str(registry_config)], cwd=tmp_path)
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://{registry}/v2/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"docker-registry did not start: {procs.log_path('registry')}"
            time.sleep(0.05)
        return RegistryBridge(registry, bridge, tmp_path / "deadletter", tmp_path / "images", e2e_tools["skopeo"])

    try:
        yield make
    finally:
        procs.stop_all()
        for bridge in bridges:
            bridge.stop(drain_s=0)
