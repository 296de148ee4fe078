"""`DevHost`: serve a Python v2 function app's bindings without func-core-tools.

    host = DevHost(app_dir=ROOT, settings={...}, port=0)
    host.start()
    httpx.get(f"{host.url}/api/apps", headers={"x-functions-key": host.function_key})
    host.stop()

Start order mirrors func start: settings into the environment, host.json, import function_app,
then the listeners. One key (`function_key`) is accepted as function key, Event Grid system key
and master key alike; func start has separate keys (and does not check them locally at all).
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import threading
from pathlib import Path
from typing import Any, Mapping

from devtools.host.config import DEFAULT_PORT, ConfigError, HostConfig, LocalSettings, resolve_setting
from devtools.host.functions import (
    EVENT_GRID, HTTP, QUEUE, SUPPORTED_TRIGGERS, TIMER, FunctionSpec, describe_functions, load_app,
)
from devtools.host.invoke import Invoker
from devtools.host.queues import QueueListener
from devtools.host.server import Dispatcher, DevHTTPServer
from devtools.host.timers import Schedule, TimerRunner

log = logging.getLogger("devtools.host")

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY_ENV = "DEVHOST_FUNCTION_KEY"


class DevHost:
    def __init__(
        self,
        app_dir: str | Path | None = None,
        *,
        settings: Mapping[str, Any] | None = None,
        settings_file: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int | None = 0,
        function_key: str | None = None,
        queues: bool = True,
        timers: bool = True,
        override_env: bool | None = None,
        drain_timeout_s: float = 10.0,
    ) -> None:
        """`settings`: Values (or a whole local.settings.json dict); `settings_file`: a
        local.settings.json. `port`: 0 = a free port, None = Host.LocalHttpPort or 7071.
        `override_env`: may settings replace variables already in the environment? func start
        does not (default for `settings_file`); explicit `settings` do by default."""
        if settings is not None and settings_file is not None:
            raise ValueError("pass settings or settings_file, not both")
        self.app_dir = Path(app_dir or REPO_ROOT).resolve()
        self._settings_arg = settings
        self._settings_file = settings_file
        self.bind_host = host
        self._port = port
        self.function_key = function_key or os.environ.get(KEY_ENV) or secrets.token_urlsafe(32)
        self.key_generated = not (function_key or os.environ.get(KEY_ENV))
        self.queues_enabled = queues
        self.timers_enabled = timers
        self._override = override_env if override_env is not None else settings is not None
        self.drain_timeout_s = drain_timeout_s
        self.functions: list[FunctionSpec] = []
        self.config = HostConfig()
        self.port: int | None = None
        self._server: DevHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._listeners: list[QueueListener] = []
        self._timers: list[TimerRunner] = []
        self._env_backup: dict[str, str | None] = {}
        self._added_path = False
        self.invoker = Invoker(str(self.app_dir))

    # -- addresses ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("DevHost is not started")
        host = f"[{self.bind_host}]" if ":" in self.bind_host else self.bind_host
        return f"http://{host}:{self.port}"

    def eventgrid_url(self, function_name: str, *, with_key: bool = True) -> str:
        """The webhook URL an Event Grid subscription would call (key in `code`, as Azure does)."""
        url = f"{self.url}/runtime/webhooks/EventGrid?functionName={function_name}"
        return f"{url}&code={self.function_key}" if with_key else url

    def function(self, name: str) -> FunctionSpec:
        for spec in self.functions:
            if spec.name == name:
                return spec
        raise KeyError(name)

    # -- lifecycle ------------------------------------------------------------------------
    def _load_settings(self) -> LocalSettings:
        if self._settings_file is not None:
            return LocalSettings.from_file(self._settings_file)
        if self._settings_arg is not None:
            return LocalSettings.from_dict(self._settings_arg)
        return LocalSettings()

    def _apply_env(self, values: Mapping[str, str]) -> None:
        skipped = []
        for name, value in values.items():
            current = os.environ.get(name)
            if current is not None and current != value and not self._override:
                skipped.append(name)  # func start: the environment wins
                continue
            self._env_backup.setdefault(name, current)
            os.environ[name] = value
        if skipped:
            log.info("settings already in the environment kept (as func start does): %s", ", ".join(sorted(skipped)))

    def _restore_env(self) -> None:
        for name, previous in self._env_backup.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous
        self._env_backup.clear()

    def start(self) -> "DevHost":
        if self._server is not None:
            raise RuntimeError("DevHost already started")
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        local = self._load_settings()
        self._apply_env(local.values)
        self.config = HostConfig.from_app_dir(self.app_dir)
        # The worker puts the app root on sys.path; undone on stop() so that, in a test process,
        # a fixture app's folder does not shadow other imports afterwards.
        self._added_path = str(self.app_dir) not in sys.path
        self.functions = describe_functions(load_app(self.app_dir))
        for spec in self.functions:
            if spec.trigger_type not in SUPPORTED_TRIGGERS:
                log.warning("function %s: %s triggers are not served by the dev host", spec.name, spec.trigger_type)
            elif spec.unsupported_bindings:
                log.warning("function %s: bindings %s are not served by the dev host",
                            spec.name, ", ".join(spec.unsupported_bindings))
        # Fail fast on what would otherwise break later: schedules, queue connections.
        runners = [
            TimerRunner(s, Schedule.parse(resolve_setting(s.schedule, what=f"function {s.name} schedule")), self.invoker)
            for s in self.functions if s.trigger_type == TIMER
        ]
        listeners = []
        if self.queues_enabled:
            for spec in self.functions:
                if spec.trigger_type == QUEUE:
                    try:
                        listeners.append(QueueListener.from_env(spec, self.config.queues, self.invoker))
                    except LookupError as exc:
                        raise ConfigError(f"function {spec.name}: {exc}") from exc
        port = self._port if self._port is not None else (local.local_http_port or DEFAULT_PORT)
        dispatcher = Dispatcher(
            self.functions,
            route_prefix=self.config.route_prefix,
            function_key=self.function_key,
            invoker=self.invoker,
            base_url=lambda: self.url,
        )
        self._server = DevHTTPServer((self.bind_host, port), dispatcher)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
            name="devhost-http", daemon=True,
        )
        self._thread.start()
        for listener in listeners:
            listener.start()
            self._listeners.append(listener)
        if self.timers_enabled:
            for runner in runners:
                runner.start()
                self._timers.append(runner)
        log.info("dev host started on %s with %d functions", self.url, len(self.functions))

    def stop(self) -> bool:
        """Stop accepting work, let in-flight invocations finish (bounded by drain_timeout_s),
        restore the environment. Returns False if invocations were still running at the end."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
        for listener in self._listeners:
            listener.stop(timeout_s=2.0)
        for runner in self._timers:
            runner.stop(timeout_s=0.5)  # a running timer invocation is covered by the drain below
        drained = self.invoker.drain(self.drain_timeout_s)
        if not drained:
            log.warning("stopped with %d invocations still running", self.invoker.in_flight)
        if server is not None:
            server.server_close()
        if self._thread is not None:
            self._thread.join(2.0)
        self._listeners.clear()
        self._timers.clear()
        self._restore_env()
        if self._added_path and str(self.app_dir) in sys.path:
            sys.path.remove(str(self.app_dir))
        self._added_path = False
        return drained

    def __enter__(self) -> "DevHost":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def summary(self) -> str:
        """One line listing the functions, e.g. for the CLI banner."""
        parts = []
        for spec in self.functions:
            if spec.trigger_type == HTTP:
                parts.append(f"{spec.name} [{','.join(spec.methods)} /{self._http_path(spec)}]")
            elif spec.trigger_type == EVENT_GRID:
                parts.append(f"{spec.name} [eventGrid]")
            elif spec.trigger_type == QUEUE:
                state = "" if self.queues_enabled else ", off"
                parts.append(f"{spec.name} [queue {spec.queue_name}{state}]")
            elif spec.trigger_type == TIMER:
                state = "" if self.timers_enabled else ", off"
                parts.append(f"{spec.name} [timer {spec.schedule}{state}]")
            else:
                parts.append(f"{spec.name} [{spec.trigger_type}, not served]")
        return "Functions: " + "; ".join(parts)

    def _http_path(self, spec: FunctionSpec) -> str:
        prefix = self.config.route_prefix
        return f"{prefix}/{spec.route}" if prefix else spec.route
