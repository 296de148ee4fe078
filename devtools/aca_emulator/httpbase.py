"""Threaded HTTPS server plumbing shared by the ARM port and every revision/app/label port.

Why not ``ssl_context.wrap_socket(listener)``: that performs the TLS handshake inside ``accept()``, on the single
serve loop thread, so one slow or broken client would stall the port. Here the listener is plain TCP and each
connection is wrapped in its own worker thread. Open connections are tracked so that stopping a server (a
deactivated revision) also cuts keep-alive connections: "deactivated revisions stop serving" must hold for
pooled HTTP clients too.
"""
from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("aca_emulator")


class HTTPSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, handler_cls, ssl_context: ssl.SSLContext, **attrs: Any):
        self.ssl_context = ssl_context
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.stopped = False
        for key, value in attrs.items():
            setattr(self, key, value)
        super().__init__(address, handler_cls)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def finish_request(self, request, client_address):
        with self._conns_lock:
            if self.stopped:
                request.close()
                return
            self._conns.add(request)
        try:
            request.settimeout(30)  # idle keep-alive connections must not pin a thread forever
            # Headers and body go out in separate writes; without NODELAY, Nagle + delayed ACK add ~40 ms each.
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                tls = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return  # client rejected our certificate or went away mid-handshake
            with self._conns_lock:
                self._conns.discard(request)
                self._conns.add(tls)
            request = tls
            self.RequestHandlerClass(request, client_address, self)
        except (ConnectionError, ssl.SSLError, socket.timeout, OSError):
            pass
        finally:
            with self._conns_lock:
                self._conns.discard(request)

    def handle_error(self, request, client_address):  # noqa: D102 - keep test output clean
        log.debug("connection error from %s", client_address, exc_info=True)

    def start(self) -> "HTTPSServer":
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=f"aca-emu-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, cut open connections, release the port. Idempotent."""
        with self._conns_lock:
            if self.stopped:
                return
            self.stopped = True
            conns = list(self._conns)
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
        self.server_close()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                conn.close()
            except OSError:
                pass


def bind_server(host: str, port: int, handler_cls, ssl_context, **attrs) -> HTTPSServer:
    """Bind on ``port`` (0 = any free port); if a preferred port is taken, fall back to a free one."""
    try:
        return HTTPSServer((host, port), handler_cls, ssl_context, **attrs)
    except OSError:
        if port == 0:
            raise
        return HTTPSServer((host, 0), handler_cls, ssl_context, **attrs)


class JSONHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler with JSON helpers. Never logs headers (they carry bearer tokens)."""

    protocol_version = "HTTP/1.1"
    server_version = "aca-emulator"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # The request line has path + query only; the Authorization header is never part of it.
        log.info("%s %s", self.address_string(), format % args)

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_json(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    def drop_connection(self) -> None:
        """Close the TCP connection without answering (the 'drop' fault)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
