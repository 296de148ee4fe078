"""Steady user traffic on an app's URL while its canary runs: what the request metrics judge.

Loopback only, bounded in rate, count and time: a daemon thread sends GETs to `https://<fqdn>/` at
`per_second` until stopped, `max_requests` are sent or `max_s` passed. Answers are tallied by status.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

import httpx


class Load:
    def __init__(self, fqdn: str, ca_path: str, per_second: float = 25.0, max_requests: int = 20_000,
                 max_s: float = 600.0) -> None:
        host = urlsplit(f"https://{fqdn}").hostname or ""
        if host not in ("localhost", "127.0.0.1", "::1"):
            raise ValueError(f"load is for the local sandbox only, not {host!r}")
        self.url = f"https://{fqdn}/"
        self.ca_path = ca_path
        self.interval = 1.0 / max(per_second, 0.1)
        self.max_requests = max_requests
        self.max_s = max_s
        self.answers: Counter = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"load {fqdn}", daemon=True)

    def start(self) -> "Load":
        self._thread.start()
        return self

    def stop(self) -> Counter:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.answers

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_s
        context = ssl.create_default_context(cafile=self.ca_path)
        with httpx.Client(verify=context, timeout=2.0) as client:
            for _ in range(self.max_requests):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                try:
                    self.answers[client.get(self.url).status_code] += 1
                except httpx.HTTPError as exc:
                    self.answers[type(exc).__name__] += 1
                self._stop.wait(self.interval)
