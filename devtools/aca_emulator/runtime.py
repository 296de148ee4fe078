"""Loopback HTTPS servers that make revisions real: one per active revision, one per app (the ingress that
splits traffic) and one per traffic label.

The servers hold no state of their own: each request asks the service (under its lock) which revision answers
and how (behaviours), so state changes apply to the very next request.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Callable

from .httpbase import HTTPSServer, JSONHandler, bind_server

# A serve plan: ("drop",) or (status, body, headers, latency_seconds)
ServeFn = Callable[[tuple, str, str, str, dict], tuple]  # (target, method, path, client ip, headers)


class SmoothWRR:
    """Smooth weighted round-robin (the nginx algorithm): deterministic and evenly interleaved, so over any
    window of sum(weights) picks each revision is chosen exactly ``weight`` times. Tests can count."""

    def __init__(self) -> None:
        self._signature: tuple = ()
        self._current: dict[str, int] = {}

    def pick(self, weights: dict[str, int]) -> str | None:
        items = tuple((name, w) for name, w in weights.items() if w > 0)
        if not items:
            return None
        if items != self._signature:  # weights changed: restart the cycle
            self._signature, self._current = items, {name: 0 for name, _ in items}
        total, best = 0, None
        for name, weight in items:
            total += weight
            self._current[name] += weight
            if best is None or self._current[name] > self._current[best]:
                best = name
        self._current[best] -= total
        return best


class ServingHandler(JSONHandler):
    """Answers every method on every path by asking the service for a plan."""

    def _serve(self) -> None:
        self.read_body()
        plan = self.server.serve_fn(self.server.target, self.command, self.path, self.client_address[0],
                                    {k.lower(): v for k, v in self.headers.items()})
        if plan[0] == "drop":
            self.drop_connection()
            return
        status, body, headers, latency = plan
        if latency:
            time.sleep(latency)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class Runtime:
    """Starts/stops serving ports keyed by ("rev", app_key, revision) / ("app", app_key) / ("label", app_key, label)."""

    def __init__(self, host: str, ssl_context, serve_fn: ServeFn):
        self.host = host
        self.ssl_context = ssl_context
        self.serve_fn = serve_fn
        self._servers: dict[tuple, HTTPSServer] = {}
        self._lock = threading.Lock()

    def ensure(self, key: tuple, preferred_port: int | None = None) -> int:
        with self._lock:
            server = self._servers.get(key)
            if server is None:
                server = bind_server(
                    self.host, preferred_port or 0, ServingHandler, self.ssl_context,
                    target=key, serve_fn=self.serve_fn,
                ).start()
                self._servers[key] = server
            return server.port

    def stop(self, key: tuple) -> None:
        with self._lock:
            server = self._servers.pop(key, None)
        if server is not None:
            server.stop()

    def keys(self) -> list[tuple]:
        with self._lock:
            return list(self._servers)

    def stop_all(self) -> None:
        # Stop in parallel: each stop waits up to one serve-loop poll interval (50 ms).
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
        threads = [threading.Thread(target=s.stop, daemon=True) for s in servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=5)


def fqdn(port: int | None, internal_name: str | None = None) -> str | None:
    """A serving port as the ``fqdn`` fields report it (the service would give a DNS name). Internal ingress
    names carry ``.internal.`` as on the service (``<name>.internal.<defaultDomain>``): the name does not
    resolve here, and the port answers 404 to every caller, who is outside the environment."""
    if not port:
        return None
    return f"{internal_name}.internal.localhost:{port}" if internal_name else f"localhost:{port}"


def url(port: int | None) -> str | None:
    return f"https://localhost:{port}" if port else None
