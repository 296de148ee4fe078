"""Revision sub-resources: get, the ARM view, and the activate / deactivate / restart actions.

These are plain 200 POSTs in the spec (not long-running), so they take effect before the answer goes out.
The pure rules (naming, traffic, pruning) live in revisions.py.
"""
from __future__ import annotations

import copy

from . import lifecycle
from . import revisions as rv
from . import store
from .errors import bad_request, not_found


class RevisionOpsMixin:
    """Part of ``service.Service``; uses ``self._check_idle``, ``self._provision`` and ``self._sync_servers``."""

    def get_revision(self, app: dict, name: str) -> dict:
        for rev in app["revisions"]:
            if rev["name"].lower() == name.lower():
                return rev
        raise not_found(f"Microsoft.App/containerApps/{app['name']}/revisions", name, app["rg"])

    def render_revision(self, app: dict, rev: dict, weights: dict | None = None) -> dict:
        weights = rv.effective_weights(app) if weights is None else weights
        props = {k: rev[k] for k in ("createdTime", "active", "replicas", "provisioningState", "runningState",
                                      "healthState", "lastActiveTime")}
        if rev.get("runningStateDetails"):
            props["runningStateDetails"] = rev["runningStateDetails"]
        props.update(template=copy.deepcopy(rev["template"]), trafficWeight=weights.get(rev["name"], 0),
                     fqdn=(self.fqdn_of(app, rev.get("port"), rev["name"]) or "") if rev["active"] else "")
        if rev.get("provisioningError"):
            props["provisioningError"] = rev["provisioningError"]
        return {"id": f"{store.app_id(app['sub'], app['rg'], app['name'])}/revisions/{rev['name']}",
                "name": rev["name"], "type": "Microsoft.App/containerApps/revisions", "properties": props}

    def activate(self, app: dict, name: str) -> None:
        rev = self.get_revision(app, name)
        self._check_idle(app)
        if not rev["active"]:
            rev.update(lifecycle.STARTING_STATE, active=True)
            if self._provision(app, rev) == lifecycle.READY and not app.get("latestReady"):
                app["latestReady"] = rev["name"]
            self._sync_servers(app)
            self._save()

    def deactivate(self, app: dict, name: str) -> None:
        rev = self.get_revision(app, name)
        self._check_idle(app)
        # The service deactivates a revision that still receives traffic (Revisions_Deactivate example: a
        # revision at 80 %; azure-container-apps#410, #1345): its share is then served by nobody until the
        # traffic is changed. Callers must move traffic first.
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
        # A restart gives the revision fresh replicas: request counts (fail_after) start again.
        self.counters.pop((store.key(store.app_id(app["sub"], app["rg"], app["name"])), rev["name"]), None)
        self._provision(app, rev)
        self._save()

    @staticmethod
    def _deactivate(rev: dict) -> None:
        rev.pop("activationDeadline", None)
        rev.update(active=False, runningState="Stopped", healthState="None", replicas=0, runningStateDetails=None,
                   lastActiveTime=store.now_iso())
