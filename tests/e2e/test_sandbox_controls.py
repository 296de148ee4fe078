"""Release controls through the whole sandbox (registry -> bridge -> dev host -> emulator), driven as a
release manager drives them: pushes with skopeo, approvals through the HTTP API and the CLI, chat seen
by the local Teams / Slack receiver. Rules: devtools/sandbox/rules.yaml (checkout-*, inventory-api,
reports-api). Tests share one sandbox and run in file order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from devtools.sandbox.observe import SandboxClient

pytestmark = pytest.mark.e2e


def push(sb, ref: str) -> None:
    result = subprocess.run([sys.executable, "-m", "devtools.sandbox", "--dir", str(sb.dir), "push", ref],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def wait_phase(client: SandboxClient, repository: str, tag: str, app: str, phases: set[str],
               timeout_s: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout_s
    found = None
    while time.monotonic() < deadline:
        found = client.find(repository, tag, app)
        if found and found.get("phase") in phases:
            return found
        time.sleep(0.3)
    raise AssertionError(f"{repository}:{tag} on {app} never reached {phases}: {found}")


def test_a_release_is_promoted_from_staging_and_goes_live_once_approved(sandbox, client):
    sb, _ = sandbox
    push(sb, "checkout-api:3.1.0")
    staged = wait_phase(client, "checkout-api", "3.1.0", "checkout-api-staging", {"succeeded"})
    waiting = wait_phase(client, "checkout-api", "3.1.0", "checkout-api", {"awaiting_approval"})
    assert waiting["data"]["controls"]["promoted_from"] == staged["id"]
    assert waiting["digest"] == staged["digest"]
    assert staged["digest"] not in {a["image"].rpartition("@")[2] for a in client.serves("checkout-api", 4)}
    heard = [m for m in client.chat_messages() if waiting["id"] in json.dumps(m["body"])]
    assert {m["hook"] for m in heard} == {"teams-releases", "slack-releases"}
    assert "webhook" not in json.dumps(client.deployment(waiting["id"]))  # URLs stay in the app settings

    status, body = client.control(waiting["id"], "approve", "checked on staging", by="e2e-release-manager")
    assert status == 202, body
    live = wait_phase(client, "checkout-api", "3.1.0", "checkout-api", {"succeeded", "failed", "rolled_back"})
    assert live["phase"] == "succeeded", live
    assert {a["image"].rpartition("@")[2] for a in client.serves("checkout-api", 4)} == {staged["digest"]}
    story = client.deployment(live["id"])
    assert any("approved by e2e-release-manager (function key): checked on staging" in e["message"]
               for e in story["events"])
    source = client.deployment(staged["id"])
    assert live["id"] in source["data"]["controls"]["promoted_to"]


def test_a_push_under_a_skip_freeze_is_recorded_as_skipped(sandbox, client):
    sb, _ = sandbox
    push(sb, "reports-api:1.1.0")
    d = wait_phase(client, "reports-api", "1.1.0", "reports-api", {"skipped", "succeeded", "failed"})
    assert d["phase"] == "skipped" and "frozen by reports-no-deploys" in d["reason"], d


def test_a_frozen_push_waits_and_an_override_from_the_cli_lets_it_through(sandbox, client):
    sb, endpoints = sandbox
    push(sb, "inventory-api:1.1.0")
    d = wait_phase(client, "inventory-api", "1.1.0", "inventory-api", {"frozen"})
    assert "frozen by inventory-change-freeze" in d["reason"] or d["phase"] == "frozen"
    env = {**os.environ, "ACR_DEPLOY_FUNCTION_URL": endpoints["function_url"],
           "ACR_DEPLOY_FUNCTION_KEY": endpoints["function_key"]}
    result = subprocess.run([sys.executable, "-m", "shared.cli", "override-freeze", d["id"], "--reason",
                             "hotfix for the stock counts", "--by", "oncall", "--json"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["id"] == d["id"]
    live = wait_phase(client, "inventory-api", "1.1.0", "inventory-api", {"succeeded", "failed", "rolled_back"})
    assert live["phase"] == "succeeded", live
    again = subprocess.run([sys.executable, "-m", "shared.cli", "override-freeze", d["id"], "--reason", "again"],
                           capture_output=True, text=True, timeout=60, env=env)
    assert again.returncode == 4 and "succeeded" in again.stderr
