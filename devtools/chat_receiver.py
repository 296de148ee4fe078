"""A local stand-in for Teams workflow and Slack incoming webhooks (loopback only, never deployed).

    python -m devtools.chat_receiver --port 0 --ready-file PATH

POST /hooks/<name>   records the JSON body; answers as the services do (Slack: 200 "ok",
                     Teams workflow: 202 with an empty body). `/hooks/teams-*` answers like Teams.
GET  /messages       every message so far: [{"hook": name, "body": {...}}, ...] (oldest first)
POST /faults         {"hook": name, "status": 503, "times": 2, "retry_after": 1}: the next `times`
                     posts to that hook get `status` (with Retry-After when given)
GET  /healthz        200

Like the real services, an unknown hook path is a 404 and a body that is not JSON is a 400.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MAX_BODY = 256 * 1024
MAX_MESSAGES = 1000


class ChatReceiver:
    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.messages: list[dict[str, Any]] = []
        self.faults: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/healthz":
                    return self._answer(200, b"ok")
                if self.path == "/messages":
                    with receiver.lock:
                        data = json.dumps(receiver.messages).encode()
                    return self._answer(200, data, {"Content-Type": "application/json"})
                return self._answer(404)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    return self._answer(413)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    return self._answer(400, b"invalid_payload")
                if self.path == "/faults" and isinstance(body, dict):
                    with receiver.lock:
                        receiver.faults[str(body.get("hook"))] = dict(body)
                    return self._answer(204)
                name = self.path[len("/hooks/"):] if self.path.startswith("/hooks/") else ""
                if not name or "/" in name:
                    return self._answer(404, b"no_service")
                with receiver.lock:
                    fault = receiver.faults.get(name)
                    if fault and int(fault.get("times", 0)) > 0:
                        fault["times"] = int(fault["times"]) - 1
                        headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else {}
                        return self._answer(int(fault.get("status", 500)), b"fault", headers)
                    if len(receiver.messages) < MAX_MESSAGES:
                        receiver.messages.append({"hook": name, "body": body})
                if name.startswith("teams"):
                    return self._answer(202)
                return self._answer(200, b"ok")

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread: threading.Thread | None = None

    def hook_url(self, name: str) -> str:
        return f"{self.url}/hooks/{name}"

    def start(self) -> "ChatReceiver":
        self._thread = threading.Thread(target=self.server.serve_forever, name="chat-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", help="write the base URL here once listening")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the receiver listens on loopback only")
    receiver = ChatReceiver(args.host, args.port)
    if args.ready_file:
        Path(args.ready_file).write_text(receiver.url)
    print(receiver.url, flush=True)
    try:
        receiver.server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
