"""The repo's own function_app.py, as the dev host sees it (bindings only; nothing is invoked)."""

from __future__ import annotations

from devtools.host.functions import describe_functions, load_app
from devtools.host.host import REPO_ROOT


def test_real_app_functions_and_bindings():
    specs = {s.name: s for s in describe_functions(load_app(REPO_ROOT))}
    pushed = specs["on_image_pushed"]
    assert (pushed.trigger_type, pushed.arg_name) == ("eventGridTrigger", "event")
    step = specs["rollout_step"]
    assert (step.trigger_type, step.queue_name, step.connection, step.arg_name) == (
        "queueTrigger", "acr-deploy-rollouts", "AzureWebJobsStorage", "msg")
    sweep = specs["sweep_rollouts"]
    assert (sweep.trigger_type, sweep.schedule, sweep.run_on_startup) == ("timerTrigger", "0 */1 * * * *", False)
    http = {s.name: (s.methods, s.route, s.auth_level) for s in specs.values() if s.trigger_type == "httpTrigger"}
    assert http["list_deployments"] == (("GET",), "deployments", "FUNCTION")
    assert http["get_deployment"] == (("GET",), "deployments/{id}", "FUNCTION")
    assert http["rollback_app"] == (("POST",), "apps/{app}/rollback", "FUNCTION")
    assert {"list_apps", "get_app", "list_rejections", "history_page", "openapi"} <= set(http)
    assert all(not s.unsupported_bindings for s in specs.values())
