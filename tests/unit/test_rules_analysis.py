"""`rollout.analysis` in the rules file: what loads, how defaults and rules combine, what is refused."""

from __future__ import annotations

import pytest

from shared.domain.analysis import AnalysisSettings, InconclusivePolicy
from tests.unit.test_rules_file import only, parse

RULE = """
  - name: r
    repository: orders-api
    tags: {{semver: '>=1.0.0'}}
    targets: [{{app: orders-api}}]
    rollout: {rollout}
"""


def rollout_of(rollout: str, defaults: str = ""):
    head = f"  rollout: {defaults}\n" if defaults else ""
    body = RULE.format(rollout=rollout)
    if head:
        from shared.domain.rules import parse_rules
        from tests.unit.rules_support import SUB
        text = f"defaults:\n  subscription: {SUB}\n  resource_group: apps\n{head}rules:\n{body}"
        return parse_rules(text, "rules.yaml").rules[0].rollout
    return parse(body).rules[0].rollout


def test_every_threshold_loads():
    r = rollout_of("{strategy: canary, steps: [20, 100], bake: 1m, deadline: 2h, analysis: {window: 2m, "
                   "ingestion_delay: 3m, max_error_rate: 0.5, max_error_rate_increase: 0.2, max_response_time_ms: 300, "
                   "min_requests: 50, inconclusive: fail, windows: 2, failed_windows: 2}}")
    assert r.analysis == AnalysisSettings(window_s=120, ingestion_delay_s=180, max_error_rate=0.5,
                                          max_error_rate_increase=0.2, max_response_time_ms=300, min_requests=50,
                                          inconclusive=InconclusivePolicy.FAIL, windows=2, failed_windows=2)


def test_true_takes_the_defaults_and_a_rule_can_turn_the_defaults_off():
    assert rollout_of("{analysis: true, deadline: 1h}").analysis == AnalysisSettings()
    assert rollout_of("{analysis: false}", defaults="{analysis: {max_error_rate: 2}, deadline: 1h}").analysis is None
    inherited = rollout_of("{strategy: canary}", defaults="{analysis: {max_error_rate: 2}, deadline: 1h}")
    assert inherited.analysis.max_error_rate == 2
    assert rollout_of("{strategy: canary}").analysis is None


@pytest.mark.parametrize("analysis, field, message", [
    ("{max_error_rat: 1}", "rollout.analysis.max_error_rat", "did you mean 'max_error_rate'"),
    ("{max_error_rate: 120}", "rollout.analysis.max_error_rate", "at most 100"),
    ("{inconclusive: maybe}", "rollout.analysis.inconclusive", "wait, pass, fail"),
    ("{windows: 0}", "rollout.analysis.windows", "between 1 and 60"),
    ("{window: soon}", "rollout.analysis.window", "not a duration"),
    ("{min_requests: 0}", "rollout.analysis.min_requests", "between 1"),
    ("[1]", "rollout.analysis", "mapping"),
])
def test_bad_thresholds_are_named(analysis, field, message):
    p = only(RULE.format(rollout=f"{{deadline: 2h, analysis: {analysis}}}"))
    assert p.field == field and message in p.message


def test_a_deadline_too_short_for_the_windows_and_the_ingestion_delay_is_refused():
    p = only(RULE.format(rollout="{strategy: canary, steps: [50, 100], deadline: 6m, analysis: {}}"))
    assert p.field == "rollout.deadline" and "ingestion delay" in p.message
