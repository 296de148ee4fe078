"""Where the history commands read and act: the function app's HTTP API, else the local Table store.

One way to name the API and its key for every command: `--url` (or ACR_DEPLOY_FUNCTION_URL) and
`--code` (or ACR_DEPLOY_FUNCTION_KEY); a `?code=` left in the URL is taken as the key and never
printed. Without a URL, the commands read the Table store named by ./local.settings.json through
the same HistoryApi the function app serves, so both give the same answers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from shared.cli._text import printable

URL_ENV = "ACR_DEPLOY_FUNCTION_URL"
KEY_ENV = "ACR_DEPLOY_FUNCTION_KEY"
EXIT_FAILED, EXIT_BAD_INPUT, EXIT_NOT_FOUND, EXIT_CONFLICT = 1, 2, 3, 4
KEY_HINT = f"pass the function key with --code KEY or set {KEY_ENV}"


class CommandFailed(Exception):
    """Already reported on stderr; carries the exit code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def add_api_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", "--api", dest="url", metavar="URL",
                        help=f"the function app's URL (e.g. https://<app>.azurewebsites.net); default: ${URL_ENV}, "
                             "else the Table store from ./local.settings.json")
    parser.add_argument("--code", metavar="KEY", help=f"function key for --url (default: ${KEY_ENV})")


def split_key(url: str) -> tuple[str, str | None]:
    """The URL without a `code` query parameter, and that key (a copied function URL often has one)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    key = next((v for k, v in query if k == "code"), None)
    rest = urlencode([(k, v) for k, v in query if k != "code"])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, "")), key


def redact(url: str) -> str:
    """A URL fit to print: any key in its query replaced by ***."""
    base, key = split_key(url)
    return f"{base}{'&' if '?' in base else '?'}code=***" if key else base


class ApiSource:
    """The function app's HTTP API; the key travels as the x-functions-key header."""

    def __init__(self, url: str, key: str | None) -> None:
        base, key_in_url = split_key(url)
        base = base.rstrip("/")
        self.base_url = base if base.endswith("/api") else f"{base}/api"
        self.key = key or key_in_url

    def request(self, method: str, path: str, params: dict[str, str] | None = None,
                body: dict[str, Any] | None = None) -> tuple[int, Any]:
        import httpx

        headers = {"Accept": "application/json"}
        if self.key:
            headers["x-functions-key"] = self.key
        try:
            response = httpx.request(method, f"{self.base_url}/{path}", params=params, json=body,
                                     headers=headers, timeout=30)
        except httpx.HTTPError as exc:
            return 599, {"error": f"cannot reach {redact(self.base_url)}: {type(exc).__name__}"}
        try:
            payload = response.json()
        except ValueError:
            payload = {"error": f"HTTP {response.status_code} (not JSON)"}
        if response.status_code == 401:
            payload = {"error": ("the function app refused the key" if self.key else "the function app wants a key")
                       + f": {KEY_HINT}"}
        return response.status_code, payload


class StoreSource:
    """The Table store through the function app's HistoryApi (reads only: `rollback` without a URL
    calls the rollout worker itself, see shared/cli/rollback.py)."""

    def __init__(self) -> None:
        from shared.adapters.tables import TableStore
        from shared.cli._settings import load_settings
        from shared.http_api import HistoryApi

        self.api = HistoryApi(TableStore.from_settings(load_settings()))

    def request(self, method: str, path: str, params: dict[str, str] | None = None,
                body: dict[str, Any] | None = None) -> tuple[int, Any]:
        parts = path.split("/")
        if parts[0] in ("deployments", "apps", "rejections") and len(parts) == 1:
            operation, route = {"deployments": "list_deployments", "apps": "list_apps",
                                "rejections": "list_rejections"}[parts[0]], {}
        elif parts[0] == "deployments":
            operation, route = "get_deployment", {"id": parts[1]}
        else:
            operation, route = "get_app", {"app": parts[1]}
        result = self.api.handle(operation, method=method, params=params or {}, route_params=route,
                                 body=json.dumps(body).encode() if body is not None else b"")
        return result.status, result.body


def source(args: argparse.Namespace) -> ApiSource | StoreSource:
    url = getattr(args, "url", None) or os.environ.get(URL_ENV)
    if url:
        return ApiSource(url, getattr(args, "code", None) or os.environ.get(KEY_ENV))
    return StoreSource()


def call(args: argparse.Namespace, method: str, path: str, params: dict[str, Any] | None = None,
         body: dict[str, Any] | None = None, src: ApiSource | StoreSource | None = None) -> Any:
    """The answer's body, or the reason on stderr and CommandFailed with an exit code by status."""
    clean = {k: str(v) for k, v in (params or {}).items() if v not in (None, "")}
    try:
        status, payload = (src or source(args)).request(method, path, clean, body)
    except ValueError as exc:  # settings missing or broken
        fail(str(exc), EXIT_BAD_INPUT)
    if status >= 300:
        reason = payload.get("error") if isinstance(payload, dict) else None
        code = {400: EXIT_BAD_INPUT, 404: EXIT_NOT_FOUND, 409: EXIT_CONFLICT}.get(status, EXIT_FAILED)
        fail(reason or f"HTTP {status}", code)
    return payload


def fail(message: str, code: int) -> NoReturn:
    print(f"acr-deploy: {printable(message)}", file=sys.stderr)
    raise CommandFailed(code)
