"""Container apps: validation, create/replace (PUT), JSON Merge Patch (PATCH), delete, and the ARM view.

A write is validated completely before anything is committed, so a rejected request changes nothing. A write
that changes ``properties.template`` creates a revision (rules in revisions.py); the operation it starts is
finished later by operations.py.
"""
from __future__ import annotations

import copy
from typing import Any

from . import access, lifecycle
from . import revisions as rv
from . import store
from .errors import ArmError, bad_request, conflict, not_found
from .identity import clean_identity, render_identity
from .template import (check_env_entries, hide_secrets, normalise_configuration, normalise_template,
                       restore_secret_values, view_template)

# Read-only properties the service computes; stripped from request bodies so GET -> PUT round-trips work.
_READONLY_PROPS = (
    "provisioningState", "runningStatus", "latestRevisionName", "latestReadyRevisionName", "latestRevisionFqdn",
    "customDomainVerificationId", "outboundIpAddresses", "eventStreamEndpoint", "deploymentErrors",
)
_MODES = ("single", "multiple", "labels")  # "Labels": preview API versions' enum; see docs/emulator.md


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON Merge Patch: objects merge recursively, null deletes, arrays and scalars replace."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge_patch(result.get(k), v)
    return result


def clean_app_body(body: dict) -> dict:
    out = {k: copy.deepcopy(v) for k, v in body.items() if k not in ("id", "name", "type", "systemData")}
    props = out.get("properties")
    if isinstance(props, dict):
        for prop in _READONLY_PROPS:
            props.pop(prop, None)
        ing = (props.get("configuration") or {}).get("ingress")
        if isinstance(ing, dict):
            ing.pop("fqdn", None)
            for entry in ing.get("traffic") or []:
                if isinstance(entry, dict):
                    entry.pop("fqdn", None)  # emulator extension (label URL), never an input
    clean_identity(out)
    return out


def validate_app_body(body: dict) -> None:
    """400 for bodies the service rejects before doing anything (shape, template, configuration)."""
    if not isinstance(body, dict):
        raise bad_request("InvalidRequestContent", "The request content was invalid.")
    if not body.get("location"):
        raise bad_request("LocationRequired", "The location property is required for this definition.")
    tags = body.get("tags")
    if tags is not None and not (isinstance(tags, dict) and all(isinstance(v, str) for v in tags.values())):
        raise bad_request("InvalidTag", "Tags must be an object of string values.")
    props = body.get("properties")
    if not isinstance(props, dict):
        raise bad_request("InvalidRequestContent", "The 'properties' object is required.")
    template = props.get("template")
    containers = (template or {}).get("containers") if isinstance(template, dict) else None
    if not containers or not isinstance(containers, list):
        raise bad_request("ContainerAppInvalidTemplate", "properties.template.containers must list at "
                                                         "least one container.")
    for c in containers:
        if not isinstance(c, dict) or not c.get("image") or not c.get("name"):
            raise bad_request("ContainerAppInvalidTemplate", "Every container needs 'name' and 'image'.")
    check_env_entries(template, ((props.get("configuration") or {}).get("secrets")))
    conf = props.get("configuration")
    if conf is not None and not isinstance(conf, dict):
        raise bad_request("InvalidRequestContent", "properties.configuration must be an object.")
    mode = (conf or {}).get("activeRevisionsMode")
    if mode is not None and str(mode).lower() not in _MODES:
        raise bad_request("ContainerAppInvalidActiveRevisionsMode", f"Unknown activeRevisionsMode {mode!r}.")
    problem = access.check_rules(((conf or {}).get("ingress") or {}).get("ipSecurityRestrictions"))
    if problem:
        raise bad_request("ContainerAppInvalidIpSecurityRestrictions", problem)
    mir = (conf or {}).get("maxInactiveRevisions")
    if mir is not None and (not isinstance(mir, int) or isinstance(mir, bool) or mir < 0):
        raise bad_request("InvalidRequestContent", "maxInactiveRevisions must be a non-negative integer.")


def _without_environment(desired: dict) -> dict:
    """The stored resource keeps no environment id (render_app adds the live one back)."""
    props = desired["properties"]
    props.pop("environmentId", None)
    props.pop("managedEnvironmentId", None)
    return desired


class AppsMixin:
    """Part of ``service.Service``; uses ``self.state``, ``self._new_op`` and ``self._sync_servers``."""

    def get_app(self, sub: str, rg: str, name: str) -> dict:
        app = self.state["apps"].get(store.key(store.app_id(sub, rg, name)))
        if app is None:
            raise not_found("Microsoft.App/containerApps", name, rg)
        return app

    def render_app(self, app: dict) -> dict:
        res = copy.deepcopy(app["resource"])
        res.update(id=store.app_id(app["sub"], app["rg"], app["name"]), name=app["name"],
                   type="Microsoft.App/containerApps")
        res.setdefault("tags", {})
        props = res.setdefault("properties", {})
        hide_secrets(props)
        if isinstance(props.get("template"), dict):
            props["template"] = view_template(props["template"])
        render_identity(res)
        env = self.state["environments"].get(app["envKey"])
        env_rid = store.env_id(env["sub"], env["rg"], env["name"]) if env else app.get("envId")
        revs = rv.revisions_by_name(app)
        latest = revs.get(app.get("latest") or "")
        props.update(
            provisioningState=app["provisioningState"], runningStatus="Running",
            managedEnvironmentId=env_rid, environmentId=env_rid,
            latestRevisionName=app.get("latest"), latestReadyRevisionName=app.get("latestReady"),
            latestRevisionFqdn=self.fqdn_of(app, latest.get("port"), latest["name"]) if latest else None,
            outboundIpAddresses=["127.0.0.1"],
            eventStreamEndpoint=f"https://{str(res.get('location') or 'westeurope').replace(' ', '').lower()}"
                                f".azurecontainerapps.dev/subscriptions/{app['sub']}/resourceGroups/{app['rg']}"
                                f"/containerApps/{app['name']}/eventstream",
        )
        ing = (props.get("configuration") or {}).get("ingress")
        if isinstance(ing, dict):
            ing["fqdn"] = self.fqdn_of(app, app.get("appPort"), app["name"])
            for entry in ing.get("traffic") or []:
                if entry.get("label") and entry["label"] in app.get("labelPorts", {}):
                    entry["fqdn"] = self.fqdn_of(app, app["labelPorts"][entry["label"]],  # emulator extension
                                                 f"{app['name']}---{entry['label']}")
        return res

    def render_auth_config(self, app: dict) -> dict:
        return access.auth_config_view(store.app_id(app["sub"], app["rg"], app["name"]), app.get("auth"))

    def set_auth(self, app: dict, properties: dict) -> None:
        """authConfigs/current PUT (synchronous here): only the fields that decide who gets through."""
        app["auth"] = {"enabled": bool((properties.get("platform") or {}).get("enabled", True)),
                       "unauthenticatedClientAction": (properties.get("globalValidation") or {}).get(
                           "unauthenticatedClientAction") or "RedirectToLoginPage"}
        self._save()

    def list_secrets(self, app: dict) -> dict:
        """POST listSecrets: the only way to read secret values (GET returns names only)."""
        secrets = ((app["resource"].get("properties") or {}).get("configuration") or {}).get("secrets") or []
        return {"value": [{k: s[k] for k in ("name", "value", "identity", "keyVaultUrl") if s.get(k) is not None}
                          for s in secrets]}

    def list_apps(self, sub: str, rg: str | None = None) -> list[dict]:
        if rg is not None:
            self.require_rg(sub, rg)
        return [a for a in self.state["apps"].values()
                if a["sub"].lower() == sub.lower() and (rg is None or a["rg"].lower() == rg.lower())]

    def _check_idle(self, app: dict) -> None:
        """409 while another write on the same app is in flight (the service serialises app operations)."""
        op = self.state["operations"].get(app.get("op") or "")
        if op and op["status"] == "InProgress":
            raise conflict("ContainerAppOperationInProgress",
                           f"Cannot modify container app '{app['name']}' because another operation is in "
                           f"progress (operation id '{op['id']}'). Retry after it completes.")

    def put_app(self, sub: str, rg: str, name: str, body: dict) -> tuple[dict, dict | None]:
        """Create or replace. Returns (app record, operation), or (app, None) when nothing changes: the
        service answers such a PUT with 200 "No change performed" (ContainerApps.json 2025-07-01)."""
        validate_app_body(body)
        k = store.key(store.app_id(sub, rg, name))
        app = self.state["apps"].get(k)
        desired = clean_app_body(body)
        props = desired["properties"]
        env_ref = props.get("environmentId") or props.get("managedEnvironmentId")
        if app is None:
            if not env_ref:
                raise bad_request("ManagedEnvironmentRequired", "properties.environmentId is required.")
            env_k = store.key(env_ref)
            if env_k not in self.state["environments"]:
                raise ArmError(404, "ManagedEnvironmentNotFound", f"Managed environment '{env_ref}' was not found.")
            self.ensure_rg(sub, rg, body["location"])
            app = {"sub": sub, "rg": rg, "name": name, "envKey": env_k, "resource": {}, "revisions": [],
                   "latest": None, "latestReady": None, "provisioningState": "InProgress", "op": None,
                   "appPort": None, "labelPorts": {}, "createdTime": store.now_iso()}
            new_rev = self._apply(app, desired, creating=True)
            self.state["apps"][k] = app
        else:
            self._check_idle(app)
            if env_ref and store.key(env_ref) != app["envKey"]:
                raise bad_request("ContainerAppEnvironmentChangeNotAllowed",
                                  "The managed environment of an existing container app cannot change.")
            unchanged = _without_environment(copy.deepcopy(desired))
            restore_secret_values(unchanged["properties"], app["resource"].get("properties") or {})
            unchanged["properties"]["template"] = normalise_template(unchanged["properties"]["template"])
            normalise_configuration(unchanged["properties"].get("configuration"))
            if app["provisioningState"] == "Succeeded" and rv.same_json(app["resource"], unchanged):
                return app, None
            new_rev = self._apply(app, desired, creating=False)
        op = self._new_op("app_put", k, sub, body["location"], new_rev)
        app["op"] = op["id"]
        self._sync_servers(app)
        self._save()
        return app, op

    def patch_app(self, sub: str, rg: str, name: str, patch: dict) -> tuple[dict, dict]:
        app = self.get_app(sub, rg, name)
        if not isinstance(patch, dict):
            raise bad_request("InvalidRequestContent", "The request content was invalid.")
        self._check_idle(app)
        merged = merge_patch(app["resource"], clean_app_body(patch))
        validate_app_body(merged)
        new_rev = self._apply(app, clean_app_body(merged), creating=False)
        op = self._new_op("app_patch", store.key(store.app_id(sub, rg, name)), sub, merged["location"], new_rev)
        app["op"] = op["id"]
        self._sync_servers(app)
        self._save()
        return app, op

    def _apply(self, app: dict, desired: dict, creating: bool) -> str | None:
        """Validate then commit a desired state; returns the new revision's name when the template changed."""
        props = _without_environment(desired)["properties"]
        restore_secret_values(props, app["resource"].get("properties") or {})
        template = props["template"] = normalise_template(props["template"])
        normalise_configuration(props.get("configuration"))
        revs = rv.revisions_by_name(app)
        new_rev = None
        if creating or rv.template_changed(app["resource"].get("properties", {}).get("template"), template):
            suffix = template.get("revisionSuffix")
            if suffix:
                new_rev = rv.check_suffix(app["name"], suffix, revs)
            else:
                for _ in range(50):  # bounded: 26^7 suffixes make a collision vanishingly rare
                    new_rev = rv.revision_name(app["name"], rv.generated_suffix())
                    if new_rev not in revs:
                        break
        conf = props.get("configuration") or {}
        traffic = (conf.get("ingress") or {}).get("traffic")
        labels_mode = rv.mode_of(conf) == "labels"
        if labels_mode:
            rv.check_labels_mode(traffic, conf.get("targetLabel"), new_rev if rv.has_ingress({"resource": desired})
                                 else None)
            if new_rev and isinstance(conf.get("ingress"), dict):
                traffic = conf["ingress"]["traffic"] = rv.with_target_label(traffic, conf["targetLabel"], new_rev)
        rv.validate_traffic(app["name"], traffic, revs, new_rev)
        # Commit (nothing above mutated the app).
        app["resource"] = desired
        app["provisioningState"] = "InProgress"
        if new_rev:
            app["revisions"].append({
                "name": new_rev, "createdTime": store.now_iso(), "template": copy.deepcopy(template),
                "active": True, **lifecycle.STARTING_STATE, "replicas": 0, "lastActiveTime": store.now_iso(),
                "provisioningError": None, "port": None, "restarts": 0,
            })
            app["latest"] = new_rev
        if labels_mode and rv.has_ingress(app):
            for rev in rv.unlabelled_active(app):  # "Only revisions with labels are active"
                self._deactivate(rev)
        rv.prune_inactive(app)
        return new_rev

    def delete_app(self, sub: str, rg: str, name: str) -> dict | None:
        k = store.key(store.app_id(sub, rg, name))
        app = self.state["apps"].get(k)
        if app is None:
            return None
        self._check_idle(app)
        op = self._new_op("app_delete", k, sub, app["resource"].get("location"))
        app["op"] = op["id"]
        app["provisioningState"] = "Deleting"
        self._save()
        return op

    def _remove_app(self, k: str) -> None:
        self.state["apps"].pop(k, None)
        for srv_key in self.runtime.keys():
            if srv_key[1] == k:
                self.runtime.stop(srv_key)
        self.wrr.pop(k, None)
