"""The sandbox against the service's realistic behaviours (the emulator's crash loop, cold start and
traffic labels), pushed through the registry and the bridge as a user pushes, under the Bicep's role.

One sandbox for the module. Behaviours are added per app through the emulator's control API before the
push, since the revision is pinned to a digest the push creates.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys

import httpx
import pytest

from devtools.aca_emulator import EmulatorControl
from devtools.sandbox.observe import ARM_API_VERSION, SandboxClient
from devtools.sandbox.push import push

pytestmark = pytest.mark.e2e


def quiet(line: str) -> None:
    pass


def control(endpoints) -> EmulatorControl:
    return EmulatorControl(endpoints["arm_url"], endpoints["arm_ca"])


def arm(client: SandboxClient, app: str, method: str = "GET", body: dict | None = None) -> dict:
    e = client.endpoints
    url = (f"{e['arm_url']}/subscriptions/{e['subscription_id']}/resourceGroups/{e['resource_group']}"
           f"/providers/Microsoft.App/containerApps/{app}")
    response = httpx.request(method, url, params={"api-version": ARM_API_VERSION}, json=body,
                             verify=ssl.create_default_context(cafile=e["arm_ca"]),
                             headers={"Authorization": "Bearer sandbox"}, timeout=10)
    response.raise_for_status()
    return response.json() if response.content else {}


def labels(client: SandboxClient, app: str) -> dict[str, str]:
    traffic = arm(client, app)["properties"]["configuration"]["ingress"]["traffic"]
    return {t["label"]: t.get("revisionName", "latest") for t in traffic if t.get("label")}


def test_a_crash_looping_release_fails_with_the_services_reason(sandbox, client):
    sb, endpoints = sandbox
    with control(endpoints) as ctl:
        ctl.add_behavior(app="orders-api-staging", crash_loop=True)
        ctl.config(progress_deadline=3)
    try:
        push("orders-api:1.8.0-rc.1", "ok", sb.dir, echo=quiet)
        failed = client.wait_for("orders-api", "1.8.0-rc.1", "orders-api-staging", timeout_s=60)
    finally:
        with control(endpoints) as ctl:
            ctl.config(progress_deadline=60)
    assert failed["phase"] == "failed", failed
    assert "Deployment Progress Deadline Exceeded" in failed["reason"], failed["reason"]
    assert "not ready within" not in failed["reason"]  # the service's reason, long before the time-out
    served = client.serves("orders-api-staging", requests=3)
    assert {a["revision"] for a in served} == {"orders-api-staging--seed"}


def test_a_cold_start_is_recorded_as_warming_up_and_goes_live(sandbox, client):
    sb, endpoints = sandbox
    with control(endpoints) as ctl:
        ctl.add_behavior(app="payments-api-staging", cold_start_ms=4000)  # longer than the 2 s check time-out
    pushed = push("payments-api:2.1.0-rc.1", "ok", sb.dir, echo=quiet)
    live = client.wait_for("payments-api", "2.1.0-rc.1", "payments-api-staging", timeout_s=90)
    assert live["phase"] == "succeeded", live
    story = [e["message"] for e in client.deployment(live["id"])["events"]]
    assert any("is scaled to zero" in m for m in story), story
    assert any("warming up" in m for m in story), story
    served = client.serves("payments-api-staging", requests=2)
    assert {a["image"].rpartition("@")[2] for a in served} == {pushed.image.digest}


def test_a_traffic_label_survives_a_canary_and_a_manual_rollback(sandbox, client):
    sb, endpoints = sandbox
    seed = "payments-api--seed"
    app = arm(client, "payments-api")
    arm(client, "payments-api", "PATCH", {"location": app["location"], "properties": {"configuration": {
        "ingress": {"traffic": [{"revisionName": seed, "weight": 100, "label": "stable"}]}}}})
    assert labels(client, "payments-api") == {"stable": seed}

    push("payments-api:2.2.0", "ok", sb.dir, echo=quiet)  # canary: 25 %, then 100 %
    live = client.wait_for("payments-api", "2.2.0", "payments-api", timeout_s=90)
    assert live["phase"] == "succeeded", live
    assert labels(client, "payments-api") == {"stable": seed}

    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACR_DEPLOY_", "AzureWebJobs"))}
    done = subprocess.run([sys.executable, "-m", "shared.cli", "rollback", "payments-api", "--to", seed, "--wait",
                           "--timeout", "60", "--json"], cwd=sb.dir, env=env, capture_output=True, text=True,
                          timeout=90)
    assert done.returncode == 0, done.stderr + done.stdout
    assert json.loads(done.stdout)["phase"] == "succeeded"
    assert labels(client, "payments-api") == {"stable": seed}
    assert {a["revision"] for a in client.serves("payments-api", requests=3)} == {seed}
