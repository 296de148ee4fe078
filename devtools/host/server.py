"""The dev host's HTTP front: HTTP triggers under /<routePrefix>/, the Event Grid webhook under
/runtime/webhooks/EventGrid, and /admin/host/status for readiness checks.

Standard library ThreadingHTTPServer, HTTP/1.1 keep-alive, one thread per connection. Access logs
are off: request lines carry `code=<key>` and bodies are never logged.
"""

from __future__ import annotations

import hmac
import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

from azure.functions import meta

from devtools.host import eventgrid
from devtools.host.eventgrid import Reply
from devtools.host.functions import EVENT_GRID, HTTP, FunctionSpec
from devtools.host.invoke import Invoker
from devtools.host.routes import Route, compile_route, order_routes

log = logging.getLogger("devtools.host")

MAX_BODY = 100 * 1024 * 1024  # the Functions host's request size limit
EVENT_GRID_PATH = "runtime/webhooks/eventgrid"


class Dispatcher:
    """Everything a request needs, independent of the socket plumbing (so it stays readable)."""

    def __init__(
        self,
        functions: list[FunctionSpec],
        *,
        route_prefix: str,
        function_key: str,
        invoker: Invoker,
        base_url: Callable[[], str],
    ) -> None:
        self.route_prefix = route_prefix.strip("/")
        self.function_key = function_key
        self.invoker = invoker
        self.base_url = base_url
        self.event_grid = {f.name.lower(): f for f in functions if f.trigger_type == EVENT_GRID}
        self.routes: list[Route] = order_routes(
            [compile_route(f.route, f) for f in functions if f.trigger_type == HTTP]
        )

    # -- auth -------------------------------------------------------------------------------
    def _key_ok(self, query: dict[str, str], headers: Any) -> bool:
        supplied = headers.get("x-functions-key") or query.get("code") or ""
        return bool(supplied) and hmac.compare_digest(supplied.encode(), self.function_key.encode())

    # -- entry point ------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: Any, body: bytes) -> Reply:
        split = urlsplit(target)
        path = split.path.strip("/")
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        lowered = path.lower()
        if lowered == EVENT_GRID_PATH:
            return self._event_grid(method, query, headers, body)
        if lowered == "admin/host/status":
            if not self._key_ok(query, headers):
                return Reply.error(401, "a valid key is required (x-functions-key header or code query)")
            return Reply.json(200, {"state": "Running", "host": "devtools.host"})
        if lowered == "" and method in ("GET", "HEAD"):
            return Reply(200, b"acr-deploy dev host is running\n", "text/plain; charset=utf-8")
        return self._http_trigger(method, path, split.query, query, headers, body)

    # -- Event Grid -------------------------------------------------------------------------
    def _event_grid(self, method: str, query: dict[str, str], headers: Any, body: bytes) -> Reply:
        if not self._key_ok(query, headers):
            return Reply.error(401, "the Event Grid system key is required (code query or x-functions-key)")
        name = query.get("functionName", "")
        spec = self.event_grid.get(name.lower())
        if spec is None:
            return Reply.error(404, f"no Event Grid triggered function named {name!r}")
        if method == "OPTIONS":
            return eventgrid.options_reply(headers)
        if method != "POST":
            return Reply.error(405, "use POST (or OPTIONS for the CloudEvents handshake)")
        kind = (headers.get("aeg-event-type") or "").strip()
        if kind == "SubscriptionValidation":
            return eventgrid.validation_reply(body)
        if kind == "SubscriptionDeletion":
            return Reply(202)
        if kind != "Notification":
            return Reply.error(400, "header aeg-event-type must be Notification or SubscriptionValidation")
        return eventgrid.notification_reply(
            body,
            headers.get("Content-Type") or "",
            lambda event, detail: self.invoker.invoke(spec, event, detail=detail),
        )

    # -- HTTP triggers ----------------------------------------------------------------------
    def _http_trigger(
        self, method: str, path: str, raw_query: str, query: dict[str, str], headers: Any, body: bytes
    ) -> Reply:
        prefix = self.route_prefix
        if prefix:
            if not (path.lower() == prefix.lower() or path.lower().startswith(prefix.lower() + "/")):
                return Reply.error(404, "not found")
            path = path[len(prefix):].strip("/")
        matched: list[tuple[Route, dict[str, str]]] = []
        for route in self.routes:
            params = route.match(path)
            if params is not None:
                matched.append((route, params))
        if not matched:
            return Reply.error(404, "not found")
        allowed = [(r, p) for r, p in matched if method in r.target.methods]
        if not allowed:
            methods = sorted({m for r, _ in matched for m in r.target.methods})
            return Reply(405, json.dumps({"error": "method not allowed"}).encode(),
                         headers={"Allow": ", ".join(methods)})
        route, route_params = allowed[0]
        spec: FunctionSpec = route.target
        if spec.auth_level != "ANONYMOUS" and not self._key_ok(query, headers):
            return Reply.error(401, "a valid function key is required (x-functions-key header or code query)")
        url = self.base_url() + "/" + (f"{prefix}/" if prefix else "") + path
        if raw_query:
            url += "?" + raw_query
        try:
            result = self.invoker.invoke(spec, http_datum(method, url, headers, query, route_params, body),
                                         detail=f"{method} /{prefix}/{route.template}")
        except Exception:
            return Reply(500)  # like the host: no exception details on the wire
        return _to_reply(result)


def http_datum(method: str, url: str, headers: Any, query: dict[str, str],
               route_params: dict[str, str], body: bytes) -> meta.Datum:
    """The HTTP trigger's data as the host sends it to the worker (an RpcHttp), which the worker's
    HttpRequestConverter turns into func.HttpRequest."""

    def strings(values: dict[str, str]) -> dict[str, meta.Datum]:
        return {name: meta.Datum(value, "string") for name, value in values.items()}

    return meta.Datum({
        "method": meta.Datum(method, "string"),
        "url": meta.Datum(url, "string"),
        "headers": strings(dict(headers.items())),
        "query": strings(query),
        "params": strings(route_params),
        "body": meta.Datum(body, "bytes"),
    }, "http")


def _to_reply(result: meta.Datum | None) -> Reply:
    """The `$return` value as HttpResponseConverter encoded it, as the host writes it out."""
    if result is None or result.type is None:
        return Reply(204)
    if result.type in ("string", "bytes"):
        body = result.value.encode("utf-8") if isinstance(result.value, str) else result.value
        return Reply(200, body, "text/plain; charset=utf-8")
    if result.type == "http":
        value = result.value
        headers = {name: str(d.value) for name, d in (value.get("headers") or {}).items()}
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"),
                            "text/plain; charset=utf-8")
        headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
        body = value["body"].value if value.get("body") is not None else b""
        return Reply(int(value["status_code"].value), body or b"", content_type, headers)
    log.error("HTTP function's return value encoded as %s, not http", result.type)
    return Reply(500)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "acr-deploy-devhost"
    # Headers and body go out in separate writes; without TCP_NODELAY a keep-alive client's
    # delayed ACK adds ~40 ms to every response.
    disable_nagle_algorithm = True
    server: "DevHTTPServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # request lines carry keys; invocations are logged by the invoker

    def _read_body(self) -> bytes | None:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self._send(Reply.error(400, "bad request body framing"))
            return
        if body is None:
            self.close_connection = True
            self._send(Reply.error(413, "request body too large"))
            return
        try:
            reply = self.server.dispatcher.handle(self.command, self.path, self.headers, body)
        except Exception:
            log.exception("dev host error while serving %s %s", self.command, urlsplit(self.path).path)
            reply = Reply(500)
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.body or reply.status not in (204, 304):
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body) if reply.status not in (204, 304) else 0))
        self.end_headers()
        if self.command != "HEAD" and reply.status not in (204, 304):
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class DevHTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # shutdown is bounded by the invoker's drain, not by open sockets
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        super().__init__(address, _Handler)
