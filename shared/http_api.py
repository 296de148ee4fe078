"""The HTTP API over the history (function-key auth is the host's job; routes in function_app.py).

The edge between HTTP and the use cases: `HistoryApi.handle(operation, ...)` checks the method and
the parameters, asks `HistoryService` one question and shapes its answer as JSON with snake_case
keys. Errors become statuses in one table (`ERROR_STATUS`); anything else is a logged 500.
Described in shared/openapi.yaml, served at /api/openapi.json; the page at /api/history reads it too.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from shared.domain.approvals import ControlAction
from shared.domain.events import parse_time
from shared.domain.model import (
    AppState, Deployment, IgnoredEvent, Phase, deployment_to_dict, event_to_dict, utcnow,
)
from shared.domain.references import REPOSITORY
from shared.errors import ConflictError, InvalidRequestError, NotFoundError, UnavailableError
from shared.ports import ConcurrencyError, DeploymentQuery
from shared.services.history import HistoryService, HistoryStore, RollbackSource

log = logging.getLogger("acr_deploy.api")

OPENAPI_PATH = Path(__file__).resolve().parent / "openapi.yaml"  # inside the package: deployed with the code
PAGE_PATH = Path(__file__).resolve().parent / "history_page.html"

MAX_LIMIT = 200
DEFAULT_LIMIT = 50
REJECTIONS_LIMIT = 100
APP_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._()-]{0,89}")  # environments, resource groups
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,127}")
REVISION_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
# ASCII digits only: `\d` also matches other scripts' digits ("²", "٣"), which int() refuses or reads.
_RELATIVE_RE = re.compile(r"([0-9]{1,6})([smhd])")
_LIMIT_RE = re.compile(r"[0-9]{1,4}")
# Times a query may name: the store's keys carry 4-digit years, and a bound one second past the
# last representable time would overflow; anything outside is a caller's mistake, not a 500.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(9999, 1, 1, tzinfo=timezone.utc)
MAX_BODY = 16_384
STATUSES = tuple(p.value for p in Phase) + ("active",)
ROLLBACK_FIELDS = ("to_revision", "resource_group", "requested_by")
CONTROL_FIELDS = ("reason", "by", "app")

# The one place errors become statuses; the first matching type wins. Messages of these types
# are safe to show (shared/errors.py); anything else is a 500 with the details in the log.
ERROR_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (InvalidRequestError, 400),
    (NotFoundError, 404),
    (ConflictError, 409),
    (ConcurrencyError, 409),
    (UnavailableError, 501),
)


@dataclass
class HttpResult:
    status: int
    body: Any  # JSON-serialisable, or str/bytes with content_type set
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


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
        # What the drift reconciler saw: the app serving something other than the live record.
        "drift": {"detail": s.drift_detail, "since": iso(s.drift_since)} if s.drift else None,
    }


def ignored_to_dict(i: IgnoredEvent) -> dict[str, Any]:
    return {
        "at": i.at.astimezone(timezone.utc).isoformat(), "outcome": i.outcome, "reason": i.reason,
        "event_id": i.event_id, "event_type": i.event_type, "registry": i.registry,
        "repository": i.repository, "tag": i.tag, "digest": i.digest, "app": i.app,
    }


def parse_when(name: str, value: str, now: datetime | None = None) -> datetime:
    """ISO-8601 (naive = UTC), or relative to now: `30m`, `24h`, `7d`; always UTC and between
    `EARLIEST` and `LATEST`. InvalidRequestError otherwise (overflowing values included)."""
    text = value.strip()
    rel = _RELATIVE_RE.fullmatch(text)
    if rel:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[rel.group(2)]
        try:
            parsed: datetime | None = (now or utcnow()) - timedelta(**{unit: int(rel.group(1))})
        except OverflowError:
            parsed = EARLIEST - timedelta(days=1)  # reported as out of range below
    else:
        # A '+' in a query string arrives as a space: "2024-05-01T12:00:00 00:00".
        text = re.sub(r" ([0-9]{2}:?[0-9]{2})$", r"+\1", text)
        parsed = parse_time(text)
    if parsed is None:
        raise InvalidRequestError(f"{name} must be an ISO-8601 time (e.g. 2024-05-01T12:00:00Z) or like 24h/7d")
    try:
        parsed = parsed.astimezone(timezone.utc)
    except OverflowError as exc:  # 0001-01-01T00:00:00+01:00 has no UTC equivalent
        raise InvalidRequestError(f"{name} is out of range") from exc
    if not EARLIEST <= parsed < LATEST:
        raise InvalidRequestError(f"{name} must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return parsed


def status_of(exc: Exception) -> int | None:
    """The status `ERROR_STATUS` gives this error, or None (an internal error)."""
    return next((status for kind, status in ERROR_STATUS if isinstance(exc, kind)), None)


Handler = Callable[[dict[str, str], dict[str, str], bytes], HttpResult]
CallerHandler = Callable[[dict[str, str], dict[str, str], bytes, str], HttpResult]


class HistoryApi:
    def __init__(self, store: HistoryStore, rollout: RollbackSource = None, settings: object = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        # `settings` is accepted for the composition root's sake; nothing here depends on it yet.
        self.history = HistoryService(store, rollout, clock)
        self.clock = clock
        self.routes: dict[str, tuple[str, Handler]] = {
            "list_deployments": ("GET", self._list_deployments),
            "get_deployment": ("GET", self._get_deployment),
            "list_apps": ("GET", self._list_apps), "get_app": ("GET", self._get_app),
            "rollback_app": ("POST", self._rollback_app),
            "list_rejections": ("GET", self._list_rejections),
            "history_page": ("GET", self._history_page), "openapi": ("GET", self._openapi),
        }
        # Operations that record who asked: they also get the signed-in caller's name, if any.
        self.caller_routes: dict[str, tuple[str, CallerHandler]] = {
            "control_deployment": ("POST", self._control_deployment),
        }

    def handle(self, operation: str, *, method: str = "GET", params: dict[str, str] | None = None,
               route_params: dict[str, str] | None = None, body: bytes = b"",
               headers: dict[str, str] | None = None) -> HttpResult:
        if operation not in self.routes and operation not in self.caller_routes:
            return _error(404, f"unknown operation {operation[:50]!r}")
        expected, handler = self.routes.get(operation) or self.caller_routes[operation]
        if (method or "GET").upper() != expected:
            return _error(405, f"{operation} accepts {expected} only", {"Allow": expected})
        params = {k: v for k, v in (params or {}).items() if k != "code"}  # `code` is the function key
        try:
            if operation in self.caller_routes:
                return self.caller_routes[operation][1](params, route_params or {}, body, signed_in(headers))
            return handler(params, route_params or {}, body)
        except Exception as exc:  # noqa: BLE001 - known errors get their status; never leak internals
            status = status_of(exc)
            if status is None:
                log.exception("%s failed", operation)
                return _error(500, "internal error (see the function app's logs)")
            return _error(status, str(exc)[:500] or type(exc).__name__)

    # ------------------------------------------------------------------ deployments
    def _list_deployments(self, params: dict[str, str], route: dict[str, str], body: bytes) -> HttpResult:
        _only(params, "app", "environment", "status", "repository", "since", "until", "limit", "continuation")
        page = self.history.list_deployments(DeploymentQuery(
            app=_match(params, "app", APP_RE, "an app name"),
            environment=_match(params, "environment", NAME_RE, "an environment name"),
            status=_status(params.get("status")),
            repository=_repository(params.get("repository")),
            since=self._when(params, "since"), until=self._when(params, "until"),
            limit=_limit(params.get("limit"), DEFAULT_LIMIT),
            continuation=_continuation(params.get("continuation")),
        ))
        return HttpResult(200, {"items": self._described(page.items), "continuation": page.continuation})

    def _get_deployment(self, params: dict[str, str], route: dict[str, str], body: bytes) -> HttpResult:
        _only(params, "app")
        deployment_id = route.get("id", "")
        if not ID_RE.fullmatch(deployment_id):
            raise InvalidRequestError("id must be a deployment id such as 20240501120000-0123456789")
        found = self.history.get_deployment(deployment_id, app=_match(params, "app", APP_RE, "an app name"))
        data = self._described([found.deployment])[0]
        data["events"] = [event_to_dict(e) for e in found.events]
        return HttpResult(200, data)

    # ------------------------------------------------------------------ apps
    def _list_apps(self, params: dict[str, str], route: dict[str, str], body: bytes) -> HttpResult:
        _only(params, "environment")
        states = self.history.list_apps(_match(params, "environment", NAME_RE, "an environment name"))
        return HttpResult(200, {"items": [self._app(s) for s in states]})

    def _get_app(self, params: dict[str, str], route: dict[str, str], body: bytes) -> HttpResult:
        _only(params)
        found = self.history.get_app(_app_name(route))
        return HttpResult(200, {"app": found.app, "targets": [self._app(s) for s in found.targets],
                                "recent": self._described(found.recent)})

    def _rollback_app(self, params: dict[str, str], route: dict[str, str], body: bytes) -> HttpResult:
        _only(params)
        app = _app_name(route)
        request = _json_body(body)
        to_revision = _opt_str(request, "to_revision", REVISION_RE, "a revision name")
        resource_group = _opt_str(request, "resource_group", NAME_RE, "a resource group name")
        requested_by = request.get("requested_by", "api")
        if not isinstance(requested_by, str) or not 0 < len(requested_by) <= 128:
            raise InvalidRequestError("requested_by must be a string of at most 128 characters")
        deployment = self.history.request_rollback(app, to_revision=to_revision, resource_group=resource_group,
                                                   requested_by=requested_by)
        return HttpResult(202, deployment_to_dict(deployment))

    def _control_deployment(self, params: dict[str, str], route: dict[str, str], body: bytes,
                            principal: str) -> HttpResult:
        """POST /deployments/{id}/{action}: {"reason": ..., "by": ..., "app": ...}; 202 when recorded."""
        _only(params)
        deployment_id = route.get("id", "")
        if not ID_RE.fullmatch(deployment_id):
            raise InvalidRequestError("id must be a deployment id such as 20240501120000-0123456789")
        try:
            action = ControlAction(route.get("action", ""))
        except ValueError as exc:
            raise InvalidRequestError(f"action must be one of {', '.join(a.value for a in ControlAction)}") from exc
        request = _json_body(body, CONTROL_FIELDS)
        reason = request.get("reason")
        if not isinstance(reason, str) or not 0 < len(reason.strip()) <= 500:
            raise InvalidRequestError("reason must be a string of 1 to 500 characters (it is recorded)")
        declared = request.get("by", "api")
        if not isinstance(declared, str) or not 0 < len(declared) <= 128:
            raise InvalidRequestError("by must be a string of at most 128 characters")
        app = _opt_str(request, "app", APP_RE, "an app name")
        # Signed in (App Service authentication): Azure's word for who it is. Otherwise the caller holds
        # a function key, whose name the Python worker is not told: record the name it gives itself.
        by = principal or f"{declared} (function key)"
        d = self.history.request_control(deployment_id, action, by, reason, app=app.lower() if app else None)
        return HttpResult(202, deployment_to_dict(d))

    def _app(self, state: AppState) -> dict[str, Any]:
        data = app_to_dict(state)
        if data.get("live") is not None:
            data["live"]["tag"] = self.history.live_tag(state)
        return data

    def _described(self, deployments: list[Deployment]) -> list[dict[str, Any]]:
        """The API shape of each deployment; a rollback also says what it restores (`restores`), so
        a reader sees `rollback to orders-api--x (1.5.0)` instead of an empty repository:tag."""
        restores = self.history.restores(deployments)
        out = []
        for d in deployments:
            data = deployment_to_dict(d)
            if d.id in restores:
                data["restores"] = asdict(restores[d.id])
            out.append(data)
        return out

    # ------------------------------------------------------------------ rejections
    def _list_rejections(self, params: dict[str, str], route: dict[str, str], body: bytes) -> HttpResult:
        _only(params, "since", "until", "limit")
        found = self.history.list_rejections(self._when(params, "since"), self._when(params, "until"),
                                             _limit(params.get("limit"), REJECTIONS_LIMIT))
        return HttpResult(200, {"items": [ignored_to_dict(i) for i in found.page.items],
                                "since": found.since.isoformat(), "until": found.until.isoformat()})

    # ------------------------------------------------------------------ documents
    def _history_page(self, params: dict[str, str], route: dict[str, str], body: bytes) -> HttpResult:
        headers = {"Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
                   "style-src 'unsafe-inline'; connect-src 'self'",
                   "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        return HttpResult(200, PAGE_PATH.read_text(encoding="utf-8"), "text/html", headers)

    def _openapi(self, params: dict[str, str], route: dict[str, str], body: bytes) -> HttpResult:
        import yaml

        if not OPENAPI_PATH.exists():
            return _error(404, "shared/openapi.yaml is not deployed with this app")
        return HttpResult(200, yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8")))

    def _when(self, params: dict[str, str], name: str) -> datetime | None:
        value = params.get(name)
        if value is None or value == "":
            return None
        if len(value) > 64:
            raise InvalidRequestError(f"{name} is too long")
        return parse_when(name, value, self.clock())


# ---------------------------------------------------------------------- request parsing


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> HttpResult:
    return HttpResult(status, {"error": reason}, headers=headers or {})


def _only(params: dict[str, str], *allowed: str) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
        raise InvalidRequestError(f"unknown parameter {unknown[0][:40]!r}{hint}")


def _app_name(route: dict[str, str]) -> str:
    app = route.get("app", "")
    if not APP_RE.fullmatch(app):
        raise InvalidRequestError("app must be a Container App name")
    return app.lower()


def _match(params: dict[str, str], name: str, pattern: re.Pattern[str], what: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not pattern.fullmatch(value):
        raise InvalidRequestError(f"{name} must be {what}")
    return value.lower() if name == "app" else value


def _status(value: str | None) -> str | None:
    if not value:
        return None
    if value not in STATUSES:
        raise InvalidRequestError(f"status must be one of {', '.join(STATUSES)}")
    return value


def _repository(value: str | None) -> str | None:
    if not value:
        return None
    if len(value) > 255 or not REPOSITORY.fullmatch(value):
        raise InvalidRequestError("repository must be an OCI repository name (lowercase, '/'-separated)")
    return value


def _limit(value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    if not _LIMIT_RE.fullmatch(value) or not 1 <= int(value) <= MAX_LIMIT:
        raise InvalidRequestError(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(value)


def _continuation(value: str | None) -> str | None:
    if not value:
        return None
    if len(value) > 2048 or not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        raise InvalidRequestError("continuation token is not valid")
    return value


def signed_in(headers: dict[str, str] | None) -> str:
    """The signed-in caller's name from App Service authentication, or "". Azure sets this header and
    external requests cannot (learn.microsoft.com app-service configure-authentication-user-identities)."""
    for name, value in (headers or {}).items():
        if name.lower() == "x-ms-client-principal-name" and value.strip():
            return value.strip()[:200]
    return ""


def _json_body(body: bytes, allowed: tuple[str, ...] = ROLLBACK_FIELDS) -> dict[str, Any]:
    if not body or not body.strip():
        return {}
    if len(body) > MAX_BODY:
        raise InvalidRequestError("request body is too large")
    try:
        data = json.loads(body)
    except RecursionError as exc:  # the decoder recurses per nesting level
        raise InvalidRequestError("request body is nested too deeply") from exc
    except ValueError as exc:  # UnicodeDecodeError included
        raise InvalidRequestError("request body must be JSON") from exc
    if not isinstance(data, dict):
        raise InvalidRequestError("request body must be a JSON object")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise InvalidRequestError(f"unknown field {unknown[0][:40]!r}; allowed: {', '.join(allowed)}")
    return data


def _opt_str(data: dict[str, Any], name: str, pattern: re.Pattern[str], what: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidRequestError(f"{name} must be {what}")
    return value
