"""Azure Functions bindings (Python v2 programming model). Thin on purpose: every function hands
its input to `shared.entrypoints`, which owns the logic. `func start` runs this file unchanged;
machines without func-core-tools serve the same bindings with `python -m devtools.host`.
"""

from __future__ import annotations

import json
import logging
import azure.functions as func

from shared import entrypoints

ROLLOUT_QUEUE = entrypoints.ROLLOUT_QUEUE  # "acr-deploy-rollouts"

# A broken rules file or setting stops the host here, with the file, rule and field named.
entrypoints.check_configuration()

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.function_name("on_image_pushed")
@app.event_grid_trigger(arg_name="event")
def on_image_pushed(event: func.EventGridEvent) -> None:
    """ACR ImagePushed (Event Grid schema or CloudEvents 1.0): plan, record, enqueue, return.
    Bad or foreign events are recorded and acknowledged, never raised (a raise means redelivery).
    One class in the annotation: the Python worker refuses a Union (and with it the whole app);
    the Event Grid converter accepts this one and still hands over a func.CloudEvent for a
    CloudEvents delivery, which `event_to_dict` reads by its own fields."""
    entrypoints.handle_event(entrypoints.event_to_dict(event))


@app.function_name("rollout_step")
@app.queue_trigger(arg_name="msg", queue_name=ROLLOUT_QUEUE, connection="AzureWebJobsStorage")
def rollout_step(msg: func.QueueMessage) -> None:
    """Advance one deployment by one or more short, idempotent steps."""
    entrypoints.handle_rollout_message(msg.get_body().decode("utf-8"), msg.dequeue_count or 1)


@app.function_name("sweep_rollouts")
@app.timer_trigger(arg_name="timer", schedule="0 */1 * * * *", run_on_startup=False)
def sweep_rollouts(timer: func.TimerRequest) -> None:
    """Finish or fail rollouts stuck past their deadline; re-enqueue lost messages; purge records
    older than ACR_DEPLOY_RETENTION_DAYS (bounded batches)."""
    entrypoints.handle_sweep()


@app.function_name("reconcile_drift")
@app.timer_trigger(arg_name="timer", schedule="0 */5 * * * *", run_on_startup=False)
def reconcile_drift(timer: func.TimerRequest) -> None:
    """Compare what each app serves with the history's live record; record (or repair) drift."""
    entrypoints.handle_drift()


def _http(req: func.HttpRequest, operation: str) -> func.HttpResponse:
    response = entrypoints.handle_http(
        operation,
        method=req.method,
        params=dict(req.params),
        route_params=dict(req.route_params),
        body=req.get_body(),
        headers=dict(req.headers),
    )
    body = response.body if isinstance(response.body, (str, bytes)) else json.dumps(response.body)
    return func.HttpResponse(
        body, status_code=response.status, mimetype=response.content_type, headers=response.headers
    )


@app.function_name("list_deployments")
@app.route(route="deployments", methods=["GET"])
def list_deployments(req: func.HttpRequest) -> func.HttpResponse:
    return _http(req, "list_deployments")


@app.function_name("get_deployment")
@app.route(route="deployments/{id}", methods=["GET"])
def get_deployment(req: func.HttpRequest) -> func.HttpResponse:
    return _http(req, "get_deployment")


@app.function_name("list_apps")
@app.route(route="apps", methods=["GET"])
def list_apps(req: func.HttpRequest) -> func.HttpResponse:
    return _http(req, "list_apps")


@app.function_name("get_app")
@app.route(route="apps/{app}", methods=["GET"])
def get_app(req: func.HttpRequest) -> func.HttpResponse:
    return _http(req, "get_app")


@app.function_name("rollback_app")
@app.route(route="apps/{app}/rollback", methods=["POST"])
def rollback_app(req: func.HttpRequest) -> func.HttpResponse:
    return _http(req, "rollback_app")


@app.function_name("control_deployment")
@app.route(route="deployments/{id}/{action}", methods=["POST"])
def control_deployment(req: func.HttpRequest) -> func.HttpResponse:
    """approve | reject | pause | resume | promote | abort | override_freeze, with a reason."""
    return _http(req, "control_deployment")


@app.function_name("list_rejections")
@app.route(route="rejections", methods=["GET"])
def list_rejections(req: func.HttpRequest) -> func.HttpResponse:
    return _http(req, "list_rejections")


@app.function_name("history_page")
@app.route(route="history", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def history_page(req: func.HttpRequest) -> func.HttpResponse:
    """The release managers' page over the same API. Anonymous: it is static and holds no data;
    it asks for the function key once (kept in the tab's sessionStorage, sent as a header), so
    the key never sits in a link people share."""
    return _http(req, "history_page")


@app.function_name("openapi")
@app.route(route="openapi.json", methods=["GET"])
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    return _http(req, "openapi")


logging.getLogger("azure").setLevel(logging.WARNING)  # SDK request logs are noise (and carry URLs)
