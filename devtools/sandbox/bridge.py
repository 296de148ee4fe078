"""The registry → Event Grid bridge: what ACR + Event Grid do in Azure, done on loopback.

Debian's `docker-registry` (distribution 2.8) POSTs notification envelopes
(`application/vnd.docker.distribution.events.v1+json`, `{"events": [...]}`) to `POST /registry/events`.
The bridge keeps manifest pushes that carry a tag (blob pushes and pulls are dropped), turns each
into an ACR-shaped `Microsoft.ContainerRegistry.ImagePushed` event (Event Grid schema by default,
CloudEvents 1.0 on request; built by `shared.acr_events`) and delivers it the way Event Grid does:

- one event per request: an array of one event (Event Grid schema, `application/json`) or a single
  structured CloudEvent (`application/cloudevents+json`), with `aeg-event-type: Notification`,
  `aeg-delivery-count` (0 on the first attempt), `aeg-subscription-name`;
- 2xx is success; 400, 401, 403 and 413 are not retried (as Event Grid treats webhooks); anything
  else, a connection error or no answer within `timeout_s` is retried with exponential back-off
  (with a little jitter) until `max_attempts` or `ttl_s`, whichever comes first;
- then the event is written to the dead-letter folder with Event Grid's dead-letter fields
  (`deadLetterReason`, `deliveryAttempts`, `lastDeliveryOutcome`, `lastHttpStatusCode`, ...).

The registry is answered at once (events are queued in memory), so a slow function never blocks a
push; the registry's own notification retries cover a bridge that is briefly down. Events still
queued when the bridge stops are dead-lettered (reason `BridgeStopped`), never dropped silently.

Run alone: `python -m devtools.sandbox.bridge --config bridge.json` (the sandbox writes that file;
the webhook URL in it carries the function key, so it is never logged with its query string).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import logging
import os
import random
import signal
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

import httpx

from shared import acr_events

log = logging.getLogger("devtools.sandbox.bridge")

REGISTRY_EVENTS_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json"
IMAGE_PUSHED = acr_events.IMAGE_PUSHED
# Event Grid does not retry these answers from a webhook (learn.microsoft.com/azure/event-grid/delivery-and-retry).
NON_RETRIABLE = frozenset({400, 401, 403, 413})
_MANIFEST_HINTS = ("manifest", "image.index", "manifest.list")


@dataclass
class BridgeConfig:
    webhook_url: str  # the function's Event Grid webhook, with ?functionName=...&code=KEY
    registry: str  # login server as the function trusts it, e.g. 127.0.0.1:5000
    topic: str  # the registry's resource id: `topic` (Event Grid) / `source` (CloudEvents)
    deadletter_dir: str
    schema: str = "eventgrid"  # or "cloudevents"
    host: str = "127.0.0.1"
    port: int = 0
    location: str = "local"
    subscription_name: str = "ACR-DEPLOY-SANDBOX"
    max_attempts: int = 6
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    ttl_s: float = 120.0  # Event Grid's "event time to live", shortened for a laptop
    timeout_s: float = 30.0  # Event Grid waits 30 s for an answer
    workers: int = 4
    # ACR names the identity that pushed in `data.actor.name`. docker-registry does too when it
    # authenticates; the sandbox's registry takes anonymous pushes from the person running it,
    # so their login name stands in (set by the sandbox; "" leaves the actor out).
    default_actor: str = ""

    def __post_init__(self) -> None:
        if self.schema not in ("eventgrid", "cloudevents"):
            raise ValueError(f"schema must be 'eventgrid' or 'cloudevents', not {self.schema!r}")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    @classmethod
    def from_file(cls, path: str | Path) -> "BridgeConfig":
        data = json.loads(Path(path).read_text())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def write(self, path: str | Path) -> None:
        target = Path(path)
        target.write_text(json.dumps(asdict(self), indent=2))
        os.chmod(target, 0o600)  # the webhook URL carries the function key


def redact(url: str) -> str:
    """The URL without its query string (where the function key travels)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


# --------------------------------------------------------------------------- registry → ImagePushed


def is_tagged_manifest_push(event: dict[str, Any]) -> bool:
    """Registry notifications also report blob uploads, pulls and digest-only pushes; ACR raises
    ImagePushed for a pushed manifest, and the pipeline needs its tag."""
    target = event.get("target") or {}
    media_type = str(target.get("mediaType") or "")
    return (
        event.get("action") == "push"
        and bool(target.get("tag"))
        and bool(target.get("digest"))
        and any(hint in media_type for hint in _MANIFEST_HINTS)
    )


def _event_time(value: Any) -> datetime:
    """The registry writes RFC 3339 with nanoseconds; Python takes microseconds."""
    text = str(value or "")
    try:
        if "." in text:
            head, _, frac = text.partition(".")
            digits = "".join(itertools.takewhile(str.isdigit, frac))
            text = f"{head}.{digits[:6]}{frac[len(digits):]}"
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return datetime.now(timezone.utc)


def image_pushed_event(registry_event: dict[str, Any], config: BridgeConfig) -> dict[str, Any]:
    """The ACR-shaped ImagePushed event for one registry notification.

    The top-level id is derived from the registry's event id, so when the registry re-sends a
    notification the function sees the same event id again, as with an Event Grid redelivery."""
    target = registry_event.get("target") or {}
    request = registry_event.get("request") or {}
    registry_id = str(registry_event.get("id") or uuid.uuid4())
    actor = registry_event.get("actor") if isinstance(registry_event.get("actor"), dict) else {}
    return acr_events.image_pushed(
        registry=config.registry,
        repository=str(target["repository"]),
        tag=str(target["tag"]),
        digest=str(target["digest"]),
        media_type=str(target.get("mediaType") or ""),
        size=int(target.get("size") or target.get("length") or 0),
        registry_resource_id=config.topic,
        schema=config.schema,
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{config.topic}/events/{registry_id}")),
        data_id=registry_id,
        event_time=_event_time(registry_event.get("timestamp")),
        request_id=str(request.get("id") or "") or None,
        user_agent=str(request.get("useragent") or "docker-registry"),
        location=config.location,
        actor=str(actor.get("name") or "") or config.default_actor or None,
    )


# --------------------------------------------------------------------------- delivery


@dataclass
class Outcome:
    ok: bool
    retriable: bool
    status: int | None
    outcome: str  # Event Grid's lastDeliveryOutcome vocabulary: Success, TimedOut, NotFound, ...
    detail: str = ""


def _outcome_name(status: int) -> str:
    return {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
            413: "RequestEntityTooLarge", 429: "Busy", 503: "Busy"}.get(status, "GenericError")


def delivery_request(event: dict[str, Any], schema: str, delivery_count: int,
                     subscription_name: str = "ACR-DEPLOY-SANDBOX") -> tuple[bytes, dict[str, str]]:
    """Body and headers of one Event Grid delivery attempt (one event per request, Event Grid's
    default): `shared.acr_events.notification` plus the subscription name Event Grid adds."""
    body, headers = acr_events.notification(event, schema=schema, delivery_count=delivery_count)
    headers["aeg-subscription-name"] = subscription_name
    return body, headers


def deliver_once(client: httpx.Client, url: str, event: dict[str, Any], schema: str,
                 delivery_count: int = 0, subscription_name: str = "ACR-DEPLOY-SANDBOX") -> Outcome:
    body, headers = delivery_request(event, schema, delivery_count, subscription_name)
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        return Outcome(False, True, None, "TimedOut", type(exc).__name__)
    except httpx.HTTPError as exc:  # refused, reset, DNS...: the endpoint is not there (yet)
        return Outcome(False, True, None, "GenericError", f"{type(exc).__name__}: {exc}")
    if 200 <= response.status_code <= 204:
        return Outcome(True, False, response.status_code, "Success")
    return Outcome(
        False, response.status_code not in NON_RETRIABLE, response.status_code,
        _outcome_name(response.status_code), response.text[:300],
    )


@dataclass(order=True)
class _Pending:
    due: float
    seq: int
    event: dict[str, Any] = field(compare=False)
    published: float = field(compare=False)  # time.monotonic() when accepted
    published_at: str = field(compare=False)
    attempts: int = field(default=0, compare=False)
    last: Outcome | None = field(default=None, compare=False)
    last_at: str = field(default="", compare=False)


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


class Bridge:
    """The HTTP ingress for registry notifications plus the delivering workers."""

    def __init__(self, config: BridgeConfig, event_builder: Callable[[dict, BridgeConfig], dict] | None = None):
        self.config = config
        self._build = event_builder or image_pushed_event
        self._heap: list[_Pending] = []
        self._cv = threading.Condition()
        self._seq = itertools.count()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._inflight = 0
        self._server: ThreadingHTTPServer | None = None
        self._client = httpx.Client(timeout=config.timeout_s)
        self.stats = {"received": 0, "ignored": 0, "accepted": 0, "delivered": 0, "retried": 0,
                      "deadlettered": 0, "malformed": 0, "rejected_envelopes": 0}
        self.deliveries: list[dict[str, Any]] = []  # recent delivery attempts (bounded), for /healthz
        Path(config.deadletter_dir).mkdir(parents=True, exist_ok=True)

    # ----------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        assert self._server is not None, "bridge not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def notify_url(self) -> str:
        return f"{self.url}/registry/events"

    def start(self) -> "Bridge":
        self._server = ThreadingHTTPServer((self.config.host, self.config.port), _handler_for(self))
        self._server.daemon_threads = True
        threads = [threading.Thread(target=self._server.serve_forever, name="bridge-http", daemon=True)]
        threads += [threading.Thread(target=self._work, name=f"bridge-worker-{i}", daemon=True)
                    for i in range(max(1, self.config.workers))]
        for thread in threads:
            thread.start()
        self._threads = threads
        log.info("bridge listening on %s, delivering to %s (%s schema)",
                 self.url, redact(self.config.webhook_url), self.config.schema)
        return self

    def stop(self, drain_s: float = 2.0) -> None:
        """Stop taking notifications, give due deliveries `drain_s` to finish, dead-letter the rest."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        deadline = time.monotonic() + drain_s
        while time.monotonic() < deadline:
            with self._cv:
                idle = self._inflight == 0 and not any(p.due <= time.monotonic() for p in self._heap)
            if idle:
                break
            time.sleep(0.05)
        self._stopping.set()
        with self._cv:
            self._cv.notify_all()
        for thread in self._threads[1:]:
            thread.join(timeout=self.config.timeout_s + 1)
        with self._cv:
            left, self._heap = self._heap, []
        for pending in left:
            self._dead_letter(pending, "BridgeStopped", "the bridge stopped before the event was delivered")
        self._client.close()

    def wait_idle(self, timeout_s: float) -> bool:
        """True when nothing is queued or being delivered (tests and `push` use it)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._cv:
                if not self._heap and self._inflight == 0:
                    return True
            time.sleep(0.05)
        return False

    # ----------------------------------------------------------------- ingress
    def accept_envelope(self, envelope: Any) -> int:
        """Queue the ImagePushed events of one registry envelope; returns how many were kept."""
        if not isinstance(envelope, dict) or not isinstance(envelope.get("events"), list):
            raise ValueError('expected a registry notification envelope {"events": [...]}')
        kept = 0
        for registry_event in envelope["events"]:
            self.stats["received"] += 1
            if not isinstance(registry_event, dict) or not is_tagged_manifest_push(registry_event):
                self.stats["ignored"] += 1
                continue
            try:
                event = self._build(registry_event, self.config)
            except (ValueError, KeyError, TypeError) as exc:
                # One odd event must not make the registry resend the whole envelope forever.
                self.stats["malformed"] += 1
                log.warning("skipped a registry event that is not a valid push: %s", exc)
                continue
            self.publish(event)
            kept += 1
        return kept

    def publish(self, event: dict[str, Any]) -> None:
        """Queue one already-built event for delivery (first attempt as soon as a worker is free)."""
        now = time.monotonic()
        with self._cv:
            heapq.heappush(self._heap, _Pending(now, next(self._seq), event, now, _now_iso()))
            self.stats["accepted"] += 1
            self._cv.notify()
        log.info("accepted %s %s", event.get("eventType") or event.get("type"), event.get("subject"))

    # ----------------------------------------------------------------- delivery
    def _take(self) -> _Pending | None:
        with self._cv:
            while not self._stopping.is_set():
                if self._heap:
                    wait = self._heap[0].due - time.monotonic()
                    if wait <= 0:
                        self._inflight += 1
                        return heapq.heappop(self._heap)
                    self._cv.wait(timeout=min(wait, 0.5))
                else:
                    self._cv.wait(timeout=0.5)
        return None

    def _work(self) -> None:
        while (pending := self._take()) is not None:
            try:
                self._attempt(pending)
            except Exception:  # a bug here must not kill the worker (and strand the queue)
                log.exception("delivery worker error")
                self._dead_letter(pending, "BridgeError", "unexpected error in the bridge (see its log)")
            finally:
                with self._cv:
                    self._inflight -= 1

    def _attempt(self, pending: _Pending) -> None:
        cfg = self.config
        outcome = deliver_once(self._client, cfg.webhook_url, pending.event, cfg.schema,
                               pending.attempts, cfg.subscription_name)
        pending.attempts += 1
        pending.last, pending.last_at = outcome, _now_iso()
        self._remember(pending, outcome)
        subject = pending.event.get("subject")
        if outcome.ok:
            self.stats["delivered"] += 1
            log.info("delivered %s (attempt %d, HTTP %s)", subject, pending.attempts, outcome.status)
            return
        if not outcome.retriable:
            self._dead_letter(pending, "NonRetriableError",
                              f"the webhook answered {outcome.status}, which Event Grid does not retry")
            return
        if pending.attempts >= cfg.max_attempts:
            self._dead_letter(pending, "MaxDeliveryAttemptsExceeded",
                              f"{pending.attempts} delivery attempts failed (last: {outcome.outcome} {outcome.detail})".strip())
            return
        backoff = min(cfg.max_backoff_s, cfg.initial_backoff_s * 2 ** (pending.attempts - 1))
        backoff *= 1 + random.uniform(0, 0.2)  # Event Grid adds a little randomness too
        due = time.monotonic() + backoff
        if due - pending.published > cfg.ttl_s:
            self._dead_letter(pending, "TimeToLiveExceeded",
                              f"not delivered within {cfg.ttl_s:.0f}s (last: {outcome.outcome} {outcome.detail})".strip())
            return
        self.stats["retried"] += 1
        log.warning("delivery of %s failed (attempt %d: %s %s); retrying in %.1fs",
                    subject, pending.attempts, outcome.status or "-", outcome.outcome, backoff)
        with self._cv:
            pending.due, pending.seq = due, next(self._seq)
            heapq.heappush(self._heap, pending)
            self._cv.notify()

    def _remember(self, pending: _Pending, outcome: Outcome) -> None:
        target = (pending.event.get("data") or {}).get("target") or {}
        self.deliveries.append({"event_id": pending.event.get("id"), "subject": pending.event.get("subject"),
                                "digest": target.get("digest"),
                                "attempt": pending.attempts, "status": outcome.status,
                                "outcome": outcome.outcome, "at": pending.last_at})
        del self.deliveries[:-100]

    def _dead_letter(self, pending: _Pending, reason: str, detail: str) -> Path:
        """One JSON file per event: Event Grid's dead-letter fields, a human reason, and the event."""
        last = pending.last
        record = {
            "reason": detail,
            "deadLetterReason": reason,
            "deliveryAttempts": pending.attempts,
            "lastDeliveryOutcome": last.outcome if last else "NotAttempted",
            "lastHttpStatusCode": last.status if last else None,
            "publishTime": pending.published_at,
            "lastDeliveryAttemptTime": pending.last_at or None,
            "endpoint": redact(self.config.webhook_url),
            "event": pending.event,
        }
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        folder = Path(self.config.deadletter_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{stamp}-{pending.event.get('id', 'event')}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2))
        tmp.replace(path)  # readers never see half a file
        self.stats["deadlettered"] += 1
        log.error("dead-lettered %s: %s (%s)", pending.event.get("subject"), reason, detail)
        return path

    def health(self) -> dict[str, Any]:
        with self._cv:
            queued, inflight = len(self._heap), self._inflight
        return {"status": "ok", "schema": self.config.schema, "endpoint": redact(self.config.webhook_url),
                "queued": queued, "inflight": inflight, "stats": dict(self.stats),
                "recent": list(self.deliveries[-20:])}


def _handler_for(bridge: Bridge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "acr-deploy-sandbox-bridge"

        def log_message(self, fmt: str, *args: Any) -> None:  # the access log is noise; events are logged
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path.split("?")[0] in ("/healthz", "/"):
                self._reply(200, bridge.health())
            else:
                self._reply(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.path.split("?")[0] != "/registry/events":
                self._reply(404, {"error": "POST registry notifications to /registry/events"})
                return
            try:
                kept = bridge.accept_envelope(json.loads(raw or b"null"))
            except (ValueError, KeyError, TypeError) as exc:
                bridge.stats["rejected_envelopes"] += 1
                log.warning("rejected a notification envelope: %s", exc)
                self._reply(400, {"error": str(exc)})
                return
            self._reply(200, {"accepted": kept})

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.sandbox.bridge", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="bridge JSON config (written by the sandbox)")
    parser.add_argument("--ready-file", help="write the listening URL here once serving")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its request lines carry the URL with the key
    bridge = Bridge(BridgeConfig.from_file(args.config)).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"bridge listening on {bridge.url}", flush=True)
    if args.ready_file:
        Path(args.ready_file).write_text(bridge.url)
    while not stop.wait(0.5):
        pass
    bridge.stop()
    print("bridge stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
