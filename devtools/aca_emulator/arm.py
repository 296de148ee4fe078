"""ARM routes for Microsoft.App (api-version 2026-07-01): parsing, auth, faults, LRO headers, paging.

Each route returns (status, body, headers); state changes happen in service.Service.
"""
from __future__ import annotations

import json
import re
import urllib.parse
from typing import Callable

from . import metrics
from . import revisions as rv
from . import store
from .errors import ArmError, bad_request
from .service import Service

_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_RG = _SUB + r"/resourcegroups/(?P<rg>[^/]+)"
_PROV = "/providers/microsoft.app"
_APP = _RG + _PROV + r"/containerapps/(?P<app>[^/]+)"
_ENV = _RG + _PROV + r"/managedenvironments/(?P<env>[^/]+)"
_OPS = _SUB + _PROV + r"/locations/(?P<loc>[^/]+)/(?P<optype>containerappoperationstatuses|containerappoperationresults)/(?P<op>[^/]+)"

Route = Callable[["Request"], tuple]
ROUTES: list[tuple[str, re.Pattern, str]] = []


def route(method: str, pattern: str):
    def deco(fn):
        ROUTES.append((method, re.compile("^" + pattern + "$", re.IGNORECASE), fn.__name__))
        return fn
    return deco


class Request:
    def __init__(self, svc: Service, method: str, path: str, query: dict, body: bytes, base: str, match):
        self.svc, self.method, self.path, self.query, self.raw, self.base = svc, method, path, query, body, base
        self.p = match.groupdict()

    def json(self) -> dict:
        try:
            data = json.loads(self.raw or b"null")
        except ValueError:
            raise bad_request("InvalidRequestContent", "The request content was not valid JSON.") from None
        if not isinstance(data, dict):
            raise bad_request("InvalidRequestContent", "The request content must be a JSON object.")
        return data

    def op_url(self, op: dict, kind: str) -> str:
        return f"{self.base}{Service.op_path(op, kind)}?api-version={store.API_VERSION}"


def _page(req: Request, items: list, render) -> tuple:
    """ARM paging: ``{"value": [...], "nextLink": absolute URL or absent}``. The token is a plain offset."""
    size = max(int(req.svc.config["page_size"]), 1)
    try:
        skip = int(req.query.get("$skiptoken", "0"))
    except ValueError:
        raise bad_request("InvalidSkipToken", "The $skiptoken is invalid.") from None
    # The service always sends nextLink, null on the last page (the 2026-07-01 examples).
    body = {"value": [render(x) for x in items[skip:skip + size]], "nextLink": None}
    if skip + size < len(items):
        params = {"api-version": store.API_VERSION, "$skiptoken": str(skip + size)}
        if req.query.get("$filter"):
            params["$filter"] = req.query["$filter"]
        body["nextLink"] = f"{req.base}{req.path}?{urllib.parse.urlencode(params, quote_via=urllib.parse.quote)}"
    return 200, body, {}


# ---------------------------------------------------------------- managed environments
@route("GET", _SUB + _PROV + "/managedenvironments")
def list_envs_sub(req: Request):
    envs = [e for e in req.svc.state["environments"].values() if e["sub"].lower() == req.p["sub"].lower()]
    return _page(req, envs, req.svc.render_env)


@route("GET", _RG + _PROV + "/managedenvironments")
def list_envs_rg(req: Request):
    req.svc.require_rg(req.p["sub"], req.p["rg"])
    envs = [e for e in req.svc.state["environments"].values()
            if e["sub"].lower() == req.p["sub"].lower() and e["rg"].lower() == req.p["rg"].lower()]
    return _page(req, envs, req.svc.render_env)


@route("GET", _ENV)
def get_env(req: Request):
    return 200, req.svc.render_env(req.svc.get_env(req.p["sub"], req.p["rg"], req.p["env"])), {}


@route("PUT", _ENV)
def put_env(req: Request):
    env, op = req.svc.create_env(req.p["sub"], req.p["rg"], req.p["env"], req.json())
    return 201, req.svc.render_env(env), _lro_headers(req, op)


@route("DELETE", _ENV)
def delete_env(req: Request):
    return (200 if req.svc.delete_env(req.p["sub"], req.p["rg"], req.p["env"]) else 204), None, {}


# ---------------------------------------------------------------- container apps
@route("GET", _SUB + _PROV + "/containerapps")
def list_apps_sub(req: Request):
    return _page(req, req.svc.list_apps(req.p["sub"]), req.svc.render_app)


@route("GET", _RG + _PROV + "/containerapps")
def list_apps_rg(req: Request):
    return _page(req, req.svc.list_apps(req.p["sub"], req.p["rg"]), req.svc.render_app)


@route("GET", _APP)
def get_app(req: Request):
    return 200, req.svc.render_app(req.svc.get_app(req.p["sub"], req.p["rg"], req.p["app"])), {}


@route("PUT", _APP)
def put_app(req: Request):
    app, op = req.svc.put_app(req.p["sub"], req.p["rg"], req.p["app"], req.json())
    if op is None:  # nothing to change: 200 with the app, no operation (ContainerApps.json 2025-07-01)
        return 200, req.svc.render_app(app), {}
    # Spec: 201 + Azure-AsyncOperation + Retry-After, final state via azure-async-operation (then a GET).
    headers = {"Azure-AsyncOperation": req.op_url(op, "containerappOperationStatuses"),
               "Retry-After": req.svc.retry_after(op, integer=True)}
    return 201, req.svc.render_app(app), headers


@route("PATCH", _APP)
def patch_app(req: Request):
    _app, op = req.svc.patch_app(req.p["sub"], req.p["rg"], req.p["app"], req.json())
    # Spec: 202 + Location + Retry-After; the Location answers 202 until done, then 200 with the app. The
    # service also sends Azure-AsyncOperation (the 2026-07-01 Patch example), which the SDK polls first.
    return 202, None, _lro_headers(req, op)


@route("DELETE", _APP)
def delete_app(req: Request):
    op = req.svc.delete_app(req.p["sub"], req.p["rg"], req.p["app"])
    if op is None:
        return 204, None, {}  # ARM convention: deleting something absent succeeds with 204
    return 202, None, _lro_headers(req, op)


def _lro_headers(req: Request, op: dict) -> dict:
    return {"Azure-AsyncOperation": req.op_url(op, "containerappOperationStatuses"),
            "Location": req.op_url(op, "containerappOperationResults"),
            "Retry-After": req.svc.retry_after(op, integer=True)}


@route("GET", _APP + "/authconfigs")
def list_auth_configs(req: Request):
    app = req.svc.get_app(req.p["sub"], req.p["rg"], req.p["app"])
    return _page(req, [app] if app.get("auth") else [], req.svc.render_auth_config)


@route("GET", _APP + "/authconfigs/(?P<cfg>[^/]+)")
def get_auth_config(req: Request):
    app = req.svc.get_app(req.p["sub"], req.p["rg"], req.p["app"])
    if not app.get("auth") or req.p["cfg"].lower() != "current":
        raise ArmError(404, "ResourceNotFound", f"The Resource 'Microsoft.App/containerApps/{app['name']}/authConfigs/"
                                                f"{req.p['cfg']}' under resource group '{app['rg']}' was not found.")
    return 200, req.svc.render_auth_config(app), {}


@route("PUT", _APP + "/authconfigs/current")
def put_auth_config(req: Request):
    app = req.svc.get_app(req.p["sub"], req.p["rg"], req.p["app"])
    req.svc.set_auth(app, req.json().get("properties") or {})
    return 200, req.svc.render_auth_config(app), {}


@route("POST", _APP + "/listsecrets")
def list_secrets(req: Request):
    return 200, req.svc.list_secrets(req.svc.get_app(req.p["sub"], req.p["rg"], req.p["app"])), {}


# ---------------------------------------------------------------- operations
@route("GET", _OPS)
def get_operation(req: Request):
    op = req.svc.poll_operation(req.p["sub"], req.p["op"])
    in_progress = op["status"] == "InProgress"
    retry = {"Retry-After": req.svc.retry_after(op)} if in_progress else {}
    if req.p["optype"].lower() == "containerappoperationstatuses":
        return 200, req.svc.render_op(op, req.base), retry
    # Location-style result: 202 while running; then the resource (PATCH), 204 (DELETE), or the error.
    if in_progress:
        return 202, None, dict(retry, Location=req.op_url(op, "containerappOperationResults"))
    if op["status"] == "Failed":
        raise ArmError(400, op["error"]["code"], op["error"]["message"])
    if op["kind"] == "app_delete":
        return 204, None, {}
    target = req.svc.state["apps"].get(op["target"]) if op["kind"].startswith("app") else \
        req.svc.state["environments"].get(op["target"])
    if target is None:
        return 204, None, {}
    render = req.svc.render_app if op["kind"].startswith("app") else req.svc.render_env
    return 200, render(target), {}


# ---------------------------------------------------------------- revisions
_FILTER_TERM = re.compile(r"^\s*(?P<field>[\w/]+)\s+eq\s+(?P<value>'[^']*'|true|false|\d+)\s*$", re.IGNORECASE)


def _revision_filter(expr: str | None):
    """Supports ``<field> eq <value>`` terms joined by ``and``; fields are ``name`` or ``properties/<prop>``."""
    if not expr:
        return lambda rev: True
    terms = []
    for part in re.split(r"\s+and\s+", expr.strip(), flags=re.IGNORECASE):
        m = _FILTER_TERM.match(part)
        if not m:
            raise bad_request("InvalidFilter", f"Unsupported $filter expression: {expr!r}")
        raw = m["value"]
        value = raw[1:-1] if raw.startswith("'") else (raw.lower() == "true" if raw.lower() in ("true", "false")
                                                       else int(raw))
        terms.append((m["field"].split("/"), value))

    def matches(rendered: dict) -> bool:
        for path, value in terms:
            cur = rendered
            for part in path:
                cur = cur.get(part) if isinstance(cur, dict) else None
            if isinstance(value, str) and isinstance(cur, str):
                if cur.lower() != value.lower():
                    return False
            elif cur != value:
                return False
        return True
    return matches


@route("GET", _APP + "/revisions")
def list_revisions(req: Request):
    app = req.svc.get_app(req.p["sub"], req.p["rg"], req.p["app"])
    weights = rv.effective_weights(app)
    rendered = [req.svc.render_revision(app, r, weights) for r in app["revisions"]]
    keep = _revision_filter(req.query.get("$filter"))
    return _page(req, [r for r in rendered if keep(r)], lambda r: r)


@route("GET", _APP + "/revisions/(?P<rev>[^/]+)")
def get_revision(req: Request):
    app = req.svc.get_app(req.p["sub"], req.p["rg"], req.p["app"])
    return 200, req.svc.render_revision(app, req.svc.get_revision(app, req.p["rev"])), {}


@route("POST", _APP + "/revisions/(?P<rev>[^/]+)/(?P<action>activate|deactivate|restart)")
def revision_action(req: Request):
    app = req.svc.get_app(req.p["sub"], req.p["rg"], req.p["app"])
    getattr(req.svc, req.p["action"].lower())(app, req.p["rev"])
    return 200, None, {}  # spec: not an LRO, 200 with an empty body


# ---------------------------------------------------------------- Azure Monitor metrics (Microsoft.Insights)
@route("GET", _APP + "/providers/microsoft.insights/metrics")
def list_metrics(req: Request):
    app = req.svc.get_app(req.p["sub"], req.p["rg"], req.p["app"])
    app_id = store.app_id(app["sub"], app["rg"], app["name"])
    return 200, metrics.metrics_answer(req.svc, app, store.key(app_id), app_id, req.query), {}


def dispatch(svc: Service, method: str, raw_path: str, body: bytes, base: str) -> tuple:
    parsed = urllib.parse.urlsplit(raw_path)
    path = urllib.parse.unquote(parsed.path).rstrip("/")
    query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query, keep_blank_values=True).items()}
    # The SDK quotes query values when following nextLink; undo a second level of quoting.
    if "%" in query.get("$filter", ""):
        query["$filter"] = urllib.parse.unquote(query["$filter"])
    if "api-version" not in query:
        raise bad_request("MissingApiVersionParameter",
                          "The api-version query parameter (?api-version=) is required for all requests.")
    allowed = []
    for route_method, pattern, name in ROUTES:
        match = pattern.match(path)
        if match:
            if route_method == method:
                with svc.lock:
                    svc.settle()
                    return globals()[name](Request(svc, method, path, query, body, base, match))
            allowed.append(route_method)
    if allowed:
        raise ArmError(405, "MethodNotAllowed", f"The method {method} is not allowed on {path}.")
    raise ArmError(404, "NotFound", f"The emulator does not implement {method} {path}.")
