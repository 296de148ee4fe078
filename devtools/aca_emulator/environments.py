"""Resource groups and managed environments.

Resource groups have no API here (they belong to Microsoft.Resources): they exist once a seed or a PUT names
them. Environments matter only as the thing an app references by id and for ``defaultDomain``.
"""
from __future__ import annotations

import copy
import uuid

from . import store
from .errors import ArmError, bad_request, conflict, not_found
from .identity import clean_identity, render_identity


def _drop(props: dict, path: tuple) -> None:
    """Remove ``props[path[0]]...[path[-1]]`` if present."""
    cur = props
    for part in path[:-1]:
        cur = cur.get(part) if isinstance(cur, dict) else None
    if isinstance(cur, dict):
        cur.pop(path[-1], None)

# EnvironmentProvisioningState (openapi.json 2026-07-01) has no "InProgress"; a new environment reports this.
ENV_PROVISIONING = "InitializationInProgress"
_ENV_READONLY = ("provisioningState", "defaultDomain", "staticIp", "deploymentErrors", "eventStreamEndpoint",
                 "environmentMode")
# Write-only properties (x-ms-secret in openapi.json 2026-07-01): stored, never returned.
_ENV_SECRETS = {("appLogsConfiguration", "logAnalyticsConfiguration", "sharedKey"),
                ("customDomainConfiguration", "certificatePassword"),
                ("customDomainConfiguration", "certificateValue"),
                ("daprAIConnectionString",), ("daprAIInstrumentationKey",),
                ("appInsightsConfiguration", "connectionString")}
# Read-only parts of nested objects the service computes.
_ENV_NESTED_READONLY = {"customDomainConfiguration": ("customDomainVerificationId", "expirationDate", "subjectName",
                                                     "thumbprint"),
                        "daprConfiguration": ("version",), "kedaConfiguration": ("version",)}
DAPR_VERSION, KEDA_VERSION = "1.13.6", "2.17.2"  # what recent environments report; cosmetic here


class EnvironmentsMixin:
    """Part of ``service.Service``; uses ``self.state`` and ``self._new_op``."""

    def ensure_rg(self, sub: str, rg: str, location: str | None = None) -> dict:
        k = store.key(store.rg_id(sub, rg))
        groups = self.state["resourceGroups"]
        if k not in groups:
            groups[k] = {"sub": sub, "name": rg, "location": location or "westeurope"}
        return groups[k]

    def require_rg(self, sub: str, rg: str) -> None:
        if store.key(store.rg_id(sub, rg)) not in self.state["resourceGroups"]:
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")

    def get_env(self, sub: str, rg: str, name: str) -> dict:
        env = self.state["environments"].get(store.key(store.env_id(sub, rg, name)))
        if env is None:
            raise not_found("Microsoft.App/managedEnvironments", name, rg)
        return env

    def render_env(self, env: dict) -> dict:
        res = copy.deepcopy(env["resource"])
        res.update(id=store.env_id(env["sub"], env["rg"], env["name"]), name=env["name"],
                   type="Microsoft.App/managedEnvironments")
        res.setdefault("tags", {})
        props = res.setdefault("properties", {})
        for path in _ENV_SECRETS:
            _drop(props, path)
        location = str(res.get("location") or "westeurope").replace(" ", "").lower()
        props.update(provisioningState=env["provisioningState"], defaultDomain=env["defaultDomain"],
                     staticIp="127.0.0.1", eventStreamEndpoint=f"https://{location}.azurecontainerapps.dev/"
                     f"subscriptions/{env['sub']}/resourceGroups/{env['rg']}/managedEnvironments/{env['name']}"
                     "/eventstream",
                     environmentMode="WorkloadProfiles" if props.get("workloadProfiles") else "ConsumptionOnly")
        props.setdefault("infrastructureResourceGroup", f"ME_{env['name']}_{env['rg']}_{location}")
        props["daprConfiguration"] = dict(props.get("daprConfiguration") or {}, version=DAPR_VERSION)
        props["kedaConfiguration"] = dict(props.get("kedaConfiguration") or {}, version=KEDA_VERSION)
        domain = props.get("customDomainConfiguration")
        if isinstance(domain, dict) and domain.get("dnsSuffix"):
            domain.update(customDomainVerificationId="0" * 64,
                          expirationDate="2099-01-01T00:00:00Z", subjectName=f"CN=*.{domain['dnsSuffix']}",
                          thumbprint="0" * 40)
        render_identity(res)
        return res

    def create_env(self, sub: str, rg: str, name: str, body: dict, immediate: bool = False,
                   default_domain: str | None = None) -> tuple[dict, dict | None]:
        """PUT (create or replace). ``immediate`` (seeding) skips the operation: the environment is ready."""
        if not isinstance(body, dict) or not body.get("location"):
            raise bad_request("LocationRequired", "The location property is required for this definition.")
        self.ensure_rg(sub, rg, body["location"])
        k = store.key(store.env_id(sub, rg, name))
        res = {k2: copy.deepcopy(v) for k2, v in body.items() if k2 not in ("id", "name", "type", "systemData")}
        props = res.setdefault("properties", {}) or {}
        res["properties"] = props
        clean_identity(res)
        for ro in _ENV_READONLY:
            props.pop(ro, None)
        for section, fields in _ENV_NESTED_READONLY.items():
            for field in fields:
                _drop(props, (section, field))
        existing = self.state["environments"].get(k)
        # The domain is stable for the life of the environment, as on the service.
        domain = default_domain or (existing or {}).get("defaultDomain") or (
            f"{name.lower()}-{uuid.uuid4().hex[:8]}.{body['location'].replace(' ', '').lower()}"
            ".azurecontainerapps.io")
        env = {"sub": sub, "rg": (existing or {}).get("rg", rg), "name": (existing or {}).get("name", name),
               "resource": res, "defaultDomain": domain,
               "provisioningState": "Succeeded" if immediate else ENV_PROVISIONING}
        self.state["environments"][k] = env
        op = None if immediate else self._new_op("env_put", k, sub, body["location"])
        self._save()
        return env, op

    def delete_env(self, sub: str, rg: str, name: str) -> bool:
        """Synchronous (the spec allows 200); refused while apps still reference the environment."""
        k = store.key(store.env_id(sub, rg, name))
        if k not in self.state["environments"]:
            return False
        if any(a["envKey"] == k for a in self.state["apps"].values()):
            raise conflict("ManagedEnvironmentHasContainerApps",
                           f"Managed environment '{name}' still has container apps; delete them first.")
        del self.state["environments"][k]
        self._save()
        return True
