"""The HTTP API over the history (function-key auth is the host's job; routes in function_app.py).

`HistoryApi.handle(operation, ...)` validates parameters (bad ones get 400 with a reason), asks the
store one question and shapes JSON with snake_case keys (`deployment_to_dict`, `event_to_dict`).
Described in shared/openapi.yaml, served at /api/openapi.json; the page at /api/history reads it too.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from shared.domain.events import REPOSITORY_RE, parse_time
from shared.domain.model import AppState, Deployment, Phase, deployment_to_dict, event_to_dict, utcnow
from shared.entrypoints import HttpResult
from shared.ports import ConcurrencyError, DeploymentQuery

log = logging.getLogger("acr_deploy.api")

ROOT = Path(__file__).resolve().parent.parent.parent
OPENAPI_PATH = ROOT / "shared" / "openapi.yaml"  # inside the package: deployed with the code
PAGE_PATH = Path(__file__).resolve().parent / "history_page.html"

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
RECENT = 20
APP_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._()-]{0,89}")  # environments, resource groups
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}")
REVISION_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
_RELATIVE_RE = re.compile(r"(\d{1,6})([smhd])")
STATUSES = tuple(p.value for p in Phase) + ("active",)
_NOT_BUILT = object()


class BadRequest(ValueError):
    """A parameter the caller must fix (400)."""


def app_to_dict(s: AppState) -> dict[str, Any]:
    def iso(v: datetime | None) -> str | None:
        return v.astimezone(timezone.utc).isoformat() if v else None

    return {
        "app": s.target.app, "subscription_id": s.target.subscription_id,
        "resource_group": s.target.resource_group, "container": s.target.container,
        "environment": s.environment,
        "live": {"deployment_id": s.live_deployment_id, "revision": s.live_revision,
                 "image": s.live_image, "digest": s.live_digest, "tag": s.live_tag,
                 "since": iso(s.live_since)},
        "active_deployment_id": s.active_deployment_id, "pending_deployment_id": s.pending_deployment_id,
        "last_deployment_id": s.last_deployment_id, "last_phase": s.last_phase,
        "updated_at": iso(s.updated_at),
    }


def ignored_to_dict(i: Any) -> dict[str, Any]:
    return {
        "at": i.at.astimezone(timezone.utc).isoformat(), "outcome": i.outcome, "reason": i.reason,
        "event_id": i.event_id, "event_type": i.event_type, "registry": i.registry,
        "repository": i.repository, "tag": i.tag, "digest": i.digest, "app": i.app,
    }


def restored_by(rollback: Deployment, history: list[Deployment]) -> dict[str, str]:
    """What a rollback puts back: its revision, and the tag and push that created that revision."""
    revision = rollback.rollback_to or rollback.revision
    origin = next((d for d in history if d.kind.value == "push" and d.revision == revision), None)
    # A revision acr-deploy did not create (the app's first) runs an image by tag: that tag is it.
    name = rollback.image.rpartition("/")[2]
    by_tag = name.partition(":")[2] if "@" not in name else ""
    return {"revision": revision, "tag": rollback.tag or (origin.tag if origin else by_tag),
            "repository": origin.repository if origin else "",
            "deployment_id": origin.id if origin else ""}


def parse_when(name: str, value: str, now: datetime | None = None) -> datetime:
    """ISO-8601 (naive = UTC), or relative to now: `30m`, `24h`, `7d`. BadRequest otherwise."""
    text = value.strip()
    rel = _RELATIVE_RE.fullmatch(text)
    if rel:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[rel.group(2)]
        return (now or utcnow()) - timedelta(**{unit: int(rel.group(1))})
    # A '+' in a query string arrives as a space: "2024-05-01T12:00:00 00:00".
    text = re.sub(r" (\d\d:?\d\d)$", r"+\1", text)
    parsed = parse_time(text)
    if parsed is None:
        raise BadRequest(f"{name} must be an ISO-8601 time (e.g. 2024-05-01T12:00:00Z) or like 24h/7d")
    return parsed


class HistoryApi:
    def __init__(self, store: Any, rollout: Any = None, settings: Any = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        # The rollout worker may be handed over lazily (a zero-argument provider) so reading the
        # history never depends on the rollout's wiring (ARM credentials and so on).
        self._rollout = rollout
        self.settings = settings
        self.clock = clock

    @property
    def rollout(self) -> Any:
        if callable(self._rollout) and not hasattr(self._rollout, "request_rollback"):
            try:
                self._rollout = self._rollout()
            except ModuleNotFoundError:
                self._rollout = None
        return self._rollout

    def handle(self, operation: str, *, method: str = "GET", params: dict[str, str] | None = None,
               route_params: dict[str, str] | None = None, body: bytes = b"") -> HttpResult:
        route = {"list_deployments": ("GET", self._list_deployments),
                 "get_deployment": ("GET", self._get_deployment),
                 "list_apps": ("GET", self._list_apps), "get_app": ("GET", self._get_app),
                 "rollback_app": ("POST", self._rollback_app),
                 "list_rejections": ("GET", self._list_rejections),
                 "history_page": ("GET", self._history_page), "openapi": ("GET", self._openapi)}
        if operation not in route:
            return _error(404, f"unknown operation {operation[:50]!r}")
        expected, handler = route[operation]
        if (method or "GET").upper() != expected:
            return _error(405, f"{operation} accepts {expected} only", {"Allow": expected})
        params = {k: v for k, v in (params or {}).items() if k != "code"}  # `code` is the function key
        try:
            return handler(params, route_params or {}, body)
        except BadRequest as exc:
            return _error(400, str(exc))
        except Exception:  # noqa: BLE001 - never leak internals; the log has the traceback
            log.exception("%s failed", operation)
            return _error(500, "internal error (see the function app's logs)")

    # ------------------------------------------------------------------ deployments
    def _list_deployments(self, params: dict[str, str], route: dict, body: bytes) -> HttpResult:
        _only(params, "app", "environment", "status", "repository", "since", "until", "limit", "continuation")
        query = DeploymentQuery(
            app=_match(params, "app", APP_RE, "an app name"),
            environment=_match(params, "environment", NAME_RE, "an environment name"),
            status=_status(params.get("status")),
            repository=_repository(params.get("repository")),
            since=self._when(params, "since"), until=self._when(params, "until"),
            limit=_limit(params.get("limit"), DEFAULT_LIMIT),
            continuation=_continuation(params.get("continuation")),
        )
        if query.since and query.until and query.since >= query.until:
            raise BadRequest("since must be before until")
        try:
            page = self.store.list_deployments(query)
        except ValueError as exc:  # a continuation token that is not ours / not for this query
            reason = str(exc) if "continuation" in str(exc) else "continuation token is not valid"
            raise BadRequest(reason) from exc
        return HttpResult(200, {"items": self._described(page.items), "continuation": page.continuation})

    def _get_deployment(self, params: dict[str, str], route: dict, body: bytes) -> HttpResult:
        _only(params, "app")
        deployment_id = route.get("id", "")
        if not ID_RE.fullmatch(deployment_id):
            raise BadRequest("id must be a deployment id such as 20240501120000-0123456789")
        # Optional app: read straight from the app's partition (also finds a deployment the
        # cross-app index does not list yet, in the moments after intake).
        app = _match(params, "app", APP_RE, "an app name")
        found = self.store.get_deployment(deployment_id, app=app)
        if found is None:
            return _error(404, f"no deployment {deployment_id}")
        data = self._described([found])[0]
        data["events"] = [event_to_dict(e) for e in self.store.list_events(deployment_id, app=found.target.app)]
        return HttpResult(200, data)

    # ------------------------------------------------------------------ apps
    def _list_apps(self, params: dict[str, str], route: dict, body: bytes) -> HttpResult:
        _only(params, "environment")
        environment = _match(params, "environment", NAME_RE, "an environment name")
        items = [self._app(s) for s in self.store.list_apps()
                 if not environment or s.environment == environment]
        return HttpResult(200, {"items": items})

    def _get_app(self, params: dict[str, str], route: dict, body: bytes) -> HttpResult:
        _only(params)
        app = route.get("app", "")
        if not APP_RE.fullmatch(app):
            raise BadRequest("app must be a Container App name")
        app = app.lower()
        targets = [self._app(s) for s in self.store.list_apps() if s.target.app.lower() == app]
        recent = self.store.list_deployments(DeploymentQuery(app=app, limit=RECENT)).items
        if not targets and not recent:
            return _error(404, f"acr-deploy has no record of app {app}")
        return HttpResult(200, {"app": app, "targets": targets, "recent": self._described(recent)})

    def _rollback_app(self, params: dict[str, str], route: dict, body: bytes) -> HttpResult:
        _only(params)
        app = route.get("app", "")
        if not APP_RE.fullmatch(app):
            raise BadRequest("app must be a Container App name")
        request = _json_body(body)
        to_revision = _opt_str(request, "to_revision", REVISION_RE, "a revision name")
        resource_group = _opt_str(request, "resource_group", NAME_RE, "a resource group name")
        requested_by = request.get("requested_by", "api")
        if not isinstance(requested_by, str) or not 0 < len(requested_by) <= 128:
            raise BadRequest("requested_by must be a string of at most 128 characters")
        rollout = self.rollout
        if rollout is None or not hasattr(rollout, "request_rollback"):
            return _error(501, "rollback is not available in this build")
        try:
            deployment = rollout.request_rollback(app.lower(), to_revision=to_revision,
                                                  resource_group=resource_group, requested_by=requested_by)
        except Exception as exc:  # noqa: BLE001 - mapped to a status below, else re-raised
            status = _status_of(exc)
            if status is None:
                raise
            return _error(status, str(exc)[:500] or type(exc).__name__)
        body_out = deployment_to_dict(deployment) if isinstance(deployment, Deployment) else deployment
        return HttpResult(202, body_out)

    def _app(self, state: AppState) -> dict[str, Any]:
        """The API shape of an app; when a rollback made the live revision and its record has no
        tag, the tag of the push that first brought that revision (or of its image)."""
        data = app_to_dict(state)
        if state.live_tag or not state.live_deployment_id:
            return data
        live = self.store.get_deployment(state.live_deployment_id, app=state.target.app)
        if live is not None and live.kind.value == "rollback":
            data["live"]["tag"] = self._described([live])[0]["restores"]["tag"]
        return data

    def _described(self, deployments: list[Deployment]) -> list[dict[str, Any]]:
        """The API shape of each deployment; a rollback also says what it restores (`restores`:
        revision, and the tag and deployment that first brought that revision), so a reader sees
        `rollback to orders-api--x (1.5.0)` instead of an empty repository:tag."""
        pushes: dict[str, list[Deployment]] = {}
        out = []
        for d in deployments:
            data = deployment_to_dict(d)
            if d.kind.value == "rollback":
                key = d.target.key
                if key not in pushes:  # one read per app, and only when a rollback is listed
                    pushes[key] = [p for p in self.store.list_deployments(
                        DeploymentQuery(app=d.target.app, limit=MAX_LIMIT)).items if p.target.key == key]
                data["restores"] = restored_by(d, pushes[key])
            out.append(data)
        return out

    # ------------------------------------------------------------------ rejections
    def _list_rejections(self, params: dict[str, str], route: dict, body: bytes) -> HttpResult:
        _only(params, "since", "until", "limit")
        until = self._when(params, "until") or self.clock()
        since = self._when(params, "since") or until - timedelta(days=7)
        if since >= until:
            raise BadRequest("since must be before until")
        page = self.store.list_ignored(since, until, _limit(params.get("limit"), 100))
        return HttpResult(200, {"items": [ignored_to_dict(i) for i in page.items],
                                "since": since.isoformat(), "until": until.isoformat()})

    # ------------------------------------------------------------------ documents
    def _history_page(self, params: dict[str, str], route: dict, body: bytes) -> HttpResult:
        headers = {"Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
                   "style-src 'unsafe-inline'; connect-src 'self'",
                   "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        return HttpResult(200, PAGE_PATH.read_text(encoding="utf-8"), "text/html", headers)

    def _openapi(self, params: dict[str, str], route: dict, body: bytes) -> HttpResult:
        import yaml

        if not OPENAPI_PATH.exists():
            return _error(404, "shared/openapi.yaml is not deployed with this app")
        return HttpResult(200, yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8")))

    def _when(self, params: dict[str, str], name: str) -> datetime | None:
        value = params.get(name)
        if value is None or value == "":
            return None
        if len(value) > 64:
            raise BadRequest(f"{name} is too long")
        return parse_when(name, value, self.clock())


# ---------------------------------------------------------------------- validation helpers


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> HttpResult:
    return HttpResult(status, {"error": reason}, headers=headers or {})


def _only(params: dict[str, str], *allowed: str) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
        raise BadRequest(f"unknown parameter {unknown[0][:40]!r}{hint}")


def _match(params: dict[str, str], name: str, pattern: re.Pattern, what: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not pattern.fullmatch(value):
        raise BadRequest(f"{name} must be {what}")
    return value.lower() if name == "app" else value


def _status(value: str | None) -> str | None:
    if not value:
        return None
    if value not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
    return value


def _repository(value: str | None) -> str | None:
    if not value:
        return None
    if len(value) > 255 or not REPOSITORY_RE.fullmatch(value):
        raise BadRequest("repository must be an OCI repository name (lowercase, '/'-separated)")
    return value


def _limit(value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(value)


def _continuation(value: str | None) -> str | None:
    if not value:
        return None
    if len(value) > 2048 or not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        raise BadRequest("continuation token is not valid")
    return value


def _json_body(body: bytes) -> dict[str, Any]:
    if not body or not body.strip():
        return {}
    if len(body) > 16_384:
        raise BadRequest("request body is too large")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("request body must be JSON") from exc
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    unknown = sorted(set(data) - {"to_revision", "resource_group", "requested_by"})
    if unknown:
        raise BadRequest(f"unknown field {unknown[0][:40]!r}; allowed: to_revision, resource_group, requested_by")
    return data


def _opt_str(data: dict[str, Any], name: str, pattern: re.Pattern, what: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadRequest(f"{name} must be {what}")
    return value


def _status_of(exc: Exception) -> int | None:
    """Map the rollout's exceptions to HTTP: an explicit `http_status` wins, then by kind/name."""
    explicit = getattr(exc, "http_status", None) or getattr(exc, "status", None)
    if isinstance(explicit, int) and 400 <= explicit < 600:
        return explicit
    name = type(exc).__name__.lower()
    if isinstance(exc, LookupError) or "notfound" in name:
        return 404
    if isinstance(exc, ConcurrencyError) or any(w in name for w in ("conflict", "busy", "inprogress")):
        return 409
    if isinstance(exc, ValueError) or any(w in name for w in ("invalid", "badrequest")):
        return 400
    return None
