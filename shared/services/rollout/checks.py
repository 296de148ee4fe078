"""Runs a phase's smoke / verify checks: consecutive passes, retries with back-off, every attempt recorded.

The arithmetic (which check next, pass / retry / fail) is `shared.domain.rollout.after_attempt`, the
smoke checks' warm-up for a revision's first answer `shared.domain.warmup`; this
runner probes, turns each attempt into a history line, and turns a back-off into an inline sleep (a
poll tick at most, within the budget) or a recorded retry time plus a delayed wake-up.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Callable

from shared.domain import rollout as plan
from shared.domain import warmup
from shared.domain.model import Deployment, DeploymentEvent, SmokeCheck
from shared.domain.progress import CheckKind, CheckProgress
from shared.ports import ProbeResult
from shared.services.rollout.context import RolloutContext
from shared.services.rollout.records import remaining
from shared.services.rollout.step import Step, Wait, carried, recorded

# on_pass / on_fail: (deployment, the attempts' events to record with the outcome, a summary line)
Outcome = Callable[[Deployment, list[DeploymentEvent], str], Step]


class CheckRunner:
    def __init__(self, ctx: RolloutContext) -> None:
        self.ctx = ctx

    def run(self, d: Deployment, kind: CheckKind, checks: tuple[SmokeCheck, ...], base_url: str,
            on_pass: Outcome, on_fail: Outcome) -> Step:
        c = self.ctx
        progress = d.progress.check(kind)
        wait = remaining(progress.retry_at, c.clock())
        if wait is not None:
            return carried(d, Wait(wait))
        if kind == CheckKind.SMOKE:  # only a new revision can be cold; the app's URL already serves
            progress = warmup.begin(progress, d.rollout.warmup_s, c.clock())
        run = progress.run
        events: list[DeploymentEvent] = []
        started = c.monotonic()
        for _ in range(100):  # bounded: consecutive passes x checks, within the budget
            check = checks[run.index]
            result = c.probe.probe(base_url, check)
            now = c.clock()
            cold = warmup.warming(progress, result.ok, result.status, now)
            progress = warmup.after(progress, result.ok, result.status, now)
            if cold:
                events.append(plan.note(
                    d, warming_text(kind, result, progress), now, check=result.check, ok=False, warming=True,
                    status=result.status, latency_ms=round(result.latency_ms, 1)))
                delay = warmup.delay_s(check, progress, now)
            else:
                run, verdict = plan.after_attempt(run, checks, result.ok)
                events.append(plan.note(
                    d, attempt_text(kind, result), now, check=result.check, ok=result.ok,
                    status=result.status, latency_ms=round(result.latency_ms, 1),
                    **({"excerpt": result.detail[:300]} if result.detail and not result.ok else {}),
                ))
                summary = f"{check.name}: {result.detail or result.status}" if not result.ok else \
                    f"{run.attempts} attempt(s) against {base_url}"
                if verdict == plan.Verdict.PASSED:
                    return on_pass(d.evolve(progress=d.progress.with_check(kind, None)), events, summary)
                if verdict == plan.Verdict.FAILED:
                    return on_fail(d, events, f"{check.name} {check.method} {check.path}: "
                                              f"{result.detail or result.status} after {run.failures} failed attempt(s)")
                delay = plan.backoff_s(check, run.failures) if verdict == plan.Verdict.RETRY else None
            progress = replace(progress, run=run, retry_at=None)
            d = d.evolve(progress=d.progress.with_check(kind, progress))
            if delay is not None:
                if delay > c.tick_s or c.monotonic() - started + delay >= c.budget_s:
                    progress = replace(progress, retry_at=c.clock() + timedelta(seconds=delay))
                    d = d.evolve(progress=d.progress.with_check(kind, progress))
                    return recorded(d, *events, next=Wait(delay))
                c.sleep(delay)
            if c.monotonic() - started >= c.budget_s:
                break
        return recorded(d, *events, next=Wait(0.0))


def attempt_text(kind: CheckKind, r: ProbeResult) -> str:
    verdict = "passed" if r.ok else "failed"
    status = r.status if r.status is not None else "no answer"
    text = f"{kind} {r.check} {verdict}: {status} in {r.latency_ms:.0f} ms"
    return text + (f" ({r.detail[:200]})" if r.detail and not r.ok else "")


def warming_text(kind: CheckKind, r: ProbeResult, progress: CheckProgress) -> str:
    status = r.status if r.status is not None else "no answer"
    until = f"{progress.warm_until:%H:%M:%S}" if progress.warm_until else "?"
    return (f"{kind} {r.check} warming up: {status} in {r.latency_ms:.0f} ms (a revision starting from zero "
            f"replicas; its first answer is awaited until {until} UTC, not counted as a failure)")


def url(fqdn: str) -> str:
    if not fqdn:
        return ""
    return fqdn if fqdn.startswith(("http://", "https://")) else f"https://{fqdn}"
