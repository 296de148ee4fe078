"""Long-running operations: creation, lazy completion (``settle``), polling and their Retry-After.

Every ARM write (app PUT/PATCH/DELETE, environment PUT) commits its change at once and records an operation
that stays ``InProgress`` for ``provisioning_delay`` seconds. Nothing runs in the background: ``settle()`` is
called at the start of every request and finishes whatever is due, so the emulator stays deterministic.
Finishing an app operation is where a new revision is provisioned (health check, Single-mode swap).
"""
from __future__ import annotations

import math
import time
import uuid

from . import lifecycle
from . import revisions as rv
from . import store
from .errors import ArmError
from .lifecycle import FAILED, READY, STARTING


def fmt_seconds(value: float) -> str:
    # ARM sends whole seconds; under a second we send a decimal, which azure-core parses as float.
    if value >= 1:
        return str(math.ceil(value))
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


def op_path(op: dict, kind: str) -> str:
    """``kind`` is ``containerappOperationStatuses`` (Azure-AsyncOperation) or ``...Results`` (Location)."""
    return (f"/subscriptions/{op['sub']}/providers/{store.PROVIDER}/locations/{op['location']}/"
            f"{kind}/{op['id']}")


class OperationsMixin:
    """Part of ``service.Service``; uses ``self.state``, ``self.config`` and the app/serving helpers."""

    def settle(self) -> None:
        now = time.time()
        for op in list(self.state["operations"].values()):
            if op["status"] == "InProgress" and now >= op["deadline"]:
                self._finalize(op)
        self._advance_revisions(now)
        self.track_peaks()  # traffic that follows the latest ready revision moves here too

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
                self._finish_app_write(app, op)
                self._sync_servers(app)
        self._save()

    def _finish_app_write(self, app: dict, op: dict) -> None:
        """The new revision (if any) becomes ready, keeps starting, or fails; in Single mode a ready one
        replaces the others."""
        app["op"] = None
        app["provisioningState"] = "Succeeded"
        rev = rv.revisions_by_name(app).get(op.get("newRevision") or "")
        if rev is None:
            return
        outcome = self._provision(app, rev)
        if outcome == READY:
            self._mark_ready(app, rev)
            return
        if outcome == STARTING:  # provisioned but not ready (crash loop): the write itself succeeded
            return
        # Single mode: the previous revision stays active and keeps all traffic (service docs, "revisions").
        app["provisioningState"] = "Failed"
        op["status"] = "Failed"
        op["error"] = {
            "code": "ContainerAppOperationError",
            "message": f"Failed to provision revision for container app '{app['name']}'. "
                       f"Error details: {rev['provisioningError']}",
        }

    def _mark_ready(self, app: dict, rev: dict) -> None:
        app["latestReady"] = rev["name"]
        if rv.mode(app) == "single":  # zero-downtime swap: old revisions go once the new is ready
            for other in app["revisions"]:
                if other is not rev and other["active"]:
                    self._deactivate(other)
            rv.prune_inactive(app)

    def _provision(self, app: dict, rev: dict) -> str:
        """Start the revision's replicas as its behaviour says (lifecycle.py); READY, STARTING or FAILED."""
        rev.pop("activationDeadline", None)
        rev.pop("coldStart", None)
        outcome = lifecycle.start(rev, self.behaviour_for(rev["template"], app["name"]),
                                  float(self.config["progress_deadline"]))
        if outcome == FAILED:
            rev["replicas"] = 0
        return outcome

    def _advance_revisions(self, now: float) -> None:
        """Crash-looping revisions reach their progress deadline (lazily, like operations)."""
        for app in self.state["apps"].values():
            for rev in app["revisions"]:
                if rev.get("activationDeadline") and now >= rev["activationDeadline"] and rev["active"]:
                    lifecycle.deadline_exceeded(rev)

    def retry_after(self, op: dict | None = None, integer: bool = False) -> str:
        """Retry-After for an LRO answer.

        The generated SDK parses the *initial* response's Retry-After with int(), so that one is whole
        seconds. Poll answers go through azure-core, which accepts decimals; there we send the time left
        (at least 20 ms) so SDK callers that rely on Retry-After never sit through the 30 s default.
        """
        fixed = self.config.get("retry_after")
        if fixed is not None:
            return str(math.ceil(float(fixed))) if integer else fmt_seconds(float(fixed))
        left = max((op["deadline"] - time.time()) if op else 0, 0.0)
        if integer:
            return str(math.ceil(left))
        return fmt_seconds(max(left, 0.02))

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
        """The Azure-AsyncOperation status body (same shape as the service's operation status)."""
        body = {"id": op_path(op, "containerappOperationStatuses"), "name": op["id"],
                "status": op["status"], "startTime": op["startTime"]}
        if op["status"] != "InProgress":
            body["endTime"] = op["endTime"] or store.now_iso()
        if op["status"] == "Failed" and op.get("error"):
            body["error"] = op["error"]
        return body

    # Kept as a static method: arm.py builds operation URLs through ``Service.op_path``.
    op_path = staticmethod(op_path)
