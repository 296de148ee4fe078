"""`acr-deploy` as a release manager runs it after `sandbox env`: everything through the function
app's HTTP API (no storage or ARM access on this side), against the package's sandbox. Runs after
test_history_page.py (file order; versions only go up)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest

from devtools.sandbox.observe import SandboxClient
from devtools.sandbox.push import push
from devtools.sandbox.sandbox import pusher

from .conftest import RUNNING, quiet

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cli_env(seeded, tmp_path_factory):
    """The environment `eval "$(python -m devtools.sandbox env)"` gives, in a directory without
    local.settings.json and without any storage setting: only the API can answer."""
    endpoints, _ = seeded
    exports = subprocess.run([sys.executable, "-m", "devtools.sandbox", "--dir", endpoints["dir"], "env"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACR_DEPLOY_", "AzureWebJobs"))}
    for line in exports.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = shlex.split(value)[0]
    assert env["ACR_DEPLOY_FUNCTION_KEY"] == endpoints["function_key"]
    env["COLUMNS"] = "100"
    return env, tmp_path_factory.mktemp("release-manager")


def acr_deploy(cli_env, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env, cwd = cli_env
    return subprocess.run([sys.executable, "-m", "shared.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_history_follow_streams_a_running_canary_to_its_end(seeded, cli_env):
    endpoints, _ = seeded
    push("payments-api:2.2.0", "ok", endpoints["dir"], echo=quiet)
    with SandboxClient(endpoints) as client:
        client.wait_for("payments-api", "2.2.0", "payments-api", timeout_s=60, phases=RUNNING)
    done = acr_deploy(cli_env, "history", "payments-api", "--follow", "--timeout", "90")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "push of payments-api:2.2.0 to payments-api" in lines[0]
    assert any(f"pushed by {pusher()}" in line for line in lines)
    assert any("shifting" in line for line in lines) and lines[-1].startswith("succeeded: ")


def test_rollback_through_the_api_with_a_reason_and_show_by_prefix(seeded, cli_env):
    done = acr_deploy(cli_env, "rollback", "payments-api", "--wait", "--timeout", "60", "--json",
                      "--reason", "latency after 2.2.0")
    assert done.returncode == 0, done.stdout + done.stderr
    rollback = json.loads(done.stdout)
    assert rollback["kind"] == "rollback" and rollback["phase"] == "succeeded", rollback
    assert rollback["pushed_by"].endswith(": latency after 2.2.0")
    assert rollback["restores"]["tag"] == "2.1.0", rollback["restores"]

    short = rollback["id"].split("-")[1][:8]
    shown = acr_deploy(cli_env, "show", short)
    assert shown.returncode == 0, shown.stderr
    assert f"rollback to {rollback['revision']} (2.1.0) on payments-api" in shown.stdout
    listed = acr_deploy(cli_env, "history", "payments-api", "--wide")
    assert "rollback to payments-api--" in listed.stdout and short in listed.stdout
    apps = acr_deploy(cli_env, "apps", "--json")
    live = next(a for a in json.loads(apps.stdout)["items"] if a["app"] == "payments-api")["live"]
    assert live["revision"] == rollback["revision"]


def test_pushes_that_deployed_nothing_over_the_api(seeded, cli_env):
    listed = acr_deploy(cli_env, "rejections", "orders-api", "--json")
    assert listed.returncode == 0, listed.stderr
    assert any(i["tag"] == "1.4.0" and "is older than 1.5.0, live on orders-api" in i["reason"] for i in json.loads(listed.stdout)["items"])
    everything = acr_deploy(cli_env, "history", "--all", "--csv")
    assert "not deployed" in everything.stdout and "1.4.0" in everything.stdout
