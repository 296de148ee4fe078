"""Smoke checks over HTTPS with httpx: one attempt of one `SmokeCheck` per call.

Retries, back-off and consecutive passes are the worker's (each attempt is recorded in the history),
so this adapter only answers "did this request pass, how fast, and if not, why" — with a short
excerpt of the body, never request or response headers (they may carry tokens).
"""

from __future__ import annotations

import json
import re
import ssl
import time
from typing import Any

import httpx

from shared.ports import ProbeResult

EXCERPT = 160
_MISSING = object()


def _excerpt(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip()[:EXCERPT]


def _field(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


class HttpSmokeProbe:
    def __init__(self, ca_bundle: str | None = None, client: httpx.Client | None = None) -> None:
        verify: Any = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        self._client = client or httpx.Client(
            verify=verify, follow_redirects=False, headers={"user-agent": "acr-deploy-smoke/1"},
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
        )

    def close(self) -> None:
        self._client.close()

    def probe(self, base_url: str, check: Any) -> ProbeResult:
        from shared import telemetry

        t = telemetry.current()
        if not t.enabled:
            return self._probe(base_url, check)
        # The path without its query: a span never carries what a query string might hold.
        with t.span("smoke_check", {"acr_deploy.check": check.name, "http.request.method": check.method.upper(),
                                    "url.path": (check.path or "/").split("?", 1)[0]}) as span:
            result = self._probe(base_url, check)
            span.set_attribute("acr_deploy.check_passed", result.ok)
            if result.status is not None:
                span.set_attribute("http.response.status_code", result.status)
            return result

    def _probe(self, base_url: str, check: Any) -> ProbeResult:
        if not base_url:
            return ProbeResult(check.name, "", False, None, 0.0,
                               "no URL to check (the app has no ingress)")
        url = base_url.rstrip("/") + "/" + (check.path or "/").lstrip("/")
        started = time.perf_counter()
        try:
            response = self._client.request(
                check.method.upper(), url, headers=dict(check.headers),
                timeout=httpx.Timeout(check.timeout_s),
            )
            body = response.text
        except httpx.TimeoutException:
            latency = (time.perf_counter() - started) * 1000
            return ProbeResult(check.name, url, False, None, latency, f"timed out after {check.timeout_s:g} s")
        except httpx.HTTPError as exc:
            latency = (time.perf_counter() - started) * 1000
            return ProbeResult(check.name, url, False, None, latency,
                               f"request failed: {type(exc).__name__}")
        latency = (time.perf_counter() - started) * 1000
        detail = self._judge(check, response.status_code, body, latency)
        return ProbeResult(check.name, url, detail == "", response.status_code, latency, detail)

    @staticmethod
    def _judge(check: Any, status: int, body: str, latency_ms: float) -> str:
        """"" when the answer passes, else why not (with a short excerpt of the body)."""
        if status not in tuple(check.expect_status):
            expected = "/".join(str(s) for s in check.expect_status)
            return f"HTTP {status}, expected {expected}: {_excerpt(body)}"
        if check.max_latency_ms is not None and latency_ms > check.max_latency_ms:
            return f"answered in {latency_ms:.0f} ms, over the {check.max_latency_ms:g} ms bound"
        if check.body_contains and check.body_contains not in body:
            return f"body lacks {check.body_contains[:60]!r}: {_excerpt(body)}"
        if check.json_field:
            try:
                data = json.loads(body)
            except ValueError:
                return f"body is not JSON: {_excerpt(body)}"
            value = _field(data, check.json_field)
            if value is _MISSING:
                return f"JSON field {check.json_field} missing: {_excerpt(body)}"
            if check.json_equals is not None and value != check.json_equals:
                return f"JSON field {check.json_field} is {str(value)[:60]!r}, expected {str(check.json_equals)[:60]!r}"
        return ""
