"""The emulated Container Apps service: all state transitions, under one lock.

HTTP layers (arm.py, control_api.py, runtime.py) only parse requests and render answers; everything that
changes state lives here so it can be read in one place. Time-based progress (provisioning delay) is applied
lazily by ``settle()`` at the start of every request, which keeps the emulator deterministic and thread-free.
"""
from __future__ import annotations

import copy
import fnmatch
import math
import threading
import time
import uuid
from collections import deque
from typing import Any

from . import revisions as rv
from . import store
from .errors import ArmError, bad_request, conflict, not_found
from .runtime import Runtime, SmoothWRR
from .seed import apply_seed

DEFAULT_CONFIG = {
    "provisioning_delay": 0.05,  # seconds an LRO stays InProgress
    "min_in_progress_polls": 1,  # status polls answered InProgress before the delay may end an operation
    "retry_after": None,  # LRO Retry-After seconds; None = time left (fractional under 1 s)
    "page_size": 20,  # items per list page before a nextLink
}

# Read-only properties the service computes; stripped from request bodies so GET -> PUT round-trips work.
_READONLY_PROPS = (
    "provisioningState", "runningStatus", "latestRevisionName", "latestReadyRevisionName", "latestRevisionFqdn",
    "customDomainVerificationId", "outboundIpAddresses", "eventStreamEndpoint", "deploymentErrors",
)


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
    return out


class Service:
    def __init__(self, host: str, ssl_context, state_file=None, provisioning_delay: float | None = None,
                 startup_seed: dict | None = None):
        self.lock = threading.RLock()
        self.state_file = state_file
        self.state = store.load(state_file)
        self.initial_delay = DEFAULT_CONFIG["provisioning_delay"] if provisioning_delay is None else provisioning_delay
        self.config = dict(DEFAULT_CONFIG, provisioning_delay=self.initial_delay)
        self.startup_seed = startup_seed
        self.behaviours: list[dict] = []
        self.faults: list[dict] = []
        self.arm_calls = 0
        self.request_log: deque = deque(maxlen=1000)
        self.counters: dict[tuple, int] = {}
        self.wrr: dict[str, SmoothWRR] = {}
        self.runtime = Runtime(host, ssl_context, self.serve)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        with self.lock:
            for op in self.state["operations"].values():  # finish what a previous run left in flight
                if op["status"] == "InProgress":
                    self._finalize(op)
            if self.startup_seed:
                apply_seed(self, self.startup_seed)
            for app in list(self.state["apps"].values()):
                self._sync_servers(app)
            self._save()

    def stop(self) -> None:
        self.runtime.stop_all()

    def reset(self, reseed: bool = True) -> None:
        with self.lock:
            self.runtime.stop_all()
            self.state = store.empty_state()
            self.config = dict(DEFAULT_CONFIG, provisioning_delay=self.initial_delay)
            self.behaviours, self.faults = [], []
            self.arm_calls = 0
            self.request_log.clear()
            self.counters.clear()
            self.wrr.clear()
            if reseed and self.startup_seed:
                apply_seed(self, self.startup_seed)
            self._save()

    def _save(self) -> None:
        store.save(self.state_file, self.state)

    # ------------------------------------------------------------------ settle / operations
    def settle(self) -> None:
        now = time.time()
        for op in list(self.state["operations"].values()):
            if op["status"] == "InProgress" and now >= op["deadline"]:
                self._finalize(op)

    def _new_op(self, kind: str, target: str, sub: str, location: str, new_revision: str | None = None) -> dict:
        now = time.time()
        op = {
            "id": str(uuid.uuid4()), "kind": kind, "target": target, "sub": sub,
            "location": (location or "westeurope").replace(" ", "").lower(),
            "start": now, "deadline": now + float(self.config["provisioning_delay"]),
            "startTime": store.now_iso(), "endTime": None, "status": "InProgress", "error": None,
            "newRevision": new_revision, "polls": 0,
        }
        self.state["operations"][op["id"]] = op
        # Keep the operation table bounded: finished operations older than the newest 500 are forgotten.
        ops = self.state["operations"]
        if len(ops) > 1000:
            for old in [o for o in ops.values() if o["status"] != "InProgress"][:-500]:
                ops.pop(old["id"], None)
        return op

    def _finalize(self, op: dict) -> None:
        op["endTime"] = store.now_iso()
        op["status"] = "Succeeded"
        if op["kind"] == "env_put":
            env = self.state["environments"].get(op["target"])
            if env:
                env["provisioningState"] = "Succeeded"
        elif op["kind"] == "app_delete":
            self._remove_app(op["target"])
        else:
            app = self.state["apps"].get(op["target"])
            if app is not None:
                app["op"] = None
                app["provisioningState"] = "Succeeded"
                rev = rv.revisions_by_name(app).get(op.get("newRevision") or "")
                if rev is not None:
                    if self._provision(app, rev):
                        app["latestReady"] = rev["name"]
                        if rv.mode(app) == "single":  # zero-downtime swap: old revisions go once the new is ready
                            for other in app["revisions"]:
                                if other is not rev and other["active"]:
                                    self._deactivate(other)
                            rv.prune_inactive(app)
                    else:
                        app["provisioningState"] = "Failed"
                        op["status"] = "Failed"
                        op["error"] = {
                            "code": "ContainerAppOperationError",
                            "message": f"Failed to provision revision for container app '{app['name']}'. "
                                       f"Error details: {rev['provisioningError']}",
                        }
                self._sync_servers(app)
        self._save()

    def _provision(self, app: dict, rev: dict) -> bool:
        """Run the revision's health check: a matching ``unhealthy`` behaviour makes it fail for good."""
        behaviour = self.behaviour_for(rev["template"])
        if behaviour and behaviour.get("unhealthy"):
            rev.update(provisioningState="Failed", runningState="Failed", healthState="Unhealthy", replicas=0,
                       provisioningError=f"Revision '{rev['name']}' never became healthy "
                                         f"(emulator behaviour for image '{behaviour['image']}').")
            return False
        scale = (rev["template"] or {}).get("scale") or {}
        rev.update(provisioningState="Provisioned", runningState="Running", healthState="Healthy",
                   replicas=max(int(scale.get("minReplicas") or 1), 1), provisioningError=None)
        return True

    def retry_after(self, op: dict | None = None, integer: bool = False) -> str:
        """Retry-After for an LRO answer.

        The generated SDK parses the *initial* response's Retry-After with int(), so that one is whole
        seconds. Poll answers go through azure-core, which accepts decimals; there we send the time left
        (at least 20 ms) so SDK callers that rely on Retry-After never sit through the 30 s default.
        """
        fixed = self.config.get("retry_after")
        if fixed is not None:
            return str(math.ceil(float(fixed))) if integer else _fmt_seconds(float(fixed))
        left = max((op["deadline"] - time.time()) if op else 0, 0.0)
        if integer:
            return str(math.ceil(left))
        return _fmt_seconds(max(left, 0.02))

    def poll_operation(self, sub: str, op_id: str) -> dict:
        with self.lock:
            self.settle()
            op = self.state["operations"].get(op_id)
            if op is None or op["sub"].lower() != sub.lower():
                raise ArmError(404, "OperationNotFound", f"Operation '{op_id}' was not found.")
            op["polls"] += 1
            view = dict(op)
            # Clients always observe at least one InProgress answer, even with a zero provisioning delay.
            if op["polls"] <= int(self.config["min_in_progress_polls"]):
                view["status"] = "InProgress"
            return view

    def render_op(self, op: dict, base: str) -> dict:
        body = {"id": self.op_path(op, "containerappOperationStatuses"), "name": op["id"],
                "status": op["status"], "startTime": op["startTime"]}
        if op["status"] != "InProgress":
            body["endTime"] = op["endTime"] or store.now_iso()
        if op["status"] == "Failed" and op.get("error"):
            body["error"] = op["error"]
        return body

    @staticmethod
    def op_path(op: dict, kind: str) -> str:
        return (f"/subscriptions/{op['sub']}/providers/{store.PROVIDER}/locations/{op['location']}/"
                f"{kind}/{op['id']}")

    # ------------------------------------------------------------------ resource groups / environments
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
        props = res.setdefault("properties", {})
        props["provisioningState"] = env["provisioningState"]
        props["defaultDomain"] = env["defaultDomain"]
        props.setdefault("staticIp", "127.0.0.1")
        return res

    def create_env(self, sub: str, rg: str, name: str, body: dict, immediate: bool = False,
                   default_domain: str | None = None) -> tuple[dict, dict | None]:
        if not isinstance(body, dict) or not body.get("location"):
            raise bad_request("LocationRequired", "The location property is required for this definition.")
        self.ensure_rg(sub, rg, body["location"])
        k = store.key(store.env_id(sub, rg, name))
        res = {k2: copy.deepcopy(v) for k2, v in body.items() if k2 not in ("id", "name", "type", "systemData")}
        props = res.setdefault("properties", {}) or {}
        res["properties"] = props
        for ro in ("provisioningState", "defaultDomain", "staticIp", "deploymentErrors", "eventStreamEndpoint"):
            props.pop(ro, None)
        existing = self.state["environments"].get(k)
        domain = default_domain or (existing or {}).get("defaultDomain") or (
            f"{name.lower()}-{uuid.uuid4().hex[:8]}.{body['location'].replace(' ', '').lower()}"
            ".azurecontainerapps.io")
        env = {"sub": sub, "rg": (existing or {}).get("rg", rg), "name": (existing or {}).get("name", name),
               "resource": res, "defaultDomain": domain,
               "provisioningState": "Succeeded" if immediate else "InProgress"}
        self.state["environments"][k] = env
        op = None if immediate else self._new_op("env_put", k, sub, body["location"])
        self._save()
        return env, op

    def delete_env(self, sub: str, rg: str, name: str) -> bool:
        k = store.key(store.env_id(sub, rg, name))
        if k not in self.state["environments"]:
            return False
        if any(a["envKey"] == k for a in self.state["apps"].values()):
            raise conflict("ManagedEnvironmentHasContainerApps",
                           f"Managed environment '{name}' still has container apps; delete them first.")
        del self.state["environments"][k]
        self._save()
        return True

    # ------------------------------------------------------------------ container apps
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
        env = self.state["environments"].get(app["envKey"])
        env_rid = store.env_id(env["sub"], env["rg"], env["name"]) if env else app.get("envId")
        revs = rv.revisions_by_name(app)
        latest = revs.get(app.get("latest") or "")
        props.update(
            provisioningState=app["provisioningState"], runningStatus="Running",
            managedEnvironmentId=env_rid, environmentId=env_rid,
            latestRevisionName=app.get("latest"), latestReadyRevisionName=app.get("latestReady"),
            latestRevisionFqdn=_fqdn(latest.get("port")) if latest else None,
            outboundIpAddresses=["127.0.0.1"],
        )
        ing = (props.get("configuration") or {}).get("ingress")
        if isinstance(ing, dict):
            ing["fqdn"] = _fqdn(app.get("appPort"))
            for entry in ing.get("traffic") or []:
                if entry.get("label") and entry["label"] in app.get("labelPorts", {}):
                    entry["fqdn"] = _fqdn(app["labelPorts"][entry["label"]])  # emulator extension
        return res

    def list_apps(self, sub: str, rg: str | None = None) -> list[dict]:
        if rg is not None:
            self.require_rg(sub, rg)
        return [a for a in self.state["apps"].values()
                if a["sub"].lower() == sub.lower() and (rg is None or a["rg"].lower() == rg.lower())]

    def _check_idle(self, app: dict) -> None:
        op = self.state["operations"].get(app.get("op") or "")
        if op and op["status"] == "InProgress":
            raise conflict("ContainerAppOperationInProgress",
                           f"Cannot modify container app '{app['name']}' because another operation is in "
                           f"progress (operation id '{op['id']}'). Retry after it completes.")

    def _validate_app_body(self, body: dict, creating: bool) -> None:
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
        conf = props.get("configuration")
        if conf is not None and not isinstance(conf, dict):
            raise bad_request("InvalidRequestContent", "properties.configuration must be an object.")
        mode = (conf or {}).get("activeRevisionsMode")
        if mode is not None and str(mode).lower() not in ("single", "multiple", "labels"):
            raise bad_request("ContainerAppInvalidActiveRevisionsMode", f"Unknown activeRevisionsMode {mode!r}.")
        mir = (conf or {}).get("maxInactiveRevisions")
        if mir is not None and (not isinstance(mir, int) or isinstance(mir, bool) or mir < 0):
            raise bad_request("InvalidRequestContent", "maxInactiveRevisions must be a non-negative integer.")

    def put_app(self, sub: str, rg: str, name: str, body: dict) -> tuple[dict, dict]:
        """Create or replace. Returns (app record, operation)."""
        self._validate_app_body(body, creating=True)
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
        self._validate_app_body(merged, creating=False)
        new_rev = self._apply(app, clean_app_body(merged), creating=False)
        op = self._new_op("app_patch", store.key(store.app_id(sub, rg, name)), sub, merged["location"], new_rev)
        app["op"] = op["id"]
        self._sync_servers(app)
        self._save()
        return app, op

    def _apply(self, app: dict, desired: dict, creating: bool) -> str | None:
        """Validate then commit a desired state; returns the new revision's name when the template changed."""
        props = desired["properties"]
        props.pop("environmentId", None)
        props.pop("managedEnvironmentId", None)
        template = props["template"]
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
        traffic = ((props.get("configuration") or {}).get("ingress") or {}).get("traffic")
        rv.validate_traffic(app["name"], traffic, revs, new_rev)
        # Commit (nothing above mutated the app).
        app["resource"] = desired
        app["provisioningState"] = "InProgress"
        if new_rev:
            app["revisions"].append({
                "name": new_rev, "createdTime": store.now_iso(), "template": copy.deepcopy(template),
                "active": True, "provisioningState": "Provisioning", "runningState": "Processing",
                "healthState": "None", "replicas": 0, "lastActiveTime": store.now_iso(),
                "provisioningError": None, "port": None, "restarts": 0,
            })
            app["latest"] = new_rev
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

    # ------------------------------------------------------------------ revisions
    def get_revision(self, app: dict, name: str) -> dict:
        for rev in app["revisions"]:
            if rev["name"].lower() == name.lower():
                return rev
        raise not_found(f"Microsoft.App/containerApps/{app['name']}/revisions", name, app["rg"])

    def render_revision(self, app: dict, rev: dict, weights: dict | None = None) -> dict:
        weights = rv.effective_weights(app) if weights is None else weights
        props = {k: rev[k] for k in ("createdTime", "active", "replicas", "provisioningState", "runningState",
                                      "healthState", "lastActiveTime")}
        props.update(template=copy.deepcopy(rev["template"]), trafficWeight=weights.get(rev["name"], 0),
                     fqdn=_fqdn(rev.get("port")) if rev["active"] else "")
        if rev.get("provisioningError"):
            props["provisioningError"] = rev["provisioningError"]
        return {"id": f"{store.app_id(app['sub'], app['rg'], app['name'])}/revisions/{rev['name']}",
                "name": rev["name"], "type": "Microsoft.App/containerApps/revisions", "properties": props}

    def activate(self, app: dict, name: str) -> None:
        rev = self.get_revision(app, name)
        self._check_idle(app)
        if not rev["active"]:
            rev.update(active=True, runningState="Processing", healthState="None")
            self._provision(app, rev)
            self._sync_servers(app)
            self._save()

    def deactivate(self, app: dict, name: str) -> None:
        rev = self.get_revision(app, name)
        self._check_idle(app)
        weight = rv.effective_weights(app).get(rev["name"], 0)
        if weight > 0:
            raise bad_request("ContainerAppRevisionHasTraffic",
                              f"Revision '{rev['name']}' receives {weight}% of traffic; move its traffic "
                              "before deactivating it.")
        if rev["active"]:
            self._deactivate(rev)
            rv.prune_inactive(app)
            self._sync_servers(app)
            self._save()

    def restart(self, app: dict, name: str) -> None:
        rev = self.get_revision(app, name)
        self._check_idle(app)
        if not rev["active"]:
            raise bad_request("ContainerAppRevisionNotActive", f"Revision '{rev['name']}' is not active.")
        rev["restarts"] = rev.get("restarts", 0) + 1
        self.counters.pop((store.key(store.app_id(app["sub"], app["rg"], app["name"])), rev["name"]), None)
        self._provision(app, rev)
        self._save()

    @staticmethod
    def _deactivate(rev: dict) -> None:
        rev.update(active=False, runningState="Stopped", healthState="None", replicas=0,
                   lastActiveTime=store.now_iso())

    # ------------------------------------------------------------------ serving ports
    def _sync_servers(self, app: dict) -> None:
        """Make the running servers match the app: active revisions, the app ingress, its labels."""
        k = store.key(store.app_id(app["sub"], app["rg"], app["name"]))
        active = {r["name"] for r in app["revisions"] if r["active"]}
        for rev in app["revisions"]:
            if rev["active"]:
                rev["port"] = self.runtime.ensure(("rev", k, rev["name"]), rev.get("port"))
        current_labels = rv.labels(app)
        for srv_key in self.runtime.keys():
            if srv_key[1] != k:
                continue
            if (srv_key[0] == "rev" and srv_key[2] not in active) or (
                    srv_key[0] == "label" and srv_key[2] not in current_labels):
                self.runtime.stop(srv_key)
        app["appPort"] = self.runtime.ensure(("app", k), app.get("appPort"))
        ports = app.setdefault("labelPorts", {})
        for label in list(ports):
            if label not in current_labels:
                del ports[label]
        for label in current_labels:
            ports[label] = self.runtime.ensure(("label", k, label), ports.get(label))

    def behaviour_for(self, template: dict | None) -> dict | None:
        images = rv.images(template)
        for behaviour in reversed(self.behaviours):  # the most recently added match wins
            if any(fnmatch.fnmatchcase(img, behaviour["image"]) for img in images):
                return behaviour
        return None

    def serve(self, target: tuple, method: str, path: str) -> tuple:
        """Plan the answer of a revision/app/label port (called from its server threads)."""
        with self.lock:
            self.settle()
            kind, app_key = target[0], target[1]
            app = self.state["apps"].get(app_key)
            if app is None:
                return ("drop",)
            revs = rv.revisions_by_name(app)
            label = None
            if kind == "rev":
                name = target[2]
            elif kind == "app":
                name = self.wrr.setdefault(app_key, SmoothWRR()).pick(rv.effective_weights(app))
                if name is None:
                    return 503, {"error": "no active revision receives traffic"}, {}, 0
            else:
                label = target[2]
                name = rv.labels(app).get(label)
            rev = revs.get(name or "")
            if rev is None or not rev["active"]:
                if kind == "rev":
                    return ("drop",)  # a stopped revision does not answer at all
                return 503, {"error": f"revision {name!r} is not active"}, {}, 0
            counter_key = (app_key, rev["name"])
            count = self.counters[counter_key] = self.counters.get(counter_key, 0) + 1
            behaviour = self.behaviour_for(rev["template"]) or {}
            images = rv.images(rev["template"])
            headers = {"x-emulator-revision": rev["name"], "x-emulator-app": app["name"]}
            latency = (behaviour.get("latency_ms") or 0) / 1000.0
            path_only = path.split("?", 1)[0]
            if behaviour.get("unhealthy") or rev["provisioningState"] == "Failed":
                return 503, {"error": "revision is unhealthy", "revision": rev["name"]}, headers, latency
            status = 200
            if behaviour.get("fail_after") is not None:
                if count > int(behaviour["fail_after"]):
                    status = behaviour.get("status") or 500
            elif behaviour.get("status"):
                status = int(behaviour["status"])
            if path_only == "/healthz":
                body = {"status": "healthy" if status == 200 else "failing", "revision": rev["name"]}
            else:
                body = {"app": app["name"], "revision": rev["name"], "image": images[0] if images else None,
                        "images": images, "via": {"rev": "revision", "app": "app", "label": "label"}[kind],
                        "label": label, "method": method, "path": path, "request": count}
            return status, body, headers, latency

    # ------------------------------------------------------------------ faults
    def take_fault(self, method: str) -> dict | None:
        """Count one ARM call and return the fault it must suffer, if any (first firing rule wins)."""
        with self.lock:
            self.arm_calls += 1
            fired = None
            for rule in self.faults:
                if rule.get("methods") and method.upper() not in rule["methods"]:
                    continue
                rule["seen"] += 1
                if fired is not None:
                    continue
                if rule.get("count") is not None:
                    if rule["remaining"] > 0:
                        rule["remaining"] -= 1
                        fired = rule
                elif rule.get("every") and rule["seen"] % rule["every"] == 0:
                    fired = rule
            if fired is not None:
                fired["fired"] += 1
            return fired

    def log_arm(self, method: str, path: str, status: int | str) -> None:
        self.request_log.append({"method": method, "path": path, "status": status, "time": store.now_iso()})

    # ------------------------------------------------------------------ dump
    def dump(self) -> dict:
        with self.lock:
            self.settle()
            apps = []
            for app in self.state["apps"].values():
                weights = rv.effective_weights(app)
                apps.append({
                    "id": store.app_id(app["sub"], app["rg"], app["name"]), "name": app["name"],
                    "resourceGroup": app["rg"], "subscriptionId": app["sub"],
                    "provisioningState": app["provisioningState"], "mode": rv.mode(app),
                    "tags": app["resource"].get("tags") or {},
                    "latestRevisionName": app.get("latest"), "latestReadyRevisionName": app.get("latestReady"),
                    "fqdn": _fqdn(app.get("appPort")), "url": _url(app.get("appPort")),
                    "labels": {lbl: {"revision": name, "fqdn": _fqdn(app["labelPorts"].get(lbl)),
                                     "url": _url(app["labelPorts"].get(lbl))}
                               for lbl, name in rv.labels(app).items()},
                    "traffic": weights,
                    "revisions": [dict(self.render_revision(app, r, weights)["properties"], name=r["name"],
                                       url=_url(r.get("port")) if r["active"] else None,
                                       requests=self.counters.get((store.key(store.app_id(
                                           app["sub"], app["rg"], app["name"])), r["name"]), 0),
                                       restarts=r.get("restarts", 0))
                                  for r in app["revisions"]],
                })
            return {
                "config": dict(self.config),
                "resourceGroups": list(self.state["resourceGroups"].values()),
                "environments": [self.render_env(e) for e in self.state["environments"].values()],
                "apps": apps,
                "operations": sorted(self.state["operations"].values(), key=lambda o: o["start"]),
                "behaviors": copy.deepcopy(self.behaviours),
                "faults": copy.deepcopy(self.faults),
                "armCalls": self.arm_calls,
                "armRequests": list(self.request_log),
            }


def _fqdn(port: int | None) -> str | None:
    return f"localhost:{port}" if port else None


def _url(port: int | None) -> str | None:
    return f"https://localhost:{port}" if port else None


def _fmt_seconds(value: float) -> str:
    # ARM sends whole seconds; under a second we send a decimal, which azure-core parses as float.
    if value >= 1:
        return str(math.ceil(value))
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"
