"""A tiny function app for the dev host's tests: one function per trigger kind, each recording
what it received so tests can check it over HTTP (`GET /api/recorded`). Queue names and the
timer schedule come from app settings (`%NAME%`), so each test picks its own."""

from __future__ import annotations

import json
import threading
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

_lock = threading.Lock()
RECORDED: dict[str, list] = {"events": [], "queue": [], "timer": []}


def _record(kind: str, item: dict) -> None:
    with _lock:
        RECORDED[kind].append(item)


@app.function_name("echo")
@app.route(route="items/{id}", methods=["GET", "POST"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    payload = {
        "method": req.method,
        "url": req.url,
        "params": dict(req.params),
        "route_params": dict(req.route_params),
        "body": req.get_body().decode("utf-8"),
        "x_custom": req.headers.get("x-custom"),
    }
    return func.HttpResponse(json.dumps(payload), status_code=201, mimetype="application/json",
                             headers={"X-Echo": "yes"})


@app.function_name("item_files")
@app.route(route="items/{id:int}/files/{*path}", methods=["GET"])
def item_files(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(dict(req.route_params)), mimetype="application/json")


@app.function_name("ping")
@app.route(route="public/ping", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def ping(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("pong")


@app.function_name("boom")
@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("boom (secret detail that must not reach the client)")


@app.function_name("recorded")
@app.route(route="recorded", methods=["GET"])
def recorded(req: func.HttpRequest) -> func.HttpResponse:
    with _lock:
        return func.HttpResponse(json.dumps(RECORDED), mimetype="application/json")


@app.function_name("on_event")
@app.event_grid_trigger(arg_name="event")
def on_event(event) -> None:  # func.EventGridEvent | func.CloudEvent
    if isinstance(event, func.CloudEvent):
        item = {"class": "CloudEvent", "id": event.id, "source": event.source, "type": event.type,
                "subject": event.subject, "time": event.time.isoformat() if event.time else None}
    else:
        item = {"class": type(event).__name__, "id": event.id, "topic": event.topic,
                "type": event.event_type, "subject": event.subject,
                "time": event.event_time.isoformat() if event.event_time else None,
                "data_version": event.data_version}
    item["data"] = event.get_json()
    _record("events", item)
    if (item["data"] or {}).get("fail"):
        raise RuntimeError("event asked to fail")


@app.function_name("on_message")
@app.queue_trigger(arg_name="msg", queue_name="%FIXTURE_QUEUE%", connection="FixtureStorage")
def on_message(msg: func.QueueMessage) -> None:
    started = time.monotonic()
    body = msg.get_body().decode("utf-8")
    data = json.loads(body) if body.startswith("{") else {}
    time.sleep(min(float(data.get("sleep_s", 0)), 2.0))
    _record("queue", {"id": msg.id, "body": body, "dequeue_count": msg.dequeue_count,
                      "class": type(msg).__name__, "started": started, "ended": time.monotonic()})
    if msg.dequeue_count < data.get("fail_until", 0) or data.get("fail_always"):
        raise RuntimeError("message asked to fail")


@app.function_name("on_timer")
@app.timer_trigger(arg_name="timer", schedule="%FIXTURE_TIMER%", run_on_startup=False)
def on_timer(timer: func.TimerRequest) -> None:
    _record("timer", {"past_due": timer.past_due, "class": type(timer).__name__,
                      "next": timer.schedule_status.get("Next")})
