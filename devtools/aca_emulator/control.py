"""Python client for the emulator's control API (``/_emulator/...``). Uses httpx, verifying the emulator CA."""
from __future__ import annotations

import ssl
from typing import Any

import httpx


class EmulatorControlError(RuntimeError):
    pass


class EmulatorControl:
    def __init__(self, base_url: str, ca_path: str, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, verify=ssl.create_default_context(cafile=str(ca_path)),
                                    timeout=timeout)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        resp = self._client.request(method, f"/_emulator/{path}", json=body)
        if resp.status_code >= 400:
            raise EmulatorControlError(f"{method} /_emulator/{path} -> {resp.status_code}: {resp.text}")
        return resp.json() if resp.content else None

    def close(self) -> None:
        self._client.close()

    # lifecycle / config
    def health(self) -> dict:
        return self._call("GET", "health")

    def reset(self, seed: bool = True) -> None:
        """Back to the start-up state: the start-up seed (unless seed=False), no behaviours, no faults,
        default config. Stops every revision server."""
        self._call("POST", "reset", {"seed": seed})

    def config(self, **settings: Any) -> dict:
        """Read (no args) or change config: provisioning_delay, min_in_progress_polls, retry_after, page_size,
        progress_deadline."""
        return self._call("POST" if settings else "GET", "config", settings or None)

    def set_provisioning_delay(self, seconds: float) -> dict:
        return self.config(provisioning_delay=seconds)

    def set_page_size(self, size: int) -> dict:
        return self.config(page_size=size)

    # behaviours of revisions, chosen by image glob
    def add_behavior(self, image_glob: str | None = None, status: int | None = None,
                     latency_ms: float | None = None, fail_after: int | None = None, unhealthy: bool = False,
                     **modes: Any) -> dict:
        """Behaviour of revisions whose image matches ``image_glob`` (and app matches ``app=``, if given).
        Lifecycle modes (docs/emulator.md): crash_loop=True, cold_start_ms=N, running_state="...",
        health_state="...", running_state_details="...", not_replicated_s=N."""
        return self._call("POST", "behaviors", {"image": image_glob, "status": status, "latency_ms": latency_ms,
                                                "fail_after": fail_after, "unhealthy": unhealthy, **modes})

    def clear_behaviors(self) -> None:
        self._call("DELETE", "behaviors")

    # ARM faults
    def add_faults(self, kind: str | int, count: int | None = None, every: int | None = None,
                   retry_after: float = 1, methods: list[str] | None = None) -> dict:
        """kind: "429", "500", "503" or "drop". count=N: the next N ARM calls; every=N: every Nth ARM call
        until cleared. methods optionally restricts which HTTP methods count and fail."""
        return self._call("POST", "faults", {"kind": str(kind), "count": count, "every": every,
                                             "retry_after": retry_after, "methods": methods})

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def faults(self) -> list[dict]:
        return self._call("GET", "faults")

    # state
    def seed(self, seed: dict) -> None:
        self._call("POST", "seed", seed)

    def dump(self) -> dict:
        return self._call("GET", "state")

    def app(self, name: str) -> dict:
        """The dump entry of one app (by name; first match across resource groups)."""
        for app in self.dump()["apps"]:
            if app["name"].lower() == name.lower():
                return app
        raise KeyError(name)

    def __enter__(self) -> "EmulatorControl":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
