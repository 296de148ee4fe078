"""Seed files: the environments and apps an emulator starts with (YAML or JSON, same shape as the control
API's POST /_emulator/seed). Seeding is idempotent: existing environments/apps are left untouched, so a seed
can be combined with a persisted --state file.

    subscriptionId: 00000000-0000-0000-0000-000000000000   # optional, this is the default
    resourceGroups:
      - name: rg
        location: westeurope
        environments: [{name: env, defaultDomain: optional}]
        apps:
          - name: orders-api
            environment: env            # name in this resource group, or a full resource id
            activeRevisionsMode: Multiple   # default Single; Labels: traffic on labels
            targetLabel: blue           # Labels mode: the label a new revision gets (default blue)
            image: registry/orders-api:1.0.0
            targetPort: 8080            # default 8080
            tags: {acr-deploy.repository: orders-api}
            containers: [...]           # optional, replaces `image` with full container definitions
            revisionSuffix: v1          # optional, else generated
            external: true              # optional ingress.external
            maxInactiveRevisions: 10    # optional
            ingress: external           # external (default) | internal | none
            ipSecurityRestrictions: [{name: office, action: Allow, ipAddressRange: 10.0.0.0/8}]
            auth: {enabled: true, unauthenticatedClientAction: Return401}   # built-in authentication
            minReplicas: 0              # optional template scale
            secrets: [{name: db, value: s3cret}]
    behaviors: [{image: "*:crash-*", crash_loop: true}]   # optional, as POST /_emulator/behaviors
    config: {progress_deadline: 20}                       # optional, as POST /_emulator/config
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from . import store
from .behaviours import behaviour

if TYPE_CHECKING:  # pragma: no cover
    from .service import Service


def load_seed(source: str | Path | dict | None) -> dict | None:
    if source is None or isinstance(source, dict):
        return source
    text = Path(source).read_text()
    data = json.loads(text) if str(source).endswith(".json") else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"seed file {source} must contain a mapping")
    return data


def app_body_from_seed(entry: dict, env_rid: str, location: str) -> dict:
    name = entry["name"]
    containers = copy.deepcopy(entry.get("containers")) or [{"name": name, "image": entry["image"]}]
    for c in containers:
        c.setdefault("name", name)
        c.setdefault("resources", {"cpu": 0.5, "memory": "1Gi"})
    template: dict[str, Any] = {"containers": containers}
    if entry.get("revisionSuffix"):
        template["revisionSuffix"] = entry["revisionSuffix"]
    if entry.get("minReplicas") is not None:
        template["scale"] = {"minReplicas": entry["minReplicas"], "maxReplicas": entry.get("maxReplicas", 10)}
    kind = str(entry.get("ingress", "internal" if entry.get("external") is False else "external")).lower()
    configuration: dict[str, Any] = {"activeRevisionsMode": entry.get("activeRevisionsMode", "Single")}
    default_traffic: dict[str, Any] = {"latestRevision": True, "weight": 100}
    if str(configuration["activeRevisionsMode"]).lower() == "labels":
        # Labels mode: the first revision takes the target label, and that label carries the traffic.
        configuration["targetLabel"] = entry.get("targetLabel", "blue")
        default_traffic["label"] = configuration["targetLabel"]
    if kind != "none":
        configuration["ingress"] = {
            "external": kind == "external",
            "targetPort": entry.get("targetPort", 8080),
            "transport": "auto",
            "traffic": copy.deepcopy(entry.get("traffic")) or [default_traffic],
        }
        if entry.get("ipSecurityRestrictions"):
            configuration["ingress"]["ipSecurityRestrictions"] = copy.deepcopy(entry["ipSecurityRestrictions"])
    if entry.get("secrets"):
        configuration["secrets"] = copy.deepcopy(entry["secrets"])
    if entry.get("maxInactiveRevisions") is not None:
        configuration["maxInactiveRevisions"] = entry["maxInactiveRevisions"]
    return {
        "location": entry.get("location", location),
        "tags": dict(entry.get("tags") or {}),
        "properties": {"environmentId": env_rid, "configuration": configuration, "template": template},
    }


def apply_seed(service: "Service", seed: dict) -> None:
    """Create what the seed lists and does not exist yet. Caller holds service.lock."""
    if not isinstance(seed, dict):
        raise ValueError("seed must be a mapping")
    sub = seed.get("subscriptionId") or store.DEFAULT_SUBSCRIPTION
    unknown = set(seed.get("config") or {}) - set(service.config)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}")
    service.config.update({k: float(v) if k in ("provisioning_delay", "progress_deadline") else v
                           for k, v in (seed.get("config") or {}).items()})
    for entry in seed.get("behaviors") or []:
        service.behaviours.append(behaviour(entry))
    for group in seed.get("resourceGroups") or []:
        rg, location = group["name"], group.get("location", "westeurope")
        service.ensure_rg(sub, rg, location)
        for env in group.get("environments") or []:
            k = store.key(store.env_id(sub, rg, env["name"]))
            if k not in service.state["environments"]:
                body = {"location": env.get("location", location), "tags": env.get("tags") or {},
                        "properties": {}}
                service.create_env(sub, rg, env["name"], body, immediate=True,
                                   default_domain=env.get("defaultDomain"))
        for entry in group.get("apps") or []:
            if not entry.get("name") or not (entry.get("image") or entry.get("containers")):
                raise ValueError(f"seed app needs name and image (or containers): {entry!r}")
            k = store.key(store.app_id(sub, rg, entry["name"]))
            if k in service.state["apps"]:
                continue
            env_ref = entry.get("environment") or ""
            env_rid = env_ref if env_ref.startswith("/") else store.env_id(sub, rg, env_ref)
            if store.key(env_rid) not in service.state["environments"]:
                raise ValueError(f"seed app {entry['name']!r}: environment {env_ref!r} not found")
            saved_delay = service.config["provisioning_delay"]
            service.config["provisioning_delay"] = 0.0
            try:
                app, op = service.put_app(sub, rg, entry["name"], app_body_from_seed(entry, env_rid, location))
                if entry.get("auth"):
                    service.set_auth(app, {"platform": {"enabled": entry["auth"].get("enabled", True)},
                                           "globalValidation": {"unauthenticatedClientAction": entry["auth"].get(
                                               "unauthenticatedClientAction", "RedirectToLoginPage")}})
                if op is not None:
                    service._finalize(op)  # seeded apps are ready at once
            finally:
                service.config["provisioning_delay"] = saved_delay
    service._save()
