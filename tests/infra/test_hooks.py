"""The azd hooks, run for real with POSIX sh and a stand-in `az` that records its arguments."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from infra_model import INFRA

HOOKS = INFRA / "hooks"
REGISTRY_ID = "/subscriptions/0000/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/myacr"

ENV = {
    "AZURE_RESOURCE_GROUP": "rg-dev",
    "AZURE_FUNCTION_APP_NAME": "func-abc",
    "EVENTGRID_SYSTEM_TOPIC_NAME": "evgst-acr-abc",
    "EVENTGRID_FUNCTION_NAME": "on_image_pushed",
    "AZURE_STORAGE_ACCOUNT_NAME": "stabc",
    "EVENTGRID_DEADLETTER_CONTAINER": "eventgrid-deadletter",
    "AZURE_SUBSCRIPTION_ID": "0000",
}


def _run(script: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    """Run a hook as azd does: from the project root (here a scratch directory)."""
    base = {"PATH": f"{tmp_path}:/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run(
        ["sh", str(HOOKS / script)], env={**base, **env}, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


def stub_tool(tmp_path: Path, name: str, answers: dict[str, tuple[str, int]] | None = None) -> Path:
    """A stand-in CLI on PATH: records its arguments (one line per call) and, for arguments that
    start with a key of `answers`, prints that text and exits with that code; else prints nothing
    and succeeds."""
    log = tmp_path / f"{name}.log"
    cases = "".join(
        f'  "{prefix}"*) cat <<\'OUT\'\n{text}\nOUT\n    exit {code} ;;\n'
        for prefix, (text, code) in (answers or {}).items()
    )
    tool = tmp_path / name
    tool.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\ncase "$*" in\n{cases}esac\nexit 0\n')
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return log


@pytest.fixture
def fake_az(tmp_path):
    return stub_tool(tmp_path, "az")


def test_postdeploy_deploys_the_event_subscription(tmp_path, fake_az):
    result = _run("postdeploy.sh", ENV, tmp_path)
    assert result.returncode == 0, result.stderr
    calls = fake_az.read_text().splitlines()
    assert calls[0] == "account set --subscription 0000"
    assert calls[1].startswith("functionapp function show --resource-group rg-dev --name func-abc --function-name on_image_pushed")
    deploy = calls[2]
    assert deploy.startswith("deployment group create --resource-group rg-dev --subscription 0000")
    assert "--name acr-deploy-event-subscription" in deploy
    template = deploy.split("--template-file ", 1)[1].split(" ", 1)[0]
    assert Path(template).resolve() == (INFRA / "app" / "event-subscription.bicep").resolve()
    for expected in (
        "systemTopicName=evgst-acr-abc",
        "functionAppName=func-abc",
        "functionName=on_image_pushed",
        "storageAccountName=stabc",
        "deadLetterContainerName=eventgrid-deadletter",
    ):
        assert expected in deploy


def test_postdeploy_needs_provisioned_outputs(tmp_path, fake_az):
    env = {k: v for k, v in ENV.items() if k != "EVENTGRID_SYSTEM_TOPIC_NAME"}
    result = _run("postdeploy.sh", env, tmp_path)
    assert result.returncode == 1
    assert "EVENTGRID_SYSTEM_TOPIC_NAME is not set" in result.stderr


def test_postdeploy_needs_the_azure_cli(tmp_path):
    result = _run("postdeploy.sh", ENV, tmp_path)
    assert result.returncode == 1 and "Azure CLI" in result.stderr


@pytest.mark.parametrize(
    ("env", "ok"),
    [
        ({}, False),
        ({"ACR_REGISTRY_RESOURCE_ID": REGISTRY_ID}, True),
        ({"ACR_REGISTRY_RESOURCE_ID": "myacr"}, False),
        ({"ACR_REGISTRY_NAME": "myacr", "ACR_REGISTRY_RESOURCE_GROUP": "rg-acr"}, True),
        ({"ACR_REGISTRY_NAME": "myacr"}, False),
    ],
)
def test_preprovision_requires_a_registry(tmp_path, env, ok):
    (tmp_path / "rules.yaml").write_text("rules: []\n")
    result = _run("preprovision.sh", env, tmp_path)
    assert (result.returncode == 0) is ok, result.stderr


@pytest.mark.parametrize(
    ("rules_setting", "present", "ok"),
    [
        (None, True, True),  # default rules.yaml, deployed with the code
        (None, False, False),  # default rules.yaml missing: the app would not start
        ("", False, True),  # explicitly empty: zero-config convention
        ("config/rules-prod.yaml", False, False),
        ("/home/site/rules.yaml", False, True),  # absolute: not in the package, not checked
    ],
)
def test_preprovision_checks_the_rules_file_ships_with_the_code(tmp_path, rules_setting, present, ok):
    if present:
        (tmp_path / "rules.yaml").write_text("rules: []\n")
    env = {"ACR_REGISTRY_RESOURCE_ID": REGISTRY_ID}
    if rules_setting is not None:
        env["ACR_DEPLOY_RULES_FILE"] = rules_setting
    result = _run("preprovision.sh", env, tmp_path)
    assert (result.returncode == 0) is ok, result.stderr
    if not ok:
        assert "ACR_DEPLOY_RULES_FILE" in result.stderr


def test_hooks_pass_shellcheck():
    if shutil.which("shellcheck") is None:
        from tests.conftest import require_tool  # skips locally, fails in CI (make setup installs it)

        require_tool("shellcheck")
    scripts = [str(p) for p in sorted(HOOKS.glob("*.sh"))]
    result = subprocess.run(["shellcheck", "-s", "sh", *scripts], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


# ---- existing Event Grid system topics (one per source) -----------------------------------------

TOPIC_LIST = "eventgrid system-topic list"


def _topics(*rows: tuple[str, ...]) -> tuple[str, int]:
    return "\n".join("\t".join(row) for row in rows), 0


def _preprovision(tmp_path, topics, env=None):
    (tmp_path / "rules.yaml").write_text("rules: []\n")
    az = stub_tool(tmp_path, "az", {TOPIC_LIST: topics,
                                    "acr show": (REGISTRY_ID, 0)})
    azd = stub_tool(tmp_path, "azd")
    result = _run("preprovision.sh", {"ACR_REGISTRY_RESOURCE_ID": REGISTRY_ID, "AZURE_ENV_NAME": "dev", **(env or {})},
                  tmp_path)
    return result, az.read_text().splitlines(), (azd.read_text().splitlines() if azd.exists() else [])


def _env_set(azd_calls: list[str]) -> dict[str, str]:
    out = {}
    for call in azd_calls:
        parts = call.split(" ", 3)
        if parts[:2] == ["env", "set"]:
            out[parts[2]] = parts[3] if len(parts) > 3 else ""
    return out


def test_preprovision_finds_the_registrys_existing_system_topic(tmp_path):
    other = REGISTRY_ID.replace("myacr", "otheracr")
    result, az, azd = _preprovision(tmp_path, _topics(
        (other, "evgst-other", "rg-other", "p-0", ""),
        (REGISTRY_ID.upper(), "myacr-topic", "rg-acr", "principal-1", ""),  # ids compare case-insensitively
    ))
    assert result.returncode == 0, result.stderr
    assert any(call.startswith(f"{TOPIC_LIST} --subscription 0000") for call in az)
    assert _env_set(azd) == {"EVENTGRID_EXISTING_SYSTEM_TOPIC_NAME": "myacr-topic",
                             "EVENTGRID_EXISTING_SYSTEM_TOPIC_RESOURCE_GROUP": "rg-acr",
                             "EVENTGRID_EXISTING_SYSTEM_TOPIC_PRINCIPAL_ID": "principal-1"}
    assert "never deleted by azd down" in result.stdout


def test_preprovision_without_a_topic_lets_provisioning_create_one(tmp_path):
    result, _, azd = _preprovision(tmp_path, _topics((REGISTRY_ID.replace("myacr", "x"), "t", "rg", "p", "")))
    assert result.returncode == 0, result.stderr
    assert set(_env_set(azd).values()) == {""}  # cleared: a topic found before and deleted since is forgotten
    assert len(_env_set(azd)) == 3


def test_preprovision_keeps_managing_the_topic_this_environment_created(tmp_path):
    result, _, azd = _preprovision(tmp_path, _topics((REGISTRY_ID, "evgst-acr-abc", "rg-dev", "p", "dev")))
    assert result.returncode == 0, result.stderr
    assert set(_env_set(azd).values()) == {""}


def test_preprovision_refuses_an_existing_topic_without_an_identity(tmp_path):
    result, _, azd = _preprovision(tmp_path, _topics((REGISTRY_ID, "myacr-topic", "rg-acr", "", "")))
    assert result.returncode == 1
    assert "no system-assigned identity" in result.stderr
    assert "az eventgrid system-topic update --name myacr-topic --resource-group rg-acr" in result.stderr
    assert _env_set(azd) == {}


def test_preprovision_resolves_a_registry_given_by_name(tmp_path):
    (tmp_path / "rules.yaml").write_text("rules: []\n")
    az = stub_tool(tmp_path, "az", {"acr show": (REGISTRY_ID, 0),
                                    TOPIC_LIST: _topics((REGISTRY_ID, "t1", "rg-acr", "p1", ""))})
    azd = stub_tool(tmp_path, "azd")
    result = _run("preprovision.sh", {"ACR_REGISTRY_NAME": "myacr", "ACR_REGISTRY_RESOURCE_GROUP": "rg-acr"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert az.read_text().splitlines()[0].startswith("acr show --name myacr --resource-group rg-acr")
    assert _env_set(azd.read_text().splitlines())["EVENTGRID_EXISTING_SYSTEM_TOPIC_NAME"] == "t1"


def test_postdeploy_subscribes_on_an_existing_topic_in_its_own_resource_group(tmp_path, fake_az):
    env = {**ENV, "EVENTGRID_SYSTEM_TOPIC_NAME": "myacr-topic", "EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP": "rg-acr",
           "EVENTGRID_SYSTEM_TOPIC_SUBSCRIPTION_ID": "1111", "EVENTGRID_SYSTEM_TOPIC_CREATED": "false"}
    result = _run("postdeploy.sh", env, tmp_path)
    assert result.returncode == 0, result.stderr
    deploy = next(c for c in fake_az.read_text().splitlines() if c.startswith("deployment group create"))
    assert deploy.startswith("deployment group create --resource-group rg-acr --subscription 1111")
    for expected in ("systemTopicName=myacr-topic", "subscriptionName=acr-deploy-func-abc",
                     "appResourceGroup=rg-dev", "appSubscriptionId=0000"):
        assert expected in deploy


def test_postdeploy_on_its_own_topic_keeps_the_usual_subscription_name(tmp_path, fake_az):
    result = _run("postdeploy.sh", {**ENV, "EVENTGRID_SYSTEM_TOPIC_CREATED": "true"}, tmp_path)
    assert result.returncode == 0, result.stderr
    deploy = next(c for c in fake_az.read_text().splitlines() if c.startswith("deployment group create"))
    assert "subscriptionName=acr-deploy-image-pushed" in deploy and "--resource-group rg-dev" in deploy


def test_postdeploy_gives_up_after_its_bound_and_says_what_the_host_indexed(tmp_path):
    az = stub_tool(tmp_path, "az", {
        "functionapp function show": ("", 3),
        "functionapp function list": ("rollout_step\nsweep_rollouts", 0),
        "rest --method get": ('{"state": "Running", "errors": null}', 0),
    })
    env = {**ENV, "ACR_DEPLOY_POSTDEPLOY_WAIT_S": "2", "ACR_DEPLOY_POSTDEPLOY_POLL_S": "1"}
    result = _run("postdeploy.sh", env, tmp_path)
    assert result.returncode == 1
    calls = az.read_text().splitlines()
    assert sum(c.startswith("functionapp function show") for c in calls) == 3  # bounded: 0 s, 1 s, 2 s
    assert not any(c.startswith("deployment group create") for c in calls)
    assert "Functions the host indexed:\n  rollout_step\n  sweep_rollouts" in result.stderr
    assert "/sites/func-abc/hostruntime/admin/host/status" in next(c for c in calls if c.startswith("rest"))
    assert 'Host status: {"state": "Running"' in result.stderr


def test_postdeploy_says_when_the_host_indexed_nothing(tmp_path):
    stub_tool(tmp_path, "az", {"functionapp function show": ("", 3), "functionapp function list": ("", 0),
                               "rest --method get": ("", 1)})
    result = _run("postdeploy.sh", {**ENV, "ACR_DEPLOY_POSTDEPLOY_WAIT_S": "0"}, tmp_path)
    assert result.returncode == 1
    assert "The host indexed no function: the Python worker refused function_app.py" in result.stderr


def test_predown_removes_only_its_subscription_from_a_topic_it_did_not_create(tmp_path, fake_az):
    env = {**ENV, "EVENTGRID_SYSTEM_TOPIC_NAME": "myacr-topic", "EVENTGRID_SYSTEM_TOPIC_RESOURCE_GROUP": "rg-acr",
           "EVENTGRID_SYSTEM_TOPIC_SUBSCRIPTION_ID": "1111", "EVENTGRID_SYSTEM_TOPIC_CREATED": "false"}
    result = _run("predown.sh", env, tmp_path)
    assert result.returncode == 0, result.stderr
    (call,) = fake_az.read_text().splitlines()
    assert call == ("eventgrid system-topic event-subscription delete --resource-group rg-acr --subscription 1111 "
                    "--system-topic-name myacr-topic --name acr-deploy-func-abc --yes")


def test_predown_leaves_its_own_topic_to_the_resource_group_deletion(tmp_path, fake_az):
    result = _run("predown.sh", {**ENV, "EVENTGRID_SYSTEM_TOPIC_CREATED": "true"}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert not fake_az.exists()  # no az call at all: nothing outside the resource group to clean
