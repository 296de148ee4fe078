"""The emulator's own control API under ``/_emulator/`` (not ARM, no auth): reset, config, behaviours,
faults, seed, state dump. Documented in docs/emulator.md; the Python client is control.py."""
from __future__ import annotations

import json
import urllib.parse

from .behaviours import behaviour, number as _num
from .errors import ArmError, bad_request
from .seed import apply_seed
from .service import DEFAULT_CONFIG, Service

FAULT_KINDS = {"429", "500", "503", "drop"}


def _fault(body: dict) -> dict:
    kind = str(body.get("kind", ""))
    if kind not in FAULT_KINDS:
        raise bad_request("InvalidControlRequest", f"fault kind must be one of {sorted(FAULT_KINDS)}")
    count, every = _num(body, "count", int, 1), _num(body, "every", int, 1)
    if (count is None) == (every is None):
        raise bad_request("InvalidControlRequest", "give exactly one of 'count' (next N calls) or 'every' (every Nth)")
    methods = body.get("methods")
    if methods is not None and not (isinstance(methods, list) and all(isinstance(m, str) for m in methods)):
        raise bad_request("InvalidControlRequest", "methods must be a list such as ['PUT', 'PATCH']")
    retry_after = _num(body, "retry_after")
    return {"kind": kind, "count": count, "every": every, "remaining": count or 0,
            "retry_after": 1 if retry_after is None else retry_after,
            "methods": [m.upper() for m in methods] if methods else None, "seen": 0, "fired": 0}


def handle(svc: Service, method: str, raw_path: str, body: bytes) -> tuple[int, object]:
    path = urllib.parse.urlsplit(raw_path).path.rstrip("/")
    try:
        data = json.loads(body) if body.strip() else {}
    except ValueError:
        raise bad_request("InvalidControlRequest", "body must be JSON") from None
    if not isinstance(data, dict):
        raise bad_request("InvalidControlRequest", "body must be a JSON object")
    with svc.lock:
        if path == "/_emulator/health" and method == "GET":
            return 200, {"status": "ok"}
        if path == "/_emulator/reset" and method == "POST":
            svc.reset(reseed=bool(data.get("seed", True)))
            return 200, {"status": "reset"}
        if path == "/_emulator/config":
            if method in ("POST", "PATCH", "PUT"):
                unknown = set(data) - set(DEFAULT_CONFIG)
                if unknown:
                    raise bad_request("InvalidControlRequest", f"unknown config keys {sorted(unknown)}")
                for name in data:
                    if name == "retry_after" and data[name] is None:
                        svc.config[name] = None
                    elif name in ("page_size", "min_in_progress_polls"):
                        svc.config[name] = _num(data, name, int, 1 if name == "page_size" else 0)
                    else:
                        svc.config[name] = _num(data, name)
            if method in ("GET", "POST", "PATCH", "PUT"):
                return 200, dict(svc.config)
        if path == "/_emulator/behaviors":
            if method == "POST":
                svc.behaviours.append(behaviour(data))
                return 201, svc.behaviours[-1]
            if method == "DELETE":
                svc.behaviours.clear()
                return 200, []
            if method == "GET":
                return 200, svc.behaviours
        if path == "/_emulator/faults":
            if method == "POST":
                svc.faults.append(_fault(data))
                return 201, svc.faults[-1]
            if method == "DELETE":
                svc.faults.clear()
                return 200, []
            if method == "GET":
                return 200, svc.faults
        if path == "/_emulator/seed" and method == "POST":
            try:
                apply_seed(svc, data)
            except (ValueError, KeyError, TypeError) as exc:
                raise bad_request("InvalidSeed", str(exc)) from None
            return 200, {"status": "seeded"}
        if path == "/_emulator/state" and method == "GET":
            return 200, svc.dump()
    raise ArmError(404, "NotFound", f"No control endpoint {method} {path}")
