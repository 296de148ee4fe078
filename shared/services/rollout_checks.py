"""Runs a phase's smoke / verify checks: consecutive passes, retries with back-off, every attempt recorded.

The arithmetic (which check next, pass / retry / fail) is `shared.domain.rollout.after_attempt`; this
runner probes, records each attempt as a history line, and turns a back-off into an inline sleep (a
poll tick at most, within the budget) or a recorded `<key>_retry_at` plus a delayed wake-up.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Callable

from shared.domain import rollout as plan
from shared.domain.model import Deployment, DeploymentEvent, SmokeCheck
from shared.ports import ProbeResult
from shared.services.rollout_records import Next, Recorder, RolloutPorts, iso, parse, remaining

# on_pass / on_fail: (deployment, the attempts' events to record with the outcome, a summary line)
Outcome = Callable[[Deployment, list[DeploymentEvent], str], Next]


class CheckRunner:
    def __init__(self, ports: RolloutPorts, recorder: Recorder) -> None:
        self.ports = ports
        self.recorder = recorder

    def run(self, d: Deployment, key: str, checks: tuple[SmokeCheck, ...], base_url: str,
            on_pass: Outcome, on_fail: Outcome) -> Next:
        p = self.ports
        wait = remaining(parse(d.data.get(f"{key}_retry_at")), p.clock())
        if wait is not None:
            return Next(d, wait)
        run = plan.CheckRun.from_dict(d.data.get(key))
        events: list[DeploymentEvent] = []
        started = p.monotonic()
        for _ in range(100):  # bounded: consecutive passes x checks, within the budget
            check = checks[run.index]
            result: ProbeResult = p.probe.probe(base_url, check)
            run, verdict = plan.after_attempt(run, checks, result.ok)
            events.append(plan.note(
                d, attempt_text(key, result), p.clock(), check=result.check, ok=result.ok,
                status=result.status, latency_ms=round(result.latency_ms, 1),
                **({"excerpt": result.detail[:300]} if result.detail and not result.ok else {}),
            ))
            summary = f"{check.name}: {result.detail or result.status}" if not result.ok else \
                f"{run.attempts} attempt(s) against {base_url}"
            if verdict == plan.Verdict.PASSED:
                d.data.pop(key, None)
                d.data.pop(f"{key}_retry_at", None)
                return on_pass(d, events, summary)
            if verdict == plan.Verdict.FAILED:
                return on_fail(d, events, f"{check.name} {check.method} {check.path}: "
                                          f"{result.detail or result.status} after {run.failures} failed attempt(s)")
            d.data[key] = run.to_dict()
            if verdict == plan.Verdict.RETRY:
                delay = plan.backoff_s(check, run.failures)
                if delay > p.tick_s or p.monotonic() - started + delay >= p.budget_s:
                    d.data[f"{key}_retry_at"] = iso(p.clock() + timedelta(seconds=delay))
                    d = self.recorder.save(d, *events)
                    return Next(d, delay)
                p.sleep(delay)
            if p.monotonic() - started >= p.budget_s:
                break
        d = self.recorder.save(d, *events)
        return Next(d, 0.0)


def attempt_text(key: str, r: ProbeResult) -> str:
    verdict = "passed" if r.ok else "failed"
    status = r.status if r.status is not None else "no answer"
    text = f"{key} {r.check} {verdict}: {status} in {r.latency_ms:.0f} ms"
    return text + (f" ({r.detail[:200]})" if r.detail and not r.ok else "")


def url(fqdn: str) -> str:
    if not fqdn:
        return ""
    return fqdn if fqdn.startswith(("http://", "https://")) else f"https://{fqdn}"
