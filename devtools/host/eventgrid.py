"""The Event Grid trigger's webhook, `POST /runtime/webhooks/EventGrid?functionName=NAME`.

What the Functions Event Grid extension does there, and so what the dev host does:
- `aeg-event-type: SubscriptionValidation`: answer `{"validationResponse": <validationCode>}` from
  the `Microsoft.EventGrid.SubscriptionValidationEvent` (Event Grid schema handshake). Event Grid
  sends a GUID there; anything else (or `data` that is not an object) is a 400, never echoed.
- `OPTIONS` with `WebHook-Request-Origin`: the CloudEvents 1.0 abuse-protection handshake, answered
  with `WebHook-Allowed-Origin` (and `WebHook-Allowed-Rate: *`).
- `aeg-event-type: Notification`: an array of Event Grid events, or a CloudEvent / CloudEvents
  batch; the function runs once per event, handed one event's JSON as the host hands it to the
  worker, decoded by the worker's converter (`func.EventGridEvent` or `func.CloudEvent`). 200 when every invocation succeeded, 500 when one
  raised, so the sender retries the delivery (Event Grid redelivers the whole batch).
- `aeg-event-type: SubscriptionDeletion`: 202, nothing invoked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter

VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
# Event Grid's validationCode is a GUID (docs: "Endpoint validation with Event Grid events").
_VALIDATION_CODE = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, **headers: str) -> "Reply":
        return cls(status, json.dumps(payload).encode("utf-8"), headers=dict(headers))

    @classmethod
    def error(cls, status: int, message: str) -> "Reply":
        return cls.json(status, {"error": message})


def event_datum(raw: Mapping[str, Any]) -> meta.Datum:
    """One event as the Functions host hands it to the worker: its JSON, typed `json`."""
    return meta.Datum(json.dumps(raw), "json")


def build_event(raw: Mapping[str, Any]) -> Any:
    """func.EventGridEvent or func.CloudEvent, exactly as the Python worker's converter builds it
    from the JSON the host hands over for one event."""
    return EventGridEventInConverter.decode(event_datum(raw), trigger_metadata={})


def split_events(body: bytes, content_type: str) -> list[dict[str, Any]]:
    """The events of one delivery. Raises ValueError with a client-facing message."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("body is not JSON") from exc
    except RecursionError as exc:  # json's C parser gives up on deep nesting; no event is that deep
        raise ValueError("body is nested too deeply") from exc
    events = payload if isinstance(payload, list) else [payload]
    if not events:
        raise ValueError("no events in the body")
    for event in events:
        if not isinstance(event, dict):
            raise ValueError("every event must be a JSON object")
    is_cloudevents = "cloudevents" in content_type.lower() or "specversion" in events[0]
    if is_cloudevents and any("specversion" not in e for e in events):
        raise ValueError("CloudEvents without specversion")
    return events


def validation_reply(body: bytes) -> Reply:
    try:
        events = split_events(body, "application/json")
    except ValueError as exc:
        return Reply.error(400, str(exc))
    for event in events:
        if event.get("eventType") != VALIDATION_EVENT:
            continue
        data = event.get("data")
        if not isinstance(data, dict):
            return Reply.error(400, f"{VALIDATION_EVENT}: data must be an object")
        code = data.get("validationCode")
        if not isinstance(code, str) or not _VALIDATION_CODE.fullmatch(code):
            return Reply.error(400, f"{VALIDATION_EVENT}: validationCode must be a GUID")
        return Reply.json(200, {"validationResponse": code})
    return Reply.error(400, f"no {VALIDATION_EVENT} with a validationCode in the body")


def options_reply(headers: Mapping[str, str]) -> Reply:
    origin = headers.get("WebHook-Request-Origin")
    if not origin:
        return Reply(200, headers={"Allow": "POST, OPTIONS"})
    return Reply(200, headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"})


def notification_reply(
    body: bytes, content_type: str, invoke: Callable[[meta.Datum, str], None]
) -> Reply:
    """Run `invoke(event_datum, detail)` once per event, in order; every event gets its run even
    after a failure, and any failure makes the whole delivery a 500. An event the converter cannot
    decode (e.g. an unparseable eventTime) makes the delivery a 400 before anything runs."""
    try:
        events = split_events(body, content_type)
    except ValueError as exc:
        return Reply.error(400, str(exc))
    try:
        for event in events:
            build_event(event)
    except (ValueError, TypeError) as exc:
        return Reply.error(400, f"cannot convert an event: {exc}")
    failed = 0
    for index, event in enumerate(events):
        try:
            invoke(event_datum(event), f"event {index + 1}/{len(events)}")
        except Exception:  # logged by the invoker; the sender must retry
            failed += 1
    if failed:
        return Reply.error(500, f"{failed} of {len(events)} invocations failed")
    return Reply(200)
