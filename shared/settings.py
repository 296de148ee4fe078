"""Every app setting the code reads, in one place.

`SETTINGS` is the registry: infra tests compare it with what `infra/` sets, so adding a setting
means adding it here (with a description) and to the Bicep app settings. Nothing else in the code
reads `os.environ` for configuration.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Mapping

# name -> (default or None, description). Host-level settings that the Functions runtime itself
# reads (FUNCTIONS_*, APPLICATIONINSIGHTS_CONNECTION_STRING) are not listed: the code only asks whether the
# connection string is set (telemetry `auto`); the azure-monitor-opentelemetry distro reads it itself.
SETTINGS: dict[str, tuple[str | None, str]] = {
    "AzureWebJobsStorage": (
        None,
        "Storage connection string (local: Azurite). In Azure leave it unset and set "
        "AzureWebJobsStorage__accountName for an identity-based connection.",
    ),
    "AzureWebJobsStorage__accountName": (
        None,
        "Storage account name for identity-based access (DefaultAzureCredential + RBAC).",
    ),
    "ACR_DEPLOY_RULES_FILE": (
        None,
        "Path of the rules YAML (relative to the function app root). Unset: zero-config convention.",
    ),
    "ACR_DEPLOY_REGISTRIES": (
        "",
        "Trusted registries, comma-separated: LOGIN_SERVER or LOGIN_SERVER=REGISTRY_RESOURCE_ID.",
    ),
    "ACR_DEPLOY_SUBSCRIPTION_ID": (None, "Default subscription of target Container Apps."),
    "ACR_DEPLOY_RESOURCE_GROUP": (None, "Default resource group of target Container Apps."),
    "ACR_DEPLOY_DISCOVERY_RESOURCE_GROUPS": (
        "",
        "Resource groups searched for apps tagged acr-deploy.repository (comma-separated; "
        "empty: the default resource group; '-' turns tag discovery off).",
    ),
    "ACR_DEPLOY_DISCOVERY_TTL_SECONDS": ("60", "How long discovered app tags are cached."),
    "ACR_DEPLOY_RETENTION_DAYS": (
        "90",
        "Days the record-only partitions (rejections, the cross-app day index) are kept; older rows "
        "are purged in bounded batches by the sweep timer. A deployment's app partition is never purged.",
    ),
    "ACR_DEPLOY_ARM_ENDPOINT": (
        "https://management.azure.com",
        "Azure Resource Manager endpoint (the Container Apps emulator's URL locally).",
    ),
    "ACR_DEPLOY_ARM_CA_BUNDLE": (None, "CA bundle for the ARM endpoint (the emulator's ca.pem locally)."),
    "ACR_DEPLOY_ARM_CREDENTIAL": (
        "default",
        "'default' = DefaultAzureCredential (managed identity in Azure); 'emulator' = a static "
        "local token, accepted only by the emulator.",
    ),
    "ACR_DEPLOY_TABLE_PREFIX": ("acrdeploy", "Prefix of the history table names."),
    "ACR_DEPLOY_EVENTS_ENDPOINT": (
        None,
        "Event Grid topic endpoint for deployment outcome CloudEvents (optional).",
    ),
    "ACR_DEPLOY_TELEMETRY": (
        "auto",
        "Traces and metrics: 'auto' = Application Insights when APPLICATIONINSIGHTS_CONNECTION_STRING is set, "
        "otherwise off; 'console' or 'otlp' (local runs); 'off'.",
    ),
}


def _get(env: Mapping[str, str], name: str) -> str | None:
    default = SETTINGS[name][0]
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    """Typed view of the app settings; build with `Settings.from_env()`."""

    storage_connection_string: str | None = None
    storage_account_name: str | None = None
    rules_file: str | None = None
    registries: tuple[str, ...] = ()
    subscription_id: str | None = None
    resource_group: str | None = None
    discovery_resource_groups: tuple[str, ...] = ()
    discovery_ttl_seconds: float = 60.0
    retention_days: int = 90
    arm_endpoint: str = "https://management.azure.com"
    arm_ca_bundle: str | None = None
    arm_credential: str = "default"
    table_prefix: str = "acrdeploy"
    events_endpoint: str | None = None
    telemetry: str = "auto"
    app_insights: bool = False  # APPLICATIONINSIGHTS_CONNECTION_STRING is set (its value is never kept)
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        rgs = _get(env, "ACR_DEPLOY_DISCOVERY_RESOURCE_GROUPS")
        default_rg = _get(env, "ACR_DEPLOY_RESOURCE_GROUP")
        if rgs == "-":
            discovery: tuple[str, ...] = ()
        else:
            discovery = _csv(rgs) or ((default_rg,) if default_rg else ())
        credential = (_get(env, "ACR_DEPLOY_ARM_CREDENTIAL") or "default").lower()
        if credential not in ("default", "emulator"):
            raise ValueError(
                f"ACR_DEPLOY_ARM_CREDENTIAL must be 'default' or 'emulator', not {credential!r}"
            )
        try:
            ttl = float(_get(env, "ACR_DEPLOY_DISCOVERY_TTL_SECONDS") or "60")
        except ValueError as exc:
            raise ValueError("ACR_DEPLOY_DISCOVERY_TTL_SECONDS must be a number of seconds") from exc
        retention = _get(env, "ACR_DEPLOY_RETENTION_DAYS") or "90"
        if not re.fullmatch(r"[0-9]{1,5}", retention) or not 1 <= int(retention) <= 36500:
            raise ValueError(f"ACR_DEPLOY_RETENTION_DAYS must be a whole number of days from 1 to 36500, "
                             f"not {retention[:20]!r}")
        return cls(
            storage_connection_string=_get(env, "AzureWebJobsStorage"),
            storage_account_name=_get(env, "AzureWebJobsStorage__accountName"),
            rules_file=_get(env, "ACR_DEPLOY_RULES_FILE"),
            registries=_csv(_get(env, "ACR_DEPLOY_REGISTRIES")),
            subscription_id=_get(env, "ACR_DEPLOY_SUBSCRIPTION_ID"),
            resource_group=default_rg,
            discovery_resource_groups=discovery,
            discovery_ttl_seconds=ttl,
            retention_days=int(retention),
            arm_endpoint=(_get(env, "ACR_DEPLOY_ARM_ENDPOINT") or "").rstrip("/"),
            arm_ca_bundle=_get(env, "ACR_DEPLOY_ARM_CA_BUNDLE"),
            arm_credential=credential,
            table_prefix=_get(env, "ACR_DEPLOY_TABLE_PREFIX") or "acrdeploy",
            events_endpoint=_get(env, "ACR_DEPLOY_EVENTS_ENDPOINT"),
            telemetry=(_get(env, "ACR_DEPLOY_TELEMETRY") or "auto").lower(),
            app_insights=bool((env.get("APPLICATIONINSIGHTS_CONNECTION_STRING") or "").strip()),
        )
