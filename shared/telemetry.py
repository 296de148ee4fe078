"""One trace per push: OpenTelemetry spans, a metric or two, and ids on the log lines. Off and free by default.

`ACR_DEPLOY_TELEMETRY` chooses: `auto` (Application Insights through `azure-monitor-opentelemetry` when
`APPLICATIONINSIGHTS_CONNECTION_STRING` is set, otherwise off), `console` (spans printed, local runs),
`otlp` (an OTLP/HTTP collector, `OTEL_EXPORTER_OTLP_ENDPOINT`; needs opentelemetry-exporter-otlp-proto-http)
or `off`. Off, nothing of OpenTelemetry is imported: a cold start pays for no telemetry it does not send.

The trace: intake opens a span per event and puts its context (W3C `traceparent`) into each start message
(`inject`); every rollout step resumes it (`resume`) so the whole push is one trace. ARM, Storage and Azure
Monitor calls appear as child spans through azure-core's OpenTelemetry tracing; smoke checks through the
probe's own span. Attributes are the deployment id, app, digest, tag and rule (`deployment_attributes`):
never URLs with queries, headers, tokens or connection strings. Metrics: deployments by outcome, and the
push-to-live duration.
"""

from __future__ import annotations

import contextvars
import logging
from contextlib import contextmanager, nullcontext
from typing import Any, ContextManager, Iterator, Mapping

log = logging.getLogger("acr_deploy.telemetry")

TRACE_KEY = "trace"  # the queue message field carrying the W3C trace context
MODES = ("auto", "console", "otlp", "off")
# The ids of the deployment being worked on, for log lines (the `acr_deploy` logger's filter).
_ids: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar("acr_deploy_ids", default={})


def deployment_attributes(d: Any) -> dict[str, str]:
    """What a span (and a log line) may say about a deployment: ids and names, nothing secret."""
    attrs = {"acr_deploy.deployment_id": d.id, "acr_deploy.app": d.target.app,
             "acr_deploy.resource_group": d.target.resource_group, "acr_deploy.digest": d.digest or "",
             "acr_deploy.tag": d.tag or "", "acr_deploy.rule": d.rule or "", "acr_deploy.phase": str(d.phase)}
    return {k: v for k, v in attrs.items() if v}


class Telemetry:
    """Off: every call is a no-op (the base class); `OtelTelemetry` is the real one."""

    enabled = False

    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> ContextManager[Any]:
        return nullcontext()

    def inject(self) -> dict[str, str]:
        return {}

    def resume(self, carrier: Mapping[str, str] | None) -> ContextManager[Any]:
        return nullcontext()

    def deployment_finished(self, outcome: str, app: str, push_to_live_s: float | None) -> None:
        pass

    def shutdown(self) -> None:
        pass


class OtelTelemetry(Telemetry):
    enabled = True

    def __init__(self, tracer_provider: Any, meter_provider: Any | None = None) -> None:
        from opentelemetry import propagate, trace

        self._propagate = propagate
        self._trace = trace
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self.tracer = tracer_provider.get_tracer("acr_deploy")
        _install_log_ids()
        self._outcomes = self._duration = None
        if meter_provider is not None:
            meter = meter_provider.get_meter("acr_deploy")
            self._outcomes = meter.create_counter("acr_deploy.deployments", unit="{deployment}",
                                                  description="Deployments finished, by outcome")
            self._duration = meter.create_histogram("acr_deploy.push_to_live", unit="s",
                                                    description="From the push event to all traffic on the new revision")

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Any]:
        attrs = dict(attributes or {})
        ids = {k.split(".", 1)[1]: str(v) for k, v in attrs.items()
               if k in ("acr_deploy.deployment_id", "acr_deploy.app")}
        token = _ids.set({**_ids.get(), **ids}) if ids else None
        try:
            with self.tracer.start_as_current_span(name, attributes=attrs) as span:
                yield span
        finally:
            if token is not None:
                _ids.reset(token)

    def inject(self) -> dict[str, str]:
        carrier: dict[str, str] = {}
        self._propagate.inject(carrier)
        return carrier

    @contextmanager
    def resume(self, carrier: Mapping[str, str] | None) -> Iterator[None]:
        from opentelemetry import context

        if not isinstance(carrier, Mapping) or not carrier:
            yield
            return
        clean = {str(k): str(v) for k, v in carrier.items() if k in ("traceparent", "tracestate")}
        token = context.attach(self._propagate.extract(clean))
        try:
            yield
        finally:
            context.detach(token)

    def deployment_finished(self, outcome: str, app: str, push_to_live_s: float | None) -> None:
        if self._outcomes is not None:
            self._outcomes.add(1, {"outcome": outcome, "app": app})
        if self._duration is not None and push_to_live_s is not None:
            self._duration.record(push_to_live_s, {"app": app})

    def shutdown(self) -> None:
        for provider in (self._tracer_provider, self._meter_provider):
            if provider is not None and hasattr(provider, "shutdown"):
                provider.shutdown()


def from_settings(settings: Any) -> Telemetry:
    mode = (getattr(settings, "telemetry", "auto") or "auto").lower()
    if mode not in MODES:
        raise ValueError(f"ACR_DEPLOY_TELEMETRY must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "auto":
        mode = "azure" if getattr(settings, "app_insights", False) else "off"
    if mode == "off":
        return Telemetry()
    _trace_azure_sdk()
    if mode == "azure":
        from azure.monitor.opentelemetry import configure_azure_monitor
        from opentelemetry import metrics, trace

        # Reads APPLICATIONINSIGHTS_CONNECTION_STRING itself; logs of `acr_deploy` go along with their trace ids.
        configure_azure_monitor(logger_name="acr_deploy")
        return OtelTelemetry(trace.get_tracer_provider(), metrics.get_meter_provider())
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    if mode == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise ValueError("ACR_DEPLOY_TELEMETRY=otlp needs the opentelemetry-exporter-otlp-proto-http "
                             "package") from exc
        exporter: Any = OTLPSpanExporter()
    else:
        exporter = ConsoleSpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return OtelTelemetry(provider)


def _trace_azure_sdk() -> None:
    """ARM, Storage and Monitor calls as child spans (azure-core's OpenTelemetry plugin)."""
    from azure.core.settings import settings as azure_settings

    azure_settings.tracing_implementation = "opentelemetry"


_log_factory_installed = False


def _install_log_ids() -> None:
    """Every log record made while a deployment's span is open carries its `deployment_id` and `app`
    (a record factory: a logger's filter would miss the records of its child loggers)."""
    global _log_factory_installed
    if _log_factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        for key, value in _ids.get().items():
            setattr(record, key, value)
        return record

    logging.setLogRecordFactory(factory)
    _log_factory_installed = True


def with_trace(message: dict[str, Any]) -> dict[str, Any]:
    """A queue message carrying the current trace context (unchanged when telemetry is off)."""
    carrier = _current.inject()
    if carrier:
        message[TRACE_KEY] = carrier
    return message


_current: Telemetry = Telemetry()


def current() -> Telemetry:
    return _current


def install(telemetry: Telemetry) -> Telemetry:
    """Make `telemetry` the process's (the composition root, or a test); returns the previous one."""
    global _current
    previous, _current = _current, telemetry
    return previous
