"""Apps the Python worker refuses at indexing are refused by the dev host, with the worker's reason
(function, parameter and why), and `python -m devtools.host` exits non-zero on them. The repo's
own function_app.py passes the same checks."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devtools.host import AppLoadError, DevHost
from devtools.host.functions import describe_functions, load_app
from devtools.host.host import REPO_ROOT

HEADER = """
from __future__ import annotations
from typing import Union
import azure.functions as func
app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
"""

BROKEN_APPS = {
    "union": ("""
@app.event_grid_trigger(arg_name="event")
def on_event(event: Union[func.EventGridEvent, func.CloudEvent]) -> None:
    pass
""", "cannot load the on_event function: binding event has invalid non-type annotation typing.Union["),
    "annotation_the_converter_refuses": ("""
@app.queue_trigger(arg_name="msg", queue_name="q", connection="AzureWebJobsStorage")
def on_message(msg: dict) -> None:
    pass
""", 'cannot load the on_message function: type of msg binding in function.json "queueTrigger" does not '
     'match its Python annotation "dict"'),
    "missing_bound_parameter": ("""
@app.timer_trigger(arg_name="timer", schedule="0 */5 * * * *")
def tick() -> None:
    pass
""", "cannot load the tick function: the following parameters are declared in function.json but not "
     "in Python: {'timer'}"),
    "unbound_parameter": ("""
@app.route(route="x")
def handler(req: func.HttpRequest, extra: str) -> func.HttpResponse:
    return func.HttpResponse("x")
""", "cannot load the handler function: the following parameters are declared in Python but not in "
     "function.json: {'extra'}"),
    "wrong_return_annotation": ("""
@app.route(route="x")
def handler(req: func.HttpRequest) -> dict:
    return {}
""", 'cannot load the handler function: Python return annotation "dict" does not match binding type "http"'),
    "unresolvable_annotation": ("""
@app.route(route="x")
def handler(req: func.HttpReqest) -> func.HttpResponse:
    return func.HttpResponse("x")
""", "function handler: its annotations cannot be resolved (typing.get_type_hints): AttributeError"),
    "two_apps": ("""
other = func.FunctionApp()
@app.route(route="x")
def handler(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("x")
""", "More than one FunctionApp or other top level function app instances are defined."),
    "no_app": ("""
del app
""", "Could not find top level function app instances in function_app.py."),
}


def _write_app(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "function_app.py").write_text(textwrap.dedent(HEADER) + textwrap.dedent(body))
    (folder / "host.json").write_text('{"version": "2.0"}')
    return folder


@pytest.mark.parametrize("case", sorted(BROKEN_APPS))
def test_an_app_the_worker_refuses_is_refused_with_its_reason(tmp_path, case):
    body, reason = BROKEN_APPS[case]
    app_dir = _write_app(tmp_path / case, body)
    with pytest.raises(AppLoadError) as refused:
        describe_functions(load_app(app_dir))
    assert reason in str(refused.value)
    host = DevHost(app_dir=app_dir, settings={"FUNCTIONS_WORKER_RUNTIME": "python"}, port=0,
                   queues=False, timers=False)
    with pytest.raises(AppLoadError):
        host.start()
    assert host.port is None or host._server is None  # nothing left listening


def test_the_cli_exits_non_zero_naming_function_parameter_and_reason(tmp_path):
    body, reason = BROKEN_APPS["union"]
    app_dir = _write_app(tmp_path / "app", body)
    result = subprocess.run(
        [sys.executable, "-m", "devtools.host", "--app-dir", str(app_dir), "--port", "0",
         "--no-queues", "--no-timers"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert reason in result.stderr


def test_a_str_annotation_is_decoded_by_the_generic_binding_and_context_is_passed(tmp_path):
    app_dir = _write_app(tmp_path / "ok", """
@app.queue_trigger(arg_name="msg", queue_name="q", connection="AzureWebJobsStorage")
def raw(msg: str, context: func.Context) -> None:
    pass
""")
    (spec,) = describe_functions(load_app(app_dir))
    assert spec.trigger_binding == "generic"  # the worker hands a str annotation the raw body
    assert spec.signature.requires_context


def test_the_real_function_app_passes_the_worker_checks():
    specs = {s.name: s for s in describe_functions(load_app(REPO_ROOT))}
    assert specs["on_image_pushed"].trigger_binding == "eventGridTrigger"
    assert specs["rollout_step"].trigger_binding == "queueTrigger"
    assert specs["sweep_rollouts"].trigger_binding == "timerTrigger"
    http = [s for s in specs.values() if s.trigger_type == "httpTrigger"]
    assert http and all(s.signature.return_binding == "http" for s in http)
