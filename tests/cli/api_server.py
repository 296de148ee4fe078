"""The real HistoryApi behind a real loopback socket, routed as function_app.py routes it, wanting
the function key in `x-functions-key` as the function host does (when given one)."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator
from urllib.parse import parse_qsl, urlparse

from shared.http_api import HistoryApi

LISTS = {"deployments": "list_deployments", "apps": "list_apps", "rejections": "list_rejections"}


def route(path: str) -> tuple[str, dict[str, str]]:
    parts = path.strip("/").split("/")[1:]  # drop "api"
    if len(parts) == 1:
        return LISTS[parts[0]], {}
    if parts[0] == "deployments":
        return "get_deployment", {"id": parts[1]}
    return "get_app", {"app": parts[1]}


@contextmanager
def serve(api: HistoryApi, key: str | None = None) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """Yields the base URL (`http://127.0.0.1:PORT`) and a list of what each request carried."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            url = urlparse(self.path)
            supplied = self.headers.get("x-functions-key") or ""
            seen.append({"key": supplied, "query": url.query})
            if key is not None and supplied != key:
                return self._send(401, {"error": "a valid function key is required"})
            operation, params = route(url.path)
            result = api.handle(operation, params=dict(parse_qsl(url.query)), route_params=params)
            self._send(result.status, result.body)

        def _send(self, status, body):
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
