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


@pytest.fixture
def fake_az(tmp_path):
    log = tmp_path / "az.log"
    az = tmp_path / "az"
    az.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexit 0\n')
    az.chmod(az.stat().st_mode | stat.S_IEXEC)
    return log


def test_postdeploy_deploys_the_event_subscription(tmp_path, fake_az):
    result = _run("postdeploy.sh", ENV, tmp_path)
    assert result.returncode == 0, result.stderr
    calls = fake_az.read_text().splitlines()
    assert calls[0] == "account set --subscription 0000"
    assert calls[1].startswith("functionapp function show --resource-group rg-dev --name func-abc --function-name on_image_pushed")
    deploy = calls[2]
    assert deploy.startswith("deployment group create --resource-group rg-dev --name acr-deploy-event-subscription")
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
