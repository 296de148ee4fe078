"""Serving ports, behaviours and faults: what the loopback revision/app/label servers answer, and which ARM
calls an injected fault hits.

The port servers (runtime.py) hold no state; each request calls ``serve`` under the service lock, so a
traffic change or a new behaviour applies to the very next request.
"""
from __future__ import annotations

import fnmatch

from . import access, lifecycle
from . import revisions as rv
from . import store
from .runtime import SmoothWRR, fqdn
from .template import container_env


class ServingMixin:
    """Part of ``service.Service``; uses ``self.runtime``, ``self.behaviours``, ``self.faults``,
    ``self.counters`` and ``self.wrr``."""

    def fqdn_of(self, app: dict, port: int | None, name: str) -> str | None:
        return fqdn(port, name if rv.is_internal(app) else None)

    def _sync_servers(self, app: dict) -> None:
        """Make the running servers match the app: active revisions, the app ingress, its labels. An app
        without ingress has no URL at all (as on the service)."""
        k = store.key(store.app_id(app["sub"], app["rg"], app["name"]))
        if not rv.has_ingress(app):
            for srv_key in self.runtime.keys():
                if srv_key[1] == k:
                    self.runtime.stop(srv_key)
            for rev in app["revisions"]:
                rev["port"] = None
            app["appPort"], app["labelPorts"] = None, {}
            return
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

    def behaviour_for(self, template: dict | None, app_name: str | None = None) -> dict | None:
        """The most recently added behaviour whose image glob matches one of the template's images and whose
        app glob (if any) matches the app."""
        images = rv.images(template)
        for behaviour in reversed(self.behaviours):
            if behaviour.get("app") and not (app_name and fnmatch.fnmatchcase(app_name, behaviour["app"])):
                continue
            if behaviour.get("image") and not any(fnmatch.fnmatchcase(img, behaviour["image"]) for img in images):
                continue
            return behaviour
        return None

    def _refusal(self, app: dict, client_ip: str, headers: dict) -> tuple | None:
        """What the environment's edge answers a caller outside the environment before any revision runs:
        404 for internal ingress, 403 for an IP not allowed by ``ipSecurityRestrictions``, 401/302 when
        built-in authentication is on and the request carries no credentials."""
        ing = rv.ingress(app) or {}
        if rv.is_internal(app):
            return 404, {"error": "Not Found (internal ingress: reachable only from inside the environment)"}
        if not access.ip_allowed(ing.get("ipSecurityRestrictions"), client_ip):
            return 403, {"error": f"Forbidden: IP {client_ip} is not allowed by ipSecurityRestrictions"}
        auth = app.get("auth")
        if auth and auth.get("enabled") and not access.has_credentials(headers):
            if auth.get("unauthenticatedClientAction") == "Return401":
                return 401, {"error": "Unauthorized (built-in authentication)"}
            return 302, {"error": "redirect to login (built-in authentication)"}
        return None

    def serve(self, target: tuple, method: str, path: str, client_ip: str = "127.0.0.1",
              request_headers: dict | None = None) -> tuple:
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
            refused = self._refusal(app, client_ip, request_headers or {})
            if refused is not None:
                extra = {"Location": "/.auth/login/aad?post_login_redirect_uri=" + path} if refused[0] == 302 else {}
                return refused[0], refused[1], extra, 0
            counter_key = (app_key, rev["name"])
            count = self.counters[counter_key] = self.counters.get(counter_key, 0) + 1
            behaviour = self.behaviour_for(rev["template"], app["name"]) or {}
            images = rv.images(rev["template"])
            headers = {"x-emulator-revision": rev["name"], "x-emulator-app": app["name"]}
            latency = (behaviour.get("latency_ms") or 0) / 1000.0
            path_only = path.split("?", 1)[0]
            if behaviour.get("unhealthy") or not lifecycle.serving(rev):
                self.request_metrics.record(app_key, rev["name"], 503, latency * 1000.0)
                return 503, {"error": "revision is unhealthy", "revision": rev["name"]}, headers, latency
            if rev.get("coldStart"):  # scale from zero: the first request waits for a replica to start
                latency += float(behaviour.get("cold_start_ms") or 0) / 1000.0
                lifecycle.woke_up(rev)
            status = 200
            if behaviour.get("fail_after") is not None:
                if count > int(behaviour["fail_after"]) and _in_share(count - int(behaviour["fail_after"]),
                                                                       behaviour.get("fail_share")):
                    status = behaviour.get("status") or 500
            elif behaviour.get("status"):
                status = int(behaviour["status"])
            if path_only == "/healthz":
                body = {"status": "healthy" if status == 200 else "failing", "revision": rev["name"]}
            else:
                body = {"app": app["name"], "revision": rev["name"], "image": images[0] if images else None,
                        "images": images, "via": {"rev": "revision", "app": "app", "label": "label"}[kind],
                        "label": label, "method": method, "path": path, "request": count,
                        "env": container_env(rev["template"])}
            self.request_metrics.record(app_key, rev["name"], status, latency * 1000.0)
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
        with self.lock:
            self.track_peaks()

    def track_peaks(self) -> None:
        """Remember each revision's highest traffic weight ever (`peakWeight` in the control API's dump):
        tests check that a revision that failed its checks never received traffic. Weights change only
        inside ARM requests and `settle`, and both end here."""
        for app in self.state["apps"].values():
            for name, weight in rv.effective_weights(app).items():
                rev = rv.revisions_by_name(app).get(name)
                if rev is not None and weight > rev.get("peakWeight", 0):
                    rev["peakWeight"] = weight


def _in_share(n: int, share: float | None) -> bool:
    """Whether the n-th request past ``fail_after`` fails under ``fail_share`` (None: all of them). Spread
    evenly and deterministically: with 0.25, requests 4, 8, 12... fail."""
    if share is None:
        return True
    return int(n * share) > int((n - 1) * share)
