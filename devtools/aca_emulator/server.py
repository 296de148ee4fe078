"""EmulatorServer: the ARM + control HTTPS port, in-process (tests) or from the CLI."""
from __future__ import annotations

import os
import tempfile
import time

from . import arm, control_api
from .control import EmulatorControl
from .errors import ArmError
from .httpbase import JSONHandler, bind_server, log
from .rbac import Rbac, load_assignments
from .seed import load_seed
from .service import Service
from .tls import EmulatorTLS


class ArmHandler(JSONHandler):
    def _handle(self) -> None:
        svc: Service = self.server.service
        body = self.read_body()
        path_only = self.path.split("?", 1)[0]
        if path_only.startswith("/_emulator"):
            try:
                status, payload = control_api.handle(svc, self.command, self.path, body)
                self.send_json(status, payload)
            except ArmError as err:
                self.send_json(err.status, err.body())
            except Exception as exc:  # noqa: BLE001 - answer, don't hang the client
                log.exception("control API error on %s %s", self.command, self.path)
                self.send_json(500, {"error": {"code": "InternalServerError", "message": repr(exc)}})
            return
        # Auth before faults: a request without a bearer token is not an ARM call ARM would throttle.
        auth = self.headers.get("Authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            svc.log_arm(self.command, self.path, 401)
            self.send_json(401, {"error": {"code": "AuthenticationFailed", "message":
                                           "Authentication failed. The 'Authorization' header is missing or is "
                                           "not a Bearer token."}},
                           {"WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/'
                                                'common", error="invalid_token"'})
            return
        fault = svc.take_fault(self.command)
        if fault is not None:
            svc.log_arm(self.command, self.path, f"fault:{fault['kind']}")
            if fault["kind"] == "drop":
                self.drop_connection()
                return
            status = int(fault["kind"])
            code = {429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}[status]
            headers = {} if status == 500 else {"Retry-After": _fmt(fault["retry_after"])}
            self.send_json(status, {"error": {"code": code, "message": f"Injected fault ({code})."}}, headers)
            return
        try:
            if svc.rbac is not None:
                svc.rbac.check(auth, self.command, self.path, body)
            status, payload, headers = arm.dispatch(svc, self.command, self.path, body, self.server.base_for(self))
        except ArmError as err:
            status, payload, headers = err.status, err.body(), err.headers
        except Exception as exc:  # noqa: BLE001 - an emulator bug must still answer in ARM's shape
            log.exception("internal error on %s %s", self.command, self.path)
            status, payload, headers = 500, {"error": {"code": "InternalServerError", "message": repr(exc)}}, {}
        svc.log_arm(self.command, self.path, status)
        headers = dict(headers, **{"x-ms-request-id": self.headers.get("x-ms-client-request-id", "") or "local"})
        self.send_json(status, payload, headers)

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST = do_HEAD = _handle


def _fmt(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


class EmulatorServer:
    """In-process Container Apps emulator.

    >>> with EmulatorServer(tls_dir=tmp) as emu:
    ...     client = ContainerAppsAPIClient(cred, SUB, base_url=emu.base_url, connection_verify=emu.ca_path)
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls_dir: str | os.PathLike | None = None,
                 state_file: str | os.PathLike | None = None, seed=None, provisioning_delay: float = 0.0,
                 role_assignments=None):
        self.host, self.port = host, port
        self._tmp = None
        if tls_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="aca-emulator-tls-")
            tls_dir = self._tmp.name
        self.tls = EmulatorTLS(tls_dir)
        self.ca_path = self.tls.ca_path
        # Revision ports are always loopback; the ARM port binds where asked.
        self.service = Service("127.0.0.1", self.tls.server_context(), state_file=state_file,
                               provisioning_delay=provisioning_delay, startup_seed=load_seed(seed))
        # RBAC mode (rbac.py): None = any bearer token may do anything.
        self.service.rbac = None if role_assignments is None else Rbac(load_assignments(role_assignments))
        self._server = None
        self.base_url: str | None = None
        self.control: EmulatorControl | None = None

    def start(self) -> "EmulatorServer":
        self.service.start()
        self._server = bind_server(self.host, self.port, ArmHandler, self.tls.server_context(), service=self.service)
        display_host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        self.base_url = f"https://{display_host}:{self._server.port}"
        self._server.base_for = lambda handler: _base_for(handler, self.base_url)
        self._server.start()
        self.control = EmulatorControl(self.base_url, self.ca_path)
        deadline = time.monotonic() + 10
        while True:  # bounded readiness probe: start() returns once the port answers
            try:
                self.control.health()
                break
            except Exception:  # noqa: BLE001
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.control is not None:
            self.control.close()
        if self._server is not None:
            self._server.stop()
            self._server = None
        self.service.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "EmulatorServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _base_for(handler: ArmHandler, default: str) -> str:
    """Links (nextLink, operation URLs) use the host the client used, so 'localhost' clients stay on it."""
    host = handler.headers.get("Host")
    return f"https://{host}" if host else default


__all__ = ["EmulatorServer"]
