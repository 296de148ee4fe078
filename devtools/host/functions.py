"""Load `function_app.py` and describe its functions from their own binding metadata.

`app.get_functions()` gives, per function, the same binding JSON that func start writes into
function metadata; the dev host serves exactly those bindings and nothing it had to guess. Each
function then goes through the Python worker's indexing checks (`devtools.host.indexing`), so an
app the worker would refuse does not start here either.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from devtools.host.indexing import AppLoadError, Signature, find_app, index_function

# Trigger binding types the dev host serves.
HTTP, EVENT_GRID, QUEUE, TIMER = "httpTrigger", "eventGridTrigger", "queueTrigger", "timerTrigger"
SUPPORTED_TRIGGERS = (HTTP, EVENT_GRID, QUEUE, TIMER)

_ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_module_ids = itertools.count(1)


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    trigger_type: str
    arg_name: str  # the trigger's parameter name
    trigger: dict[str, Any]  # the trigger binding as the metadata states it
    bindings: tuple[dict[str, Any], ...]
    callable: Callable[..., Any] = field(repr=False, compare=False)
    signature: Signature | None = field(default=None, repr=False, compare=False)

    @property
    def trigger_binding(self) -> str:
        """The converter the trigger argument is decoded with ("generic" for a str/bytes annotation)."""
        param = self.signature.inputs.get(self.arg_name) if self.signature else None
        return param.binding if param else self.trigger_type

    # HTTP
    @property
    def route(self) -> str:
        return (self.trigger.get("route") or self.name).strip("/")

    @property
    def methods(self) -> tuple[str, ...]:
        methods = self.trigger.get("methods")
        return tuple(str(m).upper() for m in methods) if methods else _ALL_METHODS

    @property
    def auth_level(self) -> str:
        return str(self.trigger.get("authLevel") or "FUNCTION").upper()

    # Queue
    @property
    def queue_name(self) -> str:
        return str(self.trigger.get("queueName") or "")

    @property
    def connection(self) -> str:
        return str(self.trigger.get("connection") or "AzureWebJobsStorage")

    # Timer
    @property
    def schedule(self) -> str:
        return str(self.trigger.get("schedule") or "")

    @property
    def run_on_startup(self) -> bool:
        return bool(self.trigger.get("runOnStartup"))

    @property
    def unsupported_bindings(self) -> tuple[str, ...]:
        """Bindings other than the trigger and an HTTP `$return`: the dev host cannot serve them."""
        out = []
        for binding in self.bindings:
            if binding is self.trigger or binding.get("type") == self.trigger_type:
                continue
            if binding.get("type") == "http" and self.trigger_type == HTTP:
                continue
            out.append(f"{binding.get('type')}:{binding.get('name')}")
        return tuple(out)


def load_app(app_dir: str | Path) -> Any:
    """Import `<app_dir>/function_app.py` (app_dir on sys.path, as the worker does) and return its
    FunctionApp. Each load gets its own module name so several hosts can live in one process."""
    app_dir = Path(app_dir).resolve()
    path = app_dir / "function_app.py"
    if not path.exists():
        raise AppLoadError(f"{path}: not found (is --app-dir the function app root?)")
    if str(app_dir) not in sys.path:
        sys.path.insert(0, str(app_dir))
    name = f"_devhost_function_app_{next(_module_ids)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise AppLoadError(f"{path}: import failed: {exc}") from exc
    return find_app(module, str(path))


def describe_functions(app: Any) -> list[FunctionSpec]:
    specs = []
    try:
        functions = app.get_functions()  # azure.functions' own validation (a trigger each, unique names)
    except ValueError as exc:
        raise AppLoadError(f"function app: {exc}") from exc
    for function in functions:
        signature = index_function(function)  # the worker's checks; the first refusal stops the app
        bindings = tuple(json.loads(raw) for raw in function.get_raw_bindings())
        triggers = [b for b in bindings if str(b.get("type", "")).endswith("Trigger")]
        if len(triggers) != 1:
            raise AppLoadError(f"function {function.get_function_name()}: expected one trigger binding")
        trigger = triggers[0]
        specs.append(
            FunctionSpec(
                name=function.get_function_name(),
                trigger_type=trigger["type"],
                arg_name=trigger["name"],
                trigger=trigger,
                bindings=bindings,
                callable=function.get_user_function(),
                signature=signature,
            )
        )
    return specs

