"""The whole pipeline on loopback, driven as a user drives it: `sandbox push` (skopeo into the
registry; the registry notifies the bridge; the bridge delivers ImagePushed to the function app
under the dev host), then the history HTTP API with the function key, then the app's own HTTPS URL.

Tests in this module share one sandbox and run in file order; each uses versions above the
previous test's, because a target never goes back to an older version.
"""

from __future__ import annotations

import io
import json
import os
import ssl
import stat
import subprocess
import sys

import httpx
import pytest

from devtools.sandbox import SandboxError
from devtools.sandbox.observe import ARM_API_VERSION, SandboxClient
from devtools.sandbox.procs import alive
from devtools.sandbox.push import push
from devtools.sandbox.sandbox import Sandbox

from .conftest import start_sandbox

pytestmark = pytest.mark.e2e

ENDPOINT_KEYS = {
    "function_url", "function_key", "eventgrid_webhook_url", "registry", "registry_resource_id", "arm_url",
    "arm_ca", "subscription_id", "resource_group", "environment_id", "storage_connection_string",
}


def quiet(line: str) -> None:
    pass


def cli(sandbox_dir, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "devtools.sandbox", "--dir", str(sandbox_dir), *args],
                          capture_output=True, text=True, timeout=timeout)


def traffic(client: SandboxClient, app: str) -> dict[str, int]:
    """The app's traffic table as ARM reports it: revision name -> weight."""
    e = client.endpoints
    url = (f"{e['arm_url']}/subscriptions/{e['subscription_id']}/resourceGroups/{e['resource_group']}"
           f"/providers/Microsoft.App/containerApps/{app}")
    body = httpx.get(url, params={"api-version": ARM_API_VERSION}, verify=ssl.create_default_context(cafile=e["arm_ca"]),
                     headers={"Authorization": "Bearer sandbox"}, timeout=10).json()
    return {t.get("revisionName", "latest"): t["weight"]
            for t in body["properties"]["configuration"]["ingress"]["traffic"]}


def test_up_writes_endpoints_and_everything_answers(sandbox):
    sb, endpoints = sandbox
    assert ENDPOINT_KEYS <= set(endpoints)
    on_disk = json.loads(sb.endpoints_path.read_text())
    assert on_disk == endpoints
    assert stat.S_IMODE(os.stat(sb.endpoints_path).st_mode) == 0o600, "endpoints.json holds the function key"
    assert endpoints["registry_mode"] == "registry"
    assert httpx.get(f"http://{endpoints['registry']}/v2/", timeout=5).status_code == 200
    status = cli(sb.dir, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    for name in ("azurite", "emulator", "registry", "bridge", "host"):
        assert f"{name}" in status.stdout and "NOT RUNNING" not in status.stdout
    assert endpoints["function_key"] not in status.stdout
    with pytest.raises(SandboxError, match="already running"):
        Sandbox(sb.dir, echo=quiet).up()


def test_a_release_goes_live(sandbox, client):
    sb, endpoints = sandbox
    pushed = cli(sb.dir, "push", "orders-api:1.5.0")
    assert pushed.returncode == 0, pushed.stderr
    assert "pushed" in pushed.stdout and "skopeo" in pushed.stdout

    deployment = client.wait_for("orders-api", "1.5.0", "orders-api", timeout_s=60)
    assert deployment["phase"] == "succeeded", deployment
    assert deployment["image"].startswith(f"{endpoints['registry']}/orders-api@sha256:")

    answers = client.serves("orders-api", requests=4)
    assert {(a["status"], a["image"], a["revision"]) for a in answers} == {
        (200, deployment["image"], deployment["revision"])}
    story = client.deployment(deployment["id"])
    phases = [e["phase"] for e in story["events"]]
    assert phases[0] == "queued" and phases[-1] == "succeeded", phases
    assert "smoke_testing" in phases, phases


def test_a_prerelease_goes_to_staging_only(sandbox, client):
    sb, _ = sandbox
    result = push("orders-api:1.6.0-rc.1", "ok", sb.dir, echo=quiet)
    assert result.via == "registry" and result.delivered

    deployment = client.wait_for("orders-api", "1.6.0-rc.1", "orders-api-staging", timeout_s=60)
    assert deployment["phase"] == "succeeded", deployment
    assert client.find("orders-api", "1.6.0-rc.1", "orders-api") is None, "a pre-release must not reach production"
    staging = client.serves("orders-api-staging", requests=2)
    assert {a["image"].rpartition("@")[2] for a in staging} == {result.image.digest}
    production = client.serves("orders-api", requests=4)
    assert result.image.digest not in {a["image"].rpartition("@")[2] for a in production}


def test_a_broken_image_fails_its_smoke_checks_and_never_receives_traffic(sandbox, client):
    sb, _ = sandbox
    good = push("orders-api:1.7.0", "ok", sb.dir, echo=quiet)
    live = client.wait_for("orders-api", "1.7.0", "orders-api", timeout_s=60)
    assert live["phase"] == "succeeded", live

    broken = push("orders-api:1.7.1", "broken", sb.dir, echo=quiet)
    failed = client.wait_for("orders-api", "1.7.1", "orders-api", timeout_s=60)
    assert failed["phase"] == "failed", failed
    assert "smoke" in failed["reason"].lower(), failed["reason"]

    answers = client.serves("orders-api", requests=6)
    assert {a["image"].rpartition("@")[2] for a in answers} == {good.image.digest}
    assert all(a["status"] == 200 for a in answers)
    weights = traffic(client, "orders-api")
    assert weights.get(failed["revision"], 0) == 0, weights
    assert broken.image.digest != good.image.digest


def test_rollback_from_the_cli_puts_the_previous_revision_back(sandbox, client):
    """`acr-deploy rollback` run inside the sandbox directory reads its local.settings.json, as a
    release manager's would next to function_app.py."""
    sb, _ = sandbox
    before = client.find("orders-api", "1.7.0", "orders-api")
    assert before and before["phase"] == "succeeded", "runs after the broken-image test"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACR_DEPLOY_", "AzureWebJobs"))}
    done = subprocess.run([sys.executable, "-m", "shared.cli", "rollback", "orders-api", "--wait",
                           "--timeout", "60", "--json"], cwd=sb.dir, env=env,
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr + done.stdout
    rollback = json.loads(done.stdout)
    assert rollback["kind"] == "rollback" and rollback["phase"] == "succeeded", rollback
    assert rollback["revision"] != before["revision"]
    answers = client.serves("orders-api", requests=4)
    assert {a["revision"] for a in answers} == {rollback["revision"]}
    history = client.deployments(app="orders-api")
    assert any(d["id"] == rollback["id"] and d["kind"] == "rollback" for d in history)


def test_cloudevents_schema_through_the_whole_pipeline(e2e_tools, tmp_path):
    """A second sandbox, running at the same time as the module's: own ports, own directory."""
    sb, endpoints = start_sandbox(tmp_path / "ce", schema="cloudevents")
    pids = sb.procs.running()
    try:
        assert endpoints["schema"] == "cloudevents"
        result = push("payments-api:2.0.1-rc.1", "ok", sb.dir, echo=quiet)
        assert result.via == "registry"
        with SandboxClient(endpoints) as client:
            deployment = client.wait_for("payments-api", "2.0.1-rc.1", "payments-api-staging", timeout_s=60)
        assert deployment["phase"] == "succeeded", deployment
        health = httpx.get(f"{endpoints['bridge_url']}/healthz", timeout=5).json()
        assert health["schema"] == "cloudevents" and health["stats"]["delivered"] >= 1
    finally:
        report = sb.down()
    assert set(pids) == {"azurite", "emulator", "registry", "bridge", "chat", "host"}
    assert not [name for name, pid in pids.items() if alive(pid)], report
    assert not list(sb.procs.pid_dir.glob("*.pid"))


def test_without_a_registry_push_sends_the_event_directly(azurite_tool, tmp_path):
    sb, endpoints = start_sandbox(tmp_path / "direct", use_registry=False)
    try:
        assert endpoints["registry_mode"] == "direct" and "registry" not in sb.procs.running()
        lines: list[str] = []
        result = push("orders-api:2.0.0", "ok", sb.dir, echo=lines.append)
        assert result.via == "direct" and result.delivered
        assert any("directly" in line for line in lines), lines
        with SandboxClient(endpoints) as client:
            deployment = client.wait_for("orders-api", "2.0.0", "orders-api", timeout_s=60)
        assert deployment["phase"] == "succeeded", deployment
    finally:
        sb.down()


def test_the_demo_passes_and_stops_everything(e2e_tools, tmp_path):
    from rich.console import Console

    from devtools.sandbox.demo import run_demo

    out = io.StringIO()
    code = run_demo(tmp_path / "demo", console=Console(file=out, width=200), timeout_s=90)
    text = out.getvalue()
    assert code == 0, text
    assert "demo passed" in text and "history" in text and "what each app serves" in text
    assert not Sandbox(tmp_path / "demo", echo=quiet).procs.running(), "the demo must stop its servers"
