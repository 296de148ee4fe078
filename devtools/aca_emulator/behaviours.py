"""Behaviours: how the revisions of matching images/apps answer and start (control API and seed files).

A behaviour is chosen by an ``image`` glob and/or an ``app`` glob; the most recently added match wins. The
lifecycle modes (crash loop, cold start, running state override, not-replicated image) are read by
lifecycle.py, the serving modes (status, latency, fail_after) by serving.py.
"""
from __future__ import annotations

import time

from .errors import bad_request


def number(body: dict, name: str, kind=float, minimum=0):
    value = body.get(name)
    if value is None:
        return None
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise bad_request("InvalidControlRequest", f"{name} must be a number") from None
    if value < minimum:
        raise bad_request("InvalidControlRequest", f"{name} must be >= {minimum}")
    return value


def _text(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise bad_request("InvalidControlRequest", f"{name} must be a non-empty string")
    return value


def _share(body: dict) -> float | None:
    """``fail_share``: the share (0..1] of requests past ``fail_after`` that fail (a canary that passes its
    smoke checks, then fails some of its traffic under load)."""
    share = number(body, "fail_share")
    if share is not None and not 0 < share <= 1:
        raise bad_request("InvalidControlRequest", "fail_share must be in (0, 1]")
    if share is not None and body.get("fail_after") is None:
        raise bad_request("InvalidControlRequest", "fail_share needs fail_after (the requests answered well first)")
    return share


def behaviour(body: dict) -> dict:
    """A revision behaviour, chosen by image glob and/or app glob (docs/emulator.md, "Behaviours")."""
    image, app = _text(body, "image") or _text(body, "image_glob"), _text(body, "app")
    if not image and not app:
        raise bad_request("InvalidControlRequest", "behavior needs 'image' (a glob such as '*:bad-*') or 'app'")
    not_replicated = number(body, "not_replicated_s")
    return {"image": image, "app": app, "status": number(body, "status", int, 100),
            "latency_ms": number(body, "latency_ms"), "fail_after": number(body, "fail_after", int),
            "fail_share": _share(body),
            "unhealthy": bool(body.get("unhealthy", False)), "crash_loop": bool(body.get("crash_loop", False)),
            "cold_start_ms": number(body, "cold_start_ms"), "running_state": _text(body, "running_state"),
            "health_state": _text(body, "health_state"),
            "running_state_details": _text(body, "running_state_details"),
            "not_replicated_s": not_replicated,
            "not_replicated_until": None if not_replicated is None else time.time() + not_replicated}
