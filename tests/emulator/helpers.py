"""Shared helpers for the emulator tests."""
from __future__ import annotations

from azure.mgmt.appcontainers import ContainerAppsAPIClient

from devtools.aca_emulator import DEFAULT_SUBSCRIPTION
from shared.adapters.credentials import LocalEmulatorCredential

SUB = DEFAULT_SUBSCRIPTION
RG = "rg"
ENV = "env"
LOCATION = "westeurope"


# The emulator accepts any bearer token; the pipeline's own local credential provides one.
LocalCredential = LocalEmulatorCredential

BASE_SEED = {"subscriptionId": SUB,
             "resourceGroups": [{"name": RG, "location": LOCATION, "environments": [{"name": ENV}]}]}


def make_client(emu, **kwargs) -> ContainerAppsAPIClient:
    return ContainerAppsAPIClient(LocalCredential(), SUB, base_url=emu.base_url, connection_verify=emu.ca_path,
                                  polling_interval=0.05, retry_backoff_factor=0.01, retry_backoff_max=0.05,
                                  **kwargs)


def env_id(rg: str = RG, env: str = ENV) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.App/managedEnvironments/{env}"


def app_body(image: str = "registry.local/orders-api:1.0.0", mode: str = "Multiple", suffix: str | None = None,
             traffic=None, tags=None, max_inactive=None, name="orders-api") -> dict:
    template = {"containers": [{"name": name, "image": image}]}
    if suffix:
        template["revisionSuffix"] = suffix
    conf = {"activeRevisionsMode": mode, "ingress": {"external": True, "targetPort": 8080}}
    if traffic is not None:
        conf["ingress"]["traffic"] = traffic
    if max_inactive is not None:
        conf["maxInactiveRevisions"] = max_inactive
    return {"location": LOCATION, "tags": tags or {}, "properties": {
        "environmentId": env_id(), "configuration": conf, "template": template}}


def arm_url(emu, path: str, **params) -> str:
    query = "&".join([f"api-version=2026-07-01"] + [f"{k}={v}" for k, v in params.items()])
    return f"{emu.base_url}/subscriptions/{SUB}{path}?{query}"


AUTH = {"Authorization": "Bearer test-token"}


def create_app(client, name: str = "orders-api", rg: str = RG, **kwargs):
    """PUT through the SDK and wait (polling_interval=0.05)."""
    return client.container_apps.begin_create_or_update(rg, name, app_body(name=name, **kwargs)).result()


def revisions(client, name: str = "orders-api", rg: str = RG, **kwargs) -> dict:
    return {r.name: r for r in client.container_apps_revisions.list_revisions(rg, name, **kwargs)}
