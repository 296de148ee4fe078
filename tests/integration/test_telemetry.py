"""One trace per push: intake's span context travels in every queue message (the real queue adapter on
Azurite), each rollout step continues it, and nothing secret is in a span. Spans are caught by an
in-memory exporter; telemetry off imports nothing of OpenTelemetry."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared import telemetry
from shared.adapters.memory import MemoryStore
from shared.adapters.queues import StorageRolloutQueue
from shared.domain.model import Phase, SmokeCheck
from shared.services.intake import ensure_recorded
from shared.services.rollout import RolloutWorker
from shared.services.rollout.messages import start_message
from tests.conftest import ROOT
from tests.unit.test_rollout_fakes import Clock, FakeApps, fast, push_deployment

SECRET = "Sup3rSecretHeaderValue"


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    previous = telemetry.install(telemetry.OtelTelemetry(tracer_provider, MeterProvider(metric_readers=[reader])))
    yield exporter, reader
    telemetry.install(previous)


def test_a_push_is_one_trace_from_intake_through_every_rollout_step(storage_connection_string, spans):
    exporter, reader = spans
    queue = StorageRolloutQueue.from_connection_string(storage_connection_string, "q" + uuid.uuid4().hex[:12])
    clock = Clock()
    store, apps = MemoryStore(), FakeApps(clock)
    worker = RolloutWorker(store, queue, apps, apps, clock=clock, budget_s=5.0, sleep=clock.advance,
                           monotonic=clock.monotonic, recover=lambda d: ensure_recorded(store, d))
    target = apps.add_app("traced")
    check = SmokeCheck(headers=(("X-Custom", SECRET),))
    d = push_deployment(target, "v2", "t", clock(), fast(smoke=(check,)))
    with telemetry.current().span("acr_deploy.intake.target", telemetry.deployment_attributes(d)) as intake:
        queue.send(start_message(d))  # intake died before its table write: the worker records it
    trace_id = intake.get_span_context().trace_id
    for _ in range(60):  # bounded: each round takes the visible messages, then waits a little
        messages = queue.receive()
        for message, handle in messages:
            assert "traceparent" in message[telemetry.TRACE_KEY]
            worker.handle_message(message)
            queue.delete(handle)
        if (store.get_deployment(d.id) or d).phase.terminal:
            break
        time.sleep(0.2)
    assert store.get_deployment(d.id).phase == Phase.SUCCEEDED
    finished = exporter.get_finished_spans()
    names = [s.name for s in finished]
    for phase in ("queued", "creating_revision", "waiting_ready", "smoke_testing", "shifting", "verifying"):
        assert f"acr_deploy.rollout.{phase}" in names, names
    assert {s.context.trace_id for s in finished} == {trace_id}  # one trace, whatever the messages
    step = next(s for s in finished if s.name == "acr_deploy.rollout.shifting")
    assert step.attributes["acr_deploy.deployment_id"] == d.id and step.attributes["acr_deploy.app"] == "traced"
    assert step.attributes["acr_deploy.digest"] == d.digest and step.attributes["acr_deploy.rule"] == "test"
    text = repr([(s.name, dict(s.attributes or {}), [dict(e.attributes or {}) for e in s.events]) for s in finished])
    assert SECRET not in text and "AccountKey" not in text and storage_connection_string not in text
    points = {m.name: m for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
              for m in sm.metrics}
    assert [p.attributes for p in points["acr_deploy.deployments"].data.data_points] == [
        {"outcome": "succeeded", "app": "traced"}]
    assert "acr_deploy.push_to_live" in points
    queue.client.delete_queue()


def test_log_lines_carry_the_deployment_id_and_app(spans, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="acr_deploy"):
        with telemetry.current().span("step", {"acr_deploy.deployment_id": "d-1", "acr_deploy.app": "orders"}):
            logging.getLogger("acr_deploy.rollout").info("inside")
        logging.getLogger("acr_deploy.rollout").info("outside")
    inside, outside = caplog.records[-2:]
    assert (inside.deployment_id, inside.app) == ("d-1", "orders")
    assert not hasattr(outside, "deployment_id")


def test_off_imports_nothing_of_opentelemetry():
    code = ("import sys, function_app; from shared import bootstrap; from shared.settings import Settings;"
            "t = bootstrap.Container(Settings.from_env({'ACR_DEPLOY_TELEMETRY': 'auto'})).telemetry;"
            "assert not t.enabled; print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'azure.monitor'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
