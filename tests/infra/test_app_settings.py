"""The template sets exactly the app settings the code reads (shared/settings.py `SETTINGS`).

Both lists are derived at test time: the code's from the `SETTINGS` registry, the template's from
the app settings object in infra/app/function.bicep. A setting added to the code but not to the
template (or the other way round) fails here; that is the point.
"""

from __future__ import annotations

from pathlib import Path

import importlib
import sys

import pytest

from infra_model import INFRA, REPO_ROOT, accessor, module, object_keys, parse, resource, variable

# Settings the code reads that are deliberately NOT set in Azure, each with the reason.
LOCAL_ONLY = {
    # A storage connection string (Azurite locally). In Azure the connection is identity-based:
    # AzureWebJobsStorage__accountName + the managed identity, and shared-key access is disabled.
    "AzureWebJobsStorage": "connection strings are for local runs only",
    # CA bundle of the local Container Apps emulator's self-signed TLS; Azure's ARM endpoint uses
    # publicly trusted certificates.
    "ACR_DEPLOY_ARM_CA_BUNDLE": "only the local emulator needs a CA bundle",
}

# Settings the template sets that the code never reads: the Functions host / platform reads them.
HOST_LEVEL = {
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "Functions host telemetry",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Entra ID auth for telemetry (local auth is off)",
}


@pytest.fixture(scope="module")
def code_settings() -> set[str]:
    sys.path.insert(0, str(REPO_ROOT))
    try:
        settings = importlib.import_module("shared.settings")
    finally:
        sys.path.remove(str(REPO_ROOT))
    return set(settings.SETTINGS)


@pytest.fixture(scope="module")
def function_bicep():
    return parse(INFRA / "app" / "function.bicep")


@pytest.fixture(scope="module")
def template_settings(function_bicep) -> set[str]:
    site = resource(function_bicep, "functionApp")
    app_settings = site.body["properties"]["siteConfig"]["appSettings"]
    # `[for setting in items(appSettings): {name: setting.key, value: setting.value}]`
    source = app_settings["loop_type"]["detail"]["array_name"]["function"]
    assert source["type"] == "items"
    keys = object_keys(source["parameters"]["arg_1"], function_bicep)
    assert keys, "no app settings found in function.bicep"
    return keys


def test_allow_lists_are_current(code_settings):
    stale = set(LOCAL_ONLY) - code_settings
    assert not stale, f"LOCAL_ONLY names settings the code no longer reads: {sorted(stale)}"
    clash = set(HOST_LEVEL) & code_settings
    assert not clash, f"the code reads {sorted(clash)}: move them out of HOST_LEVEL"


def test_every_setting_the_code_reads_is_set_by_the_template(code_settings, template_settings):
    missing = code_settings - set(LOCAL_ONLY) - template_settings
    assert not missing, (
        f"shared/settings.py reads {sorted(missing)} but infra/app/function.bicep does not set them: "
        "add them to the app settings (or, if they only make sense locally, to LOCAL_ONLY with a reason)"
    )


def test_every_setting_the_template_sets_is_read_by_the_code(code_settings, template_settings):
    unknown = template_settings - code_settings - set(HOST_LEVEL)
    assert not unknown, f"the template sets {sorted(unknown)}, which the code never reads"


def test_local_only_settings_are_not_set_in_azure(template_settings):
    leaked = template_settings & set(LOCAL_ONLY)
    assert not leaked, f"local-only settings set in Azure: {sorted(leaked)}"


def test_setting_values(function_bicep):
    base = variable(function_bicep, "baseAppSettings")
    assert base["ACR_DEPLOY_ARM_CREDENTIAL"] == "default"
    assert accessor(base["AzureWebJobsStorage__accountName"]) == "storage.name"
    # environment().resourceManager: the ARM endpoint of whichever cloud the template is deployed to.
    arm = base["ACR_DEPLOY_ARM_ENDPOINT"]["operator"]
    assert arm["type"] == "property_accessor"
    assert arm["operands"] == {"operand_1": {"function": {"type": "environment"}}, "operand_2": "resourceManager"}
    assert base["ACR_DEPLOY_RULES_FILE"] == "rulesFile"
    assert function_bicep["parameters"]["rulesFile"]["default"] == "rules.yaml"
    assert base["ACR_DEPLOY_REGISTRIES"] == "registries"
    assert base["ACR_DEPLOY_SUBSCRIPTION_ID"] == "targetSubscriptionId"
    assert base["ACR_DEPLOY_TABLE_PREFIX"] == "tablePrefix"
    assert "retentionDays" in str(base["ACR_DEPLOY_RETENTION_DAYS"])
    assert function_bicep["parameters"]["retentionDays"]["default"] == 90
    assert "join" in str(base["ACR_DEPLOY_DISCOVERY_RESOURCE_GROUPS"])
    assert "first" in str(base["ACR_DEPLOY_RESOURCE_GROUP"])
    # No connection strings / keys among the settings.
    assert not any("connectionstring" in k.lower() and k != "APPLICATIONINSIGHTS_CONNECTION_STRING" for k in base)
    # The events endpoint is only set when a notifications topic exists.
    events = variable(function_bicep, "eventsAppSettings")["operator"]
    assert events["type"] == "conditional"
    assert events["operands"]["true_value"] == {}
    assert events["operands"]["false_value"] == {"ACR_DEPLOY_EVENTS_ENDPOINT": "eventsEndpoint"}


def test_main_passes_the_setting_values(main_bicep):
    params = module(main_bicep, "functionApp").body["params"]
    assert params["registries"] == "${registry.properties.loginServer}=${registry.id}"
    assert params["tablePrefix"] == "tablePrefix"
    assert params["retentionDays"] == "retentionDays"
    assert main_bicep["parameters"]["retentionDays"]["default"] == 90
    assert params["rulesFile"] == "rulesFile"
    assert params["targetResourceGroupNames"] == "targetResourceGroupNames"
    events = params["eventsEndpoint"]["operator"]
    assert events["type"] == "conditional" and events["operands"]["condition"] == "deployNotificationsTopic"
    assert accessor(events["operands"]["true_value"]) == "notificationsTopic.outputs.endpoint"
    assert events["operands"]["false_value"] == ""
    assert main_bicep["parameters"]["tablePrefix"]["default"] == "acrdeploy"


def test_entra_sign_in_is_optional_off_by_default_and_leaves_the_event_grid_webhook_open(function_bicep, main_bicep):
    assert function_bicep["parameters"]["entraSignIn"]["default"] is False
    assert main_bicep["parameters"]["entraSignIn"]["default"] is False
    params = module(main_bicep, "functionApp").body["params"]
    assert params["entraSignIn"] == "entraSignIn" and params["entraClientId"] == "entraClientId"
    text = (Path(__file__).resolve().parents[2] / "infra" / "app" / "function.bicep").read_text()
    auth = text[text.index("resource authSettings"):]
    assert "= if (entraSignIn)" in auth.splitlines()[0]
    assert "name: 'authsettingsV2'" in auth and "requireAuthentication: true" in auth
    assert "'/runtime/webhooks/eventgrid'" in auth  # Event Grid delivers without a browser login
