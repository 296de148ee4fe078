"""Canary analysis during VERIFYING: read each window's request metrics once Azure has them, judge, record.

A traffic step with `rollout.analysis` starts its first window when the traffic changes (`start`, from
SHIFTING). After the bake, VERIFYING asks `step` until the step's analysis is done: wait for the window's
end plus the ingestion delay (a delayed message, not a sleep), read the new revision's and the baseline's
request counts (one Azure Monitor call; two when a response-time limit is set), record the verdict with
its numbers, then judge the next window, let the verify checks run, or roll back. The arithmetic is
`shared.domain.analysis`'s.
"""

from __future__ import annotations

from datetime import datetime

from shared.domain import analysis as rules
from shared.domain import rollout as plan
from shared.domain import traffic
from shared.domain.model import Deployment, RolloutSettings
from shared.services.rollout.context import RolloutContext
from shared.services.rollout.endings import Endings
from shared.services.rollout.records import remaining
from shared.services.rollout.step import Step, Wait, carried, recorded


def start(settings: RolloutSettings, now: datetime) -> rules.AnalysisRun | None:
    """The analysis of a traffic step that changed at `now` (None: the rule has none)."""
    return rules.first_window(settings.analysis, now) if settings.analysis is not None else None


def pending(d: Deployment) -> bool:
    """Whether this step's analysis still has to pass before its verify checks."""
    return d.rollout.analysis is not None and not (d.progress.analysis is not None and d.progress.analysis.done)


class CanaryAnalysis:
    def __init__(self, ctx: RolloutContext, endings: Endings) -> None:
        self.ctx = ctx
        self.endings = endings

    def step(self, d: Deployment) -> Step:
        c, s = self.ctx, d.rollout.analysis
        assert s is not None
        now = c.clock()
        run = d.progress.analysis or rules.first_window(s, now)  # a record from before this release
        wait = remaining(run.ready_at(s), now)
        if wait is not None:
            return carried(d.with_progress(analysis=run), Wait(wait))
        at = self._percent(d)
        if c.metrics is None:
            return self.endings.roll_back(d, f"canary analysis at {at} % cannot read metrics: Azure Monitor is "
                                             "not configured for this worker")
        window = c.metrics.get_window_metrics(d.target, run.window_start, run.window_end(s),
                                              response_time=s.max_response_time_ms is not None)
        baseline = tuple(traffic.serving(d.previous_traffic))
        judgement = rules.judge(s, window, d.revision, baseline)
        run, decision = rules.after_window(s, run, judgement.verdict)
        span = f"{window.start:%H:%M:%S}-{window.end:%H:%M:%S}"
        text = f"analysis at {at} %, window {span}: {judgement.verdict} ({judgement.reason})"
        event = plan.note(d, text, now, analysis=str(judgement.verdict), window_start=window.start.isoformat(),
                          window_end=window.end.isoformat(), **judgement.numbers())
        if decision == rules.StepDecision.FAILED:
            return self.endings.roll_back(d.with_progress(analysis=run),
                                          f"canary analysis failed at {at} %: {judgement.reason} "
                                          f"({run.failed} failed window(s))", event)
        d = d.with_progress(analysis=run)
        if decision == rules.StepDecision.PASSED:
            return recorded(d, event)
        return recorded(d, event, next=Wait(max(remaining(run.ready_at(s), now) or 0.0, 0.0)))

    @staticmethod
    def _percent(d: Deployment) -> int:
        steps = plan.shift_steps(d.rollout)
        return steps[min(d.step, len(steps) - 1)]

