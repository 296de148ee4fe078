"""Serving ports, behaviours and faults: what the loopback revision/app/label servers answer, and which ARM
calls an injected fault hits.

The port servers (runtime.py) hold no state; each request calls ``serve`` under the service lock, so a
traffic change or a new behaviour applies to the very next request.
"""
from __future__ import annotations

import fnmatch

from . import revisions as rv
from . import store
from .runtime import SmoothWRR


class ServingMixin:
    """Part of ``service.Service``; uses ``self.runtime``, ``self.behaviours``, ``self.faults``,
    ``self.counters`` and ``self.wrr``."""

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
