"""Look at a running sandbox the way a user does: the history HTTP API (with the function key),
ARM (for an app's ingress FQDN), and the app's own URL (with the emulator's CA).

Shared by `demo` and the end-to-end tests, so both judge the pipeline through its public faces.
"""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import httpx

from shared.domain.model import TERMINAL_PHASES

TERMINAL = frozenset(p.value for p in TERMINAL_PHASES)
ARM_API_VERSION = "2026-07-01"  # what azure-mgmt-appcontainers 5.1 sends by default


class StuckError(AssertionError):
    """A bounded wait ran out; the message says what was seen and where to look."""


def _items(payload: Any) -> list[dict[str, Any]]:
    """A page of the list API: a bare list, or an object holding the list."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for key in ("items", "deployments", "value", "apps", "data"):
            if isinstance(payload.get(key), list):
                return payload[key]
    return []


class SandboxClient:
    def __init__(self, endpoints: dict[str, Any], timeout_s: float = 10.0):
        self.endpoints = endpoints
        self._api = httpx.Client(base_url=endpoints["function_url"].rstrip("/") + "/api",
                                 headers={"x-functions-key": endpoints["function_key"]}, timeout=timeout_s)
        self._tls = httpx.Client(verify=ssl.create_default_context(cafile=endpoints["arm_ca"]), timeout=timeout_s)

    def close(self) -> None:
        self._api.close()
        self._tls.close()

    def __enter__(self) -> "SandboxClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ history API
    def get(self, path: str, **params: Any) -> Any:
        response = self._api.get(path, params={k: v for k, v in params.items() if v is not None})
        response.raise_for_status()
        return response.json()

    def deployments(self, limit: int = 100, **params: Any) -> list[dict[str, Any]]:
        return _items(self.get("/deployments", limit=limit, **params))

    def control(self, deployment_id: str, action: str, reason: str, by: str = "sandbox",
                app: str | None = None) -> tuple[int, dict[str, Any]]:
        """POST /deployments/{id}/{action} (approve, reject, pause, ...): (status, body)."""
        body = {"reason": reason, "by": by, **({"app": app} if app else {})}
        response = self._api.post(f"/deployments/{deployment_id}/{action}", json=body)
        return response.status_code, response.json()

    def chat_messages(self) -> list[dict[str, Any]]:
        """What the local Teams / Slack stand-in received: [{"hook": ..., "body": ...}]."""
        return httpx.get(f"{self.endpoints['chat_url']}/messages", timeout=5).json()

    def deployment(self, deployment_id: str) -> dict[str, Any]:
        payload = self.get(f"/deployments/{deployment_id}")
        return payload.get("deployment", payload) if isinstance(payload, dict) else payload

    def rejections(self) -> list[dict[str, Any]]:
        try:
            return _items(self.get("/rejections"))
        except httpx.HTTPError:
            return []

    def find(self, repository: str, tag: str, app: str | None = None,
             items: Iterable[dict[str, Any]] | None = None) -> dict[str, Any] | None:
        """The newest deployment of repository:tag (to `app`, if given)."""
        found = [d for d in (items if items is not None else self.deployments())
                 if d.get("repository") == repository and d.get("tag") == tag
                 and (app is None or str(d.get("app", "")).lower() == app.lower())]
        found.sort(key=lambda d: str(d.get("created_at") or d.get("id") or ""))
        return found[-1] if found else None

    def wait_for(self, repository: str, tag: str, app: str, timeout_s: float = 90.0,
                 phases: frozenset[str] = TERMINAL, on_poll: Callable[[list[dict]], None] | None = None,
                 interval_s: float = 0.3) -> dict[str, Any]:
        """Poll the API until the deployment of repository:tag to app reaches one of `phases`."""
        deadline = time.monotonic() + timeout_s
        seen: dict[str, Any] | None = None
        last_error = ""
        while time.monotonic() < deadline:
            try:
                items = self.deployments()
                last_error = ""
            except (httpx.HTTPError, ValueError) as exc:
                items, last_error = [], f"{type(exc).__name__}: {exc}"
            if on_poll:
                on_poll(items)
            seen = self.find(repository, tag, app, items) or seen
            if seen and str(seen.get("phase")) in phases:
                return seen
            time.sleep(interval_s)
        raise StuckError(self.stuck_message(repository, tag, app, seen, timeout_s, last_error))

    def stuck_message(self, repository: str, tag: str, app: str, seen: dict[str, Any] | None,
                      timeout_s: float, api_error: str = "") -> str:
        logs = Path(self.endpoints.get("logs_dir", "."))
        where = (f"logs: {logs / 'host.log'}, {logs / 'bridge.log'}, {logs / 'emulator.log'}, "
                 f"{logs / 'registry.log'}")
        if seen:
            return (f"{repository}:{tag} -> {app}: deployment {seen.get('id')} still in phase "
                    f"{seen.get('phase')!s} after {timeout_s:.0f}s (reason: {seen.get('reason') or '-'}); {where}")
        hints = []
        dead = dead_letters(self.endpoints, f"{repository}:{tag}")
        if dead:
            hints.append(f"the bridge dead-lettered its event ({dead[0]['deadLetterReason']}: {dead[0]['reason']})")
        rejected = [r for r in self.rejections() if r.get("tag") == tag and r.get("repository") == repository]
        if rejected:
            hints.append(f"intake recorded it as {rejected[0].get('outcome')}: {rejected[0].get('reason')}")
        if api_error:
            hints.append(f"the history API failed: {api_error}")
        hint = "; ".join(hints) or "no event reached intake, or no rule sent it to this app"
        return f"{repository}:{tag} -> {app}: no deployment recorded after {timeout_s:.0f}s ({hint}); {where}"

    # ------------------------------------------------------------------ what apps serve
    def app_fqdn(self, app: str) -> str:
        """The app's ingress FQDN as ARM reports it (the emulator answers `localhost:PORT`)."""
        e = self.endpoints
        url = (f"{e['arm_url']}/subscriptions/{e['subscription_id']}/resourceGroups/{e['resource_group']}"
               f"/providers/Microsoft.App/containerApps/{app}")
        # The emulator accepts any bearer token; ARM in Azure would want a real one.
        response = self._tls.get(url, params={"api-version": ARM_API_VERSION},
                                 headers={"Authorization": "Bearer sandbox"})
        response.raise_for_status()
        fqdn = (((response.json().get("properties") or {}).get("configuration") or {}).get("ingress") or {}).get("fqdn")
        if not fqdn:
            raise StuckError(f"app {app} has no ingress FQDN")
        return fqdn

    def serves(self, app: str, requests: int = 1) -> list[dict[str, Any]]:
        """GET https://<fqdn>/ `requests` times: what the app's users get (JSON: app, revision, image)."""
        base = f"https://{self.app_fqdn(app)}"
        out = []
        for _ in range(requests):
            response = self._tls.get(f"{base}/")
            try:
                body = response.json()
            except ValueError:
                body = {"body": response.text[:200]}
            out.append({"status": response.status_code, **(body if isinstance(body, dict) else {"body": body})})
        return out


def dead_letters(endpoints: dict[str, Any], subject: str | None = None) -> list[dict[str, Any]]:
    folder = Path(endpoints.get("deadletter_dir") or Path(endpoints["dir"]) / "deadletter")
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if subject is None or (record.get("event") or {}).get("subject") == subject:
            out.append({**record, "file": str(path)})
    return out
