"""The canary analysis inside the rollout, with in-memory fakes: each traffic step judged on the request
metrics of complete windows, every verdict recorded with its numbers, a bad canary rolled back."""

from __future__ import annotations

from datetime import datetime

from shared.adapters.memory import MemoryRequestMetrics
from shared.domain import rollout as plan
from shared.domain.analysis import AnalysisSettings, InconclusivePolicy
from shared.domain.model import Phase
from tests.unit.test_rollout_fakes import CANARY, fast, push_deployment, record
from tests.unit.test_rollout_worker import Harness

ANALYSIS = AnalysisSettings(window_s=60, ingestion_delay_s=120, max_error_rate=1.0, max_error_rate_increase=0.5,
                            min_requests=20)


def setup(analysis: AnalysisSettings = ANALYSIS, app: str = "orders"):
    h = Harness()
    metrics = MemoryRequestMetrics()
    h.worker = h.worker.with_ports(metrics=metrics)
    target = h.apps.add_app(app)
    d = push_deployment(target, "v2", "a", h.clock(), fast(**dict(CANARY, deadline_s=3600.0), analysis=analysis))
    new = plan.revision_name(app, plan.revision_suffix(app, d.tag, d.digest))
    metrics.serve(f"{app}--first", per_minute=600, errors_per_minute=1)
    return h, metrics, d, new


def analysis_events(h, d):
    return [e for e in h.store.list_events(d.id) if "analysis" in e.data]


def test_a_canary_that_fails_under_load_is_rolled_back_at_its_first_step_with_the_numbers():
    h, metrics, d, new = setup()
    metrics.serve(new, per_minute=60, errors_per_minute=6)  # 10 % 5xx
    record(h.store, h.queue, d)
    h.drain()
    done = h.get(d)
    assert done.phase == Phase.ROLLED_BACK, h.story(d)
    assert "canary analysis failed at 10 %" in done.reason and "5xx rate 10.00 %" in done.reason
    assert h.traffic_calls()[-1] == {"orders--first": 100}
    [event] = analysis_events(h, d)
    assert event.data["analysis"] == "fail"
    assert (event.data["requests"], event.data["errors_5xx"], event.data["error_rate"]) == (60, 6, 10.0)
    assert event.data["baseline_requests"] == 600


def test_a_healthy_canary_passes_every_step_and_no_window_is_read_before_it_is_complete():
    h, metrics, d, new = setup()
    metrics.serve(new, per_minute=60)
    record(h.store, h.queue, d)
    h.drain()
    assert h.get(d).phase == Phase.SUCCEEDED, h.story(d)
    verdicts = [(e.data["analysis"], e.message.split(",")[0]) for e in analysis_events(h, d)]
    assert verdicts == [("pass", "analysis at 10 %"), ("pass", "analysis at 50 %"), ("pass", "analysis at 100 %")]
    for e in analysis_events(h, d):  # read no earlier than the window's end plus the ingestion delay
        end = datetime.fromisoformat(e.data["window_end"])
        assert (e.at - end).total_seconds() >= ANALYSIS.ingestion_delay_s
    assert len(metrics.reads) == 3  # one Monitor read per step


def test_too_few_requests_wait_for_the_next_window_or_count_as_the_policy_says():
    h, metrics, d, new = setup()
    metrics.serve(new, per_minute=5)  # below min_requests: inconclusive
    record(h.store, h.queue, d)
    h.drain()  # the default policy waits, window after window, until the rollout's deadline
    waiting = [e.data["analysis"] for e in analysis_events(h, d)]
    assert len(waiting) > 10 and set(waiting) == {"inconclusive"}
    assert h.get(d).phase in (Phase.ROLLED_BACK, Phase.FAILED) and "deadline" in h.get(d).reason
    failing = AnalysisSettings(window_s=60, ingestion_delay_s=120, min_requests=20,
                               inconclusive=InconclusivePolicy.FAIL)
    h, metrics, d, new = setup(failing, app="quiet")
    metrics.serve(new, per_minute=5)
    record(h.store, h.queue, d)
    h.drain()
    assert h.get(d).phase == Phase.ROLLED_BACK and "fewer than the 20 needed" in h.get(d).reason


def test_two_failed_windows_are_needed_when_the_rule_says_so():
    rule = AnalysisSettings(window_s=60, ingestion_delay_s=60, max_error_rate=1.0, min_requests=20, failed_windows=2)
    h, metrics, d, new = setup(rule)
    metrics.serve(new, per_minute=100, errors_per_minute=5)
    record(h.store, h.queue, d)
    h.drain()
    assert h.get(d).phase == Phase.ROLLED_BACK
    assert [e.data["analysis"] for e in analysis_events(h, d)] == ["fail", "fail"]
    assert "(2 failed window(s))" in h.get(d).reason


def test_without_a_metrics_port_the_canary_is_rolled_back_with_the_reason():
    h, metrics, d, new = setup()
    h.worker = h.worker.with_ports(metrics=None)
    record(h.store, h.queue, d)
    h.drain()
    assert h.get(d).phase == Phase.ROLLED_BACK and "Azure Monitor is not configured" in h.get(d).reason
