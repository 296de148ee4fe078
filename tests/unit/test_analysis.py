"""Canary analysis (shared/domain/analysis.py): the verdict of one window and what a traffic step does next."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from shared.domain.analysis import (
    AnalysisRun, AnalysisSettings, InconclusivePolicy, StatusCounts, StepDecision, WindowMetrics, WindowVerdict,
    after_window, align, first_window, judge, worst_case_s,
)

T0 = datetime(2026, 12, 2, 6, 0, 0, tzinfo=timezone.utc)
NEW, OLD = "app--new", "app--old"


def window(new: dict, old: dict | None = None, response_time_ms: float | None = None) -> WindowMetrics:
    revisions = {NEW: StatusCounts(new)}
    if old is not None:
        revisions[OLD] = StatusCounts(old)
    return WindowMetrics(T0, T0 + timedelta(minutes=1), revisions, response_time_ms)


counts = st.integers(min_value=0, max_value=5000)


@given(ok=counts, errors=counts, limit=st.floats(min_value=0, max_value=100), minimum=st.integers(1, 100))
def test_the_verdict_follows_the_5xx_rate_and_the_request_count(ok, errors, limit, minimum):
    s = AnalysisSettings(max_error_rate=limit, min_requests=minimum)
    j = judge(s, window({"2xx": ok, "5xx": errors}), NEW, (OLD,))
    total = ok + errors
    if total < minimum:
        assert j.verdict == WindowVerdict.INCONCLUSIVE
    elif 100.0 * errors / total > limit:
        assert j.verdict == WindowVerdict.FAIL and "5xx rate" in j.reason
    else:
        assert j.verdict == WindowVerdict.PASS
    assert j.numbers()["requests"] == total and j.numbers()["errors_5xx"] == errors


@given(new_errors=st.integers(0, 100), old_errors=st.integers(0, 100), points=st.floats(min_value=0, max_value=50))
def test_worse_than_the_baseline_by_more_than_the_allowed_points_fails(new_errors, old_errors, points):
    s = AnalysisSettings(max_error_rate=100, max_error_rate_increase=points, min_requests=10)
    j = judge(s, window({"2xx": 100 - new_errors, "5xx": new_errors}, {"2xx": 100 - old_errors, "5xx": old_errors}),
              NEW, (OLD, NEW))
    assert (j.verdict == WindowVerdict.FAIL) == (new_errors - old_errors > points)
    assert j.baseline.total == 100  # the new revision is never part of its own baseline


def test_a_baseline_too_small_to_judge_is_not_compared():
    s = AnalysisSettings(max_error_rate=100, max_error_rate_increase=0, min_requests=10)
    assert judge(s, window({"2xx": 90, "5xx": 10}, {"2xx": 3}), NEW, (OLD,)).verdict == WindowVerdict.PASS


def test_the_app_average_response_time_has_a_limit_and_no_figure_is_no_failure():
    s = AnalysisSettings(max_response_time_ms=200, min_requests=1)
    assert judge(s, window({"2xx": 50}, response_time_ms=250), NEW, ()).verdict == WindowVerdict.FAIL
    assert judge(s, window({"2xx": 50}, response_time_ms=150), NEW, ()).verdict == WindowVerdict.PASS
    assert judge(s, window({"2xx": 50}), NEW, ()).verdict == WindowVerdict.PASS


verdicts = st.lists(st.sampled_from(list(WindowVerdict)), min_size=1, max_size=30)
settings = st.builds(AnalysisSettings, window_s=st.sampled_from([5.0, 60.0, 120.0]),
                     inconclusive=st.sampled_from(list(InconclusivePolicy)),
                     windows=st.integers(1, 5), failed_windows=st.integers(1, 5))


@given(s=settings, seq=verdicts)
def test_a_step_ends_exactly_when_enough_windows_passed_or_failed(s, seq):
    run = first_window(s, T0)
    decision = StepDecision.NEXT_WINDOW
    for i, verdict in enumerate(seq):
        start = run.window_start
        run, decision = after_window(s, run, verdict)
        assert run.window_start == start + timedelta(seconds=s.window_s)  # windows follow each other
        if decision != StepDecision.NEXT_WINDOW:
            break
    assert run.passed + run.failed + run.inconclusive == i + 1
    if decision == StepDecision.FAILED:
        assert run.failed == s.failed_windows and run.passed < s.windows
    elif decision == StepDecision.PASSED:
        assert run.passed == s.windows and run.failed < s.failed_windows
    else:
        assert run.passed < s.windows and run.failed < s.failed_windows
    if s.inconclusive != InconclusivePolicy.WAIT:
        assert run.inconclusive == 0  # pass/fail policies count an inconclusive window as such


@given(seconds=st.integers(0, 3599), micro=st.integers(0, 999_999))
def test_minute_windows_start_on_the_next_minute_boundary(seconds, micro):
    at = T0 + timedelta(seconds=seconds, microseconds=micro)
    start = align(AnalysisSettings(window_s=60), at)
    assert start >= at and start - at < timedelta(minutes=1) and start.second == 0 and start.microsecond == 0
    assert align(AnalysisSettings(window_s=5), at) == at


def test_a_window_is_read_only_after_its_end_plus_the_ingestion_delay():
    s = AnalysisSettings(window_s=60, ingestion_delay_s=150)
    run = first_window(s, T0 + timedelta(seconds=10))
    assert run.window_start == T0 + timedelta(minutes=1)
    assert run.ready_at(s) == T0 + timedelta(minutes=2, seconds=150)
    assert AnalysisRun.from_dict(run.to_dict()) == run
    assert worst_case_s(s) == 60 + 60 + 150


def test_settings_survive_the_stored_form():
    s = AnalysisSettings(max_error_rate_increase=1.5, inconclusive=InconclusivePolicy.FAIL, windows=2)
    assert AnalysisSettings.from_dict(s.to_dict()) == s
    assert AnalysisSettings.from_dict(None) is None
